"""Resident memory of a process and everything it started, for the bench's peak-memory figures."""

from __future__ import annotations


def tree_rss_mb(pid: int | None = None) -> float:
    """RSS of process `pid` (this one when None) and all its descendants, in MiB; 0 when it has ended."""
    import psutil

    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for process in tree:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total / 2 ** 20

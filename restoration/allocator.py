"""The allocator under large temporaries (the sr stage's activations, the dust stage's frame-sized arrays): glibc
malloc returns large buffers to the OS as soon as they are freed, so each new one is page-faulted in again. Either
glibc is told to keep them (`retain_freed_memory`, done by those stages on the CPU), or tcmalloc preloaded by the
user (LD_PRELOAD) is left to do it."""

from __future__ import annotations

import os
import sys

OPT_OUT = "FILMRESTORE_ALLOCATOR"  # set to "system" to keep glibc malloc
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameter numbers (malloc.h)
_GLIBC_TUNED: list[bool] = []  # once per process; a list so the flag is visible to tests


def retain_freed_memory(environ: dict[str, str] | None = None) -> bool:
    """Without tcmalloc, keep glibc from handing large blocks (the network's activations, each above its 32 MB mmap
    limit; frame-sized temporaries) back to the OS once freed: big blocks come from the heap, trimmed only beyond
    1 GiB free. True when set."""
    if _GLIBC_TUNED:
        return _GLIBC_TUNED[0]
    environ = dict(os.environ) if environ is None else environ
    if not sys.platform.startswith("linux") or environ.get(OPT_OUT) == "system" \
            or "tcmalloc" in environ.get("LD_PRELOAD", ""):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        done = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        done = False
    _GLIBC_TUNED.append(done)
    return done

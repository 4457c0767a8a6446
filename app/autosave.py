"""Autosave: the open project is written (debounced) to a per-session file; a crashed session's file is offered back."""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QLockFile

from restoration.project import Project


@dataclass
class Recovery:
    """An autosave left behind by a session that did not end cleanly."""

    path: Path
    project_path: str | None
    saved_at: float
    name: str

    def discard(self) -> None:
        for path in (self.path, _meta_path(self.path), Path(f"{self.path}.lock")):
            path.unlink(missing_ok=True)


def _meta_path(path: Path) -> Path:
    return path.with_name(path.stem + ".meta")


class Autosave:
    """One session's autosave file, locked while the session lives so other sessions never offer it."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder) / "autosave"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"session-{os.getpid()}-{int(time.time())}-{secrets.token_hex(3)}.json"
        self._lock = QLockFile(f"{self.path}.lock")
        self._lock.setStaleLockTime(0)
        self._lock.tryLock(0)
        self.saved_at: float | None = None

    def save(self, project: Project, project_path: Path | None) -> Path:
        project.save(self.path)
        meta = {"project_path": str(project_path) if project_path else None, "saved_at": time.time(),
                "name": project.name}
        _meta_path(self.path).write_text(json.dumps(meta), encoding="utf-8")
        self.saved_at = meta["saved_at"]
        return self.path

    def discard(self) -> None:
        """The project was saved or deliberately dropped: nothing to recover."""
        self.path.unlink(missing_ok=True)
        _meta_path(self.path).unlink(missing_ok=True)
        self.saved_at = None

    def close(self) -> None:
        self.discard()
        self._lock.unlock()

    def orphans(self) -> list[Recovery]:
        """Autosaves of sessions that ended without saving or discarding (newest first)."""
        found: list[Recovery] = []
        for path in self.folder.glob("session-*.json"):
            if path == self.path or path.name.endswith(".meta.json"):
                continue
            lock = QLockFile(f"{path}.lock")
            if not lock.tryLock(0):
                continue  # a live session owns it
            lock.unlock()
            try:
                meta = json.loads(_meta_path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                meta = {}
            found.append(Recovery(path, meta.get("project_path"), float(meta.get("saved_at") or path.stat().st_mtime),
                                  str(meta.get("name") or "untitled")))
        return sorted(found, key=lambda r: r.saved_at, reverse=True)

"""The work folder beside a master (`OUT.work/`): stage outputs, shot analyses and finished chunks, all lossless.

Everything is written under a temporary name and renamed, and a unit counts as done only once its marker is in
place, so a render killed at any moment leaves a folder a rerun can trust. The manifest names the project and the
source it belongs to; a rerun of the same command resumes from it, anything else starts afresh.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError
from ..export.paths import write_text_atomic

MANIFEST = "manifest.json"
WORK_SUFFIX = ".work"


def work_folder_for(output: Path) -> Path:
    return output.parent / f"{output.name}{WORK_SUFFIX}"


def _atomic(path: Path, write) -> None:
    temp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        write(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _save_pickle(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic(path, lambda temp: temp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)))


@dataclass(frozen=True)
class WorkFolder:
    """Paths inside one render's work folder, and lossless reads and writes of what it holds."""

    root: Path

    # --- stage outputs (float32, one file a frame) ----------------------------------------------------------
    def stage_frame(self, step: int, index: int) -> Path:
        return self.root / f"step{step}" / f"{index:08d}.npy"

    def save_stage_frame(self, step: int, index: int, frame: np.ndarray) -> None:
        path = self.stage_frame(step, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _npy_bytes(np.ascontiguousarray(frame, dtype=np.float32))
        _atomic(path, lambda temp: _write_synced(temp, data))

    def load_stage_frame(self, step: int, index: int) -> np.ndarray:
        return np.load(self.stage_frame(step, index), allow_pickle=False)

    def drop_step(self, step: int, start: int, stop: int) -> None:
        for index in range(start, stop):
            self.stage_frame(step, index).unlink(missing_ok=True)

    # --- analyses ------------------------------------------------------------------------------------------
    def analysis(self, step: int, start: int, stop: int) -> Path:
        return self.root / "analysis" / f"step{step}-{start:08d}-{stop:08d}.pkl"

    def save_analysis(self, step: int, start: int, stop: int, value: Any) -> None:
        _save_pickle(self.analysis(step, start, stop), value)

    def load_analysis(self, step: int, start: int, stop: int) -> Any:
        return pickle.loads(self.analysis(step, start, stop).read_bytes())

    def measurement(self, step: int, start: int, stop: int) -> Path:
        """A splitting stage's measurement beside its analysis (for the shared analysis cache)."""
        return self.root / "analysis" / f"step{step}-{start:08d}-{stop:08d}.measurement.pkl"

    def save_measurement(self, step: int, start: int, stop: int, value: Any) -> None:
        _save_pickle(self.measurement(step, start, stop), value)

    def load_measurement(self, step: int, start: int, stop: int) -> tuple[bool, Any]:
        try:
            return True, pickle.loads(self.measurement(step, start, stop).read_bytes())
        except Exception:  # noqa: BLE001 - missing or unreadable: the analysis is still there
            return False, None

    # --- the job local workers run --------------------------------------------------------------------------
    def save_job(self, job: Any) -> Path:
        """The render job, pickled for local workers to read as they start (a spawn's arguments would wait for it)."""
        path = self.root / "job.pkl"
        _save_pickle(path, job)
        return path

    # --- done markers of intermediate units ------------------------------------------------------------------
    def marker(self, key: str) -> Path:
        return self.root / "done" / key

    def mark_done(self, key: str) -> None:
        path = self.marker(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, "done\n")

    def is_done(self, key: str) -> bool:
        return self.marker(key).is_file()

    # --- chunks of the master (the integers it stores) -------------------------------------------------------
    def chunk(self, start: int, stop: int) -> Path:
        return self.root / "chunks" / f"{start:08d}-{stop:08d}.npy"

    def save_chunk(self, start: int, stop: int, values: np.ndarray) -> None:
        path = self.chunk(start, stop)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _npy_bytes(values)
        _atomic(path, lambda temp: _write_synced(temp, data))  # hashed as written, not read back
        write_text_atomic(path.with_suffix(".json"),
                          json.dumps({"frames": [start, stop], "sha256": hashlib.sha256(data).hexdigest()}))

    def _chunk_bytes(self, start: int, stop: int) -> bytes | None:
        """The chunk's data when its checksum record is there and the data still matches it, else None."""
        path = self.chunk(start, stop)
        try:
            record = json.loads(path.with_suffix(".json").read_text())
            data = path.read_bytes()
        except (OSError, ValueError):
            return None
        if record.get("frames") != [start, stop] or record.get("sha256") != hashlib.sha256(data).hexdigest():
            return None
        return data

    def chunk_is_done(self, start: int, stop: int) -> bool:
        """A chunk counts only when its checksum record is there and the data still matches it."""
        return self._chunk_bytes(start, stop) is not None

    def load_checked_chunk(self, start: int, stop: int) -> np.ndarray | None:
        """The chunk's integers, read once and checked against its record; None when it is not (or no longer) done."""
        data = self._chunk_bytes(start, stop)
        return None if data is None else np.load(io.BytesIO(data), allow_pickle=False)

    # --- the manifest --------------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / MANIFEST).read_text())
        except (OSError, ValueError):
            return None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_text_atomic(self.root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def prepare_work_folder(output: Path, manifest: dict[str, Any], fresh: bool) -> tuple[WorkFolder, str | None]:
    """The work folder for `output`, reused when its manifest matches; returns it and a note for the user."""
    root = work_folder_for(output)
    folder = WorkFolder(root)
    note = None
    if root.exists() or root.is_symlink():
        if root.is_symlink() or not root.is_dir():
            raise ExportError(root, "is in the way of the render's work folder; move it away")
        found = folder.read_manifest()
        if found is None and any(root.iterdir()):
            raise ExportError(root, "exists and is not a FilmRestore work folder; move it away (nothing was changed)")
        if found is not None and found != manifest:
            note = (f"the work folder {root} belongs to another project or source version; starting afresh"
                    if not fresh else None)
            fresh = True
        if fresh:
            shutil.rmtree(root)
    try:
        root.mkdir(exist_ok=True)
        folder.write_manifest(manifest)
    except OSError as exc:
        raise ExportError(root, f"cannot create the work folder ({exc.strerror or exc})") from None
    return folder, note

"""Shot analyses kept on disk between renders, previews and the GUI, keyed by everything that decides them.

A stage's analysis of a shot depends on the source's frames, the settings of every stage before it, its own
settings, the shot's first and last frame and the code that measured it; the key is a hash of exactly those. A
second render, a preview or the GUI then reads the weave path, grain model or fade estimate back instead of
measuring the shot again.
A stage that splits its analysis (`Stage.splits_analysis`) also has its measurement kept, under a key without its
fit-only parameters, so a changed smoothing or strength re-fits from the measurement instead of measuring again.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

from .io.info import MediaInfo
from .stage import Shot

CACHE_ENV = "FILMRESTORE_CACHE"  # a folder, or "off"
MAX_ENTRY_BYTES = 64 << 20  # an analysis larger than this is not worth a disk round trip


def default_folder() -> Path | None:
    chosen = os.environ.get(CACHE_ENV)
    if chosen == "off":
        return None
    if chosen:
        return Path(chosen)
    import platformdirs

    return Path(platformdirs.user_cache_dir("filmrestore", appauthor=False)) / "analyses"


def source_fingerprint(info: MediaInfo) -> dict[str, Any]:
    """Size and modification time of every file of the source: a changed source has other analyses."""
    paths = list(info.files) or [info.path]
    digest = hashlib.sha256()
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"{os.path.basename(path)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        except OSError:
            digest.update(f"{path}:missing;".encode())
    return {"path": os.path.realpath(info.path), "files": len(paths), "digest": digest.hexdigest()}


@lru_cache(maxsize=1)
def code_fingerprint(package: Path = Path(__file__).parent) -> str:
    """The release and a digest of the core's source: an analysis made by other code (an upgrade, a fix) is
    measured again, never read back. A frozen bundle has no sources; its release alone tells it apart."""
    from . import __version__

    digest = hashlib.sha256(__version__.encode())
    for path in sorted(package.rglob("*.py")):
        if "bench" not in path.relative_to(package).parts:
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


class AnalysisCache:
    """Pickled analyses in a folder; a miss, an unreadable entry or a full disk is never an error."""

    def __init__(self, folder: Path | None, source: Mapping[str, Any], frame_handling: Mapping[str, Any]):
        self.folder = folder
        self.source = dict(source)
        self.handling = dict(frame_handling)  # frame rate and field handling: what turns the file into frames

    @classmethod
    def for_source(cls, info: MediaInfo, frame_rate: Any = None, fields: str | None = None,
                   folder: Path | None = None, fingerprint: Mapping[str, Any] | None = None) -> "AnalysisCache":
        """The cache for one source; pass its `fingerprint` when already taken (it stats every file)."""
        return cls(folder if folder is not None else default_folder(), fingerprint or source_fingerprint(info),
                   {"rate": str(frame_rate) if frame_rate else None, "fields": fields})

    def key(self, upstream: Sequence[tuple[str, Mapping[str, Any]]], stage: str, params: Mapping[str, Any],
            shot: Shot, part: str = "analysis") -> str:
        """The entry of a shot's analysis (`part="analysis"`) or, for a stage that splits its analysis, of its
        measurement (`part="measurement"`, `params` then without the fit-only ones: see `measurement_key`)."""
        record = {"source": self.source, "handling": self.handling, "upstream": [[n, p] for n, p in upstream],
                  "stage": stage, "params": params, "shot": [shot.start, shot.end], "version": 3,
                  "code": code_fingerprint()}
        if part != "analysis":
            record["part"] = part
        return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()

    def measurement_key(self, upstream: Sequence[tuple[str, Mapping[str, Any]]], stage: str,
                        measured_params: Mapping[str, Any], shot: Shot) -> str:
        """A split stage's measurement: keyed without its fit-only parameters, so a fit-only edit finds it."""
        return self.key(upstream, stage, measured_params, shot, part="measurement")

    def _path(self, key: str) -> Path | None:
        return self.folder / key[:2] / f"{key}.pkl" if self.folder is not None else None

    def get(self, key: str) -> tuple[bool, Any]:
        path = self._path(key)
        if path is None or not path.is_file():
            return False, None
        try:
            return True, pickle.loads(path.read_bytes())
        except Exception:  # noqa: BLE001 - a damaged entry is a miss; it is measured again and rewritten
            return False, None

    def put(self, key: str, value: Any) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            if len(data) > MAX_ENTRY_BYTES:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
            temp.write_bytes(data)
            os.replace(temp, path)
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            pass

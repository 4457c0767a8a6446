"""The provenance sidecar: what was restored, from which exact source, how, when, and the output's fixity."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from fractions import Fraction
from typing import Any

import av
import numpy as np

import restoration
from restoration.io.info import MediaInfo

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def source_checksum(info: MediaInfo) -> dict[str, Any]:
    """The source's checksum: SHA-256 of the file, or for a sequence SHA-256 over the files' digests.

    For a sequence the value equals `sha256sum FILES... | cut -c1-64 | sha256sum` (each digest plus a newline).
    """
    if info.kind == "sequence" or (info.files and len(info.files) > 1):
        combined = hashlib.sha256()
        for path in info.files:
            combined.update(sha256_file(path).encode("ascii") + b"\n")
        return {"sha256": combined.hexdigest(), "files": len(info.files),
                "method": "sha256 over the files' sha256 hex digests in order, one per line"}
    path = info.files[0] if info.files else info.path
    return {"sha256": sha256_file(path), "files": 1, "method": "sha256 of the file"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return repr(value)


def to_json(data: dict[str, Any]) -> str:
    """Pretty JSON; fractions as 'num/den', paths as text, numpy values as numbers."""
    return json.dumps(data, indent=2, default=_jsonable, ensure_ascii=False) + "\n"


def software() -> dict[str, str]:
    """FilmRestore's version and the media libraries that wrote the master."""
    libs = {name: ".".join(str(v) for v in version) for name, version in av.library_versions.items()}
    return {"filmrestore": restoration.__version__, "pyav": av.__version__, **libs}


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")

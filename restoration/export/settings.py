"""Export settings: one validated dataclass, stored in project files as a plain dict."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from restoration.export.formats import FORMATS
from restoration.params import Param, ParamSet, declare

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")

EXPORT_PARAMS: ParamSet = declare(
    Param("format", "choice", "ffv1", "master format", choices=tuple(FORMATS)),
    Param("overwrite", "bool", False, "replace an existing output (never the source)"),
    Param("crf", "int", 18, "H.264 constant rate factor: lower is better quality", minimum=0, maximum=51),
    Param("preset", "choice", "medium", "H.264 encoder speed/size trade-off", choices=X264_PRESETS),
    Param("audio", "bool", True, "carry the source's audio streams (copied, else FLAC/PCM)"),
    Param("threads", "int", 0, "encoder threads, 0 for automatic", minimum=0, maximum=256),
    Param("framemd5_file", "bool", True, "also write the output's framemd5 as <output>.framemd5"),
    Param("allow_depth_loss", "bool", False, "write a format shallower than the source's deepest frame"),
)


@dataclass(frozen=True)
class ExportSettings:
    """How a master is written; field meanings are declared in EXPORT_PARAMS."""

    format: str = "ffv1"
    overwrite: bool = False
    crf: int = 18
    preset: str = "medium"
    audio: bool = True
    threads: int = 0
    framemd5_file: bool = True
    allow_depth_loss: bool = False

    def __post_init__(self) -> None:
        EXPORT_PARAMS.resolve(asdict(self), prefix="export.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for project files."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "ExportSettings":
        """Settings from a project's `export` object; missing fields take defaults, bad ones raise ParamError."""
        values = {k: v for k, v in (data or {}).items() if not (k == "format" and v is None)}
        return cls(**EXPORT_PARAMS.resolve(values, prefix="export."))

    @staticmethod
    def problems(data: Mapping[str, Any]) -> list[str]:
        """Every bad field of a project's `export` object, as 'export.field: problem' lines."""
        return EXPORT_PARAMS.problems(data, prefix="export.")

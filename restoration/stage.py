"""The one Stage interface every restoration step implements; the registry is `restoration.stages`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping

import numpy as np

from .errors import ParamError
from .params import ParamSet

STAGE_ORDER: tuple[str, ...] = ("dust", "stabilize", "deflicker", "denoise", "color", "sr")


@dataclass(frozen=True)
class Shot:
    """A run of frames between two cuts: `start` inclusive, `end` exclusive, in clip frame indices."""

    start: int
    end: int

    def __contains__(self, index: int) -> bool:
        return self.start <= index < self.end

    def __len__(self) -> int:
        return self.end - self.start


@dataclass
class FrameWindow:
    """The frames a stage sees for one output frame: `frames[center]` is frame `index`.

    Neighbours past the edge of the frame's shot are mirrored back inside it, so a window never mixes shots;
    `indices` gives the clip index each entry really came from.
    """

    frames: list[np.ndarray]
    indices: list[int]
    center: int
    index: int
    shot: Shot

    @property
    def current(self) -> np.ndarray:
        return self.frames[self.center]

    @property
    def radius(self) -> int:
        return self.center


@dataclass
class StageOutput:
    """A processed frame plus side data (masks, estimated models) the GUI can show."""

    frame: np.ndarray
    side: dict[str, Any] = field(default_factory=dict)


ClipFrames = Iterable[tuple[int, np.ndarray]]


class Stage:
    """Base class: declare `name`, `title`, `params` once; override `process` (and `analyze` for per-clip passes)."""

    name: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str] = ""
    params: ClassVar[ParamSet]
    implemented: ClassVar[bool] = True
    min_size: ClassVar[int] = 1  # smallest width and height (px) the stage can restore
    min_size_reason: ClassVar[str] = ""

    def temporal_radius(self, params: Mapping[str, Any]) -> int:
        """How many frames before and after the current one `process` needs."""
        return 0

    def needs_analysis(self, params: Mapping[str, Any]) -> bool:
        """Whether `analyze` must run over the whole clip before `process`."""
        return False

    splits_analysis: ClassVar[bool] = False  # True: `analyze` is `fit(measure(...))` and `measure` can be cached

    def analyze(self, frames: ClipFrames, shot: Shot, params: Mapping[str, Any]) -> Any:
        """Per-shot pass over the frames this stage will receive (e.g. stabilization trajectories).

        Called once per shot with that shot's frames in order; the result is handed to `process` for its frames.
        """
        return self.fit(self.measure(frames, shot, params), shot, params)

    def measure(self, frames: ClipFrames, shot: Shot, params: Mapping[str, Any]) -> Any:
        """The expensive per-shot statistics (cached by the params that are not `fit_only`)."""
        return None

    def fit(self, measurement: Any, shot: Shot, params: Mapping[str, Any]) -> Any:
        """The cheap model fit from `measure`'s result; returns what `analyze` returns."""
        return None

    def output_size(self, width: int, height: int, params: Mapping[str, Any]) -> tuple[int, int]:
        """Output (width, height) for an input of that size."""
        return width, height

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: Any) -> StageOutput:
        raise NotImplementedError


class PlaceholderStage(Stage):
    """A registered stage whose issue has not landed: bypass-only, never a fake result."""

    implemented = False

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: Any) -> StageOutput:
        from .errors import StageNotImplemented

        raise StageNotImplemented(f"stage {self.name}", "not implemented yet; it can only be bypassed")

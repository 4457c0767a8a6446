"""The one Stage interface every restoration step implements; the registry is `restoration.stages`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping

import numpy as np

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
    """Base class: declare `name`, `title`, `params` once; override `process` (and `analyze` for per-shot passes).

    A per-shot pass that has an expensive measurement (flow over every frame, statistics) and a cheap model fit
    on top of it (a smoothing period, a mode, a strength) sets `splits_analysis` and overrides `measure` and `fit`
    instead of `analyze`; the parameters only the fit reads are declared `Param(..., fit_only=True)`. The pipeline
    and the analysis cache then keep the measurement under a key of the other parameters, so editing a fit-only
    parameter re-fits from the kept measurement instead of measuring the shot again.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str] = ""
    params: ClassVar[ParamSet]
    implemented: ClassVar[bool] = True
    min_size: ClassVar[int] = 1  # smallest width and height (px) the stage can restore
    min_size_reason: ClassVar[str] = ""
    splits_analysis: ClassVar[bool] = False  # True: `measure` + `fit` are separate and the measurement is cached

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
        By default the fit of the measurement; a stage that does not split its analysis overrides this alone.
        """
        return self.fit(self.measure(frames, shot, params), shot, params)

    def measure(self, frames: ClipFrames, shot: Shot, params: Mapping[str, Any]) -> Any:
        """The expensive part of the shot pass: reads every frame; must not read any `fit_only` parameter."""
        return None

    def fit(self, measurement: Any, shot: Shot, params: Mapping[str, Any]) -> Any:
        """The cheap part: the analysis `process` gets, from the measurement (no frames; well under a second)."""
        return measurement

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

"""The streaming pipeline: stages in the fixed order, each pulling a mirrored window from the one before.

Every stage is a node with a small LRU cache of its outputs. A render walks frame indices in order, so each node
holds only its consumer's window and memory stays flat with clip length; the GUI asks for any frame (or the output
after any stage) through the same nodes, so preview and render give the same bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from .analysis_cache import AnalysisCache
from .errors import MediaError, ParamError, StageNotImplemented
from .io.info import MediaInfo
from .repeats import RepeatFinder, RepeatMap
from .shots import detect_cuts, shot_at, shots_in_span
from .stage import STAGE_ORDER, FrameWindow, Shot, Stage, StageOutput
from .stages import stage_class

Progress = Callable[[str, int, int], None]


class FrameSource(Protocol):
    """What the pipeline needs of a source (restoration.io's readers and ArraySource provide it)."""

    info: MediaInfo

    def __len__(self) -> int: ...

    def frame(self, index: int) -> np.ndarray: ...

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]: ...


class ArraySource:
    """Frames already in memory (benchmark, tests, synthetic clips) behind the FrameSource interface."""

    def __init__(self, frames: Sequence[np.ndarray], frame_rate: Fraction = Fraction(24, 1), name: str = "<memory>"):
        if not frames:
            raise ParamError(name, "no frames")
        height, width = frames[0].shape[:2]
        self._frames = list(frames)
        self.info = MediaInfo(path=name, kind="memory", container="", codec="", width=width, height=height,
                              frame_count=len(frames), frame_rate=Fraction(frame_rate),
                              time_base=1 / Fraction(frame_rate), variable_frame_rate=False, bit_depth=32,
                              pixel_format="rgbf32")

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, index: int) -> np.ndarray:
        return self._frames[index]

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        for index in range(start, len(self) if stop is None else stop):
            yield index, self._frames[index]


@dataclass
class StageSetting:
    """Whether a stage runs, and its parameter values (missing ones take the declared defaults)."""

    enabled: bool = False
    params: dict[str, Any] = field(default_factory=dict)


class _LRU:
    def __init__(self, capacity: int):
        self.capacity = max(1, capacity)
        self._items: OrderedDict[int, Any] = OrderedDict()

    def get(self, key: int) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: int, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class _SourceNode:
    """Reads source frames: sequential requests stream from one decoder, others seek."""

    def __init__(self, source: FrameSource, capacity: int, repeats: Callable[[], RepeatMap] | None = None):
        self.source = source
        self.cache = _LRU(capacity)
        self.repeats = repeats  # a repeat reads as an exact copy of its original
        self._stream: Iterator[tuple[int, np.ndarray]] | None = None
        self._next = -1
        self._last = -2

    def get(self, index: int) -> np.ndarray:
        if self.repeats is not None:
            index = self.repeats().original(index)
        return self.read(index)

    def read(self, index: int) -> np.ndarray:
        frame = self.cache.get(index)
        if frame is not None:
            return frame
        if self._stream is not None and index == self._next:
            frame = self._pull()
        elif index == self._last + 1:
            self._stream = self.source.frames(index)
            self._next = index
            frame = self._pull()
        else:
            self._stream = None
            frame = self.source.frame(index)
        self._last = index
        self.cache.put(index, frame)
        return frame

    def _pull(self) -> np.ndarray:
        assert self._stream is not None
        got, frame = next(self._stream)
        if got != self._next:
            raise RuntimeError(f"source yielded frame {got} where {self._next} was expected")
        self._next += 1
        return frame


class _StageNode:
    """One enabled stage: builds the mirrored window from upstream and caches outputs and side data."""

    def __init__(self, stage: Stage, params: dict[str, Any], upstream: "_SourceNode | _StageNode",
                 shots: Callable[[], list[Shot]], capacity: int, report: Callable[[str, int, int], None],
                 repeats: Callable[[], RepeatMap] | None = None):
        self.stage = stage
        self.repeats = repeats or RepeatMap
        self.report = report
        self.params = params
        self.upstream = upstream
        self.radius = stage.temporal_radius(params)
        self.shots = shots
        self.cache = _LRU(capacity)
        self.analyses: dict[Shot, Any] = {}
        self.measurements: dict[Shot, Any] = {}  # a splitting stage's measurements, kept across fit-only edits
        self.measured_params = stage.params.measured(params) if stage.splits_analysis else params
        self.disk: AnalysisCache | None = None  # shot analyses kept between sessions, when the pipeline has one
        self.upstream_settings: list[tuple[str, Mapping[str, Any]]] = []

    @property
    def name(self) -> str:
        return self.stage.name

    def get(self, index: int) -> np.ndarray:
        return self.output(index).frame

    def output(self, index: int) -> StageOutput:
        repeats = self.repeats()
        index = repeats.original(index)  # a repeated picture is the same picture: its original's output
        cached = self.cache.get(index)
        if cached is not None:
            return cached
        shot = shot_at(self.shots(), index)
        indices = repeats.window(index, self.radius, shot)  # neighbours are the shot's unique pictures
        window = FrameWindow(frames=[self.upstream.get(i) for i in indices], indices=indices,
                             center=self.radius, index=index, shot=shot)
        result = self.stage.process(window, self.params, self.analysis(shot))
        self.cache.put(index, result)
        return result

    def analysis(self, shot: Shot) -> Any:
        if not self.stage.needs_analysis(self.params):
            return None
        if shot not in self.analyses:
            key = self.disk.key(self.upstream_settings, self.name, self.params, shot) if self.disk else ""
            hit, value = self.disk.get(key) if self.disk else (False, None)
            if not hit:
                if self.stage.splits_analysis:
                    value = self.stage.fit(self.measurement(shot), shot, self.params)
                else:
                    value = self.stage.analyze(self._shot_frames(shot), shot, self.params)
                if self.disk:
                    self.disk.put(key, value)
            self.analyses[shot] = value
        return self.analyses[shot]

    def measurement(self, shot: Shot) -> Any:
        """A splitting stage's measurement of `shot`: kept in memory, else from disk, else measured now."""
        if shot not in self.measurements:
            key = (self.disk.measurement_key(self.upstream_settings, self.name, self.measured_params, shot)
                   if self.disk else "")
            hit, value = self.disk.get(key) if self.disk else (False, None)
            if not hit:
                value = self.stage.measure(self._shot_frames(shot), shot, self.params)
                if self.disk:
                    self.disk.put(key, value)
            self.measurements[shot] = value
        return self.measurements[shot]

    def _shot_frames(self, shot: Shot) -> Iterator[tuple[int, np.ndarray]]:
        for i in range(shot.start, shot.end):
            yield i, self.upstream.get(i)
            self.report(f"analyze {self.name}", i - shot.start + 1, len(shot))


def resolve_settings(settings: Mapping[str, StageSetting]) -> dict[str, StageSetting]:
    """Every stage in the fixed order with validated params; unknown stages or params raise ParamError."""
    resolved: dict[str, StageSetting] = {}
    for name in settings:
        stage_class(name)
    for name in STAGE_ORDER:
        setting = settings.get(name, StageSetting())
        params = stage_class(name).params.resolve(setting.params, prefix=f"{name}.")
        resolved[name] = StageSetting(bool(setting.enabled), params)
    return resolved


class Pipeline:
    """The enabled stages over one source, in the fixed order, with shot-aware mirrored windows."""

    def __init__(self, source: FrameSource, settings: Mapping[str, StageSetting],
                 shots: list[Shot] | None = None, cache_frames: int = 4, span: tuple[int, int] | None = None,
                 analysis_cache: AnalysisCache | None = None, repeats: RepeatMap | None = None):
        self.source = source
        self.span = span  # only these frames are looked at (cuts, shot analyses); None: the whole clip
        self.settings = resolve_settings(settings)
        self.skipped = [n for n, s in self.settings.items() if s.enabled and not stage_class(n).implemented]
        self._shots = shots
        self._repeats = repeats
        self.progress: Progress | None = None
        self._source_node = _SourceNode(source, capacity=cache_frames, repeats=self.repeats)
        self.nodes: list[_StageNode] = []
        upstream: _SourceNode | _StageNode = self._source_node
        for name, setting in self.settings.items():
            if not setting.enabled or name in self.skipped:
                continue
            node = _StageNode(stage_class(name)(), setting.params, upstream, self.shots, cache_frames, self._report,
                              self.repeats)
            self.nodes.append(node)
            upstream = node
        for position, node in enumerate(self.nodes):
            node.disk = analysis_cache
            node.upstream_settings = [(n.name, n.params) for n in self.nodes[:position]]
        # A consumer with radius r revisits 2r+1 upstream frames; keep them so each is computed once.
        consumers: list[_StageNode] = self.nodes
        producers: list[_SourceNode | _StageNode] = [self._source_node, *self.nodes[:-1]]
        for producer, consumer in zip(producers, consumers):
            producer.cache.capacity = max(producer.cache.capacity, 2 * consumer.radius + 2)
        self._check_frame_size()

    @property
    def active(self) -> list[str]:
        """Names of the stages that will run, in order."""
        return [node.name for node in self.nodes]

    @property
    def is_temporal(self) -> bool:
        return any(node.radius > 0 or node.stage.needs_analysis(node.params) for node in self.nodes)

    def shots(self) -> list[Shot]:
        """Shots of the whole clip; cuts are detected once, and only when a temporal stage needs them (repeated
        frames are found in the same pass)."""
        if self._shots is None:
            first, last = self.span or (0, len(self.source))
            if self.is_temporal:
                finder = RepeatFinder() if self._repeats is None else None
                frames = self._reported(self.source.frames(first, last), "cuts", last - first)
                cuts = detect_cuts(finder.feed(frames) if finder else frames, self.source.info.frame_rate)
                self._shots = shots_in_span(cuts, (first, last))
                if finder is not None:
                    self._repeats = finder.result(self._shots)
            else:
                self._shots = shots_in_span([], (first, last))
        return self._shots

    def repeats(self) -> RepeatMap:
        """Repeated frames of the span (found once; none unless a temporal stage runs)."""
        if self._repeats is None:
            shots = self.shots()
            if self._repeats is None:  # shots were given: one pass to find repeats
                first, last = self.span or (0, len(self.source))
                if self.is_temporal:
                    finder = RepeatFinder()
                    for index, frame in self._reported(self.source.frames(first, last), "repeats", last - first):
                        finder.add(index, frame)
                    self._repeats = finder.result(shots)
                else:
                    self._repeats = RepeatMap()
        return self._repeats

    def _report(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)

    def _reported(self, frames: Iterator[tuple[int, np.ndarray]], phase: str,
                  total: int) -> Iterator[tuple[int, np.ndarray]]:
        for done, item in enumerate(frames, 1):
            yield item
            self._report(phase, done, total)

    def _check_frame_size(self) -> None:
        check_frame_size(self.source.info, [(node.stage, node.params) for node in self.nodes])

    def output_size(self) -> tuple[int, int]:
        width, height = self.source.info.width, self.source.info.height
        for node in self.nodes:
            width, height = node.stage.output_size(width, height, node.params)
        return width, height

    def frame(self, index: int, after: str | None = None) -> np.ndarray:
        """Frame `index` as it leaves stage `after` ('source' for the original; None for the final result)."""
        return self._node_after(after).get(self._check_index(index))

    def side_data(self, index: int) -> dict[str, dict[str, Any]]:
        """Side data each active stage produced for frame `index` (renders the frame if needed)."""
        index = self._check_index(index)
        return {node.name: node.output(index).side for node in self.nodes}

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Final frames in order for a render of [start, stop)."""
        stop = len(self.source) if stop is None else stop
        self._check_index(start)
        self._check_index(stop - 1)
        last = self.nodes[-1] if self.nodes else self._source_node
        for index in range(start, stop):
            yield index, last.get(index)
            self._report("render", index - start + 1, stop - start)

    def adopt(self, previous: "Pipeline") -> int:
        """Take over `previous`'s decoded frames, shots, and the outputs and analyses of every leading stage whose
        settings are unchanged (what an edit further down the chain leaves valid); returns how many stages. The
        first changed stage keeps its measurements when it splits its analysis and only fit-only values changed."""
        if previous.source is not self.source:
            return 0
        if self._shots is None:
            self._shots = previous._shots
        if self._repeats is None and self._shots is previous._shots:
            self._repeats = previous._repeats
        previous._source_node.cache.capacity = max(previous._source_node.cache.capacity,
                                                   self._source_node.cache.capacity)
        self._source_node.cache = previous._source_node.cache
        kept = 0
        for old, new in zip(previous.nodes, self.nodes):
            if old.name != new.name or old.params != new.params:
                if (old.name == new.name and new.stage.splits_analysis
                        and old.measured_params == new.measured_params):
                    new.measurements = old.measurements  # a fit-only edit: re-fit, do not measure again
                break
            old.cache.capacity = max(old.cache.capacity, new.cache.capacity)
            new.cache, new.analyses, new.stage = old.cache, old.analyses, old.stage
            kept += 1
        return kept

    def clear_cache(self) -> None:
        for node in (self._source_node, *self.nodes):
            node.cache.clear()

    def _node_after(self, after: str | None) -> _SourceNode | _StageNode:
        if after is None:
            return self.nodes[-1] if self.nodes else self._source_node
        if after == "source":
            return self._source_node
        if after not in STAGE_ORDER:
            raise ParamError(f"stage {after}", f"unknown stage (known: source, {', '.join(STAGE_ORDER)})")
        chosen: _SourceNode | _StageNode = self._source_node
        for node in self.nodes:
            if STAGE_ORDER.index(node.name) <= STAGE_ORDER.index(after):
                chosen = node
        return chosen

    def _check_index(self, index: int) -> int:
        first, last = self.span or (0, len(self.source))
        if not first <= index < last:
            raise ParamError(self.source.info.path, f"frame {index} is outside {first}..{last - 1}")
        return index


def check_frame_size(info: MediaInfo, chain: Sequence[tuple[Stage, Mapping[str, Any]]]) -> None:
    """Refuse, naming the source, a frame smaller than an enabled stage can restore."""
    width, height = info.width, info.height
    for stage, params in chain:
        need = stage.min_size
        if width < need or height < need:
            raise MediaError(info.path, f"its {width}x{height} frames are smaller than the {need}x{need} the "
                             f"{stage.name} stage needs ({stage.min_size_reason}); leave the {stage.name} stage out")
        width, height = stage.output_size(width, height, params)


def settings_for(stages: Sequence[str], params: Mapping[str, Mapping[str, Any]] | None = None,
                 explicit: bool = True) -> dict[str, StageSetting]:
    """Settings enabling exactly `stages`; an explicitly named placeholder stage is an error."""
    params = params or {}
    for name in stages:
        if explicit and not stage_class(name).implemented:
            raise StageNotImplemented(f"stage {name}", "not implemented yet; it can only be bypassed")
    return {name: StageSetting(name in stages, dict(params.get(name, {}))) for name in STAGE_ORDER}


def run_stage_on_frames(stage_name: str, frames: Sequence[np.ndarray], params: Mapping[str, Any] | None = None,
                        frame_rate: Fraction = Fraction(24, 1), shots: list[Shot] | None = None) -> list[np.ndarray]:
    """Run one stage over in-memory frames (benchmark and tests); shots are detected unless given."""
    settings = settings_for([stage_name], {stage_name: dict(params or {})})
    pipeline = Pipeline(ArraySource(frames, frame_rate), settings, shots=shots)
    return [frame for _, frame in pipeline.frames()]


def describe_settings(settings: Mapping[str, StageSetting]) -> dict[str, Any]:
    """JSON-ready record of every stage's enabled flag and resolved params (for provenance)."""
    return {name: {"enabled": s.enabled, "implemented": stage_class(name).implemented, "params": s.params}
            for name, s in resolve_settings(settings).items()}


"""Preview off the GUI thread: one pipeline worker, stale requests coalesced or cancelled, per-stage caches kept.

The GUI asks for (frame, settings, comparison); each request gets a generation number. Only the newest pending
request runs; a running one gives up between stages when a newer one is waiting. Stages whose settings did not
change keep their cached outputs and per-shot analyses across edits, so tuning a late stage re-runs only that one.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from restoration.analysis_cache import AnalysisCache
from restoration.errors import RestorationError
from restoration.pipeline import FrameSource, Pipeline, StageSetting, resolve_settings
from restoration.scopes import Scopes, difference, scopes
from restoration.shots import detect_cuts, shot_at, shots_from_cuts
from restoration.stage import STAGE_ORDER, Shot
from restoration.stages import stage_class

from .errors import one_line
from .side_data import SideData, describe_side_data

log = logging.getLogger("filmrestore.app")

PREVIEW_CACHE_FRAMES = 6
SHOW_AT_LEAST_EVERY_S = 0.5  # while edits stream in, still show a finished frame this often


class Cancelled(Exception):
    """A preview request was overtaken by a newer one."""


@dataclass(frozen=True)
class PreviewRequest:
    """Frame `index` through `settings`; `compare` None means original vs result, else before/after that stage."""

    index: int
    settings: Mapping[str, StageSetting]
    compare: str | None = None


@dataclass
class StageTiming:
    """Wall time a stage spent on the last preview frame, and how many of its outputs it had to compute."""

    stage: str
    seconds: float
    computed: int
    analysis_seconds: float = 0.0  # the per-shot analysis inside `seconds` (it pulls upstream stages too)
    analysis_frames: int = 0


@dataclass
class PreviewResult:
    """What the viewer shows: the two sides (float for readout, 8-bit for display), side data and timings."""

    generation: int
    index: int
    left: np.ndarray
    right: np.ndarray
    left_display: np.ndarray
    right_display: np.ndarray
    left_label: str
    right_label: str
    side: SideData
    timings: list[StageTiming] = field(default_factory=list)
    read_seconds: float = 0.0
    active: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    note: str = ""
    seconds: float = 0.0
    key: str = ""  # the settings the picture was rendered with (settings_key)
    compare: str | None = None
    difference_display: np.ndarray | None = None  # |right − left| amplified, 8-bit
    difference_gain: float = 1.0
    difference_largest: float = 0.0  # the largest change, in 8-bit code values
    scopes: tuple[Scopes, Scopes] | None = None  # (left, right)

    @property
    def difference_label(self) -> str:
        if self.difference_largest == 0:
            return f"difference: nothing changed ({self.left_label} = {self.right_label})"
        return (f"difference ×{self.difference_gain:g} · |{self.right_label} − {self.left_label}| · "
                f"largest change {self.difference_largest:.0f}/255")

    def nbytes(self) -> int:
        arrays = (self.left, self.right, self.left_display, self.right_display, self.difference_display)
        return sum(a.nbytes for a in arrays if a is not None)


def to_display(frame: np.ndarray) -> np.ndarray:
    """8-bit RGB for the screen (display only: readouts use the float frame)."""
    return np.ascontiguousarray((np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def settings_key(settings: Mapping[str, StageSetting]) -> str:
    """A comparable fingerprint of resolved stage settings."""
    resolved = resolve_settings(settings)
    return json.dumps({n: [s.enabled, s.params] for n, s in resolved.items()}, sort_keys=True, default=str)


def upstream_key(settings: Mapping[str, StageSetting], stage: str) -> str:
    """Fingerprint of the enabled stages up to and including `stage`: what that stage's input and its shot pass
    depend on (for a stage that splits its analysis, its measurement: its own fit-only values left out)."""
    resolved = resolve_settings(settings)
    upto = STAGE_ORDER[:STAGE_ORDER.index(stage) + 1] if stage in STAGE_ORDER else STAGE_ORDER
    record = {n: resolved[n].params for n in upto if resolved[n].enabled}
    if stage in record and stage_class(stage).splits_analysis:
        record[stage] = stage_class(stage).params.measured(record[stage])
    return json.dumps(record, sort_keys=True, default=str)


def copy_settings(settings: Mapping[str, StageSetting]) -> dict[str, StageSetting]:
    """A snapshot the worker can own while the GUI keeps editing."""
    return {name: StageSetting(s.enabled, json.loads(json.dumps(s.params, default=str))) for name, s in settings.items()}


def widen_caches(pipeline: Pipeline, frames: int = PREVIEW_CACHE_FRAMES) -> None:
    """Let each stage keep every output its downstream windows need for one preview frame, so none is computed twice."""
    for position, node in enumerate(pipeline.nodes):
        downstream = sum(n.radius for n in pipeline.nodes[position + 1:])
        node.cache.capacity = max(node.cache.capacity, frames, 2 * downstream + 2)


def comparison_sides(compare: str | None) -> tuple[str, str | None]:
    """(after-key of the left side, after-key of the right side) for Pipeline.frame."""
    if compare is None:
        return "source", None
    position = STAGE_ORDER.index(compare)
    return ("source" if position == 0 else STAGE_ORDER[position - 1]), compare


class _Signals(QObject):
    finished = Signal(object)  # PreviewResult
    failed = Signal(int, str)  # generation, one-line message
    busy = Signal(bool)
    progress = Signal(str, int, int)  # phase, done, total (shot analysis, cut detection)


WORKER_NICENESS = 5  # preview and cut threads yield the CPU to the GUI thread when cores are short


def lower_thread_priority(niceness: int = WORKER_NICENESS) -> None:
    """Make the calling thread nicer than the GUI thread (Linux: per-thread nice; elsewhere nothing), so a
    picture or a plot redraw never waits behind a preview for a core."""
    try:
        import os

        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if current < niceness:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)
    except (AttributeError, OSError):
        pass


class _Drain(QRunnable):
    def __init__(self, engine: "PreviewEngine") -> None:
        super().__init__()
        self.engine = engine

    def run(self) -> None:
        lower_thread_priority()
        self.engine._drain()


class PreviewEngine(QObject):
    """Owns the preview pipeline; every pipeline call happens on its single worker thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.signals = _Signals()
        self.finished, self.failed = self.signals.finished, self.signals.failed
        self.busy, self.progress = self.signals.busy, self.signals.progress
        self._pool = QThreadPool()
        self._pool.setMaxThreadCount(1)  # the pipeline and its source are not thread-safe: one worker
        self._lock = threading.Lock()
        self._pending: tuple[int, PreviewRequest, FrameSource, str] | None = None
        self._running = False
        self._generation = 0
        self._source: FrameSource | None = None
        self._shots: list[Shot] | None = None
        self._shots_ready = threading.Event()  # set when cuts are known, or when nobody is detecting them
        self._shots_ready.set()
        self._pipeline: Pipeline | None = None
        self._pipeline_key = ""
        self._last_shown = 0.0
        self._shown_generation = 0
        self._retired: list[FrameSource] = []

    # --- GUI thread ---------------------------------------------------------------------------------------------
    def set_source(self, source: FrameSource | None) -> None:
        """Switch sources; the old one is closed on the worker once nothing uses it."""
        with self._lock:
            if self._source is not None:
                self._retired.append(self._source)
            self._source = source
            self._shots = None
            self._shots_ready.set()
            self._generation += 1
            self._pending = None
        if not self._running:
            self._pool.start(_Drain(self))

    def expect_shots(self) -> None:
        """A detector is finding this source's cuts: temporal previews wait for it rather than detect them twice."""
        self._shots_ready.clear()

    def set_shots(self, shots: list[Shot] | None) -> None:
        """Cuts found by the timeline's detector (None: it failed); later pipelines start from them."""
        with self._lock:
            if shots is not None:
                self._shots = list(shots)
        self._shots_ready.set()

    def request(self, request: PreviewRequest) -> int:
        """Queue a preview; returns its generation. Older pending requests are dropped."""
        key = settings_key(request.settings)
        request = PreviewRequest(request.index, copy_settings(request.settings), request.compare)
        with self._lock:
            if self._source is None:
                return self._generation
            self._generation += 1
            self._pending = (self._generation, request, self._source, key)
            start = not self._running
            self._running = True
            generation = self._generation
        if start:
            self.signals.busy.emit(True)
            self._pool.start(_Drain(self))
        return generation

    @property
    def generation(self) -> int:
        return self._generation

    def is_busy(self) -> bool:
        """Whether the worker is rendering or has a request waiting (read on the GUI thread, no signal lag)."""
        with self._lock:
            return self._running

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Block until the worker is idle (tests, screenshots, shutdown)."""
        return self._pool.waitForDone(timeout_ms)

    def shutdown(self) -> None:
        with self._lock:
            self._pending = None
            self._generation += 1
        self._shots_ready.set()
        self._pool.waitForDone(-1)
        self._close_retired()
        if self._source is not None:
            _close(self._source)
            self._source = None

    # --- worker thread ------------------------------------------------------------------------------------------
    def _drain(self) -> None:
        while True:
            self._close_retired()
            with self._lock:
                job = self._pending
                self._pending = None
                if job is None:
                    self._running = False
                    break
            generation, request, source, key = job
            try:
                result = self._render(generation, request, source, key)
            except Cancelled:
                continue
            except RestorationError as exc:
                self.signals.failed.emit(generation, one_line(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - a stage bug must not end the session
                log.error("preview failed: %s", traceback.format_exc())
                self.signals.failed.emit(generation, f"preview failed: {one_line(exc)}")
                continue
            with self._lock:
                newer = self._pending is not None
            if not newer or time.monotonic() - self._last_shown > SHOW_AT_LEAST_EVERY_S:
                self._last_shown = time.monotonic()
                self._shown_generation = generation
                self.signals.finished.emit(result)
        self.signals.busy.emit(False)

    def _close_retired(self) -> None:
        with self._lock:
            retired, self._retired = self._retired, []
        for source in retired:
            if self._pipeline is not None and self._pipeline.source is source:
                self._pipeline = None
            _close(source)

    def _superseded(self, key: str, source: FrameSource, scrub_too: bool) -> bool:
        with self._lock:
            pending = self._pending
            current = self._source
        if current is not source:
            return True
        if pending is None:
            return False
        if scrub_too and time.monotonic() - self._last_shown <= SHOW_AT_LEAST_EVERY_S:
            return True
        return pending[3] != key

    def _analysis_superseded(self, phase: str, request: PreviewRequest, source: FrameSource) -> bool:
        """A long pass (cuts, a stage's shot analysis) is abandoned only when its own inputs changed: the source,
        or the settings of the analysing stage and the stages before it. Edits further down keep it going."""
        with self._lock:
            pending = self._pending
            current = self._source
        if current is not source:
            return True
        if pending is None or phase == "cuts":
            return False
        stage = phase.split(" ", 1)[1] if phase.startswith("analyze ") else STAGE_ORDER[-1]
        return upstream_key(pending[1].settings, stage) != upstream_key(request.settings, stage)

    def _analysis_cache(self, source: FrameSource) -> AnalysisCache:
        """Shot analyses shared with renders and earlier sessions of the same source (one fingerprint per source)."""
        if getattr(self, "_disk_for", None) is not source:
            self._disk, self._disk_for = AnalysisCache.for_source(source.info), source
        return self._disk

    def _pipeline_for(self, request: PreviewRequest, source: FrameSource, key: str) -> Pipeline:
        if self._pipeline is not None and self._pipeline.source is source and self._pipeline_key == key:
            return self._pipeline
        with self._lock:
            shots = self._shots
        old = self._pipeline
        disk = self._analysis_cache(source)
        pipeline = Pipeline(source, request.settings, shots=shots, cache_frames=PREVIEW_CACHE_FRAMES,
                            analysis_cache=disk)
        if shots is None and pipeline.is_temporal and not self._shots_ready.is_set():
            self.signals.progress.emit("cuts", 0, len(source))
            while not self._shots_ready.wait(0.05):
                if self._superseded(key, source, scrub_too=False):
                    raise Cancelled()
            with self._lock:
                shots = self._shots
            pipeline = Pipeline(source, request.settings, shots=shots, cache_frames=PREVIEW_CACHE_FRAMES,
                                analysis_cache=disk)
        widen_caches(pipeline)
        if old is not None:
            pipeline.adopt(old)
        self._pipeline, self._pipeline_key = pipeline, key
        return pipeline

    def _render(self, generation: int, request: PreviewRequest, source: FrameSource, key: str) -> PreviewResult:
        started = time.monotonic()
        pipeline = self._pipeline_for(request, source, key)

        marks: dict[str, tuple[float, int]] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if self._analysis_superseded(phase, request, source):
                raise Cancelled()
            if phase.startswith("analyze "):
                marks[phase.split(" ", 1)[1]] = (time.monotonic(), total)
            if done == 1 or done == total or done % 5 == 0:
                self.signals.progress.emit(phase, done, total)

        pipeline.progress = progress
        try:
            index = request.index
            read_started = time.monotonic()
            pipeline.frame(index, after="source")
            read_seconds = time.monotonic() - read_started
            timings = self._timed_stages(pipeline, index, key, source, marks)
            left_key, right_key = comparison_sides(request.compare)
            left = pipeline.frame(index, after=left_key)
            right = pipeline.frame(index, after=right_key)
            side = describe_side_data(pipeline.side_data(index)) if pipeline.nodes else SideData()
        finally:
            pipeline.progress = None
        if pipeline.is_temporal:
            with self._lock:
                if self._shots is None and self._source is source:
                    self._shots = pipeline.shots()  # detected once; later pipelines start from them
        if request.compare is None:
            labels = ("original", "result")
        else:
            title = stage_class(request.compare).title
            labels = (f"before {title}", f"after {title}")
        changed, gain, largest = difference(left, right)  # scopes and difference here, off the GUI thread
        return PreviewResult(
            generation=generation, index=index, left=left, right=right,
            left_display=to_display(left), right_display=to_display(right),
            left_label=labels[0], right_label=labels[1], side=side, timings=timings, read_seconds=read_seconds,
            active=pipeline.active, skipped=list(pipeline.skipped), note=_comparison_note(request, pipeline),
            seconds=time.monotonic() - started, key=key, compare=request.compare,
            difference_display=to_display(changed), difference_gain=gain, difference_largest=largest,
            scopes=(scopes(left), scopes(right)))

    def _timed_stages(self, pipeline: Pipeline, index: int, key: str, source: FrameSource,
                      marks: dict[str, tuple[float, int]]) -> list[StageTiming]:
        """Run the stages one after another, each over the frames later windows need, timing each."""
        timings: list[StageTiming] = []
        if not pipeline.nodes:
            return timings
        shot = shot_at(pipeline.shots(), index)
        for position, node in enumerate(pipeline.nodes):
            if self._superseded(key, source, scrub_too=True):
                raise Cancelled()
            reach = sum(n.radius for n in pipeline.nodes[position + 1:])
            needed = range(max(shot.start, index - reach), min(shot.end, index + reach + 1))
            computed = sum(1 for i in needed if node.cache.get(i) is None)
            started = time.monotonic()
            for i in needed:
                pipeline.frame(i, after=node.name)
            timing = StageTiming(node.name, time.monotonic() - started, computed)
            if node.name in marks:  # its shot analysis ran now: say how much of the time it took
                finished, frames = marks.pop(node.name)
                timing.analysis_seconds, timing.analysis_frames = max(0.0, finished - started), frames
            timings.append(timing)
        return timings


def _close(source: FrameSource) -> None:
    close = getattr(source, "close", None)  # in-memory sources have nothing to release
    if close is not None:
        close()


def _comparison_note(request: PreviewRequest, pipeline: Pipeline) -> str:
    if request.compare is not None and request.compare not in pipeline.active:
        title = stage_class(request.compare).title
        return f"{title} is not running (disabled or not implemented yet): both sides show the same picture"
    if pipeline.skipped:
        names = ", ".join(stage_class(n).title for n in pipeline.skipped)
        return f"bypassed, not implemented yet: {names}"
    return ""


class _CutSignals(QObject):
    found = Signal(int, object)  # token, list[Shot]
    failed = Signal(int, str)
    progress = Signal(int, int, int)  # token, done, total


class CutDetection(QRunnable):
    """Detects the clip's cuts on its own reader (for the timeline markers and every later preview pipeline)."""

    def __init__(self, path: str, frame_rate: Any, frame_count: int, token: int,
                 still_wanted: "callable[[int], bool]") -> None:
        super().__init__()
        self.path, self.frame_rate, self.frame_count, self.token = path, frame_rate, frame_count, token
        self.still_wanted = still_wanted
        self.signals = _CutSignals()

    def run(self) -> None:
        from restoration.io import open_source

        lower_thread_priority()
        try:
            with open_source(self.path, frame_rate=self.frame_rate) as source:
                cuts = detect_cuts(self._frames(source), source.info.frame_rate)
        except Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 - markers are a convenience; the pipeline detects cuts itself
            log.warning("cut detection failed: %s", traceback.format_exc())
            self.signals.failed.emit(self.token, one_line(exc))
            return
        self.signals.found.emit(self.token, shots_from_cuts(cuts, self.frame_count))

    def _frames(self, source: FrameSource):
        for done, item in enumerate(source.frames(), 1):
            if not self.still_wanted(self.token):
                raise Cancelled()
            if done % 25 == 0:
                self.signals.progress.emit(self.token, done, self.frame_count)
            yield item

"""The render plan: which frames each stage must compute for a range, cut into units that run once each.

A stage's output for frame i needs its input over i±radius inside i's shot (mirrored at the shot's edges), and
a stage that analyses a shot needs its input over the whole shot. Walking the chain backwards from the requested
range gives, per shot and stage, the one contiguous run of frames that stage computes: every `process` runs once
per frame of that run, whoever later reads it. Units are cut from those runs: per shot and stage one analysis,
then chunks of at most `chunk_frames` that workers run side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..repeats import RepeatMap
from ..stage import Shot

# A --range or preview analyses at most this many frames on either side of what it shows: cut detection and the
# per-shot analyses (weave path, grain model, fade estimate) see the shot clipped to range ± this handle.
ANALYSIS_HANDLE = 48
CHUNK_FRAMES = 12


@dataclass(frozen=True)
class Step:
    """One enabled stage in the chain (1-based position `number`)."""

    number: int
    name: str
    params: Mapping[str, Any]
    radius: int
    analysed: bool


@dataclass(frozen=True)
class Unit:
    """One piece of work: a stage's analysis of a shot, or its frames [start, stop) of a shot."""

    kind: str  # "analysis" or "frames"
    step: int  # 0: the source alone (no stage enabled)
    shot: Shot
    start: int
    stop: int
    final: bool = False  # the last step's frames: written as a chunk of the master

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.step}-{self.start:08d}-{self.stop:08d}"


@dataclass
class RenderPlan:
    """Shots over the span that was looked at, and per shot the run of frames each step computes."""

    steps: list[Step]
    range: tuple[int, int]
    span: tuple[int, int]
    shots: list[Shot]
    runs: dict[tuple[Shot, int], tuple[int, int]] = field(default_factory=dict)
    chunk_frames: int = CHUNK_FRAMES
    repeats: RepeatMap = field(default_factory=RepeatMap)  # repeated frames: one picture with their original

    def chunks(self) -> list[Unit]:
        """The final units in frame order: each one a chunk of the master."""
        last = len(self.steps)
        return [u for shot in self.shots for u in self.frame_units(shot, last)]

    def analysis_unit(self, shot: Shot, step: int) -> Unit | None:
        if step == 0 or not self.steps[step - 1].analysed:
            return None
        return Unit("analysis", step, shot, shot.start, shot.end)

    def frame_units(self, shot: Shot, step: int) -> list[Unit]:
        run = self.runs.get((shot, step))
        if run is None:
            return []
        start, stop = run
        final = step == len(self.steps)
        return [Unit("frames", step, shot, a, min(a + self.chunk_frames, stop), final)
                for a in range(start, stop, self.chunk_frames)]

    def input_run(self, shot: Shot, step: int) -> tuple[int, int]:
        """The frames of step-1's output (the source for step 1) that step `step` reads in `shot`."""
        return self.runs[(shot, step - 1)] if step > 1 else self.runs[(shot, 0)]

    def computed_frames(self) -> dict[str, int]:
        """How many frames each stage computes in this plan (the range plus handles and analysis context)."""
        totals = {s.name: 0 for s in self.steps}
        for (shot, step), (a, b) in self.runs.items():
            if step > 0:
                totals[self.steps[step - 1].name] += b - a
        return totals


def chain_is_temporal(steps: list[Step]) -> bool:
    """Whether any step looks beyond its own frame (a window or a shot analysis): only then do cuts matter."""
    return any(s.radius > 0 or s.analysed for s in steps)


def analysis_span(frame_range: tuple[int, int], frame_count: int, temporal: bool,
                  handle: int = ANALYSIS_HANDLE) -> tuple[int, int]:
    """The frames a render of `frame_range` looks at: all of them for the whole clip, else range ± handle.

    The span's ends fall on multiples of the handle, so previews of nearby frames see the same clipped shots and
    share their cached analyses.
    """
    start, stop = frame_range
    if not temporal:
        return start, stop
    if (start, stop) == (0, frame_count):
        return 0, frame_count
    return max(0, (start - handle) // handle * handle), min(frame_count, -(-(stop + handle) // handle) * handle)


def plan_render(steps: list[Step], frame_range: tuple[int, int], span: tuple[int, int], shots: list[Shot],
                chunk_frames: int = CHUNK_FRAMES, cached: set[tuple[Shot, int]] | None = None,
                repeats: RepeatMap | None = None) -> RenderPlan:
    """Walk the chain backwards from the range: per shot, the run each step computes (and the source reads).

    A step whose analysis of a shot is `cached` needs its input only where its windows reach (windows of unique
    pictures: with repeated frames they reach further).
    """
    cached = cached or set()
    repeats = repeats or RepeatMap()
    plan = RenderPlan(steps, frame_range, span, shots, chunk_frames=max(1, chunk_frames), repeats=repeats)
    start, stop = frame_range
    for shot in shots:
        lo, hi = max(start, shot.start), min(stop, shot.end)
        if lo >= hi:
            continue
        for number in range(len(steps), 0, -1):
            plan.runs[(shot, number)] = (lo, hi)
            step = steps[number - 1]
            if step.analysed and (shot, number) not in cached:
                lo, hi = shot.start, shot.end
            else:
                lo, hi = repeats.reach(lo, hi, step.radius, shot)
        plan.runs[(shot, 0)] = (lo, hi)
    return plan

"""What a worker runs: one unit of a render plan, reading its inputs from the work folder or the source.

Units are plain data and the job holds only paths and settings, so the same function runs in this process, in a
local worker process or in a Ray task; it returns how many analyses and frames each stage computed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..export.pictures import rgb_values
from ..stage import FrameWindow, Stage
from ..stages import stage_class
from .plan import RenderPlan, Unit
from .work import WorkFolder


@dataclass
class RenderJob:
    """Everything a worker needs to run units: the source, the chain and its plan, the work folder."""

    source: str
    frame_rate: str | None
    fields: str | None
    plan: RenderPlan
    work: WorkFolder
    pix_fmt: str
    _stages: dict[int, Stage] = field(default_factory=dict, repr=False, compare=False)

    def stage(self, number: int) -> Stage:
        if number not in self._stages:
            self._stages[number] = stage_class(self.plan.steps[number - 1].name)()
        return self._stages[number]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_stages"] = {}
        return state


@dataclass
class UnitResult:
    unit: Unit
    analyses: dict[str, int]
    processed: dict[str, int]


def open_job_source(job: RenderJob):
    from ..io.probe import open_with_fields
    from ..project import parse_frame_rate

    return open_with_fields(job.source, parse_frame_rate(job.frame_rate or 0), job.fields)


def read_inputs(job: RenderJob, step: int, start: int, stop: int) -> dict[int, np.ndarray]:
    """Frames [start, stop) of step-1's output: decoded from the source for the first step, else from the work.

    A repeated frame reads as an exact copy of its original (from the source on), as in the Pipeline.
    """
    repeats = job.plan.repeats
    if step <= 1:
        first = min([start] + [repeats.original(i) for i in range(start, stop)])
        with open_job_source(job) as source:
            decoded = {i: frame for i, frame in source.frames(first, stop)}
        return {i: decoded[repeats.original(i)] for i in range(start, stop)}
    return {i: job.work.load_stage_frame(step - 1, i) for i in range(start, stop)}


def run_unit(job: RenderJob, unit: Unit) -> UnitResult:
    """Compute one unit and leave its result in the work folder (marked done last)."""
    plan = job.plan
    name = plan.steps[unit.step - 1].name if unit.step else "source"
    if unit.kind == "analysis":
        step = plan.steps[unit.step - 1]
        frames = read_inputs(job, unit.step, unit.shot.start, unit.shot.end)
        stage = job.stage(unit.step)
        if stage.splits_analysis:  # keep the measurement too, so a fit-only edit later does not measure again
            measurement = stage.measure(iter(sorted(frames.items())), unit.shot, step.params)
            job.work.save_measurement(unit.step, unit.shot.start, unit.shot.end, measurement)
            result = stage.fit(measurement, unit.shot, step.params)
        else:
            result = stage.analyze(iter(sorted(frames.items())), unit.shot, step.params)
        job.work.save_analysis(unit.step, unit.shot.start, unit.shot.end, result)
        job.work.mark_done(unit.key)
        return UnitResult(unit, {name: 1}, {})
    if unit.step == 0:
        outputs = read_inputs(job, 1, unit.start, unit.stop)
        frames = [outputs[i] for i in range(unit.start, unit.stop)]
        job.work.save_chunk(unit.start, unit.stop, _chunk_values(frames, job.pix_fmt))
        return UnitResult(unit, {}, {})
    step = plan.steps[unit.step - 1]
    shot = unit.shot
    repeats = plan.repeats
    needed = sorted({i for index in range(unit.start, unit.stop) for i in repeats.window(index, step.radius, shot)})
    inputs = read_inputs(job, unit.step, needed[0], needed[-1] + 1)
    analysis = job.work.load_analysis(unit.step, shot.start, shot.end) if step.analysed else None
    stage = job.stage(unit.step)
    frames: list[np.ndarray] = []
    done: dict[int, np.ndarray] = {}
    for index in range(unit.start, unit.stop):
        original = repeats.original(index)  # a repeat's output is its original's (computed again if in another unit)
        if original in done:
            out = done[original]
        else:
            indices = repeats.window(original, step.radius, shot)
            window = FrameWindow(frames=[inputs[i] for i in indices], indices=indices, center=step.radius,
                                 index=original, shot=shot)
            out = done[original] = stage.process(window, step.params, analysis).frame
        if unit.final:
            frames.append(out)
        else:
            job.work.save_stage_frame(unit.step, index, out)
    if unit.final:
        job.work.save_chunk(unit.start, unit.stop, _chunk_values(frames, job.pix_fmt))
    else:
        job.work.mark_done(unit.key)
    return UnitResult(unit, {}, {name: unit.stop - unit.start})


def _chunk_values(frames: list[np.ndarray], pix_fmt: str) -> np.ndarray:
    """The integers the master stores for these frames (the writer's own rounding), stacked."""
    return np.stack([rgb_values(frame, pix_fmt) for frame in frames])


def pin_one_core(slot: int | None) -> None:
    """Give this worker process one core's worth of threads (OpenCV, torch, BLAS); on core `slot` if given."""
    os.environ.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    if slot is not None:
        try:
            cores = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cores[slot % len(cores)]})
        except (AttributeError, OSError):  # not on Linux
            pass
    library_threads(1, 1)


def library_threads(cv2_count: int, torch_count: int) -> tuple[int, int]:
    """Set OpenCV's and torch's thread counts; returns the counts they had."""
    import cv2
    import torch

    before = (cv2.getNumThreads(), torch.get_num_threads())
    cv2.setNumThreads(cv2_count)
    torch.set_num_threads(torch_count)
    return before


def one_core_for_now() -> tuple[set[int] | None, tuple[int, int]]:
    """Keep this process to one core's worth of threads (as a worker is); returns what to restore."""
    try:
        affinity: set[int] | None = set(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {min(affinity)})
    except (AttributeError, OSError):
        affinity = None
    return affinity, library_threads(1, 1)


def restore_cores(saved: tuple[set[int] | None, tuple[int, int]]) -> None:
    affinity, threads = saved
    if affinity is not None:
        try:
            os.sched_setaffinity(0, affinity)
        except OSError:
            pass
    library_threads(*threads)

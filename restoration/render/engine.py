"""Headless render of a project: plan → units on the chosen executor → chunks → master. CLI and GUI queue use it.

Every enabled stage computes each frame it owes the render once, and each shot's analysis once; chunks of the
master are kept losslessly in `OUT.work/` so that the same command, run again after a crash or a kill, resumes
where it stopped. The master is assembled from the chunks at the end: nothing appears at the output name before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import __version__
from ..analysis_cache import AnalysisCache, source_fingerprint
from ..device import cpu_count
from ..errors import MediaError, ParamError
from ..export import FORMATS, ExportSettings, MasterWriter, format_for_output
from ..export.paths import Sources, guard_source
from ..io.probe import open_with_fields
from ..pipeline import Progress, check_frame_size, describe_settings, resolve_settings
from ..project import Project, parse_frame_rate
from ..repeats import RepeatFinder, RepeatMap
from ..shots import detect_cuts, shots_in_span
from ..stage import Shot
from ..stages import stage_class
from .executors import InProcess, LocalProcesses, RayTasks, check_ray
from .plan import CHUNK_FRAMES, RenderPlan, Step, Unit, analysis_span, chain_is_temporal, plan_render
from .tasks import RenderJob, UnitResult
from .work import WorkFolder, prepare_work_folder, work_folder_for

# Shots are rendered in groups of about this many frames: stage outputs between steps stay on disk for one
# group only, so the work folder stays small however long the clip.
GROUP_FRAMES = 240
CALL_COUNTS_ENV = "FILMRESTORE_CALL_COUNTS"


@dataclass
class RenderResult:
    """What a finished render wrote and how fast it went."""

    output: Path
    frames: int
    seconds: float  # from the first unit to the finished master: the progress's "render" phase
    skipped_stages: list[str]
    chunks: int = 0  # units of the master; a resume keeps the finished ones
    chunks_kept: int = 0
    calls: dict[str, dict[str, int]] = field(default_factory=dict)
    frames_kept: int = 0  # frames a resume took from an earlier render

    @property
    def fps(self) -> float:
        """Frames computed per second, as the progress reports them."""
        return (self.frames - self.frames_kept) / self.seconds if self.seconds > 0 else 0.0


def chain_steps(project: Project) -> tuple[list[Step], list[str]]:
    """The enabled, implemented stages in order with their radius and whether they analyse shots; and the skipped."""
    settings = resolve_settings(project.stages)
    skipped = [n for n, s in settings.items() if s.enabled and not stage_class(n).implemented]
    steps: list[Step] = []
    for name, setting in settings.items():
        if not setting.enabled or name in skipped:
            continue
        stage = stage_class(name)()
        steps.append(Step(len(steps) + 1, name, setting.params, stage.temporal_radius(setting.params),
                          bool(stage.needs_analysis(setting.params))))
    return steps, skipped


def render_project(project: Project, output: str | Path, overwrite: bool = False,
                   progress: Progress | None = None, allow_gaps: bool = False, workers: int | None = None,
                   ray: str | None = None, fresh: bool = False, chunk_frames: int = CHUNK_FRAMES,
                   notes: Callable[[str], None] | None = None, protect: Iterable[str | Path] = ()) -> RenderResult:
    """Render `project` to `output`; nothing appears at `output` unless the whole render succeeds.

    A sequence with missing frame numbers is refused unless `allow_gaps`: temporal stages and timing
    would silently join frames that were never adjacent.
    """
    if not project.source:
        raise ParamError("project.source", "no source given")
    if workers is not None and workers < 1:
        raise ParamError("--workers", f"{workers} is not a number of workers (1 or more)")
    if ray:
        check_ray(ray)  # before any work: a missing Ray or a cluster that does not answer is one line
    report = progress or (lambda phase, done, total: None)
    say = notes or (lambda text: None)
    output = Path(output)
    export = dict(project.export)
    export["format"] = format_for_output(output, export.get("format"))
    export["overwrite"] = overwrite
    settings = ExportSettings.from_dict(export)
    steps, skipped = chain_steps(project)
    with open_with_fields(project.source, parse_frame_rate(project.source_frame_rate or 0),
                          project.fields) as source:
        missing = source.info.missing_frames
        if missing and not allow_gaps:
            raise MediaError(project.source, f"sequence has {len(missing)} missing frame(s) (first: {missing[0]}); "
                             "fill the gap or render with --allow-gaps")
        count = len(source)
        start, stop = project.range or (0, count)
        if stop > count:
            raise ParamError("range", f"{start}:{stop} runs past the last frame {count - 1} of {project.source}")
        chain = [(stage_class(step.name)(), step.params) for step in steps]
        check_frame_size(source.info, chain)
        width, height = source.info.width, source.info.height
        for stage, params in chain:
            width, height = stage.output_size(width, height, params)
        provenance = {
            "software": f"filmrestore {__version__}",
            "project": project.name,
            "range": [start, stop],
            "stages": describe_settings(project.stages),
            "skipped_stages": skipped,
            "fields": _field_handling(source, project.fields),
        }
        # the project file (and anything else the caller names) is as untouchable as the source itself
        guard_source(output, Sources.of(source.info, *protect), FORMATS[export["format"]].sequence)
        writer = MasterWriter(output, settings, source_info=source.info, width=width, height=height,
                              frame_pts=source.frame_pts()[start:stop],
                              frame_numbers=[source.frame_number(i) for i in range(start, stop)],
                              provenance=provenance)
        temporal = chain_is_temporal(steps)
        span = analysis_span((start, stop), count, temporal)
        fingerprint = source_fingerprint(source.info)  # stats every file of a sequence: once
        manifest = {"filmrestore": __version__, "project": _project_hash(project, steps, writer.pix_fmt),
                    "source": fingerprint, "range": [start, stop], "span": list(span),
                    "chunk_frames": chunk_frames}
        work, note = prepare_work_folder(writer.final, manifest, fresh)
        if note:
            say(note)
        try:
            cuts, repeats = _cuts(work, source, span, temporal, report)
        except BaseException:
            _discard_if_nothing_done(work)
            raise
        cache = AnalysisCache.for_source(source.info, project.source_frame_rate, project.fields,
                                         fingerprint=fingerprint)
    try:
        return _render_units(writer, work, steps, skipped, project, (start, stop), span, cuts, chunk_frames,
                             workers, ray, report, say, cache, repeats)
    except BaseException:
        _discard_if_nothing_done(work)  # a refusal or an early failure leaves nothing behind; work done is kept
        raise


def _analysis_key(cache: AnalysisCache, steps: list[Step], number: int, shot: Shot) -> str:
    step = steps[number - 1]
    return cache.key([(s.name, s.params) for s in steps[:number - 1]], step.name, step.params, shot)


def _measurement_key(cache: AnalysisCache, steps: list[Step], number: int, shot: Shot) -> str:
    step = steps[number - 1]
    return cache.measurement_key([(s.name, s.params) for s in steps[:number - 1]], step.name,
                                 stage_class(step.name).params.measured(step.params), shot)


def _cached_analyses(cache: AnalysisCache, work: WorkFolder, steps: list[Step],
                     shots: list[Shot]) -> set[tuple[Shot, int]]:
    """Shot analyses an earlier render, preview or GUI session already made: put in the work folder as done.
    A splitting stage whose measurement is cached under other fit-only values is re-fitted here (cheap)."""
    found: set[tuple[Shot, int]] = set()
    for shot in shots:
        for step in steps:
            if not step.analysed:
                continue
            unit_key = Unit("analysis", step.number, shot, shot.start, shot.end).key
            if work.is_done(unit_key):
                continue
            hit, value = cache.get(_analysis_key(cache, steps, step.number, shot))
            stage = stage_class(step.name)
            if not hit and stage.splits_analysis:
                measured, measurement = cache.get(_measurement_key(cache, steps, step.number, shot))
                if measured:
                    hit, value = True, stage().fit(measurement, shot, step.params)
            if hit:
                work.save_analysis(step.number, shot.start, shot.end, value)
                work.mark_done(unit_key)
                found.add((shot, step.number))
    return found


def _discard_if_nothing_done(work: WorkFolder) -> None:
    if work.root.is_dir() and not any((work.root / name).exists() for name in ("chunks", "done", "analysis")):
        shutil.rmtree(work.root, ignore_errors=True)


def _render_units(writer: MasterWriter, work: WorkFolder, steps: list[Step], skipped: list[str], project: Project,
                  frame_range: tuple[int, int], span: tuple[int, int], cuts: list[int], chunk_frames: int,
                  workers: int | None, ray: str | None, report: Progress, say: Callable[[str], None],
                  cache: AnalysisCache, repeats: RepeatMap | None = None) -> RenderResult:
    start, stop = frame_range
    shots = shots_in_span(cuts, span)
    cached = _cached_analyses(cache, work, steps, shots)
    plan = plan_render(steps, (start, stop), span, shots, chunk_frames, cached, repeats)
    job = RenderJob(str(project.source), project.source_frame_rate, project.fields, plan, work, writer.pix_fmt)
    chunks = plan.chunks()
    kept = [u for u in chunks if work.chunk_is_done(u.start, u.stop)]
    if kept:
        say(f"resuming: {len(kept)} of {len(chunks)} chunks kept from {work.root}")
    executor = _executor(job, workers, ray)
    calls: dict[str, dict[str, int]] = {"process": {s.name: 0 for s in steps}, "analyze": {s.name: 0 for s in steps}}
    done_frames = kept_frames = sum(u.stop - u.start for u in kept)
    total = stop - start
    assembly = Assembly(writer, work, chunks)
    began = time.monotonic()
    report("render", done_frames, total)  # starts the phase's clock where the result's starts
    with writer:
        try:
            assembly.write_ready()
            for group in _groups(plan, {(u.start, u.stop) for u in kept}):
                for number in range(0 if not steps else 1, len(steps) + 1):
                    analyses = [u for shot in group
                                if (u := plan.analysis_unit(shot, number)) and not work.is_done(u.key)]
                    analysed, to_analyse = 0, sum(len(u.shot) for u in analyses)
                    for result in executor.run(analyses):
                        _count(calls, result)
                        analysed += len(result.unit.shot)
                        shot = result.unit.shot
                        cache.put(_analysis_key(cache, steps, number, shot),
                                  work.load_analysis(number, shot.start, shot.end))
                        measured, measurement = work.load_measurement(number, shot.start, shot.end)
                        if measured:
                            cache.put(_measurement_key(cache, steps, number, shot), measurement)
                        report(f"analyze {steps[number - 1].name}", analysed, to_analyse)
                    units = [u for shot in group for u in plan.frame_units(shot, number) if not _unit_done(work, u)]
                    for result in executor.run(units):
                        _count(calls, result)
                        if result.unit.final:
                            done_frames += result.unit.stop - result.unit.start
                            if done_frames < total:  # the last is reported once the master is complete
                                report("render", done_frames, total)
                            assembly.write_ready()  # encode in order while the workers go on
                _drop_intermediates(work, plan, group)
            executor.close()
        except BaseException:
            executor.abort()  # a cancel while the workers wind down kills them too
            raise
        assembly.write_ready()
        if assembly.written < total:
            raise RuntimeError(f"the render left {total - assembly.written} frames unwritten")
    shutil.rmtree(work.root, ignore_errors=True)
    _write_call_counts(calls, total)
    finished = time.monotonic()
    report("render", total, total)
    return RenderResult(writer.final, total, finished - began, skipped, len(chunks), len(kept), calls, kept_frames)


class Assembly:
    """Writes the finished chunks into the master in frame order, as soon as each next one is there."""

    def __init__(self, writer: MasterWriter, work: WorkFolder, chunks: list[Unit]):
        self.writer, self.work, self.chunks = writer, work, chunks
        self.next = 0
        self.written = 0

    def write_ready(self) -> None:
        while self.next < len(self.chunks):
            unit = self.chunks[self.next]
            chunk = self.work.load_checked_chunk(unit.start, unit.stop)
            if chunk is None:
                return
            for values in chunk:
                self.writer.write_values(values)
                self.written += 1
            self.next += 1


def _executor(job: RenderJob, workers: int | None, ray: str | None):
    count = workers or cpu_count()
    if ray:
        return RayTasks(job, ray, count)
    return InProcess(job) if count == 1 else LocalProcesses(job, count)


def _cuts(work: WorkFolder, source, span: tuple[int, int], temporal: bool,
          report: Progress) -> tuple[list[int], RepeatMap]:
    """Cuts and repeated frames inside the span, found in one pass once per work folder (a resume reads them back)."""
    if not temporal:
        return [], RepeatMap()
    path = work.root / "cuts.json"
    repeats_path = work.root / "repeats.json"
    try:
        return [int(c) for c in json.loads(path.read_text())], RepeatMap.from_json(repeats_path.read_text())
    except (OSError, ValueError, TypeError):
        pass
    first, last = span
    finder = RepeatFinder()
    frames = finder.feed(source.frames(first, last))
    cuts = detect_cuts(_reported(frames, report, "cuts", last - first), source.info.frame_rate)
    repeats = finder.result(shots_in_span(cuts, span))
    repeats_path.write_text(repeats.to_json())
    path.write_text(json.dumps(cuts))  # written last: its presence means both are there
    return cuts, repeats


def _reported(frames: Iterable, report: Progress, phase: str, total: int):
    for done, item in enumerate(frames, 1):
        yield item
        report(phase, done, total)


def _groups(plan: RenderPlan, kept: set[tuple[int, int]]) -> list[list[Shot]]:
    """Shots with chunks still to do, gathered into groups of about GROUP_FRAMES frames of work."""
    groups: list[list[Shot]] = [[]]
    size = 0
    last = len(plan.steps)
    for shot in plan.shots:
        units = plan.frame_units(shot, last)
        if not units or all((u.start, u.stop) in kept for u in units):
            continue
        if groups[-1] and size + len(shot) > GROUP_FRAMES:
            groups.append([])
            size = 0
        groups[-1].append(shot)
        size += len(shot)
    return [g for g in groups if g]


def _unit_done(work: WorkFolder, unit: Unit) -> bool:
    return work.chunk_is_done(unit.start, unit.stop) if unit.final else work.is_done(unit.key)


def _drop_intermediates(work: WorkFolder, plan: RenderPlan, group: list[Shot]) -> None:
    for shot in group:
        for number in range(1, len(plan.steps)):
            run = plan.runs.get((shot, number))
            if run:
                work.drop_step(number, *run)


def _count(calls: dict[str, dict[str, int]], result: UnitResult) -> None:
    for name, n in result.analyses.items():
        calls["analyze"][name] = calls["analyze"].get(name, 0) + n
    for name, n in result.processed.items():
        calls["process"][name] = calls["process"].get(name, 0) + n


def _write_call_counts(calls: dict[str, dict[str, int]], frames: int) -> None:
    path = os.environ.get(CALL_COUNTS_ENV)
    if path:
        Path(path).write_text(json.dumps({"frames": frames, **calls}, indent=1))


def _project_hash(project: Project, steps: list[Step], pix_fmt: str) -> str:
    record = {"source": str(project.source), "rate": project.source_frame_rate, "fields": project.fields,
              "steps": [[s.name, _jsonable(s.params)] for s in steps], "export": _jsonable(project.export),
              "pix_fmt": pix_fmt}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _field_handling(source, fields: str | None) -> dict[str, object]:
    """How the source's fields became frames, for the provenance."""
    decoded = getattr(source, "source_info", source.info)
    record: dict[str, object] = {"handling": fields or "none needed", "source_field_order": decoded.field_order,
                                 "source_pulldown": decoded.pulldown}
    if hasattr(source, "chain"):
        record["filters"] = ",".join(f"{name}={args}" if args else name for name, args in source.chain)
        record["source_frames"] = decoded.frame_count
        record["source_frame_rate"] = decoded.frame_rate
    return record


__all__ = ["RenderResult", "render_project", "work_folder_for"]

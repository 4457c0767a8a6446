"""Headless render of a project: source → pipeline → master, with provenance. Used by the CLI and the GUI queue."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import MediaError, ParamError
from .export import ExportSettings, MasterWriter, format_for_output
from .io.probe import open_with_fields
from .pipeline import Pipeline, Progress, describe_settings
from .project import Project, parse_frame_rate


@dataclass
class RenderResult:
    """What a finished render wrote and how fast it went."""

    output: Path
    frames: int
    seconds: float
    skipped_stages: list[str]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def render_project(project: Project, output: str | Path, overwrite: bool = False,
                   progress: Progress | None = None, allow_gaps: bool = False) -> RenderResult:
    """Render `project` to `output`; nothing appears at `output` unless the whole render succeeds.

    A sequence with missing frame numbers is refused unless `allow_gaps`: temporal stages and timing
    would silently join frames that were never adjacent.
    """
    if not project.source:
        raise ParamError("project.source", "no source given")
    output = Path(output)
    export = dict(project.export)
    export["format"] = format_for_output(output, export.get("format"))
    export["overwrite"] = overwrite
    settings = ExportSettings.from_dict(export)
    started = time.monotonic()
    with open_with_fields(project.source, parse_frame_rate(project.source_frame_rate or 0),
                          project.fields) as source:
        missing = source.info.missing_frames
        if missing and not allow_gaps:
            raise MediaError(project.source, f"sequence has {len(missing)} missing frame(s) (first: {missing[0]}); "
                             "fill the gap or render with --allow-gaps")
        pipeline = Pipeline(source, project.stages)
        pipeline.progress = progress
        start, stop = project.range or (0, len(source))
        if stop > len(source):
            raise ParamError("range", f"{start}:{stop} runs past the last frame {len(source) - 1} of {project.source}")
        width, height = pipeline.output_size()
        provenance = {
            "software": f"filmrestore {__version__}",
            "project": project.name,
            "range": [start, stop],
            "stages": describe_settings(project.stages),
            "skipped_stages": pipeline.skipped,
            "fields": _field_handling(source, project.fields),
        }
        pts = source.frame_pts()[start:stop]
        numbers = [source.frame_number(i) for i in range(start, stop)]
        with MasterWriter(output, settings, source_info=source.info, width=width, height=height,
                          frame_pts=pts, frame_numbers=numbers, provenance=provenance) as writer:
            for _, frame in pipeline.frames(start, stop):
                writer.write(frame)
    return RenderResult(output, stop - start, time.monotonic() - started, pipeline.skipped)


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

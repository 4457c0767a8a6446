"""Versioned JSON projects and presets: source, in/out range, per-stage settings, export settings."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import ParamError, ProjectError
from .bundle import resource_dir
from .export import ExportSettings
from .io.fields import FIELD_HANDLINGS
from .io.image import why_missing
from .pipeline import StageSetting, resolve_settings
from .stage import STAGE_ORDER
from .stages import stage_class

PROJECT_FORMAT = "filmrestore-project"
PROJECT_VERSION = 1
PRESETS_DIR = resource_dir() / "presets"
# What a new project restores when nobody says otherwise (CLI without --stages/--project, the GUI's new project):
# the cleaning chain; super-resolution changes the master's size, so it is always asked for.
DEFAULT_STAGES = ("dust", "stabilize", "deflicker", "denoise", "color")


@dataclass
class Project:
    """Everything needed to re-render a restoration: what, which range, which stages, how exported."""

    source: str | None = None
    source_frame_rate: str | None = None
    range: tuple[int, int] | None = None
    stages: dict[str, StageSetting] = field(default_factory=lambda: {n: StageSetting() for n in STAGE_ORDER})
    export: dict[str, Any] = field(default_factory=dict)  # empty: format follows the output name
    fields: str | None = None  # keep, deinterlace or ivtc; None refuses an interlaced or telecined source
    name: str = "untitled"

    def to_dict(self) -> dict[str, Any]:
        resolved = resolve_settings(self.stages)
        return {
            "format": PROJECT_FORMAT,
            "version": PROJECT_VERSION,
            "name": self.name,
            "source": self.source,
            "source_frame_rate": self.source_frame_rate,
            "range": list(self.range) if self.range else None,
            "stages": {n: {"enabled": s.enabled, "params": s.params} for n, s in resolved.items()},
            "export": dict(self.export),
            "fields": self.fields,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (temp file, then rename) so a crash never leaves half a project.

        A source inside the project file's folder is stored relative to the file, so the folder can move."""
        path = Path(path)
        data = self.to_dict()
        data["source"] = _stored_source(self.source, path)
        text = json.dumps(data, indent=2) + "\n"
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent or ".")
        try:
            if hasattr(os, "fchmod"):
                umask = os.umask(0)
                os.umask(umask)
                os.fchmod(handle, 0o666 & ~umask)  # mkstemp's 0600 would hide a project from the rest of the team
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return path

    def set_param(self, stage: str, param: str, value: Any) -> None:
        where = f"{stage}.{param}"
        self.stages[stage].params[param] = stage_class(stage).params.get(param, where).validate(value, where)


def _stored_source(source: str | None, project_file: Path) -> str | None:
    """The source as the project file stores it: relative to the file when inside its folder, else absolute."""
    if not source:
        return source
    folder = Path(os.path.abspath(project_file)).parent
    absolute = Path(os.path.abspath(source))
    try:
        return absolute.relative_to(folder).as_posix() or "."
    except ValueError:
        return str(absolute)


def new_project(**fields: Any) -> Project:
    """A project with the default cleaning stages on, as the CLI and the GUI start one."""
    stages = {n: StageSetting(n in DEFAULT_STAGES) for n in STAGE_ORDER}
    return Project(stages=stages, **fields)


def project_from_dict(data: Any, subject: str = "project") -> Project:
    """Validate a project dict against the stage declarations; ProjectError lists every bad field by name."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ProjectError(subject, ["not a JSON object"])
    if data.get("format", PROJECT_FORMAT) != PROJECT_FORMAT:
        problems.append(f"format: {data.get('format')!r} is not {PROJECT_FORMAT!r}")
    version = data.get("version", PROJECT_VERSION)
    if not isinstance(version, int) or version > PROJECT_VERSION or version < 1:
        problems.append(f"version: {version!r} is not supported (this build reads up to {PROJECT_VERSION})")
    known = {"format", "version", "name", "source", "source_frame_rate", "range", "stages", "export", "fields"}
    problems += [f"{key}: unknown field" for key in data if key not in known]

    source = data.get("source")
    if source is not None and not isinstance(source, str):
        problems.append(f"source: {source!r} is not a path")
    frame_rate = data.get("source_frame_rate")
    if frame_rate is not None and parse_frame_rate(frame_rate) is None:
        problems.append(f"source_frame_rate: {frame_rate!r} is not a positive rate such as \"24\" or \"24000/1001\"")
    frame_range = _range_from(data.get("range"), problems)
    fields = data.get("fields")
    if fields is not None and fields not in FIELD_HANDLINGS:
        problems.append(f"fields: {fields!r} is not one of {', '.join(FIELD_HANDLINGS)}")
    stages = _stages_from(data.get("stages", {}), problems)
    export = data.get("export", {})
    if not isinstance(export, dict):
        problems.append("export: not an object")
        export = {}
    else:
        problems += ExportSettings.problems(export)
    name = data.get("name", "untitled")
    if not isinstance(name, str):
        problems.append("name: not text")
        name = "untitled"
    if problems:
        raise ProjectError(subject, problems)
    return Project(source=source, source_frame_rate=frame_rate, range=frame_range, stages=stages, export=dict(export), name=name,
                   fields=fields)


def parse_frame_rate(value: Any) -> Fraction | None:
    """A positive rational frame rate from '24', '24000/1001', 25 or 23.976; None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        rate = Fraction(value).limit_denominator(1_000_000) if isinstance(value, float) else Fraction(value)
    except (ValueError, ZeroDivisionError):
        return None
    return rate if rate > 0 else None


def _range_from(value: Any, problems: list[str]) -> tuple[int, int] | None:
    if value is None:
        return None
    if (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                             for v in value) and 0 <= value[0] < value[1]):
        return value[0], value[1]
    problems.append(f"range: {value!r} is not [in, out] with 0 <= in < out")
    return None


def _stages_from(value: Any, problems: list[str]) -> dict[str, StageSetting]:
    stages = {n: StageSetting() for n in STAGE_ORDER}
    if not isinstance(value, dict):
        problems.append("stages: not an object")
        return stages
    for name, entry in value.items():
        where = f"stages.{name}"
        try:
            declaration = stage_class(name).params
        except ParamError:
            problems.append(f"{where}: unknown stage (known: {', '.join(STAGE_ORDER)})")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where}: not an object")
            continue
        problems += [f"{where}.{key}: unknown field" for key in entry if key not in ("enabled", "params")]
        enabled = entry.get("enabled", False)
        if not isinstance(enabled, bool):
            problems.append(f"{where}.enabled: {enabled!r} is not true/false")
            enabled = False
        params = entry.get("params", {})
        if not isinstance(params, dict):
            problems.append(f"{where}.params: not an object")
            params = {}
        bad = declaration.problems(params, prefix=f"{where}.params.")
        problems += bad
        if not bad:
            stages[name] = StageSetting(enabled, declaration.resolve(params))
    return stages


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read and validate a project file; errors name the file and every bad field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(str(path), ["no such file"]) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ProjectError(str(path), [why_missing(path)]) from None
        raise ProjectError(str(path), [f"cannot be read ({exc.strerror or exc.__class__.__name__})"]) from None
    except UnicodeDecodeError as exc:
        raise ProjectError(str(path), [f"not a project: not UTF-8 text (byte {exc.start})"]) from None
    except json.JSONDecodeError as exc:
        raise ProjectError(str(path), [f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]) from None
    except RecursionError:
        raise ProjectError(str(path), ["not a project: its JSON is nested too deeply to read"]) from None
    project = project_from_dict(data, subject=str(path))
    if project.source and not os.path.isabs(project.source):
        project.source = str((path.parent / project.source).resolve())
    if project.name == "untitled":
        project.name = path.stem
    return project


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


def load_preset(name: str) -> Project:
    """A preset is a project without a source, shipped in resources/presets/."""
    path = PRESETS_DIR / f"{name}.json"
    if not path.is_file():
        raise ProjectError(f"preset {name}", [f"no such preset (known: {', '.join(preset_names()) or 'none'})"])
    return load_project(path)

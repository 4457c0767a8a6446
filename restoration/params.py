"""Stage parameter declarations: declared once, read by the GUI panels, CLI flags, project files and benchmark."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ParamError

PARAM_KINDS = ("float", "int", "bool", "choice", "str", "list")


@dataclass(frozen=True)
class Param:
    """One tunable parameter of a stage: name, kind, range or choices, default, unit and a one-line help."""

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    step: float | None = None
    entry: tuple[str, ...] = ()  # a list of fixed-length number lists, e.g. ("frame", "x", "y", "w", "h")
    fit_only: bool = False  # affects only a stage's cheap model fit, not its cached measurement

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"parameter {self.name}: unknown kind {self.kind!r}")
        if self.kind == "choice" and self.default not in self.choices:
            raise ValueError(f"parameter {self.name}: default {self.default!r} not among {self.choices}")

    def validate(self, value: Any, where: str = "") -> Any:
        """Return `value` coerced to this parameter's kind, or raise ParamError naming `where`."""
        subject = where or self.name
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            raise ParamError(subject, f"{value!r} is not true/false")
        if self.kind in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamError(subject, f"{value!r} is not a number")
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ParamError(subject, f"{value!r} is not a whole number")
                value = int(value)
            else:
                value = float(value)
                if not math.isfinite(value):
                    raise ParamError(subject, f"{value!r} is not a finite number")
            if self.minimum is not None and value < self.minimum:
                raise ParamError(subject, f"{value:g} is below the minimum {self.minimum:g}{self.unit_suffix}")
            if self.maximum is not None and value > self.maximum:
                raise ParamError(subject, f"{value:g} is above the maximum {self.maximum:g}{self.unit_suffix}")
            return value
        if self.kind == "choice":
            if value not in self.choices:
                raise ParamError(subject, f"{value!r} is not one of {', '.join(self.choices)}")
            return value
        if self.kind == "str":
            if not isinstance(value, str):
                raise ParamError(subject, f"{value!r} is not text")
            return value
        if not isinstance(value, (list, tuple)):
            raise ParamError(subject, f"{value!r} is not a list")
        for number, item in enumerate(value if self.entry else ()):
            if (not isinstance(item, (list, tuple)) or len(item) != len(self.entry)
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item)):
                raise ParamError(subject, f"entry {number} must be [{', '.join(self.entry)}] "
                                          f"({len(self.entry)} numbers), got {json.dumps(item)}")
        return list(value)

    def parse(self, text: str, where: str = "") -> Any:
        """Parse a command-line string (`--set stage.param=TEXT`) and validate it."""
        subject = where or self.name
        text = text.strip()
        if self.kind == "bool":
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ParamError(subject, f"{text!r} is not true/false (use on/off)")
        if self.kind in ("float", "int"):
            try:
                number: float = float(text)
            except ValueError:
                raise ParamError(subject, f"{text!r} is not a number") from None
            return self.validate(int(number) if self.kind == "int" and number.is_integer() else number, where)
        if self.kind == "list":
            try:
                return self.validate(json.loads(text), where)
            except json.JSONDecodeError:
                raise ParamError(subject, f"{text!r} is not a JSON list") from None
            except RecursionError:
                raise ParamError(subject, "the JSON list is nested too deeply to read") from None
        return self.validate(text, where)

    @property
    def unit_suffix(self) -> str:
        return f" {self.unit}" if self.unit else ""


@dataclass(frozen=True)
class ParamSet:
    """The ordered declaration of a stage's parameters."""

    params: tuple[Param, ...] = field(default_factory=tuple)

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def get(self, name: str, where: str = "") -> Param:
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(self.names()) or "none"
        raise ParamError(where or name, f"unknown parameter (known: {known})")

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve(self, values: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
        """Defaults overlaid with validated `values`; raises ParamError for the first bad one."""
        resolved = self.defaults()
        for name, value in (values or {}).items():
            where = f"{prefix}{name}"
            resolved[name] = self.get(name, where).validate(value, where)
        return resolved

    def problems(self, values: Mapping[str, Any], prefix: str = "") -> list[str]:
        """Every bad field in `values`, as 'field: problem' strings (empty when all are valid)."""
        found: list[str] = []
        for name, value in values.items():
            try:
                self.get(name, f"{prefix}{name}").validate(value, f"{prefix}{name}")
            except ParamError as exc:
                found.append(str(exc))
        return found


def declare(*params: Param) -> ParamSet:
    """Build a stage's parameter declaration, refusing duplicate names."""
    names = [p.name for p in params]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate parameter names: {sorted(duplicates)}")
    return ParamSet(tuple(params))

"""Errors the core raises for bad input; the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class RestorationError(Exception):
    """A problem the user can fix, described in one line that names the file or field."""

    def __init__(self, subject: str, problem: str) -> None:
        self.subject = str(subject)
        self.problem = problem
        super().__init__(f"{self.subject}: {problem}" if self.subject else problem)


class MediaError(RestorationError):
    """A source that cannot be opened, probed or decoded."""


class ParamError(RestorationError):
    """An unknown stage or parameter, or a value outside its declaration."""


class ProjectError(RestorationError):
    """A project file that does not validate; carries every bad field."""

    def __init__(self, subject: str, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(subject, "; ".join(self.problems))


class ExportError(RestorationError):
    """An output that cannot be written (existing file, read-only or full disk, unsupported geometry)."""


class StageNotImplemented(RestorationError):
    """A stage that is registered as a placeholder and cannot be enabled yet."""

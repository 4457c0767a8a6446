"""Render progress for a terminal (one updating bar) or a log (plain lines)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressPrinter:
    """Shows frames done, fps and ETA; a bar on a TTY, a line every few seconds otherwise."""

    def __init__(self, stream: TextIO | None = None, every_seconds: float = 5.0):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every_seconds
        self._phase = ""
        self._clocks: dict[str, tuple[float, int]] = {}  # phase: (first report's time, frames done then)
        self._shown = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self._phase:
            self._finish_line()
            self._phase, self._shown = phase, 0.0
        # A phase keeps its clock when others interleave with it (a render's analyses between its chunks), so
        # its rate is over the whole phase: the figure a render's last line reports.
        start, first = self._clocks.setdefault(phase, (now, done))
        elapsed = now - start
        fps = (done - first) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / fps if fps > 0 else float("inf")
        last = done >= total
        if self.tty:
            width = 30
            filled = int(width * done / max(total, 1))
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{phase:>8} [{bar}] {done}/{total}  {_rate(fps)} fps  ETA {_clock(eta)} ")
            if last:
                self.stream.write("\n")
                self._phase = ""
            self.stream.flush()
        elif last or now - self._shown >= self.every or done == 1:
            self._shown = now
            self.stream.write(f"{phase}: {done}/{total} frames, {_rate(fps)} fps, ETA {_clock(eta)}\n")
            self.stream.flush()

    def _finish_line(self) -> None:
        if self.tty and self._phase:
            self.stream.write("\n")


def _clock(seconds: float) -> str:
    if seconds == float("inf"):
        return "--:--"
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def _rate(fps: float) -> str:
    return f"{fps:6.2f}" if fps > 0 else "    --"

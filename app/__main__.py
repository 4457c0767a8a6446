"""`python -m app [SOURCE|PROJECT]`: the desktop application; `--screenshot OUT.png` renders the window off-screen."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="FilmRestore desktop application.")
    parser.add_argument("path", nargs="?", help="a source (video file, image-sequence folder or pattern) or a project")
    parser.add_argument("--screenshot", metavar="OUT.png", help="render the window off-screen to this PNG and exit")
    parser.add_argument("--open", dest="open_path", metavar="SOURCE", help="source or project to open")
    parser.add_argument("--frame", type=int, default=0, help="frame index to show (0-based)")
    parser.add_argument("--view", choices=("split", "side", "a", "b", "difference"), default="split",
                        help="compare layout: split wipe, side by side, A/B flip showing A (original) or B (result), "
                             "or the difference picture")
    parser.add_argument("--stages", help="screenshot: exactly these stages (comma list, or none; default: a new project's cleaning stages)")
    parser.add_argument("--compare", metavar="STAGE", help="screenshot: before/after this stage instead of the result")
    parser.add_argument("--overlays", action="store_true", help="screenshot: draw every overlay the stages report")
    parser.add_argument("--zoom", type=float, help="screenshot: viewer zoom (1 = 100 %%; default: fit)")
    parser.add_argument("--divider", type=float, help="screenshot: split-wipe divider position, 0..1 of the width")
    parser.add_argument("--tab", choices=("monitor", "data", "scopes", "colour"), default="monitor",
                        help="screenshot: right-hand tab to show (monitor, stage data, scopes or colour curves)")
    parser.add_argument("--scope", choices=("waveform", "parade", "histogram"), default="waveform",
                        help="screenshot: which scope the scopes tab shows")
    parser.add_argument("--playhead", type=int, metavar="N",
                        help="screenshot: once frame --frame is shown, move the playhead to index N and take the "
                             "picture at once (the stale marker, as it shows while a preview lags)")
    parser.add_argument("--size", default="1600x1000", help="screenshot: window size WxH (default 1600x1000)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="screenshot: seconds to wait for the preview (default 900; shot analyses take a while)")
    return parser


def _set_up_logging(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    try:
        handlers.append(logging.FileHandler(folder / "filmrestore.log", encoding="utf-8"))
    except OSError:
        pass
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from restoration.bundle import resource_dir

    from .errors import install_excepthook
    from .main_window import APP_NAME, MainWindow, default_data_dir
    from .theme import apply_dark_theme

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "filmrestore"])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setDesktopFileName("filmrestore")  # Wayland matches the window to filmrestore.desktop (its icon) by this
    app.setWindowIcon(QIcon(str(resource_dir() / "icons" / "filmrestore.png")))
    apply_dark_theme(app)
    _set_up_logging(default_data_dir())
    path = args.path or args.open_path
    if args.screenshot:
        return screenshot(app, args, path)
    window = MainWindow()
    app.aboutToQuit.connect(window.shutdown)  # e.g. logout: keep the autosave for the next start
    install_excepthook(lambda: window)
    window.show()

    def start() -> None:
        recovered = window.offer_recovery()
        if path and not recovered:
            window.open_path(path)

    QTimer.singleShot(0, start)
    return app.exec()


def screenshot(app, args: argparse.Namespace, path: str | None) -> int:
    """Open, seek, lay out as asked, wait until the preview (and cut markers) are in, save the window as PNG."""
    from PySide6.QtCore import QSettings

    from restoration.stage import STAGE_ORDER

    from .main_window import MainWindow

    output = Path(args.screenshot)
    if output.suffix.lower() != ".png":
        print(f"python -m app: error: {output}: the screenshot is written as PNG: use a .png name", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"python -m app: error: --size {args.size}: expected WxH such as 1600x1000", file=sys.stderr)
        return EXIT_BAD_INPUT
    stages = [n.strip() for n in (args.stages or "").split(",") if n.strip() and n.strip() != "none"]
    unknown = [name for name in stages if name not in STAGE_ORDER]
    if unknown:  # before any window exists: its preview and cut threads would keep the process alive
        print(f"python -m app: error: --stages {unknown[0]}: unknown stage (known: {', '.join(STAGE_ORDER)})",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    scratch = tempfile.TemporaryDirectory(prefix="filmrestore-shot-")
    settings = QSettings(str(Path(scratch.name) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, data_dir=Path(scratch.name), confirm_on_close=False, error_dialogs=False)
    window.resize(width, height)
    window.show()
    if args.view in ("a", "b"):
        window.set_view("flip")  # shows A
        if args.view == "b":
            window.set_view("flip")
    else:
        window.set_view(args.view)
    window.scopes.set_kind(args.scope)
    if path and not window.open_path(path):
        window.close()
        return EXIT_BAD_INPUT
    if args.stages is not None:  # exactly these stages, as `filmrestore render --stages` means
        for name in STAGE_ORDER:
            if name in stages:
                window.stack.select(name)
            window.set_stage_enabled(name, name in stages)
    if args.compare:
        window.set_compare(args.compare)
    if window.source is not None:
        window.timeline.set_index(args.frame)
    if not _settle(app, window, args.frame, args.timeout):
        print(f"python -m app: error: the preview was not ready within {args.timeout:g} s (raise --timeout)",
              file=sys.stderr)
        window.close()
        return EXIT_BAD_INPUT
    {"data": window.side_dock, "scopes": window.scopes_dock, "monitor": window.monitor_dock,
     "colour": window.colour_dock}[args.tab].raise_()
    if args.zoom:
        window.viewer.set_zoom(args.zoom)
    if args.divider is not None:
        window.viewer.set_divider(args.divider)
    if args.overlays and window.last_result is not None:
        for overlay in window.last_result.side.overlays:
            window.set_overlay(overlay.key, True)
    window.monitor.refresh()
    for _ in range(5):
        app.processEvents()
    if args.playhead is not None and window.source is not None:
        window.timeline.set_index(args.playhead)
        for _ in range(3):
            app.processEvents()
    if not window.grab().save(str(output), "PNG"):
        print(f"python -m app: error: {output}: cannot be written", file=sys.stderr)
        return EXIT_BAD_INPUT
    window.close()
    scratch.cleanup()
    print(f"wrote {output}")
    return EXIT_BAD_INPUT if window.errors else 0


def _settle(app, window, frame: int, timeout: float) -> bool:
    """Process events until the preview of `frame` is on screen and the cut markers are in; False on timeout."""
    deadline = time.monotonic() + timeout
    ready = False
    while time.monotonic() < deadline:
        app.processEvents()
        if window.source is None:
            ready = True
            break
        failure = window.last_failure
        if failure is not None and failure[0] == window.engine.generation and not window.preview_busy:
            ready = True  # the picture shows the stage's error message
            break
        result = window.last_result
        if result is not None and result.index == window.timeline.index == min(frame, len(window.source) - 1) \
                and result.generation == window.engine.generation and not window.preview_busy and window.cuts_done:
            ready = True
            break
        time.sleep(0.02)
    for _ in range(10):
        app.processEvents()
        time.sleep(0.01)
    return ready


if __name__ == "__main__":
    raise SystemExit(main())

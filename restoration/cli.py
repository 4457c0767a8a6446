"""The `filmrestore` command line: probe, render, preview, demo, synth, bench, gui.

Bad input ends with a one-line error naming the file or field, exit code 2, and no traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from .errors import ParamError, RestorationError
from .pipeline import StageSetting
from .project import DEFAULT_STAGES, Project, load_project, new_project, parse_frame_rate
from .stage import STAGE_ORDER
from .stages import implemented_stage_names, stage_class

EXIT_BAD_INPUT = 2
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is so that cleanup runs exactly as for Ctrl+C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM and SIGHUP cancel it like SIGINT; a second signal waits for the cleanup."""
    def stop(signum: int, _frame: object) -> None:
        for other in STOP_SIGNALS + (signal.SIGINT,):
            signal.signal(other, signal.SIG_IGN)  # the first one wins: removing the partial must not be cut short
        raise Stopped(signum)

    try:
        previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    except ValueError:  # not the main thread (embedded use): leave signals to the host
        yield
        return
    previous_int = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        signal.signal(signal.SIGINT, previous_int)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        with stop_signals_interrupt():
            return int(args.run(args) or 0)
    except RestorationError as exc:
        print(f"filmrestore: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        reason = "no space left on the output disk" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        print(f"filmrestore: error: {exc.filename or 'output'}: {reason}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        by = f" by {signal.Signals(signum).name}" if isinstance(exc, Stopped) else ""
        print(f"filmrestore: cancelled{by}; nothing was written at the output name", file=sys.stderr)
        return 128 + int(signum)


class VersionAction(argparse.Action):
    """--version, importing torch only when asked (it takes a second or two)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from .bundle import version_text

        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="filmrestore", description="Restore scanned film: dust, weave, flicker, "
                                     "grain, fade, super-resolution; export archival masters.")
    parser.add_argument("--version", action=VersionAction, nargs=0,
                        help="show the version, the torch build and the device it runs on, and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    probe = commands.add_parser("probe", help="describe a source (video file, image sequence or still)")
    probe.add_argument("source")
    probe.add_argument("--json", action="store_true", help="print JSON")
    probe.add_argument("--fps", help="frame rate for image sequences (e.g. 24, 24000/1001)")
    probe.set_defaults(run=run_probe)

    render = commands.add_parser("render", help="restore a source and export a master")
    render.add_argument("source", nargs="?", help="source (optional when --project names one)")
    render.add_argument("-o", "--output", required=True, help="output file (.mkv/.mov/.mp4) or folder (sequences)")
    _add_stage_arguments(render)
    render.add_argument("--range", help="frames START:END (END exclusive)")
    render.add_argument("--format", choices=("ffv1", "prores", "prores4444", "tiff", "dpx", "png", "h264"))
    render.add_argument("--overwrite", action="store_true", help="replace an existing output (never the source)")
    render.add_argument("--allow-gaps", action="store_true", help="render a sequence with missing frame numbers")
    render.add_argument("--allow-depth-loss", action="store_true",
                        help="write a format shallower than the source's deepest frame (recorded in provenance)")
    render.add_argument("--workers", type=int, metavar="N",
                        help="local worker processes, one core each (default: every core; 1 renders in this process)")
    render.add_argument("--ray", metavar="ADDRESS",
                        help="run the render's units on a Ray cluster (ADDRESS, or 'local' for a local runtime; "
                             "needs pip install filmrestore[cluster])")
    render.add_argument("--fresh", action="store_true",
                        help="discard the work folder OUTPUT.work of an earlier interrupted render instead of resuming")
    render.add_argument("--progress-every", type=float, default=5.0, metavar="SECONDS",
                        help="seconds between progress lines when stderr is not a terminal (default 5)")
    render.set_defaults(run=run_render)

    preview = commands.add_parser("preview", help="write a side-by-side before/after still of one frame")
    preview.add_argument("source", nargs="?")
    preview.add_argument("--frame", type=int, required=True)
    preview.add_argument("-o", "--output", required=True, help="PNG to write")
    preview.add_argument("--overwrite", action="store_true", help="replace an existing PNG (never a source)")
    _add_stage_arguments(preview)
    preview.set_defaults(run=run_preview)

    demo = commands.add_parser("demo", help="restore a shipped excerpt of real film and a still damaged like worn "
                                "film; write masters, a contact sheet and project files")
    demo.add_argument("-o", "--output", default="demo-output", help="folder for the results (default: demo-output)")
    demo.add_argument("--frames", type=int, default=24, help="length of the demo clips (the film excerpt has 24)")
    demo.add_argument("--width", type=int,
                      help="scale the film and the still to this width first (default: as shipped)")
    demo.add_argument("--overwrite", action="store_true", help="replace a folder an earlier demo wrote")
    demo.set_defaults(run=run_demo)

    synth = commands.add_parser("synth", help="simulate film damage with exact ground truth")
    synth.add_argument("source")
    synth.add_argument("-o", "--output", required=True, help="output folder")
    synth.add_argument("--damage", default="dust,scratches,grain,flicker,weave,fade",
                       help="comma list of dust,scratches,grain,flicker,weave,fade,blur")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true", help="replace a folder an earlier synth wrote")
    synth.set_defaults(run=run_synth)

    bench = commands.add_parser("bench", help="benchmark every stage against open peers")
    try:
        from .bench import add_arguments as add_bench_arguments
    except ImportError:
        add_bench_arguments = None
    if add_bench_arguments is not None:
        add_bench_arguments(bench)
    bench.set_defaults(run=run_bench)

    gui = commands.add_parser("gui", help="open the desktop application")
    gui.add_argument("path", nargs="?", help="a source or a project file")
    gui.set_defaults(run=run_gui)
    return parser


def _add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stages", help=f"comma list of {','.join(STAGE_ORDER)}, or all, or none for a plain "
                        f"transcode (default: {','.join(DEFAULT_STAGES)}, or the --project's stages)")
    parser.add_argument("--set", action="append", default=[], metavar="STAGE.PARAM=VALUE",
                        help="set a stage parameter (repeatable)")
    parser.add_argument("--project", help="project file (JSON) to start from")
    parser.add_argument("--fps", help="frame rate for image sequences (e.g. 24, 24000/1001)")
    parser.add_argument("--fields", choices=("keep", "deinterlace", "ivtc"),
                        help="interlaced/telecined video: keep frames as stored, deinterlace (bwdif), or ivtc "
                             "(fieldmatch + decimate); required for such sources")


def run_probe(args: argparse.Namespace) -> int:
    from .io import probe

    info = probe(args.source, **_fps_option(args))
    data = info.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for key, value in data.items():
        print(f"{key:>22}: {value}")
    return 0


def project_from_args(args: argparse.Namespace) -> tuple[Project, list[str]]:
    """The project the command line describes: --project, then --stages, then each --set; plus notes to show."""
    project = load_project(args.project) if args.project else new_project()
    if args.source:
        project.source = args.source
    if getattr(args, "fps", None):
        project.source_frame_rate = str(_fps_option(args)["frame_rate"])
    if not project.source:
        raise ParamError("source", "no source given (name one, or a --project that has one)")
    if getattr(args, "fields", None):
        project.fields = args.fields
    notes: list[str] = []
    if args.stages is not None:
        names = _parse_stage_list(args.stages)
        if args.stages.strip() == "all":
            missing = [n for n in STAGE_ORDER if not stage_class(n).implemented]
            if missing:
                notes.append(f"not implemented yet, bypassed: {', '.join(missing)}")
        else:
            for name in names:
                if not stage_class(name).implemented:
                    raise ParamError(f"--stages {name}", "this stage is not implemented yet; it can only be bypassed")
        for name in STAGE_ORDER:
            project.stages[name] = StageSetting(name in names, dict(project.stages[name].params))
    for item in args.set:
        stage, param, value = _parse_set(item)
        declared = stage_class(stage).params.get(param, f"--set {stage}.{param}")
        project.stages[stage].params[param] = declared.parse(value, f"--set {stage}.{param}")
    for name, setting in project.stages.items():
        if setting.enabled and not stage_class(name).implemented and args.stages is None:
            notes.append(f"stage {name} is enabled in the project but not implemented yet: bypassed")
    return project, notes


def _parse_stage_list(text: str) -> list[str]:
    text = text.strip()
    if text == "all":
        return implemented_stage_names()
    if text in ("none", ""):
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        stage_class(name)
    return names


def _parse_set(item: str) -> tuple[str, str, str]:
    key, sep, value = item.partition("=")
    stage, dot, param = key.strip().partition(".")
    if not sep or not dot or not stage or not param:
        raise ParamError(f"--set {item}", "expected STAGE.PARAM=VALUE")
    stage_class(stage)
    return stage, param, value


def _parse_range(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    start, sep, end = text.partition(":")
    try:
        first, last = int(start), int(end)
    except ValueError:
        raise ParamError(f"--range {text}", "expected START:END with whole frame numbers") from None
    if not sep or first < 0 or last <= first:
        raise ParamError(f"--range {text}", "expected START:END with 0 <= START < END")
    return first, last


def _fps_option(args: argparse.Namespace) -> dict[str, Any]:
    if not getattr(args, "fps", None):
        return {}
    rate = parse_frame_rate(args.fps)
    if rate is None:
        raise ParamError(f"--fps {args.fps}", "not a positive frame rate (use e.g. 24 or 24000/1001)")
    return {"frame_rate": rate}


def stages_note(project: Project) -> str:
    """The stages a render will run, in order, so a render never restores nothing (or everything) silently."""
    names = [n for n in STAGE_ORDER if n in project.stages and project.stages[n].enabled
             and stage_class(n).implemented]
    return f"stages: {', '.join(names)}" if names else "stages: none (a plain transcode)"


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"filmrestore: note: {note}", file=sys.stderr)


def run_render(args: argparse.Namespace) -> int:
    from .progress import ProgressPrinter
    from .render import render_project

    project, notes = project_from_args(args)
    frame_range = _parse_range(args.range)
    if frame_range:
        project.range = frame_range
    if args.format:
        project.export["format"] = args.format
    if args.allow_depth_loss:
        project.export["allow_depth_loss"] = True
    _print_notes(notes + [stages_note(project)])
    progress = ProgressPrinter(every_seconds=max(args.progress_every, 0.0))
    result = render_project(project, args.output, overwrite=args.overwrite, progress=progress,
                            allow_gaps=args.allow_gaps, workers=args.workers, ray=args.ray, fresh=args.fresh,
                            notes=lambda text: _print_notes([text]), protect=[args.project] if args.project else [])
    kept = f", {result.frames_kept} kept from the interrupted render" if result.frames_kept else ""
    print(f"wrote {result.output} ({result.frames} frames{kept}, {result.fps:.2f} fps)")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from .analysis_cache import AnalysisCache
    from .export.paths import Sources, check_output, commit, discard, os_errors_as_export_errors, reserve_temp
    from .io.image import encode_image
    from .io.probe import open_with_fields
    from .progress import ProgressPrinter
    from .render import chain_steps
    from .render.plan import analysis_span, chain_is_temporal
    from .pipeline import Pipeline
    from .preview import side_by_side

    project, notes = project_from_args(args)
    _print_notes(notes)
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise ParamError(str(output), "the preview is written as PNG: use a .png name")
    with open_with_fields(project.source, parse_frame_rate(project.source_frame_rate or 0),
                          project.fields) as source:
        sources = Sources.of(source.info, args.project)
        final = check_output(output, False, sources, args.overwrite)
        if not 0 <= args.frame < len(source):
            raise ParamError(source.info.path, f"frame {args.frame} is outside 0..{len(source) - 1}")
        steps, _ = chain_steps(project)
        # only what this frame needs: cuts and shot analyses over frame ± the render's analysis handle
        span = analysis_span((args.frame, args.frame + 1), len(source), chain_is_temporal(steps))
        cache = AnalysisCache.for_source(source.info, project.source_frame_rate, project.fields)
        pipeline = Pipeline(source, project.stages, span=span, analysis_cache=cache)
        pipeline.progress = ProgressPrinter()
        before = pipeline.frame(args.frame, after="source")
        after = pipeline.frame(args.frame)
    data = encode_image(side_by_side(before, after), ".png", 8, 95)
    temp = reserve_temp(final, sequence=False)
    try:
        with os_errors_as_export_errors(output):
            temp.write_bytes(data)
            check_output(output, False, sources, args.overwrite)  # again: nothing may have appeared meanwhile
            commit(temp, final, args.overwrite)
    finally:
        discard(temp)  # gone already when committed
    print(f"wrote {output}")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo as demo

    if args.frames < 1 or (args.width is not None and not 32 <= args.width <= 4096):
        raise ParamError("demo", "--frames must be at least 1 and --width between 32 and 4096")
    return demo(Path(args.output), frames=args.frames, width=args.width, overwrite=args.overwrite)


def run_synth(args: argparse.Namespace) -> int:
    from .synth import run_synth as synth

    damage = [d.strip() for d in args.damage.split(",") if d.strip()]
    out = synth(args.source, args.output, damage, args.seed, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    try:
        from .bench import run_from_args
    except ImportError as exc:
        raise ParamError("bench", f"the benchmark is not available in this build ({exc})") from None
    return run_from_args(args)


def run_gui(args: argparse.Namespace) -> int:
    os.environ.setdefault("PYTHONFAULTHANDLER", "1")
    from app.__main__ import main as gui_main

    return gui_main([args.path] if args.path else [])


if __name__ == "__main__":
    raise SystemExit(main())

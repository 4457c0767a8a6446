"""`filmrestore bench`: our stages against the open peers on a fixed simulated corpus; writes JSON and REPORT.md.

Wire into a CLI with `add_arguments(parser)` and `run_from_args(args)`, or call `main(argv)`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from restoration.bench.corpus import CHAIN, DATA_ENV, STAGES, DataMissing, default_data_dir

__all__ = ["add_arguments", "main", "run_bench", "run_from_args"]

RENDER = "render"  # the render engine end to end (restoration/bench/render_speed.py); not part of --stage all


def __getattr__(name: str):
    # the runner pulls in the metrics (scipy, scikit-image): only when a bench runs, so `filmrestore --help` stays fast
    if name == "run_bench":
        from restoration.bench.runner import run_bench

        return run_bench
    raise AttributeError(name)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's options on an (sub)parser."""
    parser.add_argument("--stage", choices=[*STAGES, CHAIN, "all", RENDER], default="all",
                        help="stage to benchmark; chain = every stage but sr in order (default all: each stage, "
                             "then the chain); render = `filmrestore render` end to end beside the FFmpeg chain, "
                             "workers, resume (not part of all)")
    parser.add_argument("--quick", action="store_true",
                        help="reduced corpus and fixed peer settings: finishes in a few minutes")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for <stage>.json (default restoration/bench/results/ in the repository)")
    parser.add_argument("--data", type=Path, default=None,
                        help=f"test media folder (default ${DATA_ENV}, else ../shared/data beside the repository)")
    parser.add_argument("--report", type=Path, default=None,
                        help="report to regenerate (default restoration/bench/REPORT.md for the default --out, "
                             "else OUT/REPORT.md)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results in an existing, non-empty --out folder")
    parser.add_argument("--report-only", action="store_true",
                        help="only regenerate the report (and its plots) from the results already in --out")
    parser.add_argument("--render-frames", type=int, default=None, metavar="N",
                        help="--stage render: frames of the source (default 48)")
    parser.add_argument("--render-repeats", type=int, default=None, metavar="N",
                        help="--stage render: timed runs of each command, median reported (default 1)")
    parser.add_argument("--profile", choices=["full", "quick", "tiny"], default=None,
                        help=argparse.SUPPRESS)  # corpus size override, for tests


def run_from_args(args: argparse.Namespace) -> int:
    """Run the bench from parsed arguments; 0 on success, 2 with a one-line message when the data is missing."""
    from restoration.bench.runner import default_out, run_bench

    data = args.data if args.data is not None else default_data_dir()
    out = args.out if args.out is not None else default_out()
    if not getattr(args, "report_only", False):
        _check_out(args, data)
    if getattr(args, "report_only", False):
        from restoration.bench.report import write_report
        from restoration.bench.runner import default_report

        report = args.report if getattr(args, "report", None) is not None else default_report(out)
        print(write_report(out, report))
        return 0
    try:
        if args.stage == RENDER:
            from restoration.bench.runner import run_render_section

            run_render_section(out, data, getattr(args, "report", None), frames=args.render_frames,
                               repeats=args.render_repeats, quick=args.quick)
            return 0
        run_bench(args.stage, args.quick, out, data, profile=getattr(args, "profile", None),
                  report=getattr(args, "report", None))
    except DataMissing as exc:
        print(f"filmrestore bench: {exc}", file=sys.stderr)
        return 2
    return 0


def _check_out(args: argparse.Namespace, data: Path) -> None:
    """Never write into or over the test media; a chosen --out that holds anything needs --overwrite."""
    from restoration.errors import ExportError
    from restoration.export.paths import Sources, guard_source

    sources = Sources.of(data)
    if args.out is not None:
        guard_source(args.out, sources, folder=True)
        if Path(args.out).is_dir() and any(Path(args.out).iterdir()) and not getattr(args, "overwrite", False):
            raise ExportError(args.out, "already exists and is not empty (use --overwrite to replace the "
                              "bench results in it)")
    if getattr(args, "report", None) is not None:
        guard_source(args.report, sources, folder=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="filmrestore bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

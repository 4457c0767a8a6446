"""Issue 20's stabilize figures: simulated clip kinds with ground truth over seeds, beside vid.stab and deshake, and
no-reference figures and border contact sheets on the real archival films.

    python -m restoration.bench.weave_figures [--seeds 3] [--frames 48] [--json OUT.json] [--notes]
    python -m restoration.bench.weave_figures --code OTHER_CHECKOUT --json base.json   (the same clips, other code)

Writes a table (mean ± spread over seeds) to stdout, the JSON of every figure with --json, and with --notes the
generated section of notes/stabilize.md (between its markers) and the contact sheets stabilize_border_*.png.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SET14 = Path("/work/shared/data/Set14/GT")
ARCHIVAL = Path("/work/shared/data/archival")
PICTURES = ("img_011.png", "img_002.png", "img_005.png")  # monarch, barbara, comic: one per seed, cycled
REAL_FILMS = ("rrtn_market_street", "rrtn_san_francisco", "rtn_test_data_1_002_f1000-1149")
BEGIN, END = "<!-- weave_figures:begin -->", "<!-- weave_figures:end -->"


def synth_module(name: str):
    """restoration/synth/<name>.py of this checkout, whichever code runs the stage (--code): the same clips."""
    spec = importlib.util.spec_from_file_location(f"this_checkout_{name}", HERE.parent / "synth" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _picture(seed: int) -> np.ndarray:
    import cv2

    image = cv2.imread(str(SET14 / PICTURES[seed % len(PICTURES)]), cv2.IMREAD_COLOR)
    return image[..., ::-1].astype(np.float32) / 255.0


def run_ours(frames: list[np.ndarray]) -> list[np.ndarray]:
    from restoration.pipeline import run_stage_on_frames
    from restoration.stage import Shot

    return run_stage_on_frames("stabilize", frames, {}, shots=[Shot(0, len(frames))])


def run_peer(name: str, frames: list[np.ndarray]) -> list[np.ndarray]:
    from restoration.bench import peers

    if name == "vidstab":
        return peers.run_vidstab(frames, peers._VIDSTAB)
    return peers.run_deshake(frames, peers._DESHAKE)


def clip_figures(clip, outputs: list[np.ndarray]) -> dict[str, float]:
    """Residual frame-to-frame jitter, kept-path error, jolt residual, repeated-pair differences, lost picture."""
    from restoration.metrics import frame_shift

    shifts = np.array([frame_shift(o, t) for o, t in zip(outputs, clip.truth)])
    error = shifts - np.median(shifts, axis=0)  # a stabilizer may hold the shot anywhere: offsets are free
    distance = np.hypot(error[:, 0], error[:, 1])
    steps = np.diff(shifts, axis=0)
    figures = {"jitter_px": float(np.sqrt(np.mean(np.sum(steps ** 2, axis=1)))),
               "path_rms_px": float(np.sqrt(np.mean(distance ** 2))), "path_max_px": float(distance.max())}
    if clip.jolts:
        figures["jolt_px"] = float(distance[clip.jolts].max())
    if clip.repeats:
        figures["pair_px"] = float(max(np.hypot(*(shifts[i] - shifts[o])) for i, o in clip.repeats.items()))
        figures["pair_codes"] = float(max(np.abs(outputs[i] - outputs[o]).max() for i, o in clip.repeats.items())
                                      * 255)
    # picture lost to black or to a pasted bar: output dark (< 0.06) where the truth has picture (> 0.15)
    width = clip.truth[0].shape[1]
    inner = slice(clip.bars, width - clip.bars) if clip.bars else slice(0, width)
    lost = [np.mean((o[:, inner].mean(axis=2) < 0.06) & (t[:, inner].mean(axis=2) > 0.15))
            for o, t in zip(outputs, clip.truth)]
    figures["dark_share"] = float(np.max(lost))
    if clip.gate[0] and clip.jolts:
        # where a large correction was filled: the largest step between adjacent rows' (or columns') mean difference
        # of the output from the truth over the picture (a seam, the gate's shading carried in, a pasted corner),
        # codes, at the jolt frames and (the floor that grain and sub-pixel texture leave) at the others
        from restoration.flow import LUMA_709

        picture = synth_module("motion").rounded_gate(width, clip.truth[0].shape[0], *clip.gate)[..., 0] > 0.99

        def step(i: int) -> float:
            difference = np.where(picture, (outputs[i] - clip.truth[i]) @ LUMA_709, np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # rows and columns wholly in the gate
                rows, cols = np.nanmean(difference, axis=1), np.nanmean(difference, axis=0)
            return float(max(np.nanmax(np.abs(np.diff(rows))), np.nanmax(np.abs(np.diff(cols)))) * 255)

        figures["fill_step_codes"] = max(step(i) for i in clip.jolts)
        figures["fill_step_floor_codes"] = float(np.median([step(i) for i in range(len(outputs))
                                                            if i not in clip.jolts]))
    return figures


def synthetic(seeds: int, frames: int, methods: tuple[str, ...], kinds: tuple[str, ...] = ()) -> dict:
    motion = synth_module("motion")
    results: dict = {}
    for kind in kinds or motion.KINDS:
        for seed in range(seeds):
            clip = motion.motion_clip(_picture(seed), kind, seed, n=frames)
            for method in methods:
                try:
                    started = time.perf_counter()
                    outputs = run_ours(clip.frames) if method == "ours" else run_peer(method, clip.frames)
                    seconds = time.perf_counter() - started
                except Exception as error:  # noqa: BLE001 - a peer missing is reported, not fatal
                    results.setdefault(kind, {}).setdefault(method, []).append({"error": str(error)})
                    continue
                figures = clip_figures(clip, outputs)
                figures["seconds"] = seconds
                results.setdefault(kind, {}).setdefault(method, []).append(figures)
            print(f"{kind} seed {seed}: " + ", ".join(
                f"{m} jitter {results[kind][m][-1].get('jitter_px', float('nan')):.3f}" for m in methods),
                file=sys.stderr)
    return results


def real_films() -> dict:
    """No-reference figures on the archival films: residual frame-to-frame motion of the output (its own measured
    path's steps, jolts aside), repeated pairs' differences after stabilize + deflicker, and luma flicker."""
    from restoration.io import open_source
    from restoration.pipeline import Pipeline, settings_for
    from restoration.stages.stabilize.weave import WeaveTracker

    def path_steps(frames: list[np.ndarray]) -> np.ndarray:
        tracker = WeaveTracker(frames[0].shape[1], frames[0].shape[0], 0)
        for index, frame in enumerate(frames):
            tracker.add(index, frame)
        motion = tracker.path.motion()[:, :2]
        return np.hypot(*np.diff(motion, axis=0).T)

    out: dict = {}
    for name in REAL_FILMS:
        with open_source(str(ARCHIVAL / name)) as source:
            frames = [f for _, f in source.frames()]
            pipeline = Pipeline(source, settings_for(["stabilize", "deflicker"]))
            shots = pipeline.shots()
            result = [pipeline.frame(i) for i in range(len(frames))]
            stabilized = [pipeline.frame(i, after="stabilize") for i in range(len(frames))]
            repeats = pipeline.repeats().originals
            weave = pipeline.nodes[0].analysis(shots[0])
        steps_in, steps_out = path_steps(frames), path_steps(stabilized)
        luma_in = np.array([float((f @ np.float32([0.2126, 0.7152, 0.0722])).mean()) for f in frames]) * 255
        luma_out = np.array([float((f @ np.float32([0.2126, 0.7152, 0.0722])).mean()) for f in result]) * 255
        out[name] = {
            "frames": len(frames), "shots": len(shots), "repeats": len(repeats), "jolts": weave.jolts,
            "gate": weave.gate.to_dict(), "models": weave.models,
            "step_median_in_px": float(np.median(steps_in)), "step_median_out_px": float(np.median(steps_out)),
            "pair_codes_in": float(max((np.abs(frames[i] - frames[o]).max() for i, o in repeats.items()),
                                       default=0) * 255),
            "pair_codes_out": float(max((np.abs(result[i] - result[o]).max() for i, o in repeats.items()),
                                        default=0) * 255),
            "flicker_in_codes": float(np.std(np.diff(luma_in))), "flicker_out_codes": float(np.std(np.diff(luma_out))),
            "max_correction_px": float(np.abs(weave.intended[:, :2] - weave.measured[:, :2]).max()),
        }
        if name == "rrtn_market_street":
            _contact_sheet(frames, result, [21, 22, 26], HERE / "stabilize_border_market_street.png")
    return out


def _contact_sheet(before: list[np.ndarray], after: list[np.ndarray], indices: list[int], path: Path) -> None:
    """Top border region (first 48 rows) before | after for the frames with the largest corrections, 2x."""
    import cv2

    rows = []
    for i in indices:
        a, b = before[i][:48], after[i][:48]
        rows.append(np.concatenate([a, np.ones((a.shape[0], 4, 3), np.float32), b], axis=1))
        rows.append(np.ones((4, rows[-1].shape[1], 3), np.float32))
    sheet = cv2.resize(np.concatenate(rows[:-1], axis=0), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(path), (np.clip(sheet[..., ::-1], 0, 1) * 255 + 0.5).astype(np.uint8))


def summary(results: dict) -> dict:
    table: dict = {}
    for kind, methods in results.items():
        for method, runs in methods.items():
            good = [r for r in runs if "error" not in r]
            if not good:
                table.setdefault(kind, {})[method] = {"error": runs[0]["error"]}
                continue
            keys = sorted({k for r in good for k in r})
            table.setdefault(kind, {})[method] = {
                k: (float(np.mean([r[k] for r in good if k in r])), float(np.std([r[k] for r in good if k in r])))
                for k in keys}
    return table


COLUMNS = (("jitter_px", "jitter px"), ("path_rms_px", "path RMS px"), ("path_max_px", "path max px"),
           ("jolt_px", "jolt px"), ("pair_px", "pair px"), ("pair_codes", "pair codes"),
           ("dark_share", "dark share"), ("fill_step_codes", "fill step codes"),
           ("fill_step_floor_codes", "other frames' step"))


def markdown(table: dict, seeds: int, frames: int, base: dict | None = None) -> str:
    lines = [f"Simulated clips (`restoration/synth/motion.py`), 256×192, {frames} frames, weave σ 0.8 px "
             f"(AR(1) 0.6), mean ± std over {seeds} seeds (picture and every draw per seed). jitter: RMS "
             "frame-to-frame change of "
             "the output's displacement from the truth; path: the output's displacement from the true camera path "
             "(its median taken out); jolt: at the jolt frames; pair: repeated frames' position and code "
             "differences; dark share: largest share of a frame's picture output dark (< 0.06) where the truth is "
             "not (black or pasted bars); fill step: at the rounded gate's splice jump, the largest step between "
             "adjacent rows' (or columns') mean difference of the output from the truth over the picture, codes (a "
             "seam, the gate's shading carried in, a pasted corner), beside the same figure's median over the other "
             "frames (grain and sub-pixel texture alone).", ""]
    header = "| clip | method | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines += [header, "|" + "---|" * (len(COLUMNS) + 2)]
    for kind, methods in table.items():
        rows = list(methods.items())
        if base and kind in base and "ours" in base[kind]:
            rows.insert(0, ("ours (before)", base[kind]["ours"]))
        for method, figures in rows:
            if "error" in figures:
                lines.append(f"| {kind} | {method} | " + figures["error"] + " |" * len(COLUMNS))
                continue
            cells = [f"{figures[k][0]:.3f} ± {figures[k][1]:.3f}" if k in figures else "–" for k, _ in COLUMNS]
            lines.append(f"| {kind} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--methods", default="ours,vidstab,deshake")
    parser.add_argument("--kinds", default="", help="clip kinds, comma-separated (default: all)")
    parser.add_argument("--code", help="run the stage from another checkout (its restoration package)")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--base", help="JSON of the same run on the code before (a column 'ours (before)')")
    parser.add_argument("--real", action="store_true", help="also the real films' figures and contact sheets")
    parser.add_argument("--notes", action="store_true", help="write the section of notes/stabilize.md")
    args = parser.parse_args(argv)
    if args.code:
        sys.path.insert(0, str(Path(args.code).resolve()))
        for name in [m for m in sys.modules if m == "restoration" or m.startswith("restoration.")]:
            del sys.modules[name]
    results = synthetic(args.seeds, args.frames, tuple(args.methods.split(",")),
                        tuple(k for k in args.kinds.split(",") if k))
    table = summary(results)
    record = {"seeds": args.seeds, "frames": args.frames, "table": table, "runs": results}
    if args.real:
        record["real"] = real_films()
    base = json.loads(Path(args.base).read_text())["table"] if args.base else None
    text = markdown(table, args.seeds, args.frames, base)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1))
    if args.notes:
        real = record.get("real", {})
        section = [BEGIN, "", "**Issue 20 figures** (`python -m restoration.bench.weave_figures --real --notes`).", "",
                   text, ""]
        if real:
            section += ["Real films (no reference; stabilize + deflicker, defaults): median frame-to-frame step of the "
                        "measured path before → after stabilize, repeated pairs' largest code difference before → "
                        "after, luma flicker (std of the frame-to-frame change of mean luma, codes) before → after.",
                        "", "| film | frames | repeats | jolts | gate (l, r, t, b) | models | step px | pair codes | "
                        "flicker codes | largest correction px |", "|---|---|---|---|---|---|---|---|---|---|"]
            for name, f in real.items():
                gate = f["gate"]
                section.append(
                    f"| {name} | {f['frames']} | {f['repeats']} | {f['jolts']} | {gate['left']}, {gate['right']}, "
                    f"{gate['top']}, {gate['bottom']} | {', '.join(f['models'])} | {f['step_median_in_px']:.2f} → "
                    f"{f['step_median_out_px']:.2f} | {f['pair_codes_in']:.1f} → {f['pair_codes_out']:.1f} | "
                    f"{f['flicker_in_codes']:.2f} → {f['flicker_out_codes']:.2f} | {f['max_correction_px']:.1f} |")
            section.append("")
        section.append(END)
        notes = HERE / "notes" / "stabilize.md"
        current = notes.read_text()
        block = "\n".join(section)
        if BEGIN in current:
            current = current[:current.index(BEGIN)] + block + current[current.index(END) + len(END):]
        else:
            current = current.rstrip() + "\n\n" + block + "\n"
        notes.write_text(current)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

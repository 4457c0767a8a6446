"""Issue 20's deflicker figures on synthetic pans with ground truth (the deflicker tests' clips), over seeds.

    python -m restoration.bench.deflicker_figures [--seeds 8] [--json OUT.json]
    python -m restoration.bench.deflicker_figures --code OTHER_CHECKOUT ...   (the same clips, other code)
    python -m restoration.bench.deflicker_figures --real DIR   (the archival films: mean luma, frames)

Per seed: flicker reduction and PSNR gained on 5 % gain + 1 % offset flicker (the tests' clip), the PSNR lost on a flicker-free
grainy pan, a -5 code value exposure step inside a shot (what is left of it), an eased fade and straight fades to
and from black (how far the output strays from the faded truth), a lamp switched on (+25 %, kept), dips of 2 and
4 frames, a 4-6 code value step 2-6 frames from a shot's start or end, a dip of 1-3 frames on a shot's first or
last frames, a small (2-3 code value) step inside a shot, a small (3-5 %) step inside a straight fade, and seconds
per frame.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from restoration.bench.weave_figures import synth_module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--code", help="another checkout whose restoration package runs the stage")
    parser.add_argument("--json")
    parser.add_argument("--real", help="instead: run the real archival films, per-frame mean luma and frames to DIR")
    args = parser.parse_args(argv)
    if args.code:
        sys.path.insert(0, args.code)
        for name in [m for m in sys.modules if m == "restoration" or m.startswith("restoration.")]:
            del sys.modules[name]

    from restoration.metrics import flicker_index, psnr
    from restoration.pipeline import run_stage_on_frames
    from restoration.stage import Shot
    import restoration

    if args.real:
        return real_films(args.real)
    width, height = 256, 192

    clips = synth_module("light")  # this checkout's clips, whichever code runs the stage

    def pan(n, seed, speed=1.0):
        return clips.panning_clip(n, seed, width, height, speed)

    grain, light = clips.with_grain, clips.flickered

    def run(frames):
        return run_stage_on_frames("deflicker", frames, {}, shots=[Shot(0, len(frames))])

    def means(frames):
        return np.array([float(f.mean()) for f in frames])

    rows: dict[str, list[float]] = {k: [] for k in ("flicker_reduction_pct", "flicker_psnr_gain_db",
                                                    "short_strong_flicker_psnr_gain_db",
                                                    "flicker_free_psnr_loss_db",
                                                    "step_left_code_values", "step_worst_frame_code_values",
                                                    "fade_worst_frame_pct", "black_fades_worst_frame_pct",
                                                    "lamp_worst_frame_pct",
                                                    "dip_worst_frame_pct", "edge_step_left_code_values",
                                                    "edge_step_worst_frame_code_values", "edge_step_shot_moved_code_values",
                                                    "edge_dip_worst_frame_pct",
                                                    "small_step_left_code_values",
                                                    "small_step_worst_frame_code_values",
                                                    "fade_step_left_pct", "fade_step_worst_frame_pct",
                                                    "seconds_per_frame")}
    for seed in range(args.seeds):
        rng = np.random.default_rng(1000 + seed)
        truth = pan(30, 2000 + seed)
        degraded = light(truth, 1.0 + 0.05 * np.clip(rng.standard_normal(30), -3, 3),
                         0.01 * np.clip(rng.standard_normal(30), -3, 3))
        start = time.perf_counter()
        out = run(degraded)
        rows["seconds_per_frame"].append((time.perf_counter() - start) / len(out))
        rows["flicker_reduction_pct"].append(100 * (1 - flicker_index(out, truth) / flicker_index(degraded, truth)))
        # the level too: a slow drift kept as light lowers PSNR while the frame-to-frame index improves
        rows["flicker_psnr_gain_db"].append(psnr(np.stack(out), np.stack(truth)) - psnr(np.stack(degraded), np.stack(truth)))

        # the bench's flowers clip: 16 frames, 6 % gain + 1 % offset flicker (its chance wander is no fade)
        truth = pan(16, 2500 + seed)
        degraded = light(truth, 1.0 + 0.06 * np.clip(rng.standard_normal(16), -3, 3),
                         0.01 * np.clip(rng.standard_normal(16), -3, 3))
        out = run(degraded)
        rows["short_strong_flicker_psnr_gain_db"].append(psnr(np.stack(out), np.stack(truth))
                                                         - psnr(np.stack(degraded), np.stack(truth)))

        clean = pan(24, 3000 + seed, speed=1.5)
        grainy = grain(clean, 0.02, 4000 + seed)
        out = run(grainy)
        rows["flicker_free_psnr_loss_db"].append(psnr(np.stack(grainy), np.stack(clean))
                                                 - psnr(np.stack(out), np.stack(clean)))

        # an exposure step of -5 code values from frame 24 on (a splice inside the shot), over 1 % flicker
        truth = pan(48, 5000 + seed)
        at = 24
        offsets = np.where(np.arange(48) >= at, -5 / 255, 0.0)
        degraded = light(truth, 1.0 + 0.01 * rng.standard_normal(48), offsets)
        out = run(degraded)
        error = (means(out) - means(truth)) * 255
        error -= np.median(error[:at])
        rows["step_left_code_values"].append(float(error[at:at + 6].mean() - error[at - 6:at].mean()))
        rows["step_worst_frame_code_values"].append(float(np.abs(error).max()))

        # a fade-out to 55 % over 40 frames of a 48-frame shot, eased (not a straight line), over 1 % flicker
        truth = pan(48, 6000 + seed)
        t = np.clip((np.arange(48) - 4) / 40, 0, 1)
        fade = 1.0 - 0.45 * (3 * t ** 2 - 2 * t ** 3)
        lit = light(truth, fade)
        out = run(light(lit, 1.0 + 0.01 * rng.standard_normal(48)))
        ratio = means(out) / means(lit)
        rows["fade_worst_frame_pct"].append(float(100 * np.abs(ratio / np.median(ratio) - 1).max()))

        # straight fades that start or end abruptly: out to black over 40 frames, in from black over 30 (frames
        # darker than 3 % left out of the figure: their relative error says little)
        worst = 0.0
        for fade in (np.clip(1 - np.arange(48) / 40, 0, 1), np.clip(np.arange(48) / 30, 0, 1)):
            lit = light(pan(48, 6500 + seed), fade)
            out = run(light(lit, 1.0 + 0.01 * rng.standard_normal(48)))
            seen = means(lit) > 0.03
            ratio = means(out)[seen] / means(lit)[seen]
            worst = max(worst, float(100 * np.abs(ratio / np.median(ratio) - 1).max()))
        rows["black_fades_worst_frame_pct"].append(worst)

        truth = pan(32, 7000 + seed)
        lit = light(truth, np.where(np.arange(32) < 16, 1.0, 1.25))
        out = run(light(lit, 1.0 + 0.012 * rng.standard_normal(32)))
        ratio = means(out) / means(lit)
        rows["lamp_worst_frame_pct"].append(float(100 * np.abs(ratio / np.median(ratio) - 1).max()))

        truth = pan(40, 8000 + seed)
        gains = 1.0 + 0.01 * rng.standard_normal(40)
        gains[6:8] *= 0.9
        s4 = int(rng.integers(18, 30))
        gains[s4:s4 + 4] *= 0.88
        out = run(light(truth, gains))
        ratio = means(out) / means(truth)
        rows["dip_worst_frame_pct"].append(float(100 * np.abs(ratio / np.median(ratio) - 1).max()))

        # an exposure step of 4-6 code values 2-6 frames from the shot's start or end (a printer light changed a
        # few frames late or early), over 1 % flicker: the short piece's error against the rest's, in the
        # step's direction (what is left of it), and the worst frame
        truth = pan(48, 9000 + seed)
        size, short = rng.uniform(4, 6) * rng.choice([-1.0, 1.0]), int(rng.integers(2, 7))
        head = bool(rng.random() < 0.5)
        piece = np.arange(48) < short if head else np.arange(48) >= 48 - short
        degraded = light(truth, 1.0 + 0.01 * rng.standard_normal(48), np.where(piece, size / 255, 0.0))
        error = (means(run(degraded)) - means(truth)) * 255
        rows["edge_step_shot_moved_code_values"].append(float(abs(np.median(error[~piece]))))
        error -= np.median(error[~piece])
        rows["edge_step_left_code_values"].append(float(error[piece].mean() * np.sign(size)))
        rows["edge_step_worst_frame_code_values"].append(float(np.abs(error).max()))

        # a dip or flash of 1-3 frames (8-12 %) on the shot's first or last frames, over 1 % flicker
        truth = pan(40, 9500 + seed)
        gains = 1.0 + 0.01 * rng.standard_normal(40)
        length, depth = int(rng.integers(1, 4)), rng.uniform(0.08, 0.12) * rng.choice([-1.0, 1.0])
        gains[slice(0, length) if rng.random() < 0.5 else slice(40 - length, 40)] *= 1.0 + depth
        ratio = means(run(light(truth, gains))) / means(truth)
        rows["edge_dip_worst_frame_pct"].append(float(100 * np.abs(ratio / np.median(ratio) - 1).max()))

        # a small exposure step (2-3 code values, either way) inside a 48-frame shot, over 1 % flicker
        truth = pan(48, 9800 + seed)
        size, at = rng.uniform(2, 3) * rng.choice([-1.0, 1.0]), int(rng.integers(14, 35))
        degraded = light(truth, 1.0 + 0.01 * rng.standard_normal(48), np.where(np.arange(48) >= at, size / 255, 0.0))
        error = (means(run(degraded)) - means(truth)) * 255
        error -= np.median(error[:at])
        rows["small_step_left_code_values"].append(float((error[at:at + 6].mean() - error[at - 6:at].mean())
                                                         * np.sign(size)))
        rows["small_step_worst_frame_code_values"].append(float(np.abs(error - np.median(error)).max()))

        left, worst = fade_step(seed, run, pan, light, means)
        rows["fade_step_left_pct"].append(left)
        rows["fade_step_worst_frame_pct"].append(worst)

    summary = {k: (float(np.mean(v)), float(np.std(v))) for k, v in rows.items()}
    print(f"code: {restoration.__file__}  seeds: {args.seeds}")
    for key, (mean, spread) in summary.items():
        print(f"  {key:32s} {mean:9.4f} ± {spread:.4f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"code": restoration.__file__, "rows": rows, "summary": summary}, handle, indent=1)
    return 0


def fade_step(seed, run, pan, light, means) -> tuple[float, float]:
    """A small exposure step (3-5 %, either way, at frame 14-34) inside a straight fade (in or out, 25-45 % over
    the 48-frame shot), over 1 % flicker (its own random stream, so the other figures keep theirs): what is left of
    the step in its direction, and the worst frame off the faded truth (both %, the output's level to the truth's)."""
    rng = np.random.default_rng(11000 + seed)
    depth, size = rng.uniform(0.25, 0.45), rng.uniform(0.03, 0.05) * rng.choice([-1.0, 1.0])
    at, n = int(rng.integers(14, 35)), 48
    fade = 1.0 - depth * np.arange(n) / (n - 1)
    fade = fade if rng.random() < 0.5 else fade[::-1]
    lit = light(pan(n, 11500 + seed), fade)
    gains = (1.0 + 0.01 * rng.standard_normal(n)) * np.where(np.arange(n) >= at, 1.0 + size, 1.0)
    ratio = means(run(light(lit, gains))) / means(lit)
    ratio /= np.median(ratio[:at])
    left = 100 * (ratio[at:at + 6].mean() - ratio[at - 6:at].mean()) * np.sign(size)
    return float(left), float(100 * np.abs(ratio / np.median(ratio) - 1).max())


def real_films(out: str) -> int:
    """Each real film through deflicker alone (shots detected): per-frame mean luma before and after, shots, the
    correction per frame and seconds per frame to OUT/<film>.json, and a few frames before|after to OUT/*.png."""
    from pathlib import Path

    import cv2

    from restoration.metrics import luma
    from restoration.pipeline import ArraySource, Pipeline, settings_for
    import restoration

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for film in ("rtn_test_data_1_002_f1000-1149", "rrtn_market_street", "rrtn_san_francisco"):
        paths = sorted((Path("/work/shared/data/archival") / film).glob("*.png"))
        frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0 for p in paths]
        pipeline = Pipeline(ArraySource(frames), settings_for(["deflicker"], {}))
        start = time.perf_counter()
        out_frames = [frame for _, frame in pipeline.frames()]
        seconds = (time.perf_counter() - start) / len(frames)
        shots = [(s.start, s.end) for s in pipeline.shots()]
        record = {"code": restoration.__file__, "seconds_per_frame": seconds, "shots": shots,
                  "before": [float(luma(f).mean()) for f in frames],
                  "after": [float(luma(f).mean()) for f in out_frames]}
        (folder / f"{film}.json").write_text(json.dumps(record))
        for k in np.linspace(0, len(frames) - 1, 4).round().astype(int):
            pair = np.concatenate([frames[k], out_frames[k]], axis=1)
            cv2.imwrite(str(folder / f"{film}_{k:03d}.png"),
                        cv2.cvtColor((np.clip(pair, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR))
        print(f"{film}: {len(frames)} frames, {seconds:.3f} s/frame, shots {shots}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A quick per-family check of the colour stage over many seeds and sources (faster than the full bench).

    python -m restoration.bench.color_families [--seeds 0-5] [--frames 3] [--peers] [--sources held-out]
                                               [--unfaded] [--general 0.5] [--grain 0.02] [--verbose]

For every fade family (restoration.synth.fades) and seed, the family is drawn on a clean source taken in turn,
the colour stage runs with its defaults, and ΔE2000 to the truth is measured (for the do-no-harm families the truth
is the input itself). `--grain` adds film grain of that strength (the simulator's model, new every frame) to the
faded frames, as a real faded print carries it; the truth stays grain-free. Prints mean, p95 and the spread over
seeds per family; `--unfaded` also measures the change on unfaded real colour material (Vid4, REDS4 and Set5/Set14
frames), which must be left alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from restoration.bench import corpus as C
from restoration.metrics import delta_e2000
from restoration.synth.fades import FADED, FAMILIES, fade_family

PARAMS: dict = {}
DEV_SOURCES = C.FAMILY_SOURCES
HELD_OUT = ("still:Set14/img_001", "still:Set14/img_005", "still:Set14/img_008", "still:Set5/bird",
            "still:Set5/butterfly", "still:Set14/img_013", "still:Set14/img_014", "still:Set5/woman")
UNFADED = ("city", "reds:000/00000050", "still:Set14/img_004", "still:Set14/img_009", "still:Set5/head",
           "still:Set14/img_010", "still:Set14/img_006")


def load(data: Path, source: str, frames: int) -> list[np.ndarray]:
    if source == "city":
        return C.load_city(data, frames, None)
    if source.startswith("reds:"):
        from restoration.io import read_image

        clip, first = source[5:].split("/")
        folder = data / "REDS4" / clip / "GT"
        if not folder.is_dir():
            folder = data / "REDS4" / clip / "LRx4"
        paths = sorted(folder.glob("*.png"))[:frames]
        return [read_image(p)[0] for p in paths]
    return [C.load_still(data, source[6:], None)] * frames


def add_grain(frames: list[np.ndarray], sigma: float, seed: int) -> list[np.ndarray]:
    """Faded frames with film grain of strength `sigma` laid on after the fade (DamageSettings' grain model)."""
    from restoration.synth import DamageSettings, film_sigma_curve, grain_field

    settings = DamageSettings()
    curve = film_sigma_curve(sigma, settings.grain_channel_weights, settings.grain_shadow_floor)
    rng = np.random.default_rng(seed)
    return [np.clip(f + grain_field(f.shape, f, curve, settings.grain_size, rng, settings.grain_channel_correlation),
                    0.0, 1.0).astype(np.float32) for f in frames]


def run_ours(frames: list[np.ndarray], params: dict | None = None) -> tuple[list[np.ndarray], dict]:
    return _stage(frames, {**PARAMS, **(params or {})})


def _stage(frames: list[np.ndarray], params: dict | None = None) -> tuple[list[np.ndarray], dict]:
    from restoration.stages import stage_class
    from restoration.stage import FrameWindow, Shot

    stage = stage_class("color")()
    resolved = stage.params.resolve(params or {})
    shot = Shot(0, len(frames))
    analysis = stage.analyze(enumerate(frames), shot, resolved)
    out, side = [], {}
    for i, frame in enumerate(frames):
        result = stage.process(FrameWindow([frame], [i], 0, i, shot), resolved, analysis)
        out.append(result.frame)
        side = result.side
    return out, side


def run_stretch(frames: list[np.ndarray]) -> list[np.ndarray]:
    from restoration.bench.peers import run_stretch as stretch

    return stretch(frames, {"clip_percent": 1.0})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-5")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--sources", choices=("dev", "held-out"), default="dev")
    parser.add_argument("--peers", action="store_true", help="also the percentile stretch")
    parser.add_argument("--unfaded", action="store_true", help="also unfaded real colour material")
    parser.add_argument("--grain", type=float, default=0.0, help="film grain on the faded frames (0.02: the demo's)")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--general", type=float, default=None, help="the stage's `general` (default: its default)")
    args = parser.parse_args(argv)
    if args.general is not None:
        PARAMS["general"] = args.general
    lo, _, hi = args.seeds.partition("-")
    seeds = range(int(lo), int(hi or lo) + 1)
    data = C.default_data_dir()
    sources = DEV_SOURCES if args.sources == "dev" else HELD_OUT
    cache: dict[str, list[np.ndarray]] = {}
    started = time.monotonic()
    for i, family in enumerate(args.families.split(",")):
        rows = {"input": [], "ours": [], "stretch": []}
        for k in seeds:
            source = sources[(i + k) % len(sources)]
            if source not in cache:
                cache[source] = load(data, source, args.frames)
            degraded, truth = fade_family(cache[source], family, 1000 + 7919 * k + i)
            if args.grain > 0:
                degraded = add_grain(degraded, args.grain, 500 + 7919 * k + i)
            degraded, truth = C._quantize(degraded), C._quantize(truth)
            out, side = run_ours(degraded)
            rows["input"].append(delta_e2000(np.stack(degraded), np.stack(truth)))
            rows["ours"].append(delta_e2000(np.stack(out), np.stack(truth)))
            if args.peers:
                rows["stretch"].append(delta_e2000(np.stack(run_stretch(degraded)), np.stack(truth)))
            if args.verbose:
                est = side.get("estimate", {})
                print(f"  {family} seed {k} {source}: in {rows['input'][-1][0]:.2f} ours {rows['ours'][-1][0]:.2f} "
                      f"conf {est.get('fade_confidence')}", flush=True)
        kind = "fade" if family in FADED else "no-harm"
        line = f"{family:8s} {kind:7s}"
        for name, values in rows.items():
            if values:
                means = np.array([v[0] for v in values])
                p95 = np.array([v[1] for v in values])
                line += (f" | {name} mean {means.mean():5.2f} p95 {p95.mean():5.2f} "
                         f"(seeds {means.min():.2f}-{means.max():.2f}, sd {means.std():.2f})")
        print(line, flush=True)
    if args.unfaded:
        for source in UNFADED:
            try:
                frames = C._quantize(load(data, source, args.frames))
            except Exception as error:  # a missing folder is reported, not fatal
                print(f"unfaded {source}: skipped ({error})")
                continue
            out, side = run_ours(frames)
            mean, p95 = delta_e2000(np.stack(out), np.stack(frames))
            est = side.get("estimate", {})
            print(f"unfaded {source:24s} change mean {mean:.2f} p95 {p95:.2f} fade_found {est.get('fade_found')} "
                  f"conf {est.get('fade_confidence')}", flush=True)
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0



if __name__ == "__main__":
    raise SystemExit(main())

"""A learned fade estimate, tried in session 7 and not used by the colour stage (it did not generalise).

    python -m restoration.bench.color_learned train --out W.npz [--exclude FAMILY] [--samples 6000]
    python -m restoration.bench.color_learned evaluate W.npz [--sources held-out] [--seeds 0-5]

Any monotonic per-layer fade keeps each layer's pixel ranks, so a layer's correction is fixed by where the
original's quantiles were: a small network (two tanh layers of 64) reads the shot's per-layer quantiles and
neutral extremes after the dye model's correction and predicts each layer's original quantiles; the curve through
(quantile now -> predicted original quantile) is applied on top of the dye model. Trained on the fade simulator
(restoration/synth/fades.py) over pictures that are neither the bench's held-out sources nor its unfaded checks
(random crops and flips). On its training pictures it cut levels 9.9 -> 6.4 and scanner 11.8 -> 8.8; on the
held-out sources it did not beat the dye model (bench/notes/color.md, session 7): fourteen pictures are too few
a prior for what an original's histograms look like.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from restoration.bench import corpus as C
from restoration.stages.color.axis import joint_extremes
from restoration.synth.fades import FADED, MAKERS, fade_family
from restoration.stages.color.fade import (FadeEstimate, FadeModel, apply_curves, correction_curves, curve_values,
                                           density, downscale, estimate_fade)

QUANTILES = np.array([0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 35.0, 50.0, 65.0, 80.0, 90.0, 95.0, 97.5, 99.0, 99.5])
SAMPLE = 20_000          # pooled pixels enough for the quantiles (every k-th of the shot's sample)
MIN_STEP = 1e-4          # predicted original quantiles are kept at least this far apart (a strictly rising curve)


def shot_features(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features, per-layer faded quantiles (3, Q)) of pooled code values (N, 3)."""
    pixels = np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0)
    pixels = pixels[:: max(1, len(pixels) // SAMPLE)]
    quantiles = np.percentile(pixels, QUANTILES, axis=0).T.astype(np.float64)          # (3, Q)
    black, white = joint_extremes(pixels)
    spread = np.std(pixels, axis=0)
    grey = pixels.mean(axis=1, keepdims=True)
    chroma = np.mean(pixels - grey, axis=0)
    features = np.concatenate([quantiles.ravel(), np.sqrt(quantiles.ravel()), black, white, spread, chroma])
    return features, quantiles


@dataclass(frozen=True)
class Network:
    """A two-hidden-layer perceptron with input and output standardisation (weights from the .npz)."""

    arrays: dict

    def __call__(self, x: np.ndarray) -> np.ndarray:
        a = self.arrays
        h = (np.atleast_2d(x) - a["x_mean"]) / a["x_std"]
        h = np.tanh(h @ a["w0"] + a["b0"])
        h = np.tanh(h @ a["w1"] + a["b1"])
        return (h @ a["w2"] + a["b2"]) * a["y_std"] + a["y_mean"]


@lru_cache(maxsize=4)
def load_network(path: str) -> Network:
    with np.load(path) as data:
        return Network({k: data[k].astype(np.float64) for k in data.files})


@dataclass
class LearnedEstimate:
    """Per-layer knots: faded code values (3, Q) and the original code values the network puts there."""

    faded: np.ndarray
    original: np.ndarray

    def curves(self, steps: int) -> np.ndarray:
        """Correction curves (3, steps + 1): restored code values at inputs 0, 1/steps, ..., 1."""
        v = np.linspace(0.0, 1.0, steps + 1)
        out = np.empty((3, steps + 1), dtype=np.float32)
        for c in range(3):
            x, y = _knots(self.faded[c], self.original[c])
            out[c] = np.interp(v, x, y)
        return out

    def to_dict(self) -> dict:
        return {"faded": np.round(self.faded, 4).tolist(), "original": np.round(self.original, 4).tolist()}


def _knots(faded: np.ndarray, original: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strictly rising knots from 0 -> 0 through the quantile pairs to 1 -> at least the top knot's value."""
    x = np.maximum.accumulate(np.clip(faded, 0.0, 1.0))
    y = np.maximum.accumulate(np.clip(original, 0.0, 1.0))
    keep = np.concatenate([[True], np.diff(x) > MIN_STEP])      # ties in the faded values (flat histograms)
    x, y = x[keep], y[keep]
    y = y + MIN_STEP * np.arange(len(y))                         # strictly rising outputs
    top = max(float(y[-1]) + (1.0 - float(x[-1])), float(y[-1]))
    xs = np.concatenate([[0.0], x, [1.0]]) if x[-1] < 1.0 else np.concatenate([[0.0], x])
    ys = np.concatenate([[0.0], y, [min(top, 1.0)]]) if x[-1] < 1.0 else np.concatenate([[0.0], y])
    if xs[1] <= 0.0:                                              # a quantile at code 0 already
        xs, ys = xs[1:], ys[1:]
    return xs, np.clip(ys, 0.0, 1.0)


def dye_weighted(estimate: FadeEstimate) -> FadeModel:
    """The dye model as the stage applies it at strength 1: scaled towards no change by its confidence."""
    w = estimate.confidence
    return FadeModel(tuple(1.0 + w * (estimate.model.scale_array - 1.0)), tuple(w * estimate.model.offset_array))


def dye_corrected(pixels: np.ndarray, estimate: FadeEstimate | None = None) -> np.ndarray:
    """Pooled code values (N, 3) after the dye model's correction: what the network reads."""
    pixels = np.asarray(pixels, dtype=np.float32)
    if estimate is None:
        estimate = estimate_fade(density(pixels))
    return curve_values(pixels, correction_curves(dye_weighted(estimate), 4096))


def estimate_learned(pixels: np.ndarray, network: Network) -> LearnedEstimate:
    """Per-layer curves for pooled code values (N, 3) that the dye model has already corrected."""
    features, quantiles = shot_features(pixels)
    residual = network(features)[0].reshape(3, -1)
    return LearnedEstimate(quantiles, quantiles + residual)


# --------------------------------------------------------------------------------------------------------------
# training

TRAINING_STILLS = ("Set14/img_012", "Set5/baby", "Set14/img_011", "Set14/img_007", "Set14/img_002",
                   "Set14/img_003")
TRAINING_OTHERS = ("realworld/realesrgan_inputs/0014.jpg", "realworld/realesrgan_inputs/0030.jpg",
                   "realworld/realesrgan_inputs/ADE_val_00000114.jpg", "realworld/realesrgan_inputs/OST_009.png",
                   "realworld/realesrgan_inputs/00003.png")
CITY_FRAMES = (0, 16, 32)
SEED_BASE = 10_000_000   # far from the bench's family seeds (1000 + 7919 k + i)


def training_pictures(data: Path) -> list[np.ndarray]:
    import cv2

    pictures = [C.load_still(data, ref, None) for ref in TRAINING_STILLS]
    for name in TRAINING_OTHERS:
        image = cv2.imread(str(data / name), cv2.IMREAD_COLOR)
        pictures.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    city = C.load_city(data, max(CITY_FRAMES) + 1, None)
    pictures += [city[i] for i in CITY_FRAMES]
    return pictures


def samples(pictures: list[np.ndarray], families: tuple[str, ...], count: int, seed: int = 0):
    """(features (count, F), targets (count, 3 Q)): faded pictures' features and original - faded quantiles."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for n in range(count):
        picture = pictures[rng.integers(len(pictures))]
        h, w = picture.shape[:2]
        share = rng.uniform(0.35, 1.0)
        ch, cw = max(16, int(h * np.sqrt(share))), max(16, int(w * np.sqrt(share)))
        y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = picture[y0:y0 + ch, x0:x0 + cw]
        if rng.uniform() < 0.5:
            crop = crop[:, ::-1]
        crop = downscale(np.ascontiguousarray(crop), SAMPLE).reshape(-1, 3).astype(np.float64)
        family = families[rng.integers(len(families))]
        fade = MAKERS[family](np.random.default_rng(SEED_BASE + n + 1_000_000 * seed))
        faded = np.clip(fade(crop, rng.uniform(0.85, 1.15)), 0.0, 1.0).astype(np.float32)
        features, quantiles = shot_features(dye_corrected(faded))
        original = np.percentile(crop, QUANTILES, axis=0).T
        xs.append(features)
        ys.append((original - quantiles).ravel())
    return np.asarray(xs), np.asarray(ys)


def train(x: np.ndarray, y: np.ndarray, hidden: int = 64, steps: int = 4000, seed: int = 0) -> dict:
    import torch

    torch.manual_seed(seed)
    x_mean, x_std = x.mean(0), x.std(0) + 1e-6
    y_mean, y_std = y.mean(0), y.std(0) + 1e-6
    xt = torch.tensor((x - x_mean) / x_std, dtype=torch.float32)
    yt = torch.tensor((y - y_mean) / y_std, dtype=torch.float32)
    scale = torch.tensor(y_std, dtype=torch.float32)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, hidden),
                              torch.nn.Tanh(), torch.nn.Linear(hidden, y.shape[1]))
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    for step in range(steps):
        batch = torch.randint(0, len(xt), (512,))
        loss = (((net(xt[batch]) - yt[batch]) * scale) ** 2).mean()   # squared error in code values
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step == steps // 2:
            for group in optimiser.param_groups:
                group["lr"] = 5e-4
    layers = [m for m in net if isinstance(m, torch.nn.Linear)]
    arrays = {f"w{i}": m.weight.detach().numpy().T.astype(np.float32) for i, m in enumerate(layers)}
    arrays.update({f"b{i}": m.bias.detach().numpy().astype(np.float32) for i, m in enumerate(layers)})
    arrays.update(x_mean=x_mean.astype(np.float32), x_std=x_std.astype(np.float32),
                  y_mean=y_mean.astype(np.float32), y_std=y_std.astype(np.float32))
    return arrays



# --------------------------------------------------------------------------------------------------------------
# evaluation


def learned_correction(frames: list[np.ndarray], network: Network) -> list[np.ndarray]:
    """The colour stage's output with the learned curves on top where it found a fade (else the stage's output)."""
    from restoration.bench.color_families import run_ours

    out, side = run_ours(frames)
    if not side["estimate"]["fade_found"]:
        return out
    pixels = np.concatenate([downscale(f, SAMPLE).reshape(-1, 3) for f in frames])
    curves = estimate_learned(dye_corrected(pixels), network).curves(4096)
    return [apply_curves(f, curves) for f in out]


def evaluate(weights: Path, sources: str, seeds: range, frames: int) -> None:
    from restoration.bench.color_families import DEV_SOURCES, HELD_OUT, load, run_ours
    from restoration.metrics import delta_e2000

    network = load_network(str(weights))
    data = C.default_data_dir()
    pool = DEV_SOURCES if sources == "dev" else HELD_OUT
    cache: dict[str, list[np.ndarray]] = {}
    for i, family in enumerate(FADED):
        rows: dict[str, list[float]] = {"stage": [], "learned": []}
        for k in seeds:
            source = pool[(i + k) % len(pool)]
            cache[source] = cache.get(source) or load(data, source, frames)
            degraded, truth = fade_family(cache[source], family, 1000 + 7919 * k + i)
            degraded, truth = C._quantize(degraded), C._quantize(truth)
            rows["stage"].append(delta_e2000(np.stack(run_ours(degraded)[0]), np.stack(truth))[0])
            rows["learned"].append(delta_e2000(np.stack(learned_correction(degraded, network)), np.stack(truth))[0])
        print(f"{family:8s} " + " | ".join(f"{name} {np.mean(v):5.2f} ± {np.std(v):4.2f}" for name, v in rows.items()),
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train_cmd = commands.add_parser("train")
    train_cmd.add_argument("--out", type=Path, required=True)
    train_cmd.add_argument("--exclude", default="", help="a fade family left out of training")
    train_cmd.add_argument("--samples", type=int, default=6000)
    train_cmd.add_argument("--seed", type=int, default=0)
    eval_cmd = commands.add_parser("evaluate")
    eval_cmd.add_argument("weights", type=Path)
    eval_cmd.add_argument("--sources", choices=("dev", "held-out"), default="held-out")
    eval_cmd.add_argument("--seeds", default="0-5")
    eval_cmd.add_argument("--frames", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "evaluate":
        lo, _, hi = args.seeds.partition("-")
        evaluate(args.weights, args.sources, range(int(lo), int(hi or lo) + 1), args.frames)
        return 0
    families = tuple(f for f in FADED if f != args.exclude)
    started = time.monotonic()
    pictures = training_pictures(C.default_data_dir())
    x, y = samples(pictures, families, args.samples, args.seed)
    np.savez_compressed(args.out, **train(x, y, seed=args.seed))
    print(f"trained on {len(pictures)} pictures, {args.samples} samples of {', '.join(families)}: {args.out} "
          f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

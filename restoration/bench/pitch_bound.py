"""What any stabilizer can keep of the simulated pitch (a held camera's dip and back, with a splice jump) from the
picture's motion alone (issue 20).

    python -m restoration.bench.pitch_bound [--draws 200] [--frames 48]

Draws the simulator's own pitch paths, gate weave and splice jumps as motion_clip draws them (no tracking error) and
scores, with weave_figures' jitter, path RMS and jolt figures: the stage's own camera model (jolts found and left
out, as the stage does); the best linear estimator given the true second-order statistics of the pitch and the weave
(an oracle: the Gaussian process posterior mean, the jump frames known and left out, dx given as held); and a
shape oracle that knows each dip's start, length and sin^2 shape and fits only its depth and the held level.
"""

from __future__ import annotations

import argparse

import numpy as np

from restoration.bench.vehicle_bound import figures
from restoration.bench.weave_figures import synth_module


def draw(motion, n: int, rng: np.random.Generator, sigma: float = 0.8):
    """(camera (n, 2), weave with the jump (n, 2), jump frames, dip start, dip length) as motion_clip draws them."""
    state = rng.bit_generator.state
    camera = motion.camera_path("pitch", n, rng)
    after = rng.bit_generator.state
    rng.bit_generator.state = state  # the dip's own draws again, to know its start and length
    rng.uniform(4.0, 9.0), rng.choice([-1.0, 1.0])
    length = rng.uniform(16, 28)
    start = rng.uniform(4, n - length - 4)
    rng.bit_generator.state = after
    weave = motion.ar1_weave(n, sigma, rng)
    at, count = int(rng.integers(8, n - 12)), int(rng.integers(1, 4))
    weave[at:at + count, int(rng.integers(0, 2))] += rng.uniform(10, 25) * rng.choice([-1.0, 1.0])
    return camera, weave, list(range(at, at + count)), start, length


def scores(estimate: np.ndarray, truth: np.ndarray, jolts: list[list[int]]) -> tuple[float, float, float]:
    """Mean jitter, path RMS and jolt (the error at the jump frames) over draws."""
    path, jitter = figures(estimate, truth)
    error = estimate - truth
    error -= np.median(error, axis=1, keepdims=True)
    distance = np.hypot(error[..., 0], error[..., 1])
    return jitter, path, float(np.mean([distance[d, j].max() for d, j in enumerate(jolts)]))


def main(argv: list[str] | None = None) -> int:
    from restoration.stages.stabilize.weave import _gls_fit, find_jolts, intended_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args(argv)
    n = args.frames
    motion = synth_module("motion")
    rng = np.random.default_rng(1)
    train = np.stack([motion.camera_path("pitch", n, rng)[:, 1] for _ in range(20000)])
    weave_y = np.stack([motion.ar1_weave(n, 0.8, rng)[:, 1] for _ in range(20000)])
    cov_path = train.T @ train / len(train) + 1e2  # + an unknown offset: the figures take it out
    cov_weave = np.cov(weave_y.T)
    rng = np.random.default_rng(2)
    t = np.arange(n, dtype=np.float64)
    truths, ours, linear, shaped, jolts = [], [], [], [], []
    for _ in range(args.draws):
        camera, weave, jump, start, length = draw(motion, n, rng)
        measured = np.zeros((n, 4))
        measured[:, :2] = camera + weave
        found = find_jolts(measured)
        ours.append(intended_path(measured, 0.35, measured=~found)[0][:, :2])
        keep = np.ones(n, bool)
        keep[jump] = False
        y = measured[:, 1]
        estimate = np.zeros((n, 2))
        estimate[:, 1] = cov_path[:, keep] @ np.linalg.solve((cov_path + cov_weave)[np.ix_(keep, keep)], y[keep])
        linear.append(estimate)
        inside = (t >= start) & (t <= start + length)
        shape = np.where(inside, np.sin(np.pi * (t - start) / length) ** 2, 0.0)
        design = np.stack([np.ones(n), shape], 1)
        coef, _ = _gls_fit(design[keep], y[keep], np.ones(keep.sum()))
        estimate = np.zeros((n, 2))
        estimate[:, 1] = design @ coef
        shaped.append(estimate)
        truths.append(camera)
        jolts.append(jump)
    truth = np.stack(truths)
    print(f"pitch, {n} frames, {args.draws} draws: jitter px, path RMS px, jolt px (means over draws)")
    for name, estimate in (("the stage's camera model", ours),
                           ("oracle best linear estimator (true statistics, jump frames known, dx held)", linear),
                           ("shape oracle (each dip's start, length and sin^2 shape known)", shaped)):
        print(f"{name}: jitter %.3f, path %.3f, jolt %.3f" % scores(np.stack(estimate), truth, jolts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

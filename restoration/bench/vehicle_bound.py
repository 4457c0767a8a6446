"""What any stabilizer can keep of the simulated vehicle sway from the picture's motion alone (issue 20).

    python -m restoration.bench.vehicle_bound [--draws 400] [--frames 48]

Draws the simulator's own vehicle camera paths and gate weave (restoration/synth/motion.py) and scores, on the path
alone (no tracking error), the best linear estimator given the true second-order statistics of both (the Gaussian
process posterior mean, an oracle: no method knows these statistics better), and AR(1)-aware smoothers of the
second and third differences at their best strength, with the figures of weave_figures (jitter, path RMS).
"""

from __future__ import annotations

import argparse

import numpy as np

from restoration.bench.weave_figures import synth_module


def draws(count: int, frames: int, seed: int, sigma: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """(count, frames, 2) true camera paths and weave, drawn as motion_clip draws them."""
    motion = synth_module("motion")
    rng = np.random.default_rng(seed)
    paths = np.stack([motion.camera_path("vehicle", frames, rng) for _ in range(count)])
    weave = np.stack([motion.ar1_weave(frames, sigma, rng) for _ in range(count)])
    return paths, weave


def figures(estimate: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mean over draws of weave_figures' jitter and path RMS (the error's median taken out)."""
    error = estimate - truth
    error -= np.median(error, axis=1, keepdims=True)
    path = np.sqrt(np.mean(np.sum(error ** 2, axis=2), axis=1))
    jitter = np.sqrt(np.mean(np.sum(np.diff(error, axis=1) ** 2, axis=2), axis=1))
    return float(path.mean()), float(jitter.mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=400)
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args(argv)
    n = args.frames
    # second-order statistics from many draws (per axis, centred over draws: the phases are uniform)
    train_path, train_weave = draws(20000, n, seed=1)
    cov_path_x = np.cov(train_path[..., 0].T) + 1e2  # + an unknown offset: the figures take it out
    cov_path_y = np.cov(train_path[..., 1].T) + 1e2
    cov_weave = sum(np.cov(train_weave[..., a].T) for a in range(2)) / 2
    paths, weave = draws(args.draws, n, seed=2)
    measured = paths + weave
    gp = np.empty_like(measured)
    for axis, cov in ((0, cov_path_x), (1, cov_path_y)):
        gain = cov @ np.linalg.inv(cov + cov_weave)
        gp[..., axis] = measured[..., axis] @ gain.T
    print(f"vehicle sway, {n} frames, {args.draws} draws: path RMS px, jitter px (means over draws)")
    print("oracle best linear estimator (true statistics): path %.3f, jitter %.3f" % figures(gp, paths))
    inverse_weave = np.linalg.inv(cov_weave)
    for order in (2, 3):
        diff = np.diff(np.eye(n), order, axis=0)
        best = min(
            (figures(np.einsum("ij,djk->dik", np.linalg.solve(inverse_weave + lam * diff.T @ diff, inverse_weave),
                              measured), paths), lam)
            for lam in (1, 3, 10, 30, 100, 300, 1000))
        print(f"AR(1)-aware smoother of difference order {order}, best strength {best[1]}: "
              f"path %.3f, jitter %.3f" % best[0])
    print("measured path itself: path %.3f, jitter %.3f" % figures(measured, paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Camera moves, gate weave, jolts, step printing and black bars with exact ground truth (issue 20's clip kinds).

A view of `size` moves over a still picture along the true camera path (what a stabilizer must keep: held, an
accelerating tilt, a vehicle's sway, or a held camera that pitches down and back once); the gate weave
(AR(1), removed), jolts and splice jumps (1-3 frames displaced 10-25 px and back, removed) displace the picture in
the frame on top of it. Step printing repeats some pictures exactly (the same print frame, grain and weave included);
pillarbox bars and a rounded gate (dark sides with rounded corners and a soft edge, as the scanner's gate on the real
films, which stays put while the picture weaves) are burnt in after the weave. Every draw comes from `seed`.
Translation only: the weave's small rotation is left out, so the truth is a shift per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

KINDS = ("locked", "accelerating", "vehicle", "jolt", "step_printed", "pillarbox", "rounded_gate", "pitch")
MARGIN = 48  # px of picture around the view's travel


@dataclass
class MotionClip:
    kind: str
    seed: int
    frames: list[np.ndarray]           # float32 RGB: what the stabilizer is given
    truth: list[np.ndarray]            # the frames without weave and jolts (bars included): the camera path kept
    camera: np.ndarray                 # (n, 2) true camera position (px) of each frame
    weave: np.ndarray                  # (n, 2) displacement of the picture in the frame (weave + jolts), px
    jolts: list[int] = field(default_factory=list)
    repeats: dict[int, int] = field(default_factory=dict)  # repeat -> original
    bars: int = 0                      # px of black bar on the left and right
    gate: tuple[int, int] = (0, 0)     # rounded gate: px of dark border on every side, radius of its corners


def ar1_weave(n: int, sigma: float, rng: np.random.Generator, rho: float = 0.6) -> np.ndarray:
    track = np.zeros((n, 2))
    state = rng.normal(size=2)
    for t in range(n):
        state = rho * state + np.sqrt(1 - rho * rho) * rng.normal(size=2) if t else state
        track[t] = state
    return np.clip(track, -3, 3) * sigma


def camera_path(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    path = np.zeros((n, 2))
    if kind == "accelerating":  # a tilt (or pan) speeding up from v0 to 2 v0 over the shot
        v0 = rng.uniform(0.45, 0.65)
        axis = int(rng.integers(0, 2))
        path[:, axis] = v0 * t + v0 * t ** 2 / (2 * (n - 1))
    elif kind == "vehicle":  # a vehicle's sway, intended: slow, several px
        for axis in range(2):
            for _ in range(2):
                amplitude, period = rng.uniform(2.0, 4.0), rng.uniform(18, 40)
                path[:, axis] += amplitude * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        path[:, 0] += rng.uniform(-0.4, 0.4) * t
    elif kind == "pitch":  # a held camera that dips and comes back once (a vehicle pitching), intended: kept
        depth, length = rng.uniform(4.0, 9.0) * rng.choice([-1.0, 1.0]), rng.uniform(16, 28)
        start = rng.uniform(4, n - length - 4)
        inside = (t >= start) & (t <= start + length)
        path[inside, 1] = depth * np.sin(np.pi * (t[inside] - start) / length) ** 2
    return path


def motion_clip(picture: np.ndarray, kind: str, seed: int, n: int = 48, size: tuple[int, int] = (256, 192),
                weave_sigma: float = 0.8, grain: float = 0.008) -> MotionClip:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    rng = np.random.default_rng(seed * 1009 + KINDS.index(kind))
    width, height = size
    # unique pictures: step printing shows some twice (pattern maps frame -> picture)
    pattern = list(range(n))
    if kind == "step_printed":
        pattern, p = [], 0
        while len(pattern) < n:
            pattern += [p, p] if rng.random() < 0.5 else [p]
            p += 1
        pattern = pattern[:n]
    pictures = max(pattern) + 1
    camera = camera_path(kind, pictures, rng)
    weave = ar1_weave(pictures, weave_sigma, rng)
    jolts: list[int] = []
    # the rounded gate's splice jump is corrected by 10-25 px: fill by its corners; a pitching shot has one too
    if kind in ("jolt", "rounded_gate", "pitch"):
        start, length = int(rng.integers(8, pictures - 12)), int(rng.integers(1, 4))
        jump = rng.uniform(10, 25) * rng.choice([-1.0, 1.0])
        weave[start:start + length, int(rng.integers(0, 2))] += jump
        jolts = list(range(start, start + length))
    need_w, need_h = width + 2 * MARGIN, height + 2 * MARGIN + int(np.ptp(camera[:, 1]))
    need_w += int(np.ptp(camera[:, 0]))
    reps = (int(np.ceil(need_h / picture.shape[0])), int(np.ceil(need_w / picture.shape[1])), 1)
    canvas = np.tile(picture, reps)[:need_h, :need_w].astype(np.float64)
    origin = np.array([MARGIN - camera[:, 0].min(), MARGIN - camera[:, 1].min()])
    coefficients = [ndimage.spline_filter(canvas[..., c], order=3) for c in range(3)]
    bars = int(rng.integers(10, 18)) if kind == "pillarbox" else 0
    gate = (int(rng.integers(4, 9)), int(rng.integers(14, 29))) if kind == "rounded_gate" else (0, 0)
    picture_alpha = rounded_gate(width, height, *gate) if kind == "rounded_gate" else None

    def crop_at(position: np.ndarray) -> np.ndarray:
        """The view whose top-left sits at `position` in the canvas (exact cubic-spline sub-pixel sampling)."""
        whole = np.floor(position).astype(int)
        part = position - whole
        x0, y0 = int(whole[0]), int(whole[1])
        block = [c[y0:y0 + height + 8, x0:x0 + width + 8] for c in coefficients]
        out = np.stack([ndimage.shift(b, (-part[1], -part[0]), order=3, prefilter=False, mode="nearest")
                        [:height, :width] for b in block], axis=2)
        return out.astype(np.float32)

    truth_pictures, woven = [], []
    for p in range(pictures):
        position = origin + camera[p]
        clean = crop_at(position)
        moved = crop_at(position - weave[p])  # the picture displaced by +weave in the frame
        noise = rng.normal(0, grain, moved.shape).astype(np.float32)
        frame = np.clip(moved + noise, 0, 1)
        clean = np.clip(clean, 0, 1)
        if bars:
            frame[:, :bars] = frame[:, -bars:] = 0.02
            clean[:, :bars] = clean[:, -bars:] = 0.02
        if picture_alpha is not None:
            frame = frame * picture_alpha + 0.02 * (1 - picture_alpha)
            clean = clean * picture_alpha + 0.02 * (1 - picture_alpha)
        truth_pictures.append(clean)
        woven.append(frame.astype(np.float32))
    frames = [woven[p].copy() for p in pattern]
    truth = [truth_pictures[p] for p in pattern]
    first_frame = {p: pattern.index(p) for p in set(pattern)}
    repeats = {i: first_frame[pattern[i]] for i in range(n) if first_frame[pattern[i]] != i}
    return MotionClip(kind, seed, frames, truth, camera[pattern], weave[pattern],
                      [i for i in range(n) if pattern[i] in jolts], repeats, bars, gate)


def rounded_gate(width: int, height: int, band: int, radius: int, softness: float = 1.0) -> np.ndarray:
    """(height, width, 1) share of picture: 0 on a `band` px border and beyond its corners' arcs of `radius`, with a
    soft (Gaussian) edge and a shading that fades out inward over a few px."""
    xs, ys = np.arange(width)[None, :] + 0.5, np.arange(height)[:, None] + 0.5
    # distance inward from the nearest side of the picture rectangle, and beyond the corner arcs
    inward = np.minimum(np.minimum(xs - band, width - band - xs), np.minimum(ys - band, height - band - ys))
    du = np.maximum(band + radius - np.minimum(xs, width - xs), 0)
    dv = np.maximum(band + radius - np.minimum(ys, height - ys), 0)
    arc = radius - np.hypot(du, dv)
    inside = np.minimum(inward, np.where((du > 0) & (dv > 0), arc, np.inf))
    hard = (inside > 0).astype(np.float64)
    # the gate's shading fades out inward over a few px (a scanner's soft edge)
    shading = 1.0 - 0.35 * np.exp(-np.maximum(inside, 0) / 4.0)
    return (ndimage.gaussian_filter(hard, softness) * shading)[..., None].astype(np.float32)

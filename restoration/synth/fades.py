"""Fade families for the colour benchmark: many ways a print or its scan loses colour, each drawn per seed.

Every family returns the degraded frames and the ground truth; for the do-no-harm families ('clean', 'toned')
the truth is the input itself, so any change the colour stage makes counts as harm. A fade drifts linearly along
the clip (uneven fading across the reel).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .tone import DISPLAY_GAMMA, PRINT_DMAX

FAMILIES = ("dye", "levels", "magenta", "scanner", "clean", "toned")
FADED = ("dye", "levels", "magenta", "scanner")
DRIFT = 0.15   # relative change of a fade's strength across the clip


def _density(frame: np.ndarray) -> np.ndarray:
    t = np.power(np.clip(frame, 0.0, 1.0), DISPLAY_GAMMA)
    return -np.log10(np.maximum(t, 10.0 ** -PRINT_DMAX))


def _code(density: np.ndarray) -> np.ndarray:
    return np.power(10.0, -density / DISPLAY_GAMMA)


def _dye(rng: np.random.Generator) -> Callable[[np.ndarray, float], np.ndarray]:
    """Density dye loss at a random strength and per-layer rates (cyan and yellow fast, magenta slow), plus fog."""
    strength = rng.uniform(0.3, 0.95)
    loss = np.array([rng.uniform(0.35, 0.7), rng.uniform(0.0, 0.2), rng.uniform(0.45, 0.8)])
    fog = rng.uniform(0.0, 0.06, 3)

    def fade(frame, drift):
        s = strength * drift
        return _code(_density(frame) * (1.0 - s * loss) + s * fog)
    return fade


def _levels(rng: np.random.Generator) -> Callable[[np.ndarray, float], np.ndarray]:
    """Per-channel power, gain and offset in code values (lifted blacks, squashed range), then layer crosstalk."""
    black = np.array([rng.uniform(0.06, 0.2), rng.uniform(0.02, 0.08), rng.uniform(0.06, 0.22)])
    white = np.array([rng.uniform(0.9, 1.0), rng.uniform(0.8, 0.95), rng.uniform(0.75, 0.92)])
    power = rng.uniform(0.75, 1.25, 3)
    mix = np.eye(3) + rng.uniform(0.0, 0.08, (3, 3)) * (1 - np.eye(3))
    mix /= mix.sum(axis=1, keepdims=True)

    def fade(frame, drift):
        lifted = (black * drift) + (white - black * drift) * np.power(np.clip(frame, 0, 1), power)
        return lifted @ mix.T
    return fade


def _magenta(rng: np.random.Generator) -> Callable[[np.ndarray, float], np.ndarray]:
    """Eastmancolor's magenta shift: cyan and yellow dye nearly gone, magenta kept, its blue absorption left over."""
    loss = np.array([rng.uniform(0.55, 0.85), rng.uniform(0.0, 0.1), rng.uniform(0.55, 0.85)])
    leak = rng.uniform(0.05, 0.2)      # magenta dye's unwanted blue density
    fog = rng.uniform(0.0, 0.05, 3)

    def fade(frame, drift):
        d = _density(frame)
        faded = d * (1.0 - drift * loss)
        faded[..., 2] += drift * leak * d[..., 1]
        return _code(faded + drift * fog)
    return fade


def _scanner(rng: np.random.Generator) -> Callable[[np.ndarray, float], np.ndarray]:
    """A dye fade seen through the scanner's own curve: a gamma, or a log (density-linear) curve blended in."""
    dye = _dye(rng)
    if rng.uniform() < 0.5:
        gamma = rng.uniform(0.7, 1.35)

        def curve(v):
            return np.power(v, gamma)
    else:
        blend = rng.uniform(0.3, 0.7)

        def curve(v):
            log = 1.0 - _density(v) / PRINT_DMAX
            return (1.0 - blend) * v + blend * log

    def fade(frame, drift):
        return curve(np.clip(dye(frame, drift), 0.0, 1.0))
    return fade


def _clean(rng: np.random.Generator) -> Callable[[np.ndarray, float], np.ndarray]:
    """No fade: the picture as graded, either neutral or with a deliberate warm or cold grade (the truth itself)."""
    kind = rng.integers(0, 3)
    if kind == 0:
        return lambda frame, drift: frame
    warmth = rng.uniform(0.04, 0.1) * (1 if kind == 1 else -1)
    gains = np.array([1.0 + warmth, 1.0, 1.0 - warmth])
    return lambda frame, drift: np.clip(frame * gains, 0.0, 1.0)


def _toned(rng: np.random.Generator) -> Callable[[np.ndarray, float], np.ndarray]:
    """Black-and-white, toned (sepia, selenium, blue) or tinted (a dye wash over the base)."""
    tones = {"sepia": (1.0, 0.85, 0.65), "selenium": (0.95, 0.88, 0.9), "blue": (0.7, 0.85, 1.0),
             "amber-tint": (1.0, 0.8, 0.45), "grey": (1.0, 1.0, 1.0)}
    name = list(tones)[rng.integers(0, len(tones))]
    tint = np.array(tones[name]) * rng.uniform(0.95, 1.0)

    def tone(frame, drift):
        grey = frame @ np.array([0.2126, 0.7152, 0.0722])
        if name.endswith("tint"):       # a tint colours the clear base: highlights take the colour
            return grey[..., None] * tint
        toned = np.power(grey[..., None], 1.0 / np.maximum(tint, 1e-3))   # toning shifts the mid-tones
        return toned
    return tone


MAKERS = {"dye": _dye, "levels": _levels, "magenta": _magenta, "scanner": _scanner, "clean": _clean,
          "toned": _toned}


def fade_family(frames: Sequence[np.ndarray], family: str, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(degraded, truth) of `frames` faded (or left, for the do-no-harm families) by `family` drawn with `seed`."""
    if family not in MAKERS:
        raise ValueError(f"unknown fade family {family!r} (one of {', '.join(FAMILIES)})")
    rng = np.random.default_rng(seed)
    fade = MAKERS[family](rng)
    ends = rng.uniform(1.0 - DRIFT, 1.0 + DRIFT, 2) if family in FADED else np.ones(2)
    n = len(frames)
    degraded, truth = [], []
    for t, frame in enumerate(frames):
        drift = ends[0] + (ends[1] - ends[0]) * (t / max(n - 1, 1))
        out = np.clip(fade(np.asarray(frame, dtype=np.float64), drift), 0.0, 1.0)
        out = out.astype(np.float32)
        degraded.append(out)
        truth.append(out.copy() if family in ("clean", "toned") else np.clip(frame, 0, 1).astype(np.float32))
    return degraded, truth

"""The general fade estimate: each layer's neutral black, white and tone curve, found from the picture itself.

It assumes no one fade model. Whatever happened to a print or its scan (dye loss in density, lifted blacks and a
squashed range per channel, a scanner's curve on top), each layer went through its own monotonic curve, and the
original's neutrals (R = G = B) went to a 1-D neutral axis of the faded picture. The estimate, in density:

- the neutral black and white: the pixels darkest (brightest) in every layer at once, chosen by per-layer rank,
  which no monotonic fade changes; their per-layer medians are the layer's black and white points;
- each layer's tone curve between them: its density normalised between its white and black, bent by
  f(x) = x + bend * x * (1 - x), with the bends fitted (relative to the magenta layer, G) on pixels the estimate
  makes near-grey (an achromatic-axis fit); with too few grey pixels the curves stay straight, which is exactly
  the dye model's density-linear fade;
- the targets: the densest layer's black and the lightest layer's white, so a picture that never held a true black
  or white is not stretched to one.

The stage (stage.py) uses it beside the dye model (fade.py), which holds the physical priors (fog, co-fading,
true-black checks) and decides whether the shot is faded at all; the two corrections are averaged in density.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fade import DENSITY_CEILING, GAMMA, _highlight_shoulder, density

REFERENCE_LAYER = 1          # magenta dye (G): its curve is the reference the others are fitted against
EXTREME_SHARE = 0.005        # share of the pixels taken as the neutral black (white): the jointly darkest (brightest)
BEND_LIMIT = 0.9            # a layer's tone-curve bend relative to the reference layer's (|bend| < 1: monotonic)
AXIS_SIGMA = 0.04            # normalised-density spread across layers below which a restored pixel counts as grey
AXIS_ITERATIONS = 4
AXIS_SAMPLE = 20_000         # pooled pixels enough for the estimate (every k-th of the shot's sample)
AXIS_MIN_SHARE = 0.02        # share of grey pixels needed before they fit the gammas at all
AXIS_FULL_SHARE = 0.15       # share at which the fitted bends get their full say
USABLE = (0.03, 0.97)        # normalised values inside which a pixel tells about the tone curve


@dataclass(frozen=True)
class LayerCurves:
    """Per-layer black and white points (faded densities), tone-curve bends and the common target densities.

    A layer's faded density D is normalised to x = (D - white) / (black - white) (0 at its white, 1 at its black),
    bent by f(x) = x + bend * x * (1 - x) (straight lines beyond 0 and 1, so every input keeps a distinct output)
    and put back between the targets: restored density = target_white + (target_black - target_white) * f(x).
    """

    black: tuple[float, float, float] = (DENSITY_CEILING,) * 3
    white: tuple[float, float, float] = (0.0, 0.0, 0.0)
    bend: tuple[float, float, float] = (0.0, 0.0, 0.0)
    target_black: float = DENSITY_CEILING
    target_white: float = 0.0

    def curves(self, steps: int) -> np.ndarray:
        """Correction curves (3, steps + 1): restored code values at inputs 0, 1/steps, ..., 1."""
        v = np.linspace(0.0, 1.0, steps + 1)
        with np.errstate(divide="ignore"):
            d = -GAMMA * np.log10(v)                      # inf at v = 0 restores to black, exactly
        out = np.empty((3, steps + 1), dtype=np.float32)
        for c in range(3):
            restored = self.restore(c, d)
            lowest = self.restore(c, np.array([0.0]))[0]
            out[c] = np.power(10.0, -_highlight_shoulder(restored, float(lowest)) / GAMMA)
        return out

    def restore(self, c: int, d: np.ndarray) -> np.ndarray:
        """Restored densities of layer `c` for faded densities `d`."""
        x = (np.asarray(d, dtype=np.float64) - self.white[c]) / max(self.black[c] - self.white[c], 1e-3)
        bend = self.bend[c]
        with np.errstate(invalid="ignore"):
            f = np.where(x < 0.0, (1.0 + bend) * x,
                         np.where(x > 1.0, 1.0 + (1.0 - bend) * (x - 1.0), x + bend * x * (1.0 - x)))
        f = np.where(np.isinf(x), x, f)
        return self.target_white + (self.target_black - self.target_white) * f

    def to_dict(self) -> dict[str, list[float] | float]:
        return {"black": [round(float(v), 4) for v in self.black], "white": [round(float(v), 4) for v in self.white],
                "bend": [round(float(v), 4) for v in self.bend], "target_black": round(self.target_black, 4),
                "target_white": round(self.target_white, 4)}


def joint_extremes(pixels: np.ndarray, share: float = EXTREME_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Neutral black and white points (3,), (3,) of code values (N, 3): per-layer medians of the pixels darkest
    (brightest) in every layer at once, chosen by per-layer rank (which a monotonic fade does not change)."""
    n = len(pixels)
    if n == 0:
        return np.zeros(3), np.ones(3)
    ranks = np.empty((n, 3), dtype=np.int32)
    for c in range(3):
        ranks[np.argsort(pixels[:, c], kind="stable"), c] = np.arange(n, dtype=np.int32)
    count = max(1, int(round(n * share)))
    darkness = ranks.max(axis=1)
    brightness = ranks.min(axis=1)
    dark = np.argpartition(darkness, count - 1)[:count]
    bright = np.argpartition(-brightness, count - 1)[:count]
    return np.median(pixels[dark], axis=0), np.median(pixels[bright], axis=0)


def fit_bends(densities: np.ndarray, black: np.ndarray, white: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-layer tone-curve bends (3,) relative to the reference layer, from pixels the estimate makes grey.

    Least squares of x_c + bend_c * x_c (1 - x_c) = x_ref over near-grey pixels (weights from the spread of the
    restored normalised densities), iterated. Returns the bends and the share of grey pixels they rest on; with
    too few the bends shrink towards 0 (straight).
    """
    x = (densities - white) / np.maximum(black - white, 1e-3)
    inside = np.all((x > USABLE[0]) & (x < USABLE[1]), axis=1)
    x = x[inside]
    bend = np.zeros(3)
    share = 0.0
    if len(x) < 100:
        return bend, share
    ref = REFERENCE_LAYER
    shape = x * (1.0 - x)
    fitted = np.zeros(3)
    for _ in range(AXIS_ITERATIONS):
        restored = x + fitted * shape
        spread = restored.max(axis=1) - restored.min(axis=1)
        weight = np.exp(-((spread / AXIS_SIGMA) ** 2))
        share = float(weight.sum()) / len(densities)
        if share < AXIS_MIN_SHARE:
            break
        for c in range(3):
            if c != ref:
                a = (weight * (x[:, ref] - x[:, c]) * shape[:, c]).sum() / max((weight * shape[:, c] ** 2).sum(), 1e-9)
                fitted[c] = float(np.clip(a, -BEND_LIMIT, BEND_LIMIT))
    say = float(np.clip((share - AXIS_MIN_SHARE) / (AXIS_FULL_SHARE - AXIS_MIN_SHARE), 0.0, 1.0))
    return say * fitted, share


@dataclass
class AxisEstimate:
    """What the general estimate found in a shot (for the curves, the side data and the GUI)."""

    curves: LayerCurves
    black_code: np.ndarray      # the neutral black's code values per layer
    white_code: np.ndarray
    grey_share: float

    def to_dict(self) -> dict:
        return {**self.curves.to_dict(), "black_code": np.round(self.black_code, 4).tolist(),
                "white_code": np.round(self.white_code, 4).tolist(), "grey_share": round(self.grey_share, 4)}


def estimate_axis(pixels: np.ndarray) -> AxisEstimate:
    """The shot's layer curves from its pooled code values (N, 3)."""
    pixels = np.asarray(pixels, dtype=np.float32)
    pixels = pixels[:: max(1, len(pixels) // AXIS_SAMPLE)]
    black_code, white_code = joint_extremes(pixels)
    black = density(np.asarray(black_code, np.float32)).astype(np.float64)
    white = density(np.asarray(white_code, np.float32)).astype(np.float64)
    black = np.maximum(black, white + 0.1)
    bend, share = fit_bends(density(pixels).astype(np.float64), black, white)
    curves = LayerCurves(tuple(black), tuple(white), tuple(bend), float(black.max()), float(white.min()))
    return AxisEstimate(curves, np.asarray(black_code, np.float64), np.asarray(white_code, np.float64), share)

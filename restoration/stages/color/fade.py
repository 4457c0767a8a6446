"""Dye fade of a colour print: a per-layer density model, its estimation from a shot, and correction curves.

A print's three dye layers (cyan -> R, magenta -> G, yellow -> B) fade by losing dye: density D = -log10(T), with
T = v ** GAMMA the transmittance a scan's code value v stands for, becomes roughly k*D + fog per layer. The model
is estimated relative to the most stable layer (magenta, G): for a neutral grey the faded densities of R and B
lie on a line D'_c = scale_c * D'_G + offset_c, and undoing that line puts every layer back on the reference
layer's density scale. The line is found from the shot's per-layer black and white points (percentiles of the
shot, which survive fading as the original's scaled by k plus fog), a physical prior that fog is small, a dye
co-fading prior for a layer whose shot holds no true black, and a neutral balance on near-grey pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

GAMMA = 2.2               # code value v <-> transmittance T = v ** GAMMA (display-referred scan)
DENSITY_CEILING = 4.0     # density given to code values at or below 10 ** (-4 / 2.2) when estimating
REFERENCE_LAYER = 1       # magenta dye (G): the slowest to fade in chromogenic prints
FAST_LAYERS = (0, 2)      # cyan (R) and yellow (B): the unstable dyes
WHITE_PERCENTILE = 0.5    # a layer's white point: this low percentile of its densities over the shot
BLACK_PERCENTILE = 99.5   # a layer's black point: this high percentile
FOG_PRIOR = 0.5           # weight of the prior "fog offset is small" against the black/white anchors
CLEAR_HIGHLIGHT = 0.1     # reference white density at which the white anchor's weight has fallen to 1/e
COLOCATION_SHARE = 1.0    # % of darkest pixels per layer compared for co-location
COLOCATED = 0.7           # a layer's black point counts as a true black when this share co-locates with G's
# A layer's black gap: how far below its black point it stays where magenta is at its black (the median over
# magenta's darkest COLOCATION_SHARE %), as a share of its range. A median is barely moved by grain, which lifts
# only the black point (a grainy true black reads 0.05-0.11 on the bench and the demo, a dark colour with no black
# 0.27 and more); the black weight falls from 1 to 0 across this band instead of flipping at one value.
BLACK_GAP_RANGE = (0.1, 0.2)
PLATEAU_TOP = 99.9        # a layer's densest value, robust to a few stray pixels
PLATEAU_WINDOW = 0.015    # top share of a layer's density range in which a saturated black piles up
PLATEAU_SHARE = 0.01      # share of pixels in that window that shows a saturated black (a smooth tail: ~0.2 %)
PLATEAU_RELATIVE = 0.3    # a layer whose pile-up is below this fraction of the reference layer's has no black
NEUTRAL_SIGMA = 0.04      # density spread across layers below which a pixel counts as grey
NEUTRAL_MIN_SHARE = 0.05  # share of grey pixels needed before they adjust the balance
NEUTRAL_FULL_SHARE = 0.3  # share of grey pixels at which they get their full say
NEUTRAL_MAX_WEIGHT = 0.25 # the grey pixels' say at most, against the black/white anchors
# A borrowed scale is kept in the ratio of the picture's grey share it leaves to the grey share the layer's own
# scale finds (each plus GREY_EVIDENCE, so a picture with hardly any greys either way keeps its borrow), once it
# loses more than GREY_LOST of the picture (less is within what grain and a scene's few greys move; the demo's
# coffee still loses 0.002): a borrow that erases the scene's neutrals is taking a lender that did not fade like
# this layer (a magenta shift's yellow, which carries magenta's blue absorption).
GREY_EVIDENCE = 0.01
GREY_LOST = 0.005
SCALE_LIMITS = (0.2, 1.0) # cyan and yellow fade at least as fast as magenta, keeping >= 20 % of its range
OFFSET_LIMIT = 0.3        # plausible relative fog offset, density
MONOCHROME_SAMPLE = 60000 # pixels enough to tell black-and-white from colour
# Black-and-white is told on a copy of the sampled frames blurred this much (px of the ~20k-pixel frame): film
# grain's own chroma is finer than a scene's colours (grain 0.02 gave toned B/W a residual of 1.3-2.7, above a
# colour shot's least, 2.1; blurred, 0.4-1.2 against 1.65).
MONOCHROME_BLUR = 2.0
# A dye fade shows as a layer that lost density against magenta down to a black it shares with magenta; less loss
# than the first value is a grade, a scan's balance or a scene's own colour, and is left alone (do no harm).
FADE_LOSS_RANGE = (0.12, 0.2)
# A print's whites are its base, clear in every layer, so restoring a fade brings the highlights back near grey; a
# correction that would leave them this far apart in density (largest minus smallest layer) is taking a scan's
# cast or a scene's coloured highlights for a fade (Set14 lena: 0.49; the bench's fades reach 0.25), and the
# shot is left alone.
WHITE_CAST_RANGE = (0.3, 0.4)
# The reference layer's own fade: a faded print loses density in the magenta layer too (its Dmax falls), which the
# model measured against magenta cannot see. A shot whose magenta black is already near a print's Dmax (code value
# <= 0.08) holds a true black, faded; its density is brought back to PRINT_DMAX, every layer's density stretched with
# it about the white. The evidence rises from 0 to 1 across DMAX_EVIDENCE: a scene whose darkest part is a dark
# grey (Vid4 city, 1.2) is not stretched to a black it never held.
PRINT_DMAX = 3.0
DMAX_EVIDENCE = (2.4, 2.8)
# A magenta black beyond a print's Dmax is no dye's own: a scanner's curve (a gamma above 1) or a levels grade
# deepened it, and it is brought back to PRINT_DMAX, every layer's density compressed with it about the white. The
# evidence rises across DMAX_BEYOND: grain and noise lift a shot's black percentile by up to ~0.15 (the grainy
# bench's 3.02, the demo's cleaned frames 3.14), and a log scan curve blended in leaves blacks at 3.1-3.4 while it
# flattens the mid-tones, which want a stretch, not this (families over 24 seeds: gamma 1.32 reads 3.72, levels
# 3.1-3.5, log blends 3.09-3.28; the bench's scanner-1, a log blend, 3.39, which a band from 3.3 cost 0.34).
DMAX_BEYOND = (3.4, 3.7)
# ...and falls back to 0 across CLIPPED_BLACK, below DENSITY_CEILING: a black the scanner clipped (codes at or below
# about 4/255, what a scan whose levels were set to its black gives) tells nothing of a curve, and compressing it
# would lift a real scan's blacks to a print's Dmax (code 11/255)
CLIPPED_BLACK = (3.85, 3.95)
# The magenta black point is the median of the per-frame ones where the pooled one sits beyond it by less than the
# first value (what a few frames left darker by flicker do: 0.15 on the demo's cleaned frames, 0.26 with its flicker
# alone), the pooled one beyond the second (a black that only some of a shot's frames show or hold deep: San
# Francisco's first 24 frames, 0.83), linear between.
FRAME_BLACK_LIFT = (0.3, 0.5)
REMAP_LIMIT = 32000       # OpenCV's remap works on images with sides below 32767
CURVE_STEPS = 16384       # intervals of the correction curves (exact well below one 16-bit code)


def density(values: np.ndarray) -> np.ndarray:
    """Print density -log10(v ** GAMMA) of code values, capped at DENSITY_CEILING (for estimation)."""
    floor = np.float32(10.0 ** (-DENSITY_CEILING / GAMMA))
    return (np.float32(-GAMMA) * np.log10(np.maximum(values, floor))).astype(np.float32)


@dataclass(frozen=True)
class FadeModel:
    """Faded densities of a grey, per layer, against the reference layer's: D'_c = scale_c * D'_G + offset_c."""

    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    contrast: float = 1.0   # the reference layer's own density loss restored: every restored density stretched
    anchor: float = 0.0     # about this density (the reference white), see `reference_contrast`

    @property
    def scale_array(self) -> np.ndarray:
        return np.asarray(self.scale, dtype=np.float64)

    @property
    def offset_array(self) -> np.ndarray:
        return np.asarray(self.offset, dtype=np.float64)

    def with_neutral(self, faded_grey: np.ndarray) -> "FadeModel":
        """Same scales, offsets chosen so that the faded densities `faded_grey` (3,) restore to a neutral grey."""
        scale = self.scale_array
        offset = np.asarray(faded_grey, dtype=np.float64) - scale * float(faded_grey[REFERENCE_LAYER])
        offset[REFERENCE_LAYER] = 0.0
        return FadeModel(tuple(scale), tuple(offset), self.contrast, self.anchor)

    def restore(self, c: int, faded: np.ndarray) -> np.ndarray:
        """Restored densities of layer `c` for its faded densities."""
        if self.contrast == 1.0:
            return (np.asarray(faded, dtype=np.float64) - self.offset[c]) / self.scale[c]
        gain = self.contrast / self.scale[c]      # one multiply-add per value, as without the stretch
        return np.asarray(faded, dtype=np.float64) * gain + (self.anchor * (1.0 - self.contrast)
                                                             - self.offset[c] * gain)

    def to_dict(self) -> dict:
        return {"scale": [round(float(v), 5) for v in self.scale], "offset": [round(float(v), 5) for v in self.offset],
                "contrast": round(float(self.contrast), 5), "anchor": round(float(self.anchor), 5)}


def _clamped(scale: np.ndarray, offset: np.ndarray) -> FadeModel:
    scale = np.clip(scale, *SCALE_LIMITS)
    offset = np.clip(offset, -OFFSET_LIMIT, OFFSET_LIMIT)
    scale[REFERENCE_LAYER], offset[REFERENCE_LAYER] = 1.0, 0.0
    return FadeModel(tuple(float(v) for v in scale), tuple(float(v) for v in offset))


# --------------------------------------------------------------------------------------------------------------
# what a shot shows


def layer_anchors(densities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer white and black points (3,), (3,): low and high percentiles of densities (N, 3)."""
    points = np.percentile(densities, (WHITE_PERCENTILE, BLACK_PERCENTILE), axis=0)
    return points[0], points[1]


def frame_points(densities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-layer white point, black point and black pile-up (see `black_plateau`) of densities (N, 3), in one pass."""
    if len(densities) == 0:
        return np.zeros(3), np.zeros(3), np.zeros(3)
    low, high, top = np.percentile(densities, (WHITE_PERCENTILE, BLACK_PERCENTILE, PLATEAU_TOP), axis=0)
    window = PLATEAU_WINDOW * np.maximum(top - low, 1e-3)
    return low, high, (densities >= top - window).mean(axis=0)


def black_plateau(densities: np.ndarray) -> np.ndarray:
    """Per layer (3,): share of pixels piled up at the layer's densest values (the print's saturated Dmax).

    True blacks saturate every dye layer of a print at its maximum density, which shows as a pile-up at the top
    of the layer's densities; a dark colour tails off instead. The window is a fixed share of the layer's range,
    so fading (which scales the range) does not change the measure.
    """
    return frame_points(densities)[2]


def black_colocation(densities: np.ndarray) -> np.ndarray:
    """Per layer (3,): how much its darkest pixels and the reference layer's darkest pixels are the same pixels.

    Ranks survive fading (each layer's curve is monotonic), so this tells, fade or not, whether a layer's black
    point is the scene's neutral black or a dark colour of its own (1: same pixels, 0: elsewhere).
    """
    n = len(densities)
    if n < 200:
        return np.ones(3)
    count = max(1, int(round(n * COLOCATION_SHARE / 100.0)))
    wide = 5 * count
    darkest = [_densest(densities[:, c], count) for c in range(3)]
    dark = [_densest(densities[:, c], wide) for c in range(3)]
    ref = REFERENCE_LAYER
    share = np.ones(3)
    for c in range(3):
        if c == ref:
            continue
        one = len(darkest[ref] & dark[c]) / count
        other = len(darkest[c] & dark[ref]) / count
        share[c] = min(one, other)
    return share


def _densest(values: np.ndarray, count: int) -> set[int]:
    """Indices of the `count` largest values; ties at the threshold go to the lowest indices (deterministic)."""
    count = min(count, len(values))
    threshold = np.partition(values, len(values) - count)[len(values) - count]
    above = np.flatnonzero(values > threshold)
    ties = np.flatnonzero(values == threshold)[:count - len(above)]
    return set(above.tolist()) | set(ties.tolist())


def black_gap(densities: np.ndarray, white: np.ndarray | None = None, black: np.ndarray | None = None) -> np.ndarray:
    """Per layer (3,): how far the layer stays below its black point where the reference layer is at its black,
    as a share of the layer's range (0: a shared black; ~1: light there). `white`, `black`: `layer_anchors`."""
    n = len(densities)
    if n < 200:
        return np.zeros(3)
    count = max(1, int(round(n * COLOCATION_SHARE / 100.0)))
    if white is None or black is None:
        white, black = layer_anchors(densities)
    reference_black = np.argpartition(densities[:, REFERENCE_LAYER], n - count)[n - count:]
    there = np.median(densities[reference_black], axis=0)
    gap = (black - there) / np.maximum(black - white, 1e-3)
    gap[REFERENCE_LAYER] = 0.0
    return np.clip(gap, 0.0, 1.0)


def fit_anchors(white: np.ndarray, black: np.ndarray) -> FadeModel:
    """Scale and offset per layer from the black and white points of a neutral, with a prior of little fog.

    Least squares on: black_c = s*black_G + o, white_c = s*white_G + o (weighted down as the reference white moves
    away from clear film, where highlights are less likely neutral), and o = 0 (fog is small).
    """
    ref = REFERENCE_LAYER
    white_weight = float(np.exp(-max(float(white[ref]), 0.0) / CLEAR_HIGHLIGHT))
    scale, offset = np.ones(3), np.zeros(3)
    for c in FAST_LAYERS:
        system = np.array([[black[ref], 1.0], [white_weight * white[ref], white_weight], [0.0, FOG_PRIOR]])
        target = np.array([black[c], white_weight * white[c], 0.0])
        scale[c], offset[c] = np.linalg.lstsq(system, target, rcond=None)[0]
    return _clamped(scale, offset)


def black_weight(gap: np.ndarray, colocation: np.ndarray, plateau: np.ndarray) -> np.ndarray:
    """Per layer (3,) 0..1: how surely the layer's black point is the scene's black (the print's Dmax).

    1 when the layer is at its black where the reference layer is (a small `black_gap`, falling to 0 across
    BLACK_GAP_RANGE) or when its darkest pixels are the reference's (co-location); 0 when the reference layer shows
    a saturated black that this layer does not reach (a grain-free test: grain spreads the pile-up away).
    """
    ref = REFERENCE_LAYER
    lo, hi = BLACK_GAP_RANGE
    weight = np.maximum(np.clip((hi - np.asarray(gap, dtype=np.float64)) / (hi - lo), 0.0, 1.0),
                        (np.asarray(colocation) >= COLOCATED).astype(np.float64))
    reference_saturates = plateau[ref] >= PLATEAU_SHARE
    weight[reference_saturates & (np.asarray(plateau) < PLATEAU_RELATIVE * plateau[ref])] = 0.0
    weight[ref] = 1.0
    return weight


def borrow_cofading(model: FadeModel, black: np.ndarray) -> np.ndarray:
    """Each fast layer's share (3,) of the other fast layer's larger scale that it takes (see `borrow_shares`).

    Without a black the layer's own range only bounds its fade from one side (its scene may simply hold no dark
    of that colour); cyan and yellow dyes fade together, so the other layer's anchored scale stands in, in
    proportion to how surely this layer has no black and the other has one (`black`, from `black_weight`).
    """
    share = np.zeros(3)
    first, second = FAST_LAYERS
    for c, other in ((first, second), (second, first)):
        if model.scale[other] > model.scale[c]:
            share[c] = (1.0 - black[c]) * black[other]
    return share


def grey_share(densities: np.ndarray, model: FadeModel) -> float:
    """Share (weighted) of usable pixels that `model` restores near grey (NEUTRAL_SIGMA)."""
    usable = np.all((densities > 0.005) & (densities < DENSITY_CEILING - 0.1), axis=1)
    restored = (densities - model.offset_array) / model.scale_array
    spread = np.sqrt(((restored - restored.mean(axis=1, keepdims=True)) ** 2).sum(axis=1))
    return float((np.exp(-((spread / NEUTRAL_SIGMA) ** 2)) * usable).mean()) if len(densities) else 0.0


def grey_check(densities: np.ndarray, own: FadeModel, borrowed: np.ndarray) -> np.ndarray:
    """The borrowed shares (3,) cut in the ratio of the grey share the borrow leaves to the one the layers' own
    scales find (see GREY_EVIDENCE): the neutral axis tells whether the lender faded like the borrower."""
    if float(np.max(borrowed)) <= 0.0:
        return borrowed
    with_borrow, without = grey_share(densities, borrow_shares(own, borrowed)), grey_share(densities, own)
    if without - with_borrow <= GREY_LOST:
        return borrowed
    return borrowed * (with_borrow + GREY_EVIDENCE) / (without + GREY_EVIDENCE)


def borrow_shares(model: FadeModel, share: np.ndarray) -> FadeModel:
    """`model` with each fast layer moved by its `share` (3,) toward the other fast layer's larger scale."""
    scale = model.scale_array.copy()
    first, second = FAST_LAYERS
    for c, other in ((first, second), (second, first)):
        if share[c] > 0.0 and model.scale[other] > model.scale[c]:
            scale[c] = model.scale[c] + share[c] * (model.scale[other] - model.scale[c])
    return FadeModel(tuple(float(v) for v in scale), model.offset, model.contrast, model.anchor)


def neutral_balance(densities: np.ndarray, model: FadeModel, iterations: int = 3) -> tuple[FadeModel, float]:
    """Refine the offsets on pixels that the model makes near-grey (an achromatic-pixel balance).

    Returns the model and the share of grey pixels found; with too few the model comes back unchanged.
    """
    usable = np.all((densities > 0.005) & (densities < DENSITY_CEILING - 0.1), axis=1)
    scale = model.scale_array
    offset = model.offset_array.copy()
    share = 0.0
    for _ in range(iterations):
        restored = (densities - offset) / scale
        spread = np.sqrt(((restored - restored.mean(axis=1, keepdims=True)) ** 2).sum(axis=1))
        weight = np.exp(-((spread / NEUTRAL_SIGMA) ** 2)) * usable
        share = float(weight.mean()) if len(weight) else 0.0
        if share < NEUTRAL_MIN_SHARE:
            break
        say = min(1.0, share / NEUTRAL_FULL_SHARE) * NEUTRAL_MAX_WEIGHT
        for c in FAST_LAYERS:
            residual = densities[:, c] - scale[c] * densities[:, REFERENCE_LAYER]
            grey_offset = float((weight * residual).sum() / weight.sum())
            offset[c] = (1.0 - say) * offset[c] + say * grey_offset
    balanced = _clamped(scale.copy(), offset)
    return FadeModel(balanced.scale, balanced.offset, model.contrast, model.anchor), share


def dmax_evidence(black: float) -> float:
    """0..1: how surely the reference layer's black point (density) is a true black, a print's Dmax (see
    DMAX_EVIDENCE)."""
    lo, hi = DMAX_EVIDENCE
    return float(np.clip((black - lo) / (hi - lo), 0.0, 1.0))


def beyond_evidence(black: float) -> float:
    """0..1: how surely the reference layer's black point (density) lies beyond a print's Dmax, deepened by a scan
    curve or a grade (see DMAX_BEYOND)."""
    lo, hi = DMAX_BEYOND
    clip_lo, clip_hi = CLIPPED_BLACK
    return float(np.clip((black - lo) / (hi - lo), 0.0, 1.0) * np.clip((clip_hi - black) / (clip_hi - clip_lo), 0.0, 1.0))


def reference_contrast(white: float, black: float) -> float:
    """Density stretch about the reference white that brings its black point back to PRINT_DMAX: above 1 as far as
    `dmax_evidence` says the black is a faded Dmax, below 1 as far as `beyond_evidence` says it lies beyond one."""
    if black > PRINT_DMAX:
        target = black - beyond_evidence(black) * (black - PRINT_DMAX)
    else:
        target = black + dmax_evidence(black) * (PRINT_DMAX - black)
    return float(max(target - white, 1e-3) / max(black - white, 1e-3))


@dataclass
class FadeEstimate:
    """The estimated fade of a shot and what it rests on (for the GUI and the report)."""

    model: FadeModel
    white: np.ndarray
    black: np.ndarray
    colocation: np.ndarray
    plateau: np.ndarray
    borrowed: np.ndarray = field(default_factory=lambda: np.zeros(3))   # per layer, share of the other's scale
    grey_share: float = 0.0
    confidence: float = 1.0
    white_cast: float = 0.0      # density spread across layers of the white point as the model restores it
    gap: np.ndarray = field(default_factory=lambda: np.zeros(3))        # `black_gap`
    black_weight: np.ndarray = field(default_factory=lambda: np.ones(3))  # `black_weight`
    dmax: float = 0.0            # `dmax_evidence` of the reference black

    @property
    def fade_found(self) -> bool:
        return self.confidence > 0.0

    def to_dict(self) -> dict:
        return {**self.model.to_dict(), "fade_found": self.fade_found, "fade_confidence": round(self.confidence, 3),
                "white_point": np.round(self.white, 4).tolist(),
                "black_point": np.round(self.black, 4).tolist(),
                "black_colocation": np.round(self.colocation, 3).tolist(),
                "black_plateau": np.round(self.plateau, 4).tolist(),
                "black_gap": np.round(self.gap, 3).tolist(), "black_weight": np.round(self.black_weight, 3).tolist(),
                "borrowed_scale": [("R", "G", "B")[c] for c in range(3) if self.borrowed[c] >= 0.5],
                "borrowed_share": np.round(self.borrowed, 3).tolist(), "grey_share": round(self.grey_share, 4),
                "white_cast": round(self.white_cast, 4), "dmax_evidence": round(self.dmax, 3),
                "reference_contrast": round(self.model.contrast, 4)}


def estimate_fade(densities: np.ndarray, plateau: np.ndarray | None = None,
                  frame_black: np.ndarray | None = None) -> FadeEstimate:
    """The shot's fade from its pooled densities (N, 3): anchors, co-fading prior, neutral balance.

    `plateau` is the per-layer black pile-up averaged over the shot's frames (a drifting fade smears it when
    pooled); measured on the pooled densities when not given. `frame_black` (F, 3), the per-frame black points:
    the magenta black then leans on their median (FRAME_BLACK_LIFT).
    """
    densities = np.asarray(densities, dtype=np.float32)
    if len(densities) == 0:
        return FadeEstimate(FadeModel(), np.zeros(3), np.zeros(3), np.ones(3), np.zeros(3))
    white, black = layer_anchors(densities)
    if frame_black is not None and len(frame_black):
        # Near the black a small shift of code values is a large one of density (0.01 at code 0.05: 0.17), so a
        # few frames left darker by flicker (deflicker's brightness ratios do not undo an offset at the blacks)
        # push the pooled percentile up (the demo's cleaned frames: 3.14 against 2.87 faded only), and with it
        # every scale measured against magenta and the Dmax stretch; the median over frames does not follow them.
        ref = REFERENCE_LAYER
        lift = black[ref] - float(np.median(np.asarray(frame_black)[:, ref]))
        lo, hi = FRAME_BLACK_LIFT
        black[ref] -= max(lift, 0.0) * float(np.clip((hi - lift) / (hi - lo), 0.0, 1.0))
    colocation = black_colocation(densities)
    plateau = black_plateau(densities) if plateau is None else np.asarray(plateau, dtype=np.float64)
    gap = black_gap(densities, white, black)
    weight = black_weight(gap, colocation, plateau)
    own = fit_anchors(white, black)
    borrowed = grey_check(densities, own, borrow_cofading(own, weight))
    model = borrow_shares(own, borrowed)
    model, share = neutral_balance(densities, model)
    cast = white_cast(model, white)
    confidence = fade_confidence(model, np.maximum(weight, borrowed)) * highlight_trust(cast)
    ref = REFERENCE_LAYER
    model = FadeModel(model.scale, model.offset, reference_contrast(float(white[ref]), float(black[ref])),
                      float(white[ref]))
    return FadeEstimate(model, white, black, colocation, plateau, borrowed, share, confidence, cast, gap, weight,
                        dmax_evidence(float(black[ref])))


def white_cast(model: FadeModel, white: np.ndarray) -> float:
    """Density spread across layers (largest minus smallest) of the white point `white` (3,) restored by `model`."""
    restored = (np.asarray(white, dtype=np.float64) - model.offset_array) / model.scale_array
    return float(np.ptp(restored))


def highlight_trust(cast: float) -> float:
    """1 while a correction leaves the whites near grey, falling to 0 across WHITE_CAST_RANGE (see there)."""
    lo, hi = WHITE_CAST_RANGE
    return float(np.clip((hi - cast) / (hi - lo), 0.0, 1.0))


def fade_confidence(model: FadeModel, anchored_by: np.ndarray) -> float:
    """0 (no fade found) .. 1 (a clear fade): the density a fast layer lost against magenta where a true black
    anchors that loss (or it was borrowed from one; `anchored_by` (3,) 0..1 says how surely), else the loss both
    fast layers share (cyan and yellow fade together; a scene's one dark colour or a grade does not show as both)."""
    loss = 1.0 - model.scale_array[list(FAST_LAYERS)]
    anchored = max(float(v) * float(anchored_by[c]) for v, c in zip(loss, FAST_LAYERS))
    lo, hi = FADE_LOSS_RANGE
    return float(np.clip((max(anchored, float(loss.min())) - lo) / (hi - lo), 0.0, 1.0))


def frame_models(white: np.ndarray, black: np.ndarray, borrowed: np.ndarray) -> np.ndarray:
    """Per-frame anchor fits (F, 2, 3) [scale, offset] from per-frame white/black points (F, 3) each, with the
    shot's borrowed shares (3,) of the other fast layer's scale."""
    out = np.empty((len(white), 2, 3))
    for t, (w, k) in enumerate(zip(white, black)):
        model = fit_anchors(w, k)
        out[t, 0], out[t, 1] = borrow_shares(model, borrowed).scale_array, model.offset_array
    return out


def smooth_drift(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Slow drift of per-frame values (F, ...) about their median: a local-linear fit over a wide window.

    `smoothing` 1 keeps no drift (one correction per shot); lower values follow the fade over shorter spans. A
    linear drift passes through unchanged at any setting below 1, so a fade that drifts along a shot is followed
    without frame-to-frame breathing.
    """
    values = np.asarray(values, dtype=np.float64)
    count = len(values)
    deviation = values - np.median(values, axis=0)
    if count < 3 or smoothing >= 1.0:
        return np.zeros_like(values)
    bandwidth = 2.0 + 48.0 * smoothing / (1.0 - smoothing)
    t = np.arange(count, dtype=np.float64)
    flat = deviation.reshape(count, -1)
    out = np.empty_like(flat)
    reach = int(np.ceil(4.0 * bandwidth))     # the kernel is negligible beyond 4 bandwidths
    for i in range(count):
        lo, hi = max(0, i - reach), min(count, i + reach + 1)
        span, values_near = t[lo:hi], flat[lo:hi]
        w = np.exp(-0.5 * ((span - i) / bandwidth) ** 2)
        mt = (w * span).sum() / w.sum()
        dt = span - mt
        var = (w * dt * dt).sum()
        mean = (w[:, None] * values_near).sum(axis=0) / w.sum()
        slope = (w[:, None] * dt[:, None] * values_near).sum(axis=0) / var if var > 0 else 0.0
        out[i] = mean + slope * (i - mt)
    return out.reshape(values.shape)


class ShotSampler:
    """Collects what the analysis needs from a shot's frames: per-frame black/white points and a pooled sample.

    Each frame is area-downscaled to about `frame_pixels` (which also averages grain away); the pooled sample
    keeps every `stride`-th frame so that a shot of any length stays within `budget` pixels.
    """

    def __init__(self, shot_length: int, frame_pixels: int = 20_000, budget: int = 120_000):
        self.frame_pixels = int(frame_pixels)
        self.stride = max(1, int(np.ceil(shot_length * frame_pixels / budget)))
        self.white: list[np.ndarray] = []
        self.black: list[np.ndarray] = []
        self.plateau: list[np.ndarray] = []
        self._rgb: list[np.ndarray] = []
        self._smooth: list[np.ndarray] = []
        self._count = 0

    def add(self, frame: np.ndarray) -> None:
        picture = downscale(frame, self.frame_pixels)
        small = picture.reshape(-1, 3)
        white, black, plateau = frame_points(density(small))
        self.white.append(white)
        self.black.append(black)
        self.plateau.append(plateau)
        if self._count % self.stride == 0:
            self._rgb.append(small)
            self._smooth.append(cv2.GaussianBlur(picture, (0, 0), MONOCHROME_BLUR).reshape(-1, 3))
        self._count += 1

    @property
    def pixels(self) -> np.ndarray:
        """Pooled code values (N, 3) of the sampled frames."""
        return np.concatenate(self._rgb) if self._rgb else np.zeros((0, 3), np.float32)

    @property
    def smoothed(self) -> np.ndarray:
        """The pooled sample blurred by MONOCHROME_BLUR (N, 3), for telling black-and-white from colour."""
        return np.concatenate(self._smooth) if self._smooth else np.zeros((0, 3), np.float32)


def downscale(frame: np.ndarray, pixels: int) -> np.ndarray:
    """Area-averaged copy of `frame` with about `pixels` pixels (the frame itself when already that small)."""
    height, width = frame.shape[:2]
    factor = float(np.sqrt(height * width / max(pixels, 1)))
    if factor <= 1.0:
        return np.ascontiguousarray(frame, dtype=np.float32)
    size = (max(1, int(round(width / factor))), max(1, int(round(height / factor))))
    return cv2.resize(np.ascontiguousarray(frame, dtype=np.float32), size, interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------------------------------------------
# black-and-white material


def monochrome_residual(rgb: np.ndarray) -> float:
    """Mean CIELAB chroma (ΔE units) of pixels (N, 3) about the median tint of their lightness band.

    Black-and-white material, toned or not, lies on one tint per lightness: the residual is grain-level (< ~1);
    colour scenes spread well beyond that.
    """
    if len(rgb) == 0:
        return 0.0
    rgb = rgb[:: max(1, len(rgb) // MONOCHROME_SAMPLE)]
    lab = cv2.cvtColor(np.ascontiguousarray(rgb.reshape(1, -1, 3), dtype=np.float32), cv2.COLOR_RGB2Lab)
    lab = lab.reshape(-1, 3)
    bands = np.clip((lab[:, 0] / 100.0 * 16).astype(int), 0, 15)
    residual = np.zeros(len(lab))
    for band in np.unique(bands):
        inside = bands == band
        tint = np.median(lab[inside, 1:], axis=0)
        residual[inside] = np.hypot(*(lab[inside, 1:] - tint).T)
    return float(residual.mean())


# --------------------------------------------------------------------------------------------------------------
# correction curves


def _highlight_shoulder(restored: np.ndarray, lowest: float) -> np.ndarray:
    """Bring densities below 0 (whiter than white) smoothly back into [0, ...) instead of clipping them.

    Densities from `lowest` (< 0) up to a knee map monotonically onto [0, knee] with slope 1 at the knee, so the
    highlights the source holds stay distinct; densities above the knee are untouched.
    """
    if lowest >= 0.0:
        return np.maximum(restored, 0.0)
    knee = max(2.0 * -lowest, 0.05)
    span = knee - lowest
    power = span / knee
    inside = restored < knee
    x = np.clip((restored[inside] - lowest) / span, 0.0, 1.0)
    out = restored.copy()
    out[inside] = knee * x ** power
    return out


def correction_curves(model: FadeModel, steps: int = CURVE_STEPS) -> np.ndarray:
    """Per-layer correction curves (3, steps + 1): output code values at inputs 0, 1/steps, ..., 1."""
    v = np.linspace(0.0, 1.0, steps + 1)
    with np.errstate(divide="ignore"):
        faded = -GAMMA * np.log10(v)                         # inf at v = 0 restores to black, exactly
    curves = np.empty((3, steps + 1), dtype=np.float32)
    for c in range(3):
        with np.errstate(invalid="ignore"):
            restored = model.restore(c, faded)
        lowest = float(model.restore(c, np.zeros(1))[0])
        restored = _highlight_shoulder(restored, lowest)
        curves[c] = np.power(10.0, -restored / GAMMA)
    return curves


def channel_rows(height: int, width: int) -> np.ndarray:
    """Row of the curve table (the channel) for every value of an interleaved RGB frame, for `apply_curves`."""
    return np.ascontiguousarray(np.broadcast_to(np.arange(3, dtype=np.float32), (height, width, 3))
                                .reshape(height, width * 3))


def apply_curves(frame: np.ndarray, curves: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Apply per-channel curves (3, n + 1) to a float32 RGB frame by exact linear interpolation (cv2.remap).

    `rows` is `channel_rows(height, width)`, passed in by callers that apply many frames of one size.
    """
    height, width = frame.shape[:2]
    if width * 3 >= REMAP_LIMIT:   # cv2.remap takes sides below 32767: do wide frames in column blocks
        block = REMAP_LIMIT // 3 - 1
        return np.concatenate([apply_curves(frame[:, x:x + block], curves) for x in range(0, width, block)], axis=1)
    steps = curves.shape[1] - 1
    table = np.ascontiguousarray(curves, dtype=np.float32)
    x = np.ascontiguousarray(frame, dtype=np.float32).reshape(height, width * 3) * np.float32(steps)
    y = rows if rows is not None and rows.shape == x.shape else channel_rows(height, width)
    out = cv2.remap(table, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(height, width, 3)


def curve_values(pixels: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Apply per-channel curves to pixels (N, 3), as `apply_curves` does to frames."""
    grid = np.linspace(0.0, 1.0, curves.shape[1])
    return np.stack([np.interp(pixels[:, c], grid, curves[c]) for c in range(3)], axis=1).astype(np.float32)


def sampled_curves(curves: np.ndarray, samples: int = 33) -> dict[str, dict[str, list[float]]]:
    """The applied per-layer curves (3, n + 1), sampled at `samples` even code values 0..1 for a GUI plot.

    'correction': faded -> restored code value (the table itself); 'fade': how the estimate says the print faded
    (original -> faded code value), the correction's inverse.
    """
    grid = np.linspace(0.0, 1.0, curves.shape[1])
    v = np.linspace(0.0, 1.0, samples)
    corrected = np.stack([np.interp(v, grid, curves[c]) for c in range(3)])
    faded = np.stack([np.interp(v, curves[c].astype(np.float64), grid) for c in range(3)])
    layers = ("R", "G", "B")
    return {"fade": {name: np.round(faded[c], 4).tolist() for c, name in enumerate(layers)},
            "correction": {name: np.round(corrected[c], 4).tolist() for c, name in enumerate(layers)}}

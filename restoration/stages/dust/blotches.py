"""Large blotches: one- or two-frame damage too big for the spike detector (its block offsets absorb them).

A blotch is picture the current frame has and its neighbours on both sides do not, where those neighbours agree
with each other (the film under it is there, unchanged, one frame away) and where nothing like it lies displaced
beside it (a moving limb leaves, in the next frame, the picture it covered; dirt comes from nowhere). Found blotches are
filled from the agreeing neighbours; a candidate that fails a test is left as scanned and reported as unsure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .dustmap import (SAME_PICTURE_NOISE, SIGMA_FLOOR, CameraMotions, DustMap, Neighbour, by_side, components,
                      grain_from_table, inside_frame, magnitude, median_of, median_xy, own_motion, pixelwise,
                      typical_motion)

BLOTCH_MIN_AREA_PX = 500    # below this the spike detector finds them
POOL_PX = 9                 # per-pixel evidence is averaged over this box: grain averages out, a blotch does not
POOLED_SEED = 2.5           # pooled evidence (grain units) that seeds a candidate
PIXEL_EVIDENCE = 1.5        # a pixel of the candidate differs from both sides by at least this much itself
REGION_EVIDENCE = 3.0       # median evidence over the blotch
AGREEMENT = 0.35            # the supporting neighbours differ from each other by at most this share of the blotch
MIN_CONTRAST = 6.0 / 255.0  # a blotch stands out by at least this much (median): on flat, fine-grained sky a
                            # level change of a code or two beats the grain, but it is light, not dirt
EDGE_DROP = 0.4             # just outside a blotch the difference falls below this share of it: dirt has an edge,
                            # a change of light over part of the frame (uneven development, smoke) fades out
REACH = (40, 64)            # px a moving object is searched for, about 2 √area (a hand moves up to 40 px a frame)
LEFT_SHARE = 0.3            # what an object left in a neighbour is one piece within 0.3x..3.3x its area
OWN_TRACE = PIXEL_EVIDENCE  # ... over which this frame differs from every frame by less than this (median, pooled):
                            # more is this frame's own dirt
MISREGISTRATION_PX = 0.3
SHARED_CHANGE = 0.4         # a frame sharing a blotch differs from it by under this share of its contrast
SHARED_AREA = 0.8           # ... and shows it (differs by under SHARED_LEVEL of its contrast, pooled) over at least
                            # this much of its area: one that shows a part only holds something else there (its own
                            # dirt, darker sky) and says nothing of the blotch
SHARED_LEVEL = 0.7
ONE_SIDE_AGREEMENT = 0.5 * AGREEMENT  # at a shot's first or last frame the two frames on the one side must
ONE_SIDE_EVIDENCE = 1.3 * REGION_EVIDENCE  # agree closer, and the blotch stand out more, than between two sides
SEARCH_SCALE = 3            # candidates are searched for on every third pixel each way (the evidence is pooled over
SEARCH_EASE = 0.8           # 9x9 px anyway), with thresholds eased by this (and areas by the next): the search
SEARCH_AREA_EASE = 0.9      # only has to find every candidate the full-size test would; that test runs in a window
                            # around each
WINDOW_PAD = REACH[1] + 2 * POOL_PX + 8  # px: a candidate's tests look this far around it (a moved object's trace)
BORDER_PX = POOL_PX  # a component this close to a window's inner edge is left to the window that holds it whole
GROW_PX = 16         # a repaired blotch grows at most this far over its faint fringe
GROW_POOLED = 1.0    # ... where the frames it is filled from still differ this much (pooled, grain units)
GROW_SPREAD = 2.0    # ... and from each other by no more than grain does (pooled, grain units)
GROW_EACH = 0.5      # ... around smut seen from both sides: each side on average, every frame by half of it
EDGE_MOTION_FACTOR = 0.5  # on a shot's first or last frame a blotch on picture moving against the camera by more
                          # than this times motion_limit is left: the flow around a fast arm follows only the part
                          # the blotch missed (1.4-1.6 px a frame), around corpus dirt 0.6 at most
OTHERS_DIRT = 2.0    # a frame that differs from this frame's own specks by more than this times their contrast
                     # holds dirt of its own over them
STRAY_PX = 12.0      # a neighbour's flow over a candidate this far from its camera's motion there is a wrong match
JOIN_PX = 15         # seeds less than this apart are one candidate: a cluster of faint smut or specks is one blotch,
                     # its pieces each under the least area


MOVING = "other frames show where it came from (a moving object)"
DISAGREE = "the other frames disagree under it (moving picture)"
THREE_FRAMES = "the frames on both sides show it too (moving picture)"
CHANGED = "the frame beside it that shares it shows it changed (moving picture)"
SHOT_EDGE = "at a shot's edge: only one side to compare with"
EDGE_MOVING = "at a shot's first or last frame, over picture moving against the camera (a moving figure)"
TOO_LARGE = "larger than max_blotch"
SCATTERED_MOVING = "scattered pieces over picture moving against the camera (a moving figure)"
STRAYED = "one side differs from it only where its flow strays from the camera (a wrong match or moving picture)"
SCATTERED_WEAK = "scattered pieces that stand out too little, or over picture the other frames show too unlike"


@dataclass
class Blotch:
    """One large blotch in the current frame: its crop, mask, polarity, evidence and the frames to fill it from."""

    rows: slice
    cols: slice
    mask: np.ndarray                # bool, crop-sized
    polarity: int                   # +1 light, -1 dark
    evidence: float                 # median difference to the supporting neighbours, grain units
    agreement: float                # their difference to each other, as a share of `evidence`
    sources: list[Neighbour] = field(default_factory=list, repr=False)
    repaired: bool = True
    reason: str = ""                # why an unsure candidate was left
    patch: tuple | None = field(default=None, repr=False)  # (rows, cols, fill, matte) of a fill over moving picture
    scattered: bool = False         # a cluster of pieces each too small to be a blotch alone (smut, specks)
    steady: list[Neighbour] | None = field(default=None, repr=False)  # the frames its motion is judged against
                                                                       # (None: every neighbour)

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return (self.cols.start, self.rows.start, self.cols.stop - self.cols.start, self.rows.stop - self.rows.start)

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def holds_back(self) -> bool:
        """Left as moving picture or too large: the spike detections inside it are left too (at a shot's edge,
        with no sign of motion, the spike detector's own shot-edge rule decides)."""
        return not self.repaired and self.reason != SHOT_EDGE

    @property
    def confidence(self) -> float:
        strength = 1.0 - float(np.exp(-max(self.evidence - PIXEL_EVIDENCE, 0.0) / REGION_EVIDENCE))
        return float(np.clip(strength * (1.0 - min(self.agreement / AGREEMENT, 1.0) * 0.5), 0.0, 1.0))


def noise(edges: np.ndarray, grain: np.ndarray | float) -> np.ndarray:
    """Grain plus misregistration on edges (not the block spread, which a large blotch inflates)."""
    spread = magnitude(np.broadcast_to(np.float32(grain), edges.shape), np.float32(MISREGISTRATION_PX) * edges)
    return np.maximum(spread, np.float32(SIGMA_FLOOR))


def flicker_level(current: np.ndarray, neighbour: Neighbour) -> float:
    """The frame-wide level change between the current frame and a compensated neighbour (median, every 4th px)."""
    inside = neighbour.inside[::4, ::4] if neighbour.inside is not None else inside_frame(neighbour.flow)[::4, ::4]
    if not inside.any():
        return 0.0
    return median_of((current[::4, ::4] - neighbour.warped[::4, ::4])[inside])


def difference_z(current: np.ndarray, warped: np.ndarray, inside: np.ndarray, sigma: np.ndarray,
                 level: float) -> np.ndarray:
    """current - warped neighbour in units of its `noise`, less the frame-wide level change (flicker); 0 off the
    frame."""
    z = np.subtract(current, warped, dtype=np.float32)  # the same steps in place: one array, not four
    z -= np.float32(level)
    z /= sigma
    np.copyto(z, np.float32(0.0), where=np.logical_not(inside))
    return z


def side_evidence(zs: dict[int, np.ndarray], sign: float) -> np.ndarray:
    """Per pixel, how much the current frame differs in direction `sign` from both sides: the strongest
    neighbour of each side (two-frame dirt is on the nearer one too), the weaker side."""
    sides = {k: [zs[o] for o in zs if (o > 0) == (k > 0)] for k in (-1, 1)}
    per_side = [pixelwise(np.maximum, [sign * z for z in side]) for side in sides.values() if side]
    return pixelwise(np.minimum, per_side)


def reach_of(mask: np.ndarray) -> int:
    return int(np.clip(2.0 * np.sqrt(mask.sum()), *REACH))


def left_behind(z: np.ndarray, sign: float, rows: slice, cols: slice, mask: np.ndarray,
                own_other: OwnDirt | None = None) -> bool:
    """Whether a neighbour shows, beside the candidate, the other half of a moved object: where it was in that
    frame the neighbour differs from this one the other way round (a bright hand leaves dark coat behind), over
    an area like the candidate's (that frame's own specks are far smaller)."""
    return trace_beside(z, sign, rows, cols, mask, own_other) is not None


def trace_beside(z: np.ndarray, sign: float, rows: slice, cols: slice, mask: np.ndarray,
                 own_other: OwnDirt | None = None) -> tuple[slice, slice, np.ndarray] | None:
    """left_behind's trace: (rows, cols) of the box searched and the trace's pixels there, or None."""
    height, width = z.shape
    reach = reach_of(mask)
    r0, r1 = max(0, rows.start - reach), min(height, rows.stop + reach)
    c0, c1 = max(0, cols.start - reach), min(width, cols.stop + reach)
    other = cv2.blur(np.clip(-sign * z[r0:r1, c0:c1], -2.0, 8.0), (POOL_PX, POOL_PX)) >= POOLED_SEED
    area = float(mask.sum())
    if np.count_nonzero(other) < LEFT_SHARE * area:
        return None  # too little of the other difference anywhere around for a moved object's other half
    own = np.zeros(other.shape, np.uint8)
    own[rows.start - r0:rows.stop - r0, cols.start - c0:cols.stop - c0] = mask
    other &= cv2.dilate(own, np.ones((5, 5), np.uint8)) == 0
    own_level = None if own_other is None else own_other.pooled(slice(r0, r1), slice(c0, c1))
    if own_level is not None:  # this frame's own dirt of the other polarity differs from every frame: not a trace
        other &= own_level < POOLED_SEED
    count, labels, stats = components(other)
    # as thick as the candidate too: a line scratch that moved against the picture, or a hair, is thin
    thickness = area / max(mask.shape)
    found = [k for k in range(1, count) if LEFT_SHARE * area <= stats[k, 4] <= area / LEFT_SHARE
             and stats[k, 4] / max(stats[k, 2], stats[k, 3]) >= max(3.0, 0.25 * thickness)]
    if own_level is not None:
        # ... nor is one where, over most of it, this frame differs from every frame more faintly: the other part of
        # its own stain (a stain that draws the picture towards its own tone darkens the bright and lightens the
        # dark); a moved object is in one frame's place, and the others show the picture as this one does
        found = [k for k in found if median_of(own_level[labels == k]) < OWN_TRACE]
    return (slice(r0, r1), slice(c0, c1), np.isin(labels, found)) if found else None


THEIR_DIRT_OVERLAP = 0.5  # traces in two frames on one side that overlap this much (of the smaller) are one place


def their_own_dirt(traced: dict[int, tuple[slice, slice, np.ndarray]], sources: list[Neighbour]) -> bool:
    """Whether the traces beside a candidate are the two-frame dirt of the frames on one side: every trace on
    that side, the same place on both of its frames, while frames on the other side do not differ beside it. A
    moving object is elsewhere on both sides, and in each frame somewhere else."""
    sides = {o > 0 for o in traced}
    if len(sides) != 1 or len(traced) != 2 or len({n.offset > 0 for n in sources}) != 2:
        return False
    (rows, cols, a), (rows_b, cols_b, b) = traced.values()
    if (rows, cols) != (rows_b, cols_b):
        return False
    return np.count_nonzero(a & b) >= THEIR_DIRT_OVERLAP * min(np.count_nonzero(a), np.count_nonzero(b))


def their_dirt_apart(trace: tuple[slice, slice, np.ndarray], offset: int, zs: dict[int, np.ndarray],
                     rows: slice, cols: slice, mask: np.ndarray) -> bool:
    """Whether a trace beside a candidate is that one frame's own dirt: it lies apart from the candidate (a moved
    limb's trace joins where the limb was) and every other frame shows this frame's picture there."""
    r, c, pixels = trace
    own = np.ones(pixels.shape, np.uint8)
    own[rows.start - r.start:rows.stop - r.start, cols.start - c.start:cols.stop - c.start][mask] = 0
    if cv2.distanceTransform(own, cv2.DIST_L2, 3)[pixels].min() < POOL_PX:
        return False
    return all(median_of(np.abs(z[r, c][pixels])) < SAME_PICTURE_NOISE for o, z in zs.items() if o != offset)


def has_edge(evidence: np.ndarray, rows: slice, cols: slice, mask: np.ndarray, strength: float) -> bool:
    """Whether the difference falls off at the candidate's edge (a ring 3-7 px outside it)."""
    height, width = evidence.shape
    pad = 8
    r0, r1 = max(0, rows.start - pad), min(height, rows.stop + pad)
    c0, c1 = max(0, cols.start - pad), min(width, cols.stop + pad)
    own = np.zeros((r1 - r0, c1 - c0), np.uint8)
    own[rows.start - r0:rows.stop - r0, cols.start - c0:cols.stop - c0] = mask
    ring = (cv2.dilate(own, np.ones((15, 15), np.uint8)) > 0) & ~(cv2.dilate(own, np.ones((7, 7), np.uint8)) > 0)
    if ring.sum() < 16:
        return True  # it fills its surroundings up to the frame edge: nothing to compare with
    return median_of(evidence[r0:r1, c0:c1][ring]) <= EDGE_DROP * strength


def pair_agreement(sources: list[Neighbour], rows: slice, cols: slice, mask: np.ndarray,
                   sigma: np.ndarray) -> float:
    """Median difference (grain units) between the two supporting neighbours that agree best, one per side
    where there are both."""
    sides = by_side(sources)
    pairs = ([(a, b) for a in sides[-1] for b in sides[1]] if sides[-1] and sides[1]
             else [(a, b) for i, a in enumerate(sources) for b in sources[i + 1:]])
    if not pairs:
        return np.inf
    s = sigma[mask]
    return min(median_of(np.abs(a.warped[rows, cols][mask] - b.warped[rows, cols][mask]) / s) for a, b in pairs)


def shared_area(z: np.ndarray, sign: float, rows: slice, cols: slice, mask: np.ndarray, strength: float) -> float:
    """The share of the candidate a neighbour shows too (pooled over the grain): the same dirt, or a light gap
    between two walking men, covers nearly all of it; a web-like blotch the next frame's darker sky overlaps, a
    part."""
    r0, r1 = max(0, rows.start - POOL_PX), min(z.shape[0], rows.stop + POOL_PX)
    c0, c1 = max(0, cols.start - POOL_PX), min(z.shape[1], cols.stop + POOL_PX)
    pooled = cv2.blur(sign * z[r0:r1, c0:c1], (POOL_PX, POOL_PX))
    inside = pooled[rows.start - r0:rows.stop - r0, cols.start - c0:cols.stop - c0][mask]
    return float(np.mean(inside < SHARED_LEVEL * strength))


class OwnDirt:
    """Where this frame differs in direction `sign` from every other frame (pooled): its own dirt. Not a trace of
    a moving object, whose two neighbours may both hold it where a swinging arm turns, the next two not. Worked
    out only over the regions asked for (a candidate's surroundings), each once."""

    def __init__(self, zs: dict[int, np.ndarray], sign: float):
        self.zs, self.sign = zs, sign
        self._done: dict[tuple[int, int, int, int], np.ndarray] = {}

    def pooled(self, rows: slice, cols: slice) -> np.ndarray:
        """How far this frame differs in direction `sign` from every other frame there (grain units, pooled)."""
        key = (rows.start, rows.stop, cols.start, cols.stop)
        if key not in self._done:
            height, width = next(iter(self.zs.values())).shape
            pad = POOL_PX // 2 + 1  # the pooling reaches this far: inside, the values are the whole frame's
            r0, r1 = max(0, rows.start - pad), min(height, rows.stop + pad)
            c0, c1 = max(0, cols.start - pad), min(width, cols.stop + pad)
            everyone = pixelwise(np.minimum, [self.sign * z[r0:r1, c0:c1] for z in self.zs.values()])
            pooled = cv2.blur(np.clip(everyone, -2.0, 8.0), (POOL_PX, POOL_PX))
            self._done[key] = pooled[rows.start - r0:rows.stop - r0, cols.start - c0:cols.stop - c0]
        return self._done[key]


LIMB_MIN_AREA_PX = 100     # spike detections from this size are checked for a moving limb's trace too
UNDER_DISAGREEMENT = 0.7   # ... and left when the frames on either side differ from each other under them by this
                           # share of the defect's own difference: dirt lies over picture they both show alike


def picture_differs_under(clean: list[Neighbour], rows: slice, cols: slice, inside: np.ndarray, low: float) -> bool:
    """Whether the frames that do not share a defect, each pair across it, show different picture under it (a
    turning shoe, a hand at a door, each frame in its own place), as much as UNDER_DISAGREEMENT of how far the
    defect stands out from them."""
    sides = by_side(clean)
    if not (sides[-1] and sides[1]):
        return False
    # from their differences to this frame, which are corrected for flicker and block offsets
    apart = min(median_of(np.abs(a.z[rows, cols][inside] - b.z[rows, cols][inside]))
                for a in sides[-1] for b in sides[1])
    stands_out = min(median_of(np.abs(n.z[rows, cols][inside])) for n in clean)
    return apart >= UNDER_DISAGREEMENT * max(stands_out, low)


def moving_limbs(dust: DustMap, neighbours: list[Neighbour], low: float) -> DustMap:
    """The spike detector's map without its larger defects that, in all but one (at least two) of the frames not
    sharing them, have beside them what a moving object left behind (the blotch test): a fast limb's hand, which
    the spike detector's rigid search does not find once it turns or blurs."""
    large = [d for d in dust.defects if d.area >= LIMB_MIN_AREA_PX]
    if not large or len(neighbours) < 2:
        return dust
    zs = {n.offset: n.z for n in neighbours}
    owns = {sign: OwnDirt(zs, -sign) for sign in (-1.0, 1.0)}  # this frame's own dirt of the other polarity
    dropped = set()
    for defect in large:
        x, y, w, h = defect.bbox
        rows, cols = slice(y, y + h), slice(x, x + w)
        inside = dust.labels[rows, cols] == defect.label
        clean = [n for n in neighbours if median_of(np.abs(n.z[rows, cols][inside])) >= low]
        if len(clean) < 2:
            continue
        if picture_differs_under(clean, rows, cols, inside, low):
            dropped.add(defect.label)
            continue
        sign = 1.0 if defect.polarity == "bright" else -1.0
        # all but one: a frame two away may have the limb out of reach, or another frame's dirt beside it by chance
        need = min(len(clean), max(2, len(clean) - 1))
        traced = [n.offset for n in clean if left_behind(n.z, sign, rows, cols, inside, owns[sign])]
        if len(traced) >= need or held_at_turn(neighbours, clean, traced, rows, cols, inside):
            dropped.add(defect.label)
    return dust.without(dropped)


def held_at_turn(neighbours: list[Neighbour], clean: list[Neighbour], traced: list[int], rows: slice, cols: slice,
                 inside: np.ndarray) -> bool:
    """Whether a defect is a limb held still on two frames at the turn of its swing: the nearest frame on one side
    shows it exactly (the same picture, not just within the threshold), and the only trace of a moving object
    beside it is in the frame two away on the other side, where the limb came from or goes (the frame one away
    still overlaps it). Dirt shared by two frames has another frame's dirt beside it there only by chance."""
    sides = by_side(neighbours)
    if len(traced) != 1 or not (sides[-1] and sides[1]):
        return False
    same = [n for n in neighbours if n not in clean
            and median_of(np.abs(n.z[rows, cols][inside])) < SAME_PICTURE_NOISE]
    if len(same) != 1 or abs(same[0].offset) != 1:
        return False
    return traced[0] == -2 * same[0].offset


@dataclass
class GrainUnder:
    """The film's grain at the brightness of the picture under the damage (a compensated neighbour), read from
    its noise level table only where it is needed."""

    table: np.ndarray | None
    under: np.ndarray  # luma of the picture under the damage

    def at(self, rows: slice, cols: slice) -> np.ndarray:
        return grain_from_table(self.table, self.under[rows, cols])


def grain_at(neighbour: Neighbour, grain: GrainUnder | None, rows: slice, cols: slice) -> np.ndarray | np.float32:
    if grain is not None:
        return grain.at(rows, cols)
    return neighbour.grain[rows, cols] if neighbour.grain is not None else np.float32(SIGMA_FLOOR)


def inside_of(neighbour: Neighbour) -> np.ndarray:
    return neighbour.inside if neighbour.inside is not None else inside_frame(neighbour.flow)


def strays(neighbour: Neighbour, cameras: CameraMotions, rows: slice, cols: slice, mask: np.ndarray) -> bool:
    """Whether the neighbour's flow over the masked region lies more than STRAY_PX from its camera's motion there."""
    moved = median_xy(neighbour.flow[rows, cols][mask])
    typical = typical_motion(neighbour.flow)
    if np.hypot(*(moved - typical)) <= 0.5 * STRAY_PX:
        return False  # near the frame's own motion: no camera fit needed to call it a match
    ys, xs = np.nonzero(mask)
    expected = cameras[neighbour.offset] @ np.array([cols.start + xs.mean(), rows.start + ys.mean(), 1.0])
    return float(np.hypot(*(moved - expected))) > STRAY_PX


def box_area(box: list[int]) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def search_reduced(current: np.ndarray, neighbours: list[Neighbour], levels: dict[int, float],
                   grain: GrainUnder | None, min_area: int) -> list[tuple[slice, slice]]:
    """Windows of the frame (rows, cols) around every place a blotch could be, found on every SEARCH_SCALE-th
    pixel with eased thresholds; overlapping windows are merged."""
    height, width = current.shape
    scale = SEARCH_SCALE

    def reduced(image: np.ndarray) -> np.ndarray:  # a pixel in SEARCH_SCALE: z keeps its meaning, pooling its reach
        return image[::scale, ::scale]

    small = reduced(current)
    small_grain = None if grain is None else grain_from_table(grain.table, reduced(grain.under))
    zs = {}
    for n in neighbours:
        g = small_grain if grain is not None else reduced(n.grain) if n.grain is not None else SIGMA_FLOOR
        sigma = np.maximum(np.sqrt(np.square(g) + np.square(np.float32(MISREGISTRATION_PX) * reduced(n.edges))),
                           np.float32(SIGMA_FLOOR))  # noise() on views
        zs[n.offset] = difference_z(small, reduced(n.warped), reduced(inside_of(n)), sigma, levels[n.offset])
    sides = by_side(neighbours)
    boxes = []
    pool = (POOL_PX // scale) | 1  # odd, about the same reach
    for sign in (-1.0, 1.0):
        evidence = side_evidence(zs, sign) if sides[-1] and sides[1] else \
            pixelwise(np.minimum, [sign * z for z in zs.values()])
        pooled = cv2.blur(np.clip(evidence, -2.0, 8.0), (pool, pool))
        seeds = ((pooled >= SEARCH_EASE * POOLED_SEED) & (evidence >= SEARCH_EASE * PIXEL_EVIDENCE)).astype(np.uint8)
        count, _, stats = components(seeds, JOIN_PX // scale)
        for x, y, w, h, area in stats[1:]:
            if area * scale * scale >= SEARCH_AREA_EASE * min_area:
                boxes.append([max(0, x * scale - WINDOW_PAD), max(0, y * scale - WINDOW_PAD),
                              min(width, (x + w) * scale + WINDOW_PAD), min(height, (y + h) * scale + WINDOW_PAD)])
    merged = True
    while merged:  # windows that overlap much become one (those that overlap little are cheaper apart)
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                union = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                if box_area(union) <= box_area(a) + box_area(b) - box_area(
                        [max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])]):
                    boxes[i] = union
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return [(slice(int(y0), int(y1)), slice(int(x0), int(x1))) for x0, y0, x1, y1 in boxes]


def grow_into_fringe(blotch: Blotch, zs: dict[int, np.ndarray], sign: float, height: int, width: int) -> None:
    """Grow a repaired blotch's mask over the faint fringe joined to it, where every frame it is filled from still
    differs (pooled, GROW_POOLED grain units) and they agree, up to GROW_PX: a stain fades out, and a fill that
    stops where the stain is still faint leaves a ring."""
    y0, y1 = max(0, blotch.rows.start - GROW_PX), min(height, blotch.rows.stop + GROW_PX)
    x0, x1 = max(0, blotch.cols.start - GROW_PX), min(width, blotch.cols.stop + GROW_PX)
    crops = [sign * zs[n.offset][y0:y1, x0:x1] for n in blotch.sources]
    everyone = pixelwise(np.minimum, crops)
    sides = by_side(blotch.sources)
    if blotch.scattered and sides[-1] and sides[1]:
        pooled = [cv2.blur(np.clip(c, -2.0, 8.0), (POOL_PX, POOL_PX)) for c in crops]
        # smut: its pieces lie in fainter smut at about a grain unit, where each frame alone dips under the level
        # here and there; each side's frames averaged (grain averages out) still differ, and no frame shows the
        # picture as this one does (a solid blotch has an edge, and keeps the rule below)
        means = [np.mean([p for p, n in zip(pooled, blotch.sources) if (n.offset > 0) == (k > 0)], axis=0)
                 for k in (-1, 1)]
        weak = (pixelwise(np.minimum, means) >= GROW_POOLED) & (
            pixelwise(np.minimum, pooled) >= GROW_EACH * GROW_POOLED)
    else:  # one side only: nothing on the other side confirms, so every frame must
        weak = cv2.blur(np.clip(everyone, -2.0, 8.0), (POOL_PX, POOL_PX)) >= GROW_POOLED
    if len(crops) > 1:  # ... and they agree there (over moving picture beside it they would not)
        spread = pixelwise(np.maximum, crops) - everyone
        weak &= cv2.blur(spread, (POOL_PX, POOL_PX)) <= max(AGREEMENT * blotch.evidence, GROW_SPREAD)
    mask = np.zeros(weak.shape, np.uint8)
    mask[blotch.rows.start - y0:blotch.rows.stop - y0, blotch.cols.start - x0:blotch.cols.stop - x0] = blotch.mask
    near = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * GROW_PX + 1, 2 * GROW_PX + 1))) > 0
    count, labels = cv2.connectedComponents(((weak & near) | (mask > 0)).astype(np.uint8), connectivity=8)
    joined = np.zeros(count, bool)
    joined[np.unique(labels[mask > 0])] = True
    joined[0] = False
    grown = joined[labels]
    ys, xs = np.flatnonzero(grown.any(axis=1)), np.flatnonzero(grown.any(axis=0))
    blotch.rows, blotch.cols = slice(y0 + int(ys[0]), y0 + int(ys[-1]) + 1), slice(x0 + int(xs[0]), x0 + int(xs[-1]) + 1)
    blotch.mask = grown[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]


def edge_pair(neighbours: list[Neighbour], further: Neighbour | None) -> tuple[Neighbour, list[Neighbour]] | None:
    """Beside a shot edge, the frame that would share two-frame dirt with this one (the one across, or the nearest
    when there is none) and the two frames past it on the long side; None elsewhere."""
    sides = by_side(neighbours)
    short, long = (sides[-1], sides[1]) if len(sides[-1]) <= len(sides[1]) else (sides[1], sides[-1])
    if len(short) > 1 or not long:
        return None
    long = sorted(long + ([further] if further is not None else []), key=lambda n: abs(n.offset))
    partner, rest = (short[0], long[:2]) if short else (long[0], long[1:3])
    return (partner, rest) if len(rest) == 2 else None


def find_blotches(current: np.ndarray, neighbours: list[Neighbour], max_area: int, grain: GrainUnder | None = None,
                  min_area: int = BLOTCH_MIN_AREA_PX, further: Neighbour | None = None,
                  motion_limit: float | None = None) -> list[Blotch]:
    """The large blotches of the current frame's luma, repaired or (unsure) left, from its compensated
    neighbours; `grain` is the film's grain per pixel of the picture under the damage (else the neighbours').
    Beside a shot edge, dirt this frame shares with the frame across (or, on a shot's first or last frame, with
    the next one) is looked for against the two frames past it; `further` is the one past the long side. On a
    shot's first or last frame a blotch, and anywhere a scattered cluster, on picture moving against the camera by
    more than half `motion_limit` (px a frame) is left."""
    found = blotches_against(current, neighbours, max_area, grain, min_area)
    pair = edge_pair(neighbours, further)
    if pair is not None:
        partner, rest = pair
        found += [blotch for blotch in blotches_against(current, rest, max_area, grain, min_area, partner)
                  if not any(overlaps(blotch, other) for other in found)]
    if motion_limit is not None:
        sides = by_side(neighbours)
        one_side = not (sides[-1] and sides[1])
        leave_on_moving_picture([b for b in found if one_side or b.scattered], neighbours, current.shape,
                                motion_limit)
    # a scattered cluster left is not reported: its pieces were never a blotch (on real film, mostly a walking
    # figure's), and the spike detector judges them as before
    return [b for b in found if b.repaired or not b.scattered]


def leave_on_moving_picture(found: list[Blotch], neighbours: list[Neighbour], shape: tuple[int, int],
                            limit: float) -> None:
    """On a shot's first or last frame nothing on the other side confirms a blotch: a figure moving there (a bright
    arm over a dark coat) stands out from the two frames after it as dirt does, so motion alone leaves it. So is
    a scattered cluster anywhere: the small pieces a walking figure's legs and the ground beside them leave join
    up as smut does."""
    cameras = CameraMotions(neighbours)
    for blotch in found:
        if not blotch.repaired:
            continue
        labels = np.zeros(shape, np.int32)
        labels[blotch.rows, blotch.cols][blotch.mask] = 1
        if own_motion(blotch.steady or neighbours, labels, 1, blotch.bbox, cameras) > EDGE_MOTION_FACTOR * limit:
            blotch.repaired, blotch.reason = False, SCATTERED_MOVING if blotch.scattered else EDGE_MOVING


def candidates(seeds: np.ndarray, min_area: int) -> list[tuple[np.ndarray, np.ndarray, int, bool]]:
    """(labels, stats, label, scattered) of each place a blotch may be: every connected piece of the seeds, and
    every cluster of pieces less than JOIN_PX apart of which no piece alone reaches `min_area` (faint smut, a
    spray of specks: the pooled evidence of such dirt breaks up into small pieces)."""
    count, labels, stats = components(seeds)
    found = [(labels, stats, k, False) for k in range(1, count)]
    if count > 2:
        joined, cluster_labels, cluster_stats = components(seeds, JOIN_PX)
        largest = np.zeros(joined, np.int32)
        np.maximum.at(largest, cluster_labels[labels > 0], stats[labels[labels > 0], 4])
        found += [(cluster_labels, cluster_stats, k, True) for k in range(1, joined)
                  if largest[k] < min_area <= cluster_stats[k, 4] and largest[k] < cluster_stats[k, 4]]
    return found


def own_part(zs: dict[int, np.ndarray], sign: float, rows: slice, cols: slice, mask: np.ndarray,
             min_area: int) -> tuple[slice, slice, np.ndarray] | None:
    """(rows, cols, mask) of the part of a candidate that differs from every other frame (each pixel, gaps of
    grain closed), when it reaches `min_area`; else None."""
    everyone = pixelwise(np.minimum, [sign * z[rows, cols] for z in zs.values()])
    part = mask & (everyone >= PIXEL_EVIDENCE)
    if np.count_nonzero(part) < min_area:
        return None
    part = mask & (cv2.morphologyEx(part.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0) & (
        everyone >= 0.5 * PIXEL_EVIDENCE)
    ys, xs = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
    return (slice(rows.start + int(ys[0]), rows.start + int(ys[-1]) + 1),
            slice(cols.start + int(xs[0]), cols.start + int(xs[-1]) + 1), part[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1])


def overlaps(a: Blotch, b: Blotch) -> bool:
    y0, y1 = max(a.rows.start, b.rows.start), min(a.rows.stop, b.rows.stop)
    x0, x1 = max(a.cols.start, b.cols.start), min(a.cols.stop, b.cols.stop)
    if y0 >= y1 or x0 >= x1:
        return False
    here = a.mask[y0 - a.rows.start:y1 - a.rows.start, x0 - a.cols.start:x1 - a.cols.start]
    there = b.mask[y0 - b.rows.start:y1 - b.rows.start, x0 - b.cols.start:x1 - b.cols.start]
    return bool((here & there).any())


def blotches_against(current: np.ndarray, neighbours: list[Neighbour], max_area: int, grain: GrainUnder | None,
                     min_area: int, partner: Neighbour | None = None) -> list[Blotch]:
    """find_blotches against these neighbours; with a `partner`, only dirt that frame shows as this one does (the
    two-frame dirt beside a shot edge), held to the shot edge's stricter rule."""
    sides = by_side(neighbours)
    if not neighbours or not (sides[-1] and sides[1]) and len(neighbours) < 2:
        return []
    levels = {n.offset: flicker_level(current, n) for n in neighbours}
    windows = search_reduced(current, neighbours, levels, grain, min_area)
    if not windows:
        return []
    height, width = current.shape
    # at full size only around the candidates: each test looks at most WINDOW_PAD px around its own
    zs = {n.offset: np.zeros((height, width), np.float32) for n in neighbours}
    sigma = np.ones((height, width), np.float32)
    shared = np.zeros((height, width), np.float32) if partner is not None else None
    if partner is not None:
        levels[partner.offset] = flicker_level(current, partner)

    def full_size(window: tuple[slice, slice]) -> None:  # per pixel: a region worked out twice comes out the same
        sigmas = [noise(n.edges[window], grain_at(n, grain, *window)) for n in neighbours]
        for n, sg in zip(neighbours, sigmas):
            zs[n.offset][window] = difference_z(current[window], n.warped[window], inside_of(n)[window], sg,
                                                levels[n.offset])
        sigma[window] = pixelwise(np.minimum, sigmas)
        if shared is not None:
            sg = noise(partner.edges[window], grain_at(partner, grain, *window))
            moved = difference_z(current[window], partner.warped[window], inside_of(partner)[window], sg,
                                 levels[partner.offset])
            # dirt on the print stays where it is on the frame while the camera pans: a spray of fine specks the
            # picture's motion carries off itself is shared where the frame itself (not the picture) agrees
            still = difference_z(current[window], partner.luma[window], True, sg, levels[partner.offset])
            shared[window] = np.where(np.abs(still) < np.abs(moved), still, moved)

    for window in windows:
        full_size(window)
    found: list[Blotch] = []
    seen: set[tuple] = set()
    cameras = CameraMotions(neighbours)
    for sign in (-1.0, 1.0):
        evidence = np.zeros((height, width), np.float32)
        # the frame beside a shot edge that shares the dirt counts too: picture only it shows is a moved object's
        own_other = OwnDirt(zs if shared is None else {**zs, partner.offset: shared}, -sign)
        for rows_w, cols_w in windows:
            local = {o: z[rows_w, cols_w] for o, z in zs.items()}
            evidence[rows_w, cols_w] = side_evidence(local, sign) if sides[-1] and sides[1] else \
                pixelwise(np.minimum, [sign * z for z in local.values()])
            window_evidence = evidence[rows_w, cols_w]
            pooled = cv2.blur(np.clip(window_evidence, -2.0, 8.0), (POOL_PX, POOL_PX))
            seeds = ((pooled >= POOLED_SEED) & (window_evidence >= PIXEL_EVIDENCE)).astype(np.uint8)
            for labels, stats, label, scattered in candidates(seeds, min_area):
                x, y, w, h, area = (int(v) for v in stats[label])
                if area < min_area:
                    continue
                if (x < BORDER_PX and cols_w.start > 0 or y < BORDER_PX and rows_w.start > 0
                        or x + w > cols_w.stop - cols_w.start - BORDER_PX and cols_w.stop < width
                        or y + h > rows_w.stop - rows_w.start - BORDER_PX and rows_w.stop < height):
                    continue  # cut by the window (pooling differs there): another window holds it whole
                core = labels[y:y + h, x:x + w] == label
                x, y = x + cols_w.start, y + rows_w.start
                if (sign, x, y, w, h, area) in seen:
                    continue  # found whole in an overlapping window already
                seen.add((sign, x, y, w, h, area))
                reach = (slice(max(0, y - WINDOW_PAD), min(height, y + h + WINDOW_PAD)),
                         slice(max(0, x - WINDOW_PAD), min(width, x + w + WINDOW_PAD)))
                if not (rows_w.start <= reach[0].start and reach[0].stop <= rows_w.stop
                        and cols_w.start <= reach[1].start and reach[1].stop <= cols_w.stop):
                    full_size(reach)  # larger than the search saw: its tests look past the window
                rows, cols = slice(y, y + h), slice(x, x + w)
                # close small gaps (grain inside a translucent blotch) without growing past its edge
                mask = cv2.morphologyEx(core.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
                mask &= evidence[rows, cols] >= 0.5 * PIXEL_EVIDENCE
                strength = median_of(evidence[rows, cols][mask])
                if strength < REGION_EVIDENCE or not has_edge(evidence, rows, cols, mask, strength):
                    continue
                if shared is not None and not (
                        median_of(np.abs(shared[rows, cols][mask])) <= max(SHARED_CHANGE * strength, PIXEL_EVIDENCE)
                        and shared_area(shared, sign, rows, cols, mask, strength) >= SHARED_AREA):
                    continue  # the frame beside it does not show it as this one does: not two-frame dirt
                if mask.sum() > max_area:
                    found.append(Blotch(rows, cols, mask, int(sign), strength, 0.0, repaired=False, reason=TOO_LARGE))
                    continue
                sources = [n for n in neighbours if median_of(sign * zs[n.offset][rows, cols][mask]) >= 0.5 * strength]
                if not sources or median_of(np.min([sign * (current[rows, cols] - n.warped[rows, cols])[mask]
                                                    for n in sources], axis=0)) < MIN_CONTRAST:
                    continue
                # one side may differ only where its flow strays from the camera: a wrong match (flat sky across a
                # splice jolt, the frame beside it showing the picture as this one does) or a fast limb
                trusted = sources if not (sides[-1] and sides[1] and partner is None) else [
                    n for n in sources if not strays(n, cameras, rows, cols, mask)]
                held, kept = by_side(sources), by_side(trusted)
                # ... and there the nearest frame is no source (a blotch on the nearest frame drags its own flow)
                one_sided = any(held[k] and not kept[k] and min(sides[k], key=lambda n: abs(n.offset)) not in sources
                                for k in (-1, 1))
                alike = by_side([n for n in neighbours if n not in sources])
                steady = None
                nearest = {min(side, key=lambda n: abs(n.offset)).offset for side in sides.values() if side}
                if alike[-1] and alike[1] and not nearest <= {n.offset for n in alike[-1] + alike[1]}:
                    # a frame on each side shows the picture as this one does, not both nearest: what differs is
                    # theirs (a blotch on one, another on the other), and this frame's own specks there are the
                    # spike detector's to find
                    # ... unless part of it differs from every frame: this frame's own dirt, which the spike
                    # detector loses when its pieces join up with the other frames' blotches around them
                    narrowed = None if scattered else own_part(zs, sign, rows, cols, mask, min_area)
                    if narrowed is None:
                        continue
                    rows, cols, mask = narrowed
                    # how far it stands out from the frames without the others' blotches
                    strength = median_of(pixelwise(np.minimum, [sign * z[rows, cols][mask] for z in zs.values()]))
                    # filled from, and its motion judged against, the frames that do not hold blotches of their own
                    # there (they differ from it far more than it stands out)
                    sources = steady = [n for n in neighbours if 0.5 * strength <= median_of(
                        sign * zs[n.offset][rows, cols][mask]) <= OTHERS_DIRT * strength]
                    if (strength < REGION_EVIDENCE or not all(by_side(sources).values()) or median_of(np.min(
                            [sign * (current[rows, cols] - n.warped[rows, cols])[mask] for n in sources],
                            axis=0)) < MIN_CONTRAST):
                        continue
                    alike = by_side([])
                    scattered = True  # its pieces are specks: left, and not reported, over moving picture
                # faint specks of its own: the frames it is filled from need agree only as closely as grain lets them
                agreement = pair_agreement(sources, rows, cols, mask, sigma[rows, cols]) / max(
                    strength, 1e-6 if steady is None else GROW_SPREAD / AGREEMENT)
                blotch = Blotch(rows, cols, mask, int(sign), strength, agreement, sources, scattered=scattered,
                                steady=steady)
                if alike[-1] and alike[1]:
                    # the nearest frame on each side shows it too: on three frames, a limb at the turn of its swing
                    blotch.repaired, blotch.reason = False, THREE_FRAMES
                    found.append(blotch)
                    continue
                if one_sided:
                    blotch.repaired, blotch.reason = False, STRAYED
                    found.append(blotch)
                    continue
                # the frame that shares two-frame dirt shows it as it is here; one that shows it changed shows picture
                changed_there = any(median_of(np.abs(zs[n.offset][rows, cols][mask])) > max(SHARED_CHANGE * strength,
                                                                                           PIXEL_EVIDENCE)
                                    and shared_area(zs[n.offset], sign, rows, cols, mask, strength) >= SHARED_AREA
                                    for n in neighbours if n not in sources)
                # a moving object left its trace in every frame around; another frame's own dirt, in one
                found_traces = {n.offset: trace_beside(zs[n.offset], sign, rows, cols, mask, own_other)
                                for n in sources}
                traced = {o: t for o, t in found_traces.items() if t is not None}
                traces = len(traced)
                edge = not (sides[-1] and sides[1]) or partner is not None
                if edge and traces == 1:
                    # at a shot's edge nothing on the other side confirms: a trace is allowed only where it is one
                    # other frame's own dirt (the two-frame blotch at a shot's start beside the next frame's speck)
                    compared = zs if shared is None else {**zs, partner.offset: shared}
                    traces -= sum(their_dirt_apart(t, o, compared, rows, cols, mask) for o, t in traced.items())
                if len(traced) >= min(2, len(sources)) and not their_own_dirt(traced, sources):
                    blotch.repaired, blotch.reason = False, MOVING
                elif edge and not (
                        traces == 0 and len(sources) >= 2 and agreement <= ONE_SIDE_AGREEMENT
                        and strength >= ONE_SIDE_EVIDENCE):
                    # beside a cut a figure entering, or one that stops, looks the same from one side: only a clear
                    # blotch, over picture that the two frames on that side show alike, with no trace beside it in
                    # either (nothing on the other side confirms), is repaired there
                    blotch.repaired, blotch.reason = False, SHOT_EDGE
                elif changed_there:
                    blotch.repaired, blotch.reason = False, CHANGED
                elif agreement > AGREEMENT:
                    blotch.repaired, blotch.reason = False, DISAGREE
                elif scattered and steady is None and not (agreement <= ONE_SIDE_AGREEMENT
                                                           and strength >= ONE_SIDE_EVIDENCE):
                    # pieces joined are less sure than one piece: held to the shot edge's rule (on real film a
                    # weak cluster was a jumped frame's buildings)
                    blotch.repaired, blotch.reason = False, SCATTERED_WEAK
                if blotch.repaired:
                    grow_into_fringe(blotch, zs, sign, height, width)
                found.append(blotch)
    return found

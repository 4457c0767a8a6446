"""Vertical line scratches: thin light or dark lines that persist over many frames, found from column profiles.

Per frame, each horizontal strip's column profile minus its running median leaves only ridges thinner than the
median window; a scratch is a ridge of one sign present in most strips. Ridges are linked into tracks across the
shot (slow drift allowed), and only tracks that persist are kept. Step edges and wide structures leave no ridge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.ndimage import maximum_filter1d, median_filter

STRIPS = 8
RIDGE_WINDOW_PX = 15  # a running median this wide ignores lines narrower than ~7 px and follows step edges
STRIP_COVERAGE = 0.85  # share of strips a ridge must cross (all but one of 8): a scratch runs the whole frame
STRIP_Z = 2.0  # a strip 'has' the ridge when it stands this many strip-noise units out
MAX_DRIFT_PX = 2.0  # a scratch moves at most this much sideways from one frame to the next
MAX_GAP_FRAMES = 3  # a track survives this many frames without a detection
MAX_HALF_WIDTH_PX = 4.0
MAX_SLANT = 0.01  # px per row: a scratch runs along the film, within a fraction of a degree of vertical
MAX_BEND_PX = 0.75  # RMS distance of the strips' ridge centres from one straight line


@dataclass
class ScratchLine:
    """A scratch in one frame: centre column (sub-pixel, at the frame's middle row), polarity (+1 light, -1 dark)."""

    x: float
    polarity: int
    strength: float
    track: int = -1


@dataclass
class ScratchTrack:
    """A scratch followed through a shot."""

    polarity: int
    frames: list[int] = field(default_factory=list)
    xs: list[float] = field(default_factory=list)
    strengths: list[float] = field(default_factory=list)

    @property
    def last(self) -> int:
        return self.frames[-1]

    def to_side(self) -> dict:
        return {"first": self.frames[0], "last": self.frames[-1], "frames": len(self.frames),
                "x": round(float(np.median(self.xs)), 2), "polarity": "light" if self.polarity > 0 else "dark"}


@dataclass
class ScratchAnalysis:
    """The scratches of one shot: per clip frame index, the lines expected in that frame."""

    lines: dict[int, list[ScratchLine]]
    tracks: list[ScratchTrack]


def column_ridges(luma: np.ndarray, strips: int = STRIPS) -> tuple[np.ndarray, np.ndarray]:
    """Per strip: the column profile's thin ridges (profile minus running median), and each strip's ridge noise."""
    height, width = luma.shape
    rows = max(1, height // strips)
    strips = max(1, min(strips, height // rows))
    profile = luma[:rows * strips].reshape(strips, rows, width).mean(axis=1, dtype=np.float64)
    base = median_filter(profile, size=(1, RIDGE_WINDOW_PX), mode="nearest")
    ridge = profile - base
    noise = np.median(np.abs(ridge - np.median(ridge, axis=1, keepdims=True)), axis=1) * 1.4826
    return ridge, np.maximum(noise, 1e-5)


def frame_candidates(luma: np.ndarray, threshold: float) -> list[ScratchLine]:
    """Lines of one frame: a thin ridge of one sign, strong over the full height and present in most strips."""
    ridge, noise = column_ridges(luma)
    z = ridge / noise[:, None]
    full = ridge.mean(axis=0)
    full_noise = max(float(np.median(np.abs(full - np.median(full)))) * 1.4826, 1e-6)
    found: list[ScratchLine] = []
    for polarity in (1, -1):
        zs = maximum_filter1d(polarity * z, 3, axis=1)  # a slightly slanted line shifts by a column per strip
        coverage = (zs >= STRIP_Z).mean(axis=0)
        strength = polarity * full / full_noise
        peak = (strength >= threshold) & (strength >= maximum_filter1d(strength, 7)) & (coverage >= STRIP_COVERAGE)
        for x in np.flatnonzero(peak):
            if straight_line(polarity * ridge, int(x), luma.shape[0]) is None:
                continue  # a picture edge that wanders (a drainpipe, a door frame in perspective)
            found.append(ScratchLine(_ridge_centre(polarity * full, int(x)), polarity, float(strength[x])))
    return found


def straight_line(signed_ridge: np.ndarray, x: int, height: int) -> tuple[float, float] | None:
    """(centre at the middle row, slant px/row) of a line through the strips' ridge centres near column x, or None
    when the centres do not lie on one near-vertical straight line."""
    strips, width = signed_ridge.shape
    rows = height / strips
    lo, hi = max(0, x - 3), min(width, x + 4)
    centres = np.array([_ridge_centre(s, lo + int(np.argmax(s[lo:hi]))) for s in signed_ridge])
    ys = (np.arange(strips) + 0.5) * rows - height / 2
    slant, centre = np.polyfit(ys, centres, 1)
    bend = float(np.sqrt(np.mean((centres - (centre + slant * ys)) ** 2)))
    if abs(slant) > MAX_SLANT or bend > MAX_BEND_PX:
        return None
    return float(centre), float(slant)


def _ridge_centre(profile: np.ndarray, x: int) -> float:
    """Sub-pixel centre of a positive ridge around column x (centroid of its upper part)."""
    lo, hi = max(0, x - 2), min(profile.size, x + 3)
    values = np.clip(profile[lo:hi] - 0.3 * profile[x], 0.0, None)
    total = float(values.sum())
    return float((np.arange(lo, hi) * values).sum() / total) if total > 0 else float(x)


def link_tracks(per_frame: list[tuple[int, list[ScratchLine]]], shifts: dict[int, float] | None = None
                ) -> list[ScratchTrack]:
    """Greedy nearest-neighbour linking of per-frame lines into tracks (same polarity, small drift, short gaps).

    A scratch either stays put on screen (scanner) or moves with the film in the gate (weave): `shifts` gives the
    picture's horizontal shift from the previous frame, and either explanation links.
    """
    shifts = shifts or {}
    tracks: list[ScratchTrack] = []
    for index, lines in per_frame:
        open_tracks = [t for t in tracks if index - t.last <= MAX_GAP_FRAMES + 1]
        for line in sorted(lines, key=lambda ln: -ln.strength):
            best, best_distance = None, MAX_DRIFT_PX
            for track in open_tracks:
                if track.polarity != line.polarity or track.last == index:
                    continue
                moved = sum(shifts.get(i, 0.0) for i in range(track.last + 1, index + 1))
                step = min(abs(line.x - track.xs[-1]), abs(line.x - track.xs[-1] - moved))
                distance = step / math.sqrt(index - track.last)
                if distance <= best_distance:
                    best, best_distance = track, distance
            if best is None:
                best = ScratchTrack(line.polarity)
                tracks.append(best)
                open_tracks.append(best)
            best.frames.append(index)
            best.xs.append(line.x)
            best.strengths.append(line.strength)
    return tracks


def persistent(tracks: list[ScratchTrack], shot_length: int) -> list[ScratchTrack]:
    """Tracks long enough to be scratches: present in a quarter of the shot and at least 3 frames (all of a short shot)."""
    needed = min(shot_length, max(3, int(math.ceil(0.25 * shot_length))), 12)
    return [t for t in tracks if len(t.frames) >= needed]


def horizontal_shift(previous: np.ndarray, current: np.ndarray) -> float:
    """Global horizontal displacement of the picture from `previous` to `current` (phase correlation), px."""
    window = cv2.createHanningWindow(previous.shape[::-1], cv2.CV_32F)
    (dx, _dy), _response = cv2.phaseCorrelate(previous.astype(np.float32), current.astype(np.float32), window)
    return float(dx)


def analyse_shot(lumas, shot_start: int, shot_end: int, threshold: float) -> ScratchAnalysis:
    """Scratch tracks of one shot from its frames' luma (an iterable of (index, luma), consumed once)."""
    per_frame: list[tuple[int, list[ScratchLine]]] = []
    shifts: dict[int, float] = {}
    previous: np.ndarray | None = None
    for index, luma in lumas:
        per_frame.append((index, frame_candidates(luma, threshold)))
        small = cv2.resize(luma, (luma.shape[1] // 2, luma.shape[0] // 2), interpolation=cv2.INTER_AREA)
        if previous is not None:
            shifts[index] = horizontal_shift(previous, small) * 2.0
        previous = small
    tracks = persistent(link_tracks(per_frame, shifts), shot_end - shot_start)
    lines: dict[int, list[ScratchLine]] = {}
    for number, track in enumerate(tracks):
        frames = np.asarray(track.frames)
        xs = np.asarray(track.xs)
        strength = float(np.median(track.strengths))
        for index in range(int(frames[0]), int(frames[-1]) + 1):  # gaps are filled; process() re-checks each frame
            x = float(np.interp(index, frames, xs))
            lines.setdefault(index, []).append(ScratchLine(x, track.polarity, strength, number))
    return ScratchAnalysis(lines, tracks)


# --------------------------------------------------------------------------------------------------------------
# the scratch in one frame, as a mask


@dataclass
class ScratchMask:
    """Pixels of one scratch in one frame (a column band crop) and where it was confirmed."""

    line: ScratchLine
    x0: int
    mask: np.ndarray  # bool (height, band width), columns x0 ...
    strength: float


def locate_in_frame(luma: np.ndarray, line: ScratchLine, strips: int = 16) -> ScratchMask | None:
    """Confirm a tracked line in this frame, strip by strip, and draw its mask (None when it is not here)."""
    height, width = luma.shape
    reach = 6
    x0 = max(0, int(math.floor(line.x)) - reach - RIDGE_WINDOW_PX)
    x1 = min(width, int(math.ceil(line.x)) + reach + RIDGE_WINDOW_PX + 1)
    if x1 - x0 < RIDGE_WINDOW_PX:
        return None
    ridge, noise = column_ridges(luma[:, x0:x1], strips)
    signed = line.polarity * ridge
    rows = height // ridge.shape[0]
    centre = line.x - x0
    lo, hi = max(0, int(round(centre)) - 3), min(ridge.shape[1], int(round(centre)) + 4)
    local = signed[:, lo:hi]
    peak = local.max(axis=1)
    present = peak / noise >= STRIP_Z
    if present.mean() < 0.5:
        return None
    present = _close_gaps(present)
    full = signed[present].mean(axis=0)
    half = _half_width(full, int(round(centre)))
    strip_x = np.array([_ridge_centre(s, lo + int(np.argmax(s[lo:hi]))) for s in signed])
    strip_rows = (np.arange(ridge.shape[0]) + 0.5) * rows - height / 2
    slant, middle = np.polyfit(strip_rows[present], strip_x[present], 1)
    bend = float(np.sqrt(np.mean((strip_x[present] - (middle + slant * strip_rows[present])) ** 2)))
    if abs(slant) > MAX_SLANT or bend > 1.5 * MAX_BEND_PX:  # thinner strips than the analysis: noisier centres
        return None  # not one straight line in this frame: picture detail, not a scratch
    centres = middle + slant * (np.arange(height, dtype=np.float64) - height / 2)
    on = np.repeat(present, rows)
    on = np.concatenate([on, np.full(height - on.size, present[-1])])
    cols = np.arange(x1 - x0, dtype=np.float64)
    mask = (np.abs(cols[None, :] - centres[:, None]) <= half) & on[:, None]
    strength = float(np.median(peak[present] / noise[present]))
    return ScratchMask(line, x0, mask, strength)


def _close_gaps(present: np.ndarray) -> np.ndarray:
    """Fill single-strip gaps (a scratch fading for a moment is still one scratch)."""
    out = present.copy()
    inner = present[:-2] & ~present[1:-1] & present[2:]
    out[1:-1] |= inner
    return out


def _half_width(profile: np.ndarray, centre: int) -> float:
    """Half width of a positive ridge: twice its profile's standard deviation (a scratch's density falls off
    smoothly; two deviations hold all but its faintest edge), from the ridge's own second moment."""
    peak = float(profile[centre]) if 0 <= centre < profile.size else 0.0
    if peak <= 0:
        return 1.0
    left = right = centre
    while left > 0 and profile[left - 1] > 0.1 * peak and centre - left < MAX_HALF_WIDTH_PX:
        left -= 1
    while right < profile.size - 1 and profile[right + 1] > 0.1 * peak and right - centre < MAX_HALF_WIDTH_PX:
        right += 1
    columns = np.arange(left, right + 1, dtype=np.float64)
    weights = np.clip(profile[left:right + 1], 0.0, None)
    mean = float((columns * weights).sum() / weights.sum())
    spread = math.sqrt(float((weights * (columns - mean) ** 2).sum() / weights.sum()))
    return float(np.clip(2.0 * spread, 0.75, MAX_HALF_WIDTH_PX))


def inpaint_band(band: np.ndarray, mask: np.ndarray, radius: int = 3) -> np.ndarray:
    """OpenCV inpainting of a float RGB band under `mask`, channel by channel at 16 bits (OpenCV's float path
    assumes 0..255 values)."""
    mask8 = mask.astype(np.uint8)
    scale = 65535.0
    planes = [cv2.inpaint((np.clip(band[..., c], 0.0, 1.0) * scale + 0.5).astype(np.uint16), mask8, radius,
                          cv2.INPAINT_TELEA) for c in range(band.shape[2])]
    return np.dstack(planes).astype(np.float32) / np.float32(scale)

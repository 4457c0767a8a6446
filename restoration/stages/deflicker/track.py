"""A shot's brightness track and its fit: smooth light + changes of light + exposure steps + dips + flicker.

`measure_shot` reads the shot once: each picture's brightness relative to each of the `window` pictures before it,
on the content both show (chained dense flow on small lumas, `flicker.FlowChain`), for the whole frame and per
block. `fit_shot` solves those ratios for one brightness track over the whole shot (least squares over every pair,
so no drift), finds in it

- dips and flashes of up to MAX_DIP frames (off the running median): flicker, brought to their neighbours' level;
- steps that last (at least MIN_RUN frames on each side; a local quadratic plus a jump against a local quadratic,
  F-tested, and neither a cubic nor a corner may explain it as well): from STEP_FLOOR (8 %) up a change of
  light, followed (the shot's light is fitted apart on each side); smaller, an exposure step (a splice of a
  differently developed piece within the shot), removed: the pieces are brought to the level of the piece with the
  most pictures (the first, when as long);
- where no step is found so, one smaller exposure step over the whole shot whose light is otherwise flat or a
  straight fade: a level (a line, as brightness) with a jump against it and the light one and two terms richer,
  with the flicker left about the jump as the noise (its lag-1 correlation counted, so slow flicker is no step;
  `find_small_step`): removed;
- runs of up to MIN_RUN frames at the shot's start or end off the light of the frames next to them (a dip or
  flash there, a printer light changed a few frames late or early; `find_edge_runs`): brought to the shot's light;
- the smooth light of each piece, as brightness (a straight fade to black is a line there; its log is not): a
  Whittaker smoother (second differences) whose stiffness is chosen by modified generalised cross-validation,
  never bendier than a mean over `window` frames, robust to stray frames, free to turn sharply at the corners of
  straight fades (`find_corners`); kept only when it beats a line, and the line a flat level, by more than the
  shot's own frame-to-frame flicker gives by chance (`plain_light`): flicker's wander over a few frames is no fade;

and each frame's correction takes it to that smooth light. The block field (uneven flicker) is the robust level of
the block ratios over the ±window pictures lit alike, as before, from the same measurement.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy import linalg, sparse, stats
from scipy.ndimage import median_filter
from scipy.sparse.linalg import spsolve

from .flicker import (DIP_FLOOR, FLICKER_FLOOR, MIN_RUN, STEP_F, STEP_FLOOR, FlowChain, find_dips,
                      window_level)

# frames each side a step is tested over (local quadratic + jump; 12 found a 4.4-spread step half the time)
STEP_REACH = 20
STEP_SHAPE = 12.0  # ... and a cubic must leave this many noise variances more than the jump does
LAMBDA_MAX = 1e9  # stiffest smoother tried (a straight line, in effect)
LAMBDA_STEPS = 24  # stiffnesses tried between the window's and LAMBDA_MAX
GCV_GAMMA = 1.4  # modified GCV (each degree of freedom counted 1.4 times): plain GCV bends too often on short pieces
SMOOTH_ROBUST = 3  # biweight refits of the smooth light (stray frames do not bend it)
FIELD_CHUNK = 128  # frames whose block fields are fitted at once
SMOOTH_CUTOFF = 4.5  # ... frames further than this many spreads from it are left out
# a level, a line and the smooth curve are nested models of a piece's light; the richer one is taken only when it
# explains this much more of the track than the flicker (measured on the shot) could by chance: 1e-4 per choice
LIGHT_P = 1e-4


@dataclass
class ShotBrightness:
    """What `measure_shot` found: per unique picture (in shot order) its brightness relative to the pictures
    before it (lag 1 .. radius), whole-frame and per block, and the repeats (shot position -> original's)."""

    start: int
    positions: np.ndarray  # shot positions of the unique pictures
    repeats: dict[int, int]
    ratios: np.ndarray  # (n, radius): log brightness of picture k - lag relative to picture k
    shared: np.ndarray  # (n, radius): share of the picture the ratio was measured on (0: none)
    blocks: np.ndarray  # (n, radius, rows, cols) float32
    support: np.ndarray  # (n, radius, rows, cols) float32


@dataclass
class ShotCorrection:
    """What `fit_shot` gives `process`: per unique picture its gain and block field (before the picture's own
    normalisation), and what the fit found (for side data and tests)."""

    start: int
    order: dict[int, int]  # shot position of a unique picture -> its row
    repeats: dict[int, int]
    gain: np.ndarray  # (n,) multiplicative
    field: np.ndarray  # (n, rows, cols) multiplicative, not yet normalised
    averaged: np.ndarray  # (n,) pictures of the frame's piece of light the smooth light was fitted to
    track: np.ndarray  # (n,) measured log brightness
    target: np.ndarray  # (n,) log brightness the picture is taken to
    steps: list[tuple[int, float, bool]]  # (shot position, log size, kept as a change of light)
    dips: np.ndarray  # (n,) bool

    def row(self, position: int) -> int:
        return self.order[self.repeats.get(position, position)]


def measure_shot(frames, shot_start: int, radius: int, grid: tuple[int, int]) -> ShotBrightness:
    chain = FlowChain()
    recent: deque[tuple[int, np.ndarray]] = deque(maxlen=radius)
    previous: np.ndarray | None = None
    positions, repeats = [], {}
    ratios, shared, blocks, support = [], [], [], []
    rows, cols = grid
    for index, frame in frames:
        position = index - shot_start
        if previous is not None and np.array_equal(frame, previous):
            repeats[position] = repeats.get(position - 1, position - 1)  # a repeat: one picture, measured once
            continue
        previous = frame
        r = np.zeros(radius)
        s = np.zeros(radius)
        b = np.zeros((radius, rows, cols), np.float32)
        u = np.zeros((radius, rows, cols), np.float32)
        if recent:
            indices = [i for i, _ in recent] + [index]
            pictures = [f for _, f in recent] + [frame]
            measures, _ = chain.window_brightness(indices, pictures, index, grid)
            for lag, measure in enumerate(reversed(measures[:-1])):
                r[lag], s[lag], b[lag], u[lag] = measure.ratio, measure.shared, measure.blocks, measure.support
        positions.append(position)
        ratios.append(r)
        shared.append(s)
        blocks.append(b)
        support.append(u)
        recent.append((index, frame))
    return ShotBrightness(shot_start, np.array(positions, int), repeats, np.array(ratios).reshape(-1, radius),
                          np.array(shared).reshape(-1, radius), np.array(blocks, np.float32),
                          np.array(support, np.float32))


def solve_track(ratios: np.ndarray, shared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log brightness per picture (mean 0) from every measured pair, and which pictures any pair reached."""
    n, radius = ratios.shape
    rows, cols, values = [], [], []
    eq = 0
    rhs = []
    for lag in range(1, radius + 1):
        k = np.arange(lag, n)
        use = shared[lag:, lag - 1] > 0
        k = k[use]
        count = k.size
        if not count:
            continue
        ids = eq + np.arange(count)
        rows += [ids, ids]
        cols += [k - lag, k]
        values += [np.ones(count), -np.ones(count)]
        rhs.append(ratios[k, lag - 1])
        eq += count
    reached = np.zeros(n, bool)
    if eq == 0:
        return np.zeros(n), reached
    a = sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(eq, n))
    reached[np.concatenate(cols)] = True
    rhs = np.concatenate(rhs)
    # a tiny pull of consecutive pictures together keeps pictures no pair reached (or parts no pair joins) defined
    diff = sparse.diags([np.ones(n - 1), -np.ones(n - 1)], [0, 1], shape=(max(n - 1, 0), n))
    normal = (a.T @ a + 1e-8 * (diff.T @ diff) + 1e-10 * sparse.identity(n)).tocsc()
    track = np.atleast_1d(spsolve(normal, a.T @ rhs))
    # pairs far off the track (a flow failure) left out, once
    residual = a @ track - rhs
    scale = max(1.4826 * float(np.median(np.abs(residual))), FLICKER_FLOOR)
    weight = np.clip(1.0 - (residual / (6 * scale)) ** 2, 0.0, 1.0) ** 2
    weighted = sparse.diags(weight) @ a
    normal = (a.T @ weighted + 1e-8 * (diff.T @ diff) + 1e-10 * sparse.identity(n)).tocsc()
    track = np.atleast_1d(spsolve(normal, weighted.T @ rhs))
    return track - track[reached].mean(), reached


def find_steps(track: np.ndarray, usable: np.ndarray) -> list[tuple[int, float]]:
    """Lasting steps in a brightness track: (first picture after it, log size), strongest first."""
    n = track.size
    steps: list[tuple[int, float]] = []
    if usable.sum() < 2 * MIN_RUN:
        return steps
    for _ in range(n // MIN_RUN):
        level = track - _step_sum(steps, n)
        best, found = STEP_F, None
        for k in range(MIN_RUN, n - MIN_RUN + 1):
            if any(k == s for s, _ in steps):
                continue
            lo, hi = max(0, k - STEP_REACH), min(n, k + STEP_REACH)
            t = np.arange(lo, hi)
            use = usable[lo:hi]
            before, after = use[:k - lo].sum(), use[k - lo:].sum()
            if before < MIN_RUN or after < MIN_RUN:
                continue
            t, y = t[use] - k + 0.5, level[lo:hi][use]
            scaled = t / STEP_REACH
            base = np.stack([np.ones(t.size), scaled, scaled ** 2], axis=1)
            jump = (t > 0).astype(np.float64)[:, None]
            design = np.concatenate([base, jump], axis=1)
            coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
            rss = float(np.sum((y - design @ coefficients) ** 2))
            whole = float(np.sum((y - base @ np.linalg.lstsq(base, y, rcond=None)[0]) ** 2))
            noise = max(rss / max(t.size - 4, 1), FLICKER_FLOOR ** 2)
            score = (whole - rss) / noise
            if score <= best:
                continue
            # a jump, not the turn of a fade nor the corner of a straight one: a cubic and a corner near it (as
            # many terms) must explain it clearly worse
            bend = _rss(np.concatenate([base, scaled[:, None] ** 3], axis=1), y)
            for corner in range(-3, 4):
                hinge = np.maximum(t - corner, 0.0)[:, None] / STEP_REACH
                bend = min(bend, _rss(np.concatenate([base, hinge], axis=1), y))
            if (bend - rss) / noise > STEP_SHAPE:
                best, found = score, (k, float(coefficients[3]))
        if found is None:
            break
        steps.append(found)
    # each size again with the others taken out (a step found first was measured with the later ones still in)
    for _ in range(2):
        for number, (at, _) in enumerate(steps):
            others = track - _step_sum(steps[:number] + steps[number + 1:], n)
            steps[number] = (at, _local_jump(others, usable, at))
    return steps


SMALL_STEP_SHAPE = 4.0  # noise variances a line and a quadratic must leave above a small step over the whole shot


def find_small_step(track: np.ndarray, usable: np.ndarray, spread: float) -> list[tuple[int, float]]:
    """An exposure step too small for the local test (`find_steps`), found over the whole shot: the shot's light
    with a jump must beat that light alone by more than the shot's flicker gives by chance at any of the places
    (LIGHT_P), and the light one and two terms richer must fit worse than it (SMALL_STEP_SHAPE); only below
    STEP_FLOOR (a larger jump is the step test's). The light is a flat level, or, where no step is found on a flat
    level, a straight fade (as brightness, the jump a gain). [(first picture after it, log size)]"""
    n = track.size
    at = np.nonzero(usable)[0]
    if at.size < 4 * MIN_RUN:
        return []
    # frames far off their neighbours (a dip the running median missed) would weigh as a step: left out
    near = median_filter(track[at], size=2 * MIN_RUN - 1, mode="mirror")
    keep = np.abs(track[at] - near) <= max(SMOOTH_CUTOFF * spread, DIP_FLOOR)
    at, near = at[keep], near[keep]
    if at.size < 4 * MIN_RUN:
        return []
    places = [k for k in range(MIN_RUN, n - MIN_RUN + 1)
              if (at < k).sum() >= 2 * MIN_RUN and (at >= k).sum() >= 2 * MIN_RUN]
    if not places:
        return []
    t = (at - at.mean()) / max(n, 1)
    ones = np.ones(at.size)
    found = _small_jump(track[at], at, places, np.stack([ones, t, t * t], axis=1), 1, spread)
    if found is None:
        # along a straight fade, as brightness relative to the running median (flicker is a gain, so each picture
        # counts by its relative error, and a jump of the indicator is a gain step)
        relative = 1.0 / np.exp(near - near.max())
        light = np.exp(track[at] - near.max()) * relative
        powers = np.stack([ones, t, t * t, t ** 3], axis=1) * relative[:, None]
        # only inside a fade: the line must beat the flat level clearly (slow flicker wanders like a slope too)
        residual = light - powers[:, :2] @ np.linalg.lstsq(powers[:, :2], light, rcond=None)[0]
        slope = float(residual @ residual)
        flicker = _mean_flicker(residual, slope, spread ** 2, at.size - 2)
        if (_rss(powers[:, :1], light) - slope) / flicker <= stats.chi2.isf(LIGHT_P, 1):
            return []
        found = _small_jump(light, at, places, powers, 2, spread)
        found = None if found is None or found[1] <= -1.0 else (found[0], float(np.log1p(found[1])))
    return [found] if found is not None and abs(found[1]) < STEP_FLOOR else []


def _mean_flicker(residual: np.ndarray, rss: float, floor: float, dof: int) -> float:
    """The flicker left about a fit (its variance, at least `floor`), as a mean over many frames sees it: slow (red)
    flicker, which second differences hardly see, wanders like a step (AR(1): a mean's variance grows by
    (1 + r) / (1 - r))."""
    r = float(np.clip(residual[1:] @ residual[:-1] / max(rss, 1e-12), 0.0, 0.9))
    return max(floor, rss / dof) * (1 + r) / (1 - r)


def _small_jump(y: np.ndarray, at: np.ndarray, places: list[int], powers: np.ndarray, terms: int,
                spread: float) -> tuple[int, float] | None:
    """The best place for a jump on the light of the first `terms` columns of `powers`, as `find_small_step` tests
    it (against the next one and two columns), or None."""
    base = powers[:, :terms]
    plain = _rss(base, y)
    richer = min(_rss(powers[:, :terms + 1], y), _rss(powers[:, :terms + 2], y))
    noise = spread ** 2
    best, found = stats.chi2.isf(LIGHT_P / len(places), 1), None
    for k in places:
        design = np.concatenate([base, (at >= k).astype(np.float64)[:, None]], axis=1)
        coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
        residual = y - design @ coefficients
        rss = float(residual @ residual)
        spread2 = _mean_flicker(residual, rss, noise, y.size - terms - 1)
        score = (plain - rss) / spread2
        if score > best and (richer - rss) / spread2 > SMALL_STEP_SHAPE:
            best, found = score, (k, float(coefficients[-1]))
    return found


EDGE_REACH = 2 * MIN_RUN  # usable pictures next to a run at a shot's edge whose light it is compared with
EDGE_Z = 4.5  # spreads (of the run's mean against that light) a run at an edge must stand off


def find_edge_runs(level: np.ndarray, usable: np.ndarray, spread: float,
                   changes: list[int] = ()) -> list[tuple[int, int]]:
    """Runs of 1..MIN_RUN pictures at a shot's start or end off the light of the EDGE_REACH pictures next to them
    (a dip or flash there, or a printer light changed a few frames late or early), which the running median and
    the step test, needing pictures on both sides, hardly see: (first, end) per run found. A side with a change
    of light (`changes`) that close is left as it is.

    As brightness (a fade from black is a line there): the pictures next to the run follow their line (their flat
    level where they do not slope clearly) and the run sits off it by EDGE_Z spreads and DIP_FLOOR, every picture
    of it the same way; a curve through both (one more term, as many as the run's offset) must fit clearly worse
    (STEP_SHAPE: the turn at the end of an eased fade is no run), and a ramp from a corner 1-3 pictures into them
    worse (light that starts to rise or fall a few frames before the edge is no run)."""
    n = level.size
    runs: list[tuple[int, int]] = []
    for forward in (True, False):
        values, use = (level, usable) if forward else (level[::-1], usable[::-1])
        if any((at if forward else n - at) <= MIN_RUN + EDGE_REACH for at in changes):
            continue
        best, found = EDGE_Z ** 2, None
        for k in range(1, min(MIN_RUN, n - EDGE_REACH) + 1):
            head = np.nonzero(use[:k])[0]
            rest = k + np.nonzero(use[k:])[0][:EDGE_REACH]
            if head.size == 0 or not use[k - 1] or rest.size < EDGE_REACH or (k < n and not use[k]):
                continue
            # a dip the running median missed among them would tilt their light: frames off their line by more
            # than SMOOTH_CUTOFF spreads (and DIP_FLOOR) are left out
            near = np.exp(values[rest] - float(values[rest].max()))
            t = np.stack([np.ones(rest.size), (rest - rest.mean()) / EDGE_REACH], axis=1)
            off = near / (t @ np.linalg.lstsq(t, near, rcond=None)[0]) - 1.0
            rest = rest[np.abs(off) <= max(SMOOTH_CUTOFF * spread, DIP_FLOOR)]
            if rest.size < MIN_RUN:
                continue
            both = np.concatenate([head, rest])
            light = np.exp(values[both] - float(values[rest].max()))
            scale = float(np.mean(light[head.size:]))
            y = light / scale
            t = (both - rest.mean()) / EDGE_REACH
            in_run = (both < k).astype(np.float64)
            line = np.stack([np.ones(both.size), t], axis=1)
            noise = spread ** 2
            slope_z2 = (_rss(line[head.size:, :1], y[head.size:]) - _rss(line[head.size:], y[head.size:])) / noise
            plain = line if slope_z2 > EDGE_Z ** 2 else line[:, :1]  # the flat level unless they slope clearly
            with_run = np.concatenate([plain, in_run[:, None]], axis=1)
            curve = np.concatenate([plain, t[:, None] ** plain.shape[1]], axis=1)
            rss = _rss(with_run, y)
            z2 = (_rss(plain, y) - rss) / noise
            if z2 <= best:
                continue
            if (_rss(curve, y) - rss) / noise <= STEP_SHAPE:
                continue
            # nor a ramp into the edge, the light turning a few frames before it (a corner 1-3 pictures into the
            # rest): over so few frames it is told from a run by its shape alone, so it must merely fit worse
            ramps = [np.maximum(corner - both, 0)[:, None] / EDGE_REACH for corner in (k + 1, k + 2, k + 3)]
            if min(_rss(np.concatenate([plain, ramp], axis=1), y) for ramp in ramps) <= rss:
                continue
            coefficients, *_ = np.linalg.lstsq(with_run, y, rcond=None)
            expected = plain[:head.size] @ coefficients[:-1]
            departure = y[:head.size] / np.maximum(expected, 1e-6) - 1.0
            if abs(float(coefficients[-1])) >= DIP_FLOOR and np.all(np.sign(departure) == np.sign(coefficients[-1])):
                best, found = z2, k
        if found is not None:
            runs.append((0, found) if forward else (n - found, n))
    return runs


def find_corners(values: np.ndarray, usable: np.ndarray) -> list[int]:
    """Where a piece's brightness (linear, about 1 at its brightest) turns abruptly: the start or end of a fade
    that is a straight line (a printer's fade), which a smooth curve would round off. Local line + hinge against a
    local line (F > STEP_F), and a local quadratic must fit clearly worse (STEP_SHAPE: a gentle turn is no
    corner); found one at a time, each tested only between the corners already found."""
    n = values.size
    corners: list[int] = []
    if usable.sum() < 2 * MIN_RUN:
        return corners
    for _ in range(n // MIN_RUN):
        best, found = STEP_F, None
        for k in range(MIN_RUN, n - MIN_RUN):
            if any(abs(k - c) < MIN_RUN for c in corners):
                continue
            lo = max([0, k - STEP_REACH] + [c for c in corners if c < k])
            hi = min([n, k + STEP_REACH + 1] + [c + 1 for c in corners if c > k])
            t = np.arange(lo, hi)
            use = usable[lo:hi]
            if use[:k - lo].sum() < MIN_RUN or use[k - lo + 1:].sum() < MIN_RUN:
                continue
            scaled, y = (t[use] - k) / STEP_REACH, values[lo:hi][use]
            line = np.stack([np.ones(scaled.size), scaled], axis=1)
            hinge = np.concatenate([line, np.maximum(scaled, 0.0)[:, None]], axis=1)
            rss = _rss(hinge, y)
            noise = max(rss / max(scaled.size - 3, 1), FLICKER_FLOOR ** 2)
            score = (_rss(line, y) - rss) / noise
            if score > best and (_rss(np.concatenate([line, scaled[:, None] ** 2], axis=1), y) - rss) / noise \
                    > STEP_SHAPE:
                best, found = score, k
        if found is None:
            break
        corners.append(found)
    return sorted(corners)


def _rss(design: np.ndarray, values: np.ndarray) -> float:
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return float(np.sum((values - design @ coefficients) ** 2))


def _local_jump(level: np.ndarray, usable: np.ndarray, at: int) -> float:
    """Size of the jump at `at` under a local quadratic over ±STEP_REACH usable pictures."""
    lo, hi = max(0, at - STEP_REACH), min(level.size, at + STEP_REACH)
    t = np.arange(lo, hi)
    use = usable[lo:hi]
    t, y = t[use] - at + 0.5, level[lo:hi][use]
    scaled = t / STEP_REACH
    design = np.stack([np.ones(t.size), scaled, scaled ** 2, (t > 0).astype(np.float64)], axis=1)
    return float(np.linalg.lstsq(design, y, rcond=None)[0][3])


def _step_sum(steps: list[tuple[int, float]], n: int) -> np.ndarray:
    total = np.zeros(n)
    for at, size in steps:
        total[at:] += size
    return total


def smooth_light(values: np.ndarray, weights: np.ndarray, stiffest_bend: float,
                 corners: list[int] = ()) -> np.ndarray:
    """Whittaker smoother (second differences, none at `corners`: the curve may turn sharply there) with its
    stiffness chosen by GCV among [stiffest_bend, LAMBDA_MAX], biweight-reweighted; a piece too short for a curve
    gets its weighted median."""
    n = values.size
    use = weights > 0
    if use.sum() == 0:
        return values.copy()
    if use.sum() < 5 or n < 5:
        return np.full(n, float(np.median(values[use])))
    band = _second_difference_band(n, corners)
    bend = linalg.eigvals_banded(band, lower=False)
    lambdas = np.geomspace(stiffest_bend, LAMBDA_MAX, LAMBDA_STEPS)
    w = use.astype(np.float64)
    fit = values
    for iteration in range(SMOOTH_ROBUST + 1):
        best, fit_best = np.inf, None
        count = max(float(w.sum()), 1.0)
        for lam in lambdas:
            system = band * lam
            system[2] += w
            smooth = linalg.solveh_banded(system, w * values, lower=False)
            rss = float(np.sum(w * (values - smooth) ** 2))
            # effective degrees of freedom as if the weights were even (exact for even weights)
            edf = float(np.sum(1.0 / (1.0 + lam * bend / (count / n))))
            score = count * rss / max(count - GCV_GAMMA * edf, 0.5) ** 2
            if score < best:
                best, fit_best = score, smooth
        fit = fit_best
        if iteration == SMOOTH_ROBUST:
            break
        residual = (values - fit)[use]
        scale = max(1.4826 * float(np.median(np.abs(residual))), FLICKER_FLOOR)
        w = use * np.clip(1.0 - ((values - fit) / (SMOOTH_CUTOFF * scale)) ** 2, 0.0, 1.0) ** 2
        if w.sum() < 5:
            w = use.astype(np.float64)
    return fit


def flicker_spread(level: np.ndarray, usable: np.ndarray) -> float:
    """The shot's frame-to-frame flicker (log brightness, one frame's spread) from second differences of usable
    consecutive pictures: a fade's slope and a steady turn cancel out of them, flicker does not."""
    run = usable[:-2] & usable[1:-1] & usable[2:]
    second = (level[:-2] - 2 * level[1:-1] + level[2:])[run]
    if second.size < 3:
        return FLICKER_FLOOR
    return max(1.4826 * float(np.median(np.abs(second))) / np.sqrt(6.0), FLICKER_FLOOR)


def plain_light(light: np.ndarray, weights: np.ndarray, smooth: np.ndarray, spread: float,
                stiffest_bend: float) -> np.ndarray:
    """The plainest of a level, a line and `smooth` (a piece's light as brightness) that the track needs: each
    richer model must beat the plainer one by more than the shot's flicker `spread` gives by chance (chi-square,
    LIGHT_P), counted in log brightness with frames beyond SMOOTH_CUTOFF spreads clipped (stray frames). White
    flicker over a short shot wanders like a fade; a real fade or change of light stands far above it."""
    use = weights > 0
    if use.sum() < 5:
        return smooth
    t = np.arange(light.size, dtype=np.float64)
    log_light = np.log(np.maximum(light, 1e-4))

    def cost(fit: np.ndarray) -> float:
        residual = (log_light - np.log(np.maximum(fit, 1e-4)))[use] / spread
        return float(np.sum(np.minimum(residual ** 2, SMOOTH_CUTOFF ** 2)))

    def plain(design: np.ndarray, relative: bool) -> np.ndarray:
        # least squares as brightness over the usable pictures (dips are out already): white flicker's gains
        # average to the true light, while a biweight leans away from whichever side has the outlying frames;
        # flicker is a gain, so along a fade each picture counts by its relative error (near black too)
        scale = 1.0 / np.maximum(smooth[use], 0.05) if relative else np.ones(int(use.sum()))
        coefficients, *_ = np.linalg.lstsq(design[use] * scale[:, None], light[use] * scale, rcond=None)
        return design @ coefficients

    level = plain(np.ones((t.size, 1)), False)
    line = plain(np.stack([np.ones(t.size), t - t.mean()], axis=1), True)
    # the smooth curve's degrees of freedom (at the stiffness GCV chose) are not kept; a curve never stiffer than
    # a line and never bendier than the window's mean is counted as the window's
    n = light.size
    bend = np.arange(n) * np.pi / n
    edf = float(np.sum(1.0 / (1.0 + stiffest_bend * (2 - 2 * np.cos(bend)) ** 2)))
    chosen, chosen_cost, chosen_df = level, cost(level), 1.0
    for fit, df in ((line, 2.0), (smooth, max(edf, 3.0))):
        if np.any(fit <= 0) and fit is line:
            continue
        this = cost(fit)
        if chosen_cost - this > stats.chi2.isf(LIGHT_P, df - chosen_df):
            chosen, chosen_cost, chosen_df = fit, this, df
    return chosen


def _second_difference_band(n: int, corners=()) -> np.ndarray:
    """D'RD of the second-difference operator D (R: 1, or 0 for the differences centred on `corners`), in the
    upper banded form solveh_banded takes."""
    rows = np.ones(n - 2)
    for corner in corners:
        if 1 <= corner <= n - 2:
            rows[corner - 1] = 0.0
    taps = (1.0, -2.0, 1.0)
    band = np.zeros((3, n))
    for a in range(3):
        for b in range(a, 3):
            # entry (i + a, i + b) of every row i: upper band row 2 - (b - a), column i + b
            band[2 - (b - a), b:b + n - 2] += rows * taps[a] * taps[b]
    return band


def fit_shot(measured: ShotBrightness, strength: float, window: int) -> ShotCorrection:
    n, radius = measured.ratios.shape
    track, reached = solve_track(measured.ratios, measured.shared)
    dips = find_dips(track, reached.astype(np.float64))
    usable = reached & ~dips
    found = find_steps(track, usable)
    if not found:
        # every reached picture: on a fade's slope the running median lags at a step and marks the frames at it as a
        # dip; the whole-shot test leaves out frames far off its own median
        found = find_small_step(track, reached, flicker_spread(track, usable))
    steps = [(at, size, abs(size) >= STEP_FLOOR) for at, size in sorted(found)]
    removed = _step_sum([(at, size) for at, size, kept in steps if not kept], n)
    # exposure steps taken out, the pieces brought to the level of the piece with the most usable pictures (the
    # first, when as long): a few frames exposed differently next to a cut are the ones corrected, not the shot
    bounds = [0] + [at for at, _, kept in steps if not kept] + [n]
    counts = [int(usable[lo:hi].sum()) for lo, hi in zip(bounds[:-1], bounds[1:])]
    removed -= removed[bounds[int(np.argmax(counts))]]
    level = track - removed
    spread = flicker_spread(level, usable)
    # a run of up to MIN_RUN pictures at the shot's start or end, off the light of the pictures next to it: a dip
    # or flash, or a few frames printed with the next or last shot's light; brought to the light of the shot
    for first, end in find_edge_runs(level, usable, spread, [at for at, _, kept in steps if kept]):
        dips[first:end] = True
        usable[first:end] = False
    cuts = [0] + [at for at, _, kept in steps if kept] + [n]
    # the smooth light is never bendier than a mean over `window` frames (noise-wise: a Whittaker smoother of
    # stiffness lambda averages about 3.6 lambda^(1/4) frames); cross-validation picks anything stiffer
    stiffest_bend = (window / 3.6) ** 4
    target = level.copy()
    piece = np.zeros(n, int)
    for number, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:])):
        # smoothed as brightness, not log brightness: a fade to black is a straight line there (its log drops
        # without bound, which no smooth curve follows), and what is left near black is small in code values
        weights = usable[lo:hi].astype(np.float64)
        top = float(level[lo:hi][weights > 0].max()) if weights.any() else 0.0
        light = np.exp(level[lo:hi] - top)
        # a straight fade's abrupt start or end: the smooth light may turn sharply there (and only there)
        smooth = smooth_light(light, weights, stiffest_bend, find_corners(light, weights > 0))
        smooth = plain_light(light, weights, smooth, spread, stiffest_bend)
        target[lo:hi] = np.where(smooth > 1e-4, np.log(np.maximum(smooth, 1e-4)) + top, level[lo:hi])
        piece[lo:hi] = number
    correction = np.where(reached, target - track, 0.0)
    gain = np.exp(strength * correction)

    rows, cols = measured.blocks.shape[2:]
    field = np.ones((n, rows, cols))
    # the brightness reference of a frame: the usable pictures of its piece of light (what the smooth light fits)
    averaged = np.array([int(usable[piece == piece[k]].sum()) for k in range(n)], int)
    if rows * cols > 1:
        offsets = np.arange(-radius, radius + 1)
        for lo in range(0, n, FIELD_CHUNK):
            frames = np.arange(lo, min(n, lo + FIELD_CHUNK))
            ratios = np.zeros((offsets.size, frames.size, rows, cols))
            weights = np.zeros((offsets.size, frames.size, rows, cols))
            for entry, offset in enumerate(offsets):
                other = np.array([_mirror(k + offset, n) for k in frames])
                later, lag = np.maximum(frames, other), np.abs(frames - other)
                here = lag == 0
                pick = np.maximum(lag - 1, 0)
                sign = np.where(other < frames, 1.0, -1.0)[:, None, None]
                ok = (measured.shared[later, pick] > 0) & usable[other] & (piece[other] == piece[frames])
                ratios[entry] = np.where(here[:, None, None], 0.0, sign * measured.blocks[later, pick])
                weights[entry] = np.where(here[:, None, None], 1.0,
                                          measured.support[later, pick] * ok[:, None, None])
            levels = window_level(offsets.astype(np.float64), ratios, weights)
            for row, k in enumerate(frames):
                f = np.exp(strength * levels[row])
                if min(f.shape) > 1:
                    f = cv2.GaussianBlur(f.astype(np.float32), (0, 0), 0.7, borderType=cv2.BORDER_REPLICATE)
                field[k] = f
    order = {int(p): row for row, p in enumerate(measured.positions)}
    return ShotCorrection(measured.start, order, dict(measured.repeats), gain, field, averaged, track, target,
                          [(int(measured.positions[at]), size, kept) for at, size, kept in steps], dips)


def _mirror(position: int, n: int) -> int:
    if n == 1:
        return 0
    while position < 0 or position > n - 1:
        position = -position if position < 0 else 2 * (n - 1) - position
    return position


def correction_side(analysis: Any, row: int) -> dict[str, Any]:
    return {"gain": round(float(analysis.gain[row]), 6), "frames_averaged": int(analysis.averaged[row])}

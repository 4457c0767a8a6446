"""Stage `dust`: dust, dirt, hair, blotch and vertical-scratch detection and repair that leaves real motion alone.

Detection is motion-compensated spike detection against the ±1..±radius frames of the same shot (dustmap.py)
plus a per-shot column-profile search for persistent line scratches (scratches.py). Repair fills dust
from the motion-compensated neighbours with the film's grain put back, and scratches from the neighbours where
the scratch moved against the picture, else by inpainting along it (dustrepair.py). The defect map,
with a confidence per defect, goes to the GUI as side data, or replaces the picture with `show_mask`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import cv2
import numpy as np

from .blotches import DISAGREE, Blotch, GrainUnder, find_blotches, moving_limbs
from .dustmap import (Defect, DetectionSettings, DustMap, FlowBank, FramePrep, Neighbour, by_side,
                       camera_where_lost_neighbour,
                       compensate_neighbour, detect_dust, frame_luma, motion_limit, noise_level_function,
                       noise_level_table, shot_edge_sides, with_grain)
from .dustrepair import (Region, blend, crop_around, soft_matte, spatial_fill, spatiotemporal_fill, supporting,
                         temporal_fill)
from ...allocator import retain_freed_memory
from ...errors import ParamError
from ...params import Param, declare
from .scratches import ScratchAnalysis, ScratchMask, analyse_shot, locate_in_frame
from ...stage import ClipFrames, FrameWindow, Shot, Stage, StageOutput

DUST, SCRATCH, KEPT, UNSURE = 1, 2, 3, 4  # values of side["defects"]
OVERLAY = {DUST: (1.0, 0.15, 0.1), SCRATCH: (0.1, 0.55, 1.0), KEPT: (1.0, 0.85, 0.0), UNSURE: (1.0, 0.5, 0.0)}
BLOTCH_FEATHER_PX = 2.0  # a blotch's fill fades in over this much beyond its edge: no seam
SCRATCH_OVERLAP = 0.5  # a dust detection lying mostly on a tracked scratch is that scratch, repaired as one


def scratch_threshold(sensitivity: float) -> float:
    """Scratch sensitivity 0..1 to the full-height ridge threshold in noise units (6 at 0.5)."""
    return 10.0 - 8.0 * float(sensitivity)


def consistency_tolerance(motion_protect: float) -> float:
    """Forward/backward flow disagreement (px) beyond which a pixel's flow is not trusted."""
    return 2.5 - 2.0 * float(motion_protect)


def keep_regions(entries: list, index: int) -> list[tuple[int, int, int, int]]:
    """The (x, y, w, h) rectangles of `keep_original` for frame `index`; a malformed entry is a ParamError."""
    regions = []
    for number, entry in enumerate(entries):
        if (not isinstance(entry, (list, tuple)) or len(entry) != 5
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in entry)):
            raise ParamError("dust.keep_original", f"entry {number} must be [frame, x, y, w, h], got {entry!r}")
        frame, x, y, w, h = (int(v) for v in entry)
        if w <= 0 or h <= 0 or x < 0 or y < 0 or frame < 0:
            raise ParamError("dust.keep_original", f"entry {number} needs frame, x, y >= 0 and w, h > 0: {entry!r}")
        if frame == index:
            regions.append((x, y, w, h))
    return regions


@dataclass
class FrameDefects:
    """Everything found in one frame: dust defects (with their map), scratch masks and the kept rectangles."""

    dust: DustMap
    scratches: list[ScratchMask]
    keep: list[tuple[int, int, int, int]]
    blotches: list[Blotch] = field(default_factory=list)


class DustRepair(Stage):
    name = "dust"
    title = "Dust & scratches"
    min_size = 16
    min_size_reason = "it finds dirt by following motion between frames with optical flow"
    summary = "Motion-compensated dust, dirt and vertical scratch repair."
    params = declare(
        Param("sensitivity", "float", 0.5, "How readily a spot that differs from both neighbours is called a defect.",
              minimum=0.0, maximum=1.0, step=0.05),
        Param("min_size", "int", 3, "Smallest defect repaired (area).", minimum=1, maximum=100, unit="px"),
        Param("max_size", "int", 20000, "Largest speck or dirt repaired by spike detection (area); larger damage is "
              "a blotch.", minimum=10, maximum=100000, unit="px²"),
        Param("motion_protect", "float", 0.7, "How strongly flow inconsistency and motion found nearby veto a "
              "detection.", minimum=0.0, maximum=1.0, step=0.05),
        Param("blotches", "bool", True, "Also find and repair large one- or two-frame blotches."),
        Param("max_blotch", "float", 25.0, "Largest blotch repaired, as a share of the frame.", minimum=0.1,
              maximum=50.0, unit="%", step=0.5),
        Param("scratches", "bool", True, "Also detect and repair vertical line scratches."),
        Param("scratch_sensitivity", "float", 0.5, "How readily a persistent vertical line is called a scratch.",
              minimum=0.0, maximum=1.0, step=0.05),
        Param("temporal_radius", "int", 2, "Neighbouring frames used on each side.", minimum=1, maximum=3,
              unit="frames"),
        Param("show_mask", "bool", False, "Output the defect map for review instead of the repair."),
        Param("keep_original", "list", [], "Regions left untouched: [[frame, x, y, w, h], ...].",
              entry=("frame", "x", "y", "w", "h")),
        Param("flow_quality", "choice", "fast", "Optical flow preset: faster, or more accurate on hard motion.",
              choices=("ultrafast", "fast", "medium")),
    )

    def __init__(self) -> None:
        self._banks: dict[tuple[str, int], FlowBank] = {}

    def temporal_radius(self, params: Mapping[str, Any]) -> int:
        # one frame more than the detector compares with: beside a shot edge, the frame past the side with two
        # tells dirt on this frame (shared with the one across) from dirt that those two share
        return int(params["temporal_radius"]) + 1

    def needs_analysis(self, params: Mapping[str, Any]) -> bool:
        return bool(params["scratches"])

    def analyze(self, frames: ClipFrames, shot: Shot, params: Mapping[str, Any]) -> ScratchAnalysis:
        """Per shot: the persistent vertical scratches, tracked across its frames."""
        lumas = ((index, frame_luma(frame)) for index, frame in frames)
        return analyse_shot(lumas, shot.start, shot.end, scratch_threshold(params["scratch_sensitivity"]))

    def _bank(self, params: Mapping[str, Any]) -> FlowBank:
        radius = int(params["temporal_radius"])
        key = (str(params["flow_quality"]), radius)
        if key not in self._banks:
            self._banks = {key: FlowBank(key[0], frames=2 * radius + 2, flows=8 * radius + 4)}
        return self._banks[key]

    def neighbours(self, window: FrameWindow, current: FramePrep, params: Mapping[str, Any]
                   ) -> tuple[list[Neighbour], Neighbour | None, Neighbour | None]:
        """The distinct real frames of the window within the radius, other than the current one, warped onto it;
        beside a shot edge, the frame just past the side with two or more (None elsewhere); and on a shot's first
        or last frame, the frame past the one side, for the blotch detector's two-frame dirt (None elsewhere)."""
        bank = self._bank(params)
        radius = int(params["temporal_radius"])
        tolerance = consistency_tolerance(params["motion_protect"])

        def compensate(frame: np.ndarray, index: int, offset: int) -> Neighbour:
            prep = bank.prepare(index, frame)
            return compensate_neighbour(current.luma, index, offset, frame, prep.luma,
                                        bank.flow(current, prep), bank.flow(prep, current), tolerance)

        # offsets count pictures, not clip indices: a step-printed shot's window leaves its repeats out, and
        # mirrored entries repeat real frames
        frames = dict(zip(window.indices, window.frames))
        later = sorted(i for i in frames if i > window.index)
        earlier = sorted((i for i in frames if i < window.index), reverse=True)
        real = {**{k: (frames[i], i, k) for k, i in enumerate(later, 1)},
                **{-k: (frames[i], i, -k) for k, i in enumerate(earlier, 1)}}
        found = [compensate(*real[k]) for k in sorted(real) if abs(k) <= radius]
        if not found:
            return [], None, None
        past = further = None
        sides = by_side(found)
        for _, long in shot_edge_sides(sides):
            step = radius + 1 if long[0].offset > 0 else -(radius + 1)
            if step in real:
                past = compensate(*real[step])
        if params["blotches"] and bool(sides[-1]) != bool(sides[1]) and len(found) >= 2:
            step = radius + 1 if sides[1] else -(radius + 1)
            if step in real:
                further = compensate(*real[step])
        # grain depends on the current frame's brightness, not on which neighbour: measure it once
        grain = noise_level_function(current.luma, found[0].residual, found[0].edges)
        squared = np.square(grain)
        return ([with_grain(n, grain, squared) for n in found],
                None if past is None else with_grain(past, grain, squared),
                None if further is None else with_grain(further, grain, squared))

    def detect(self, window: FrameWindow, params: Mapping[str, Any], analysis: ScratchAnalysis | None
               ) -> tuple[FrameDefects, list[Neighbour], DetectionSettings]:
        """Defects of the window's current frame, and the neighbours they were found against."""
        keep = keep_regions(params["keep_original"], window.index)
        current = self._bank(params).prepare(window.index, window.current)
        neighbours, beyond, further = self.neighbours(window, current, params)
        height, width = current.luma.shape
        max_blotch = int(round(float(params["max_blotch"]) / 100.0 * height * width))
        settings = DetectionSettings.from_sensitivity(params["sensitivity"], params["min_size"], params["max_size"],
                                                      params["motion_protect"])
        scratches: list[ScratchMask] = []
        if params["scratches"] and analysis is not None:
            for line in analysis.lines.get(window.index, []):
                located = locate_in_frame(current.luma, line)
                if located is not None:
                    scratches.append(located)
        on_scratch = scratch_band(current.luma.shape, scratches)
        dust = detect_dust(current.luma, neighbours, settings, beyond, on_scratch)
        if settings.motion_protect > 0.0:
            dust = moving_limbs(dust, neighbours, settings.low)
        blotches = []
        if params["blotches"] and neighbours:
            # indexed by the neighbour's brightness, the picture under the damage: indexed by its own, a large dark
            # blotch fills the dark bin and passes for the grain of dark picture
            table = noise_level_table(neighbours[0].warped, neighbours[0].residual, neighbours[0].edges)
            # a wrong match off the frame in flat sky leaves a haze band there without evidence: the camera's motion
            lost = [camera_where_lost_neighbour(n) for n in neighbours]
            past = further or beyond
            under = GrainUnder(table, lost[0].warped)
            blotches = find_blotches(current.luma, lost, max_blotch, under,
                                     further=None if past is None else camera_where_lost_neighbour(past),
                                     motion_limit=motion_limit(settings) if settings.motion_protect > 0.0 else None)
            for b in blotches:
                if b.reason == DISAGREE:
                    fill_over_motion(window.current, b, under)
        dust = drop_scratch_parts(dust, blotch_band(current.luma.shape, blotches, on_scratch))
        return FrameDefects(dust, scratches, keep, blotches), neighbours, settings

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: Any) -> StageOutput:
        # about 90 frame-sized temporaries a frame: handed back to the OS as each is freed, every one is
        # page-faulted in again (about 12 % of the stage's CPU time at 704x576)
        retain_freed_memory()
        found, neighbours, settings = self.detect(window, params, analysis)
        frame = window.current
        defect_map = defect_codes(frame.shape[:2], found)
        side = side_data(found, defect_map)
        if params["show_mask"]:
            return StageOutput(overlay(frame, defect_map, found), side)
        out = frame.copy()
        two_sided = bool({n.offset > 0 for n in neighbours} == {True, False})
        for defect in found.dust.defects:
            repair_dust(out, frame, found.dust, defect, neighbours, settings)
        for blotch in found.blotches:
            if blotch.patch is not None:
                rows, cols, fill, matte = blotch.patch
                out[rows, cols] = blend(out[rows, cols], fill, matte)
            elif blotch.repaired:
                repair_blotch(out, frame, blotch)
        luma = self._bank(params).prepare(window.index, frame).luma if found.scratches else None  # detect's own
        for scratch in found.scratches:
            repair_scratch(out, frame, luma, scratch, neighbours, two_sided, analysis)
        for x, y, w, h in found.keep:
            out[y:y + h, x:x + w] = frame[y:y + h, x:x + w]
        return StageOutput(out, side)


def scratch_band(shape: tuple[int, int], scratches: list[ScratchMask]) -> np.ndarray | None:
    """The pixels of this frame's tracked scratches, 2 px wider each way (None when there are none)."""
    if not scratches:
        return None
    on_scratch = np.zeros(shape, bool)
    for s in scratches:
        band = on_scratch[:, s.x0:s.x0 + s.mask.shape[1]]
        band |= cv2.dilate(s.mask.astype(np.uint8), np.ones((3, 5), np.uint8)) > 0
    return on_scratch


def blotch_band(shape: tuple[int, int], blotches: list[Blotch], on_scratch: np.ndarray | None) -> np.ndarray | None:
    """The scratch band with every blotch left as unsure added: dust found there is part of what was left
    (under a repaired blotch, dust found too is repaired as well: the union covers the blotch's faint edge)."""
    if not any(b.holds_back for b in blotches):
        return on_scratch
    band = np.zeros(shape, bool) if on_scratch is None else on_scratch.copy()
    for b in blotches:
        if not b.holds_back:
            continue
        band[b.rows, b.cols] |= cv2.dilate(b.mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return band


OVER_MOTION_COVER = 0.5  # over moving picture, two compensated frames must agree on this share of a blotch: the
#                          rest is inpainted, and inpainting most of a large area would leave a smooth patch
OVER_MOTION_EVIDENCE = 6.0  # ... and the blotch stand out clearly (grain units, twice the least): on real film the
#                             weak ones there were uneven light on a wall, not dirt


def blotch_crop(frame: np.ndarray, blotch: Blotch) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """The crop around a blotch (rows, cols), its grown mask there and the feathered matte: no seam."""
    pad = int(4 * BLOTCH_FEATHER_PX) + 2
    x, y, w, h = blotch.bbox
    rows, cols = crop_around((x, y, w, h), pad, frame.shape[:2])
    mask = np.zeros((rows.stop - rows.start, cols.stop - cols.start), bool)
    mask[y - rows.start:y - rows.start + h, x - cols.start:x - cols.start + w] = blotch.mask
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    matte = np.maximum(grown.astype(np.float32),
                       cv2.GaussianBlur(grown.astype(np.float32), (0, 0), BLOTCH_FEATHER_PX) * 2.0 - 1.0)
    return rows, cols, grown, np.clip(matte, 0.0, 1.0)


def fill_over_motion(frame: np.ndarray, blotch: Blotch, grain: GrainUnder) -> None:
    """A blotch over moving picture (its frames disagree under it): filled spatio-temporally when two compensated
    frames agree on most of it, else left as unsure."""
    if blotch.evidence < OVER_MOTION_EVIDENCE:
        return
    rows, cols, grown, matte = blotch_crop(frame, blotch)
    sigma = grain.at(rows, cols)
    fill, share = spatiotemporal_fill(frame[rows, cols], grown, blotch.sources, rows, cols, sigma,
                                      seed=blotch.area)
    if share >= OVER_MOTION_COVER:
        blotch.patch = (rows, cols, fill, matte)
        blotch.repaired, blotch.reason = True, ""


def repair_blotch(out: np.ndarray, frame: np.ndarray, blotch: Blotch) -> None:
    """Fill one blotch from the neighbours that agree under it, the film's grain put back, edges feathered."""
    rows, cols, grown, matte = blotch_crop(frame, blotch)
    region = Region(rows, cols, grown, blotch.polarity)
    fill = temporal_fill(frame[rows, cols], region, matte, blotch.sources)
    out[rows, cols] = blend(out[rows, cols], fill, matte)


def drop_scratch_parts(dust: DustMap, on_scratch: np.ndarray | None) -> DustMap:
    """Remove dust detections that are mostly a tracked scratch (repaired as one) or in a blotch left."""
    if on_scratch is None or not dust.defects:
        return dust
    keep: list[Defect] = []
    relabel = np.zeros(len(dust.defects) + 1, np.int32)
    for defect in dust.defects:
        x, y, w, h = defect.bbox
        inside = dust.labels[y:y + h, x:x + w] == defect.label
        if float(on_scratch[y:y + h, x:x + w][inside].mean()) >= SCRATCH_OVERLAP:
            continue
        relabel[defect.label] = len(keep) + 1
        defect.label = len(keep) + 1
        keep.append(defect)
    return DustMap(relabel[dust.labels], dust.score, keep, dust.rejected)


def repair_dust(out: np.ndarray, frame: np.ndarray, dust: DustMap, defect: Defect, neighbours: list[Neighbour],
                settings: DetectionSettings) -> None:
    """Replace one dust defect in `out` from the motion-compensated neighbours (in place)."""
    if not neighbours:
        return
    rows, cols = crop_around(defect.bbox, 6, frame.shape[:2])
    mask = dust.labels[rows, cols] == defect.label
    region = Region(rows, cols, mask, 1 if defect.polarity == "bright" else -1)
    matte = soft_matte(mask, dust.score[rows, cols], settings.low)
    sources = supporting(neighbours, region, settings.low) or neighbours
    fill = temporal_fill(frame[rows, cols], region, matte, sources)
    out[rows, cols] = blend(out[rows, cols], fill, matte)


def repair_scratch(out: np.ndarray, frame: np.ndarray, luma: np.ndarray, scratch: ScratchMask,
                   neighbours: list[Neighbour], two_sided: bool, analysis: ScratchAnalysis | None) -> None:
    """Replace one scratch: from the neighbours where it moved off this place, else by inpainting along it."""
    cols = slice(scratch.x0, scratch.x0 + scratch.mask.shape[1])
    rows = slice(0, frame.shape[0])
    mask = scratch.mask
    if not mask.any():
        return
    matte = mask.astype(np.float32)
    spatial = spatial_fill(frame[rows, cols], mask)
    moved = [n for n in neighbours if scratch_moved_off(scratch, n, analysis)]
    sources = scratch_free(luma[rows, cols], frame_luma(spatial), mask, scratch.line.polarity, moved, cols)
    sides = {n.offset > 0 for n in sources}
    if sources and (sides == {True, False} or not two_sided):
        region = Region(rows, cols, mask, scratch.line.polarity)
        fill = temporal_fill(frame[rows, cols], region, matte, sources)
    else:
        fill = spatial
    out[rows, cols] = blend(out[rows, cols], fill, matte)


def scratch_moved_off(scratch: ScratchMask, neighbour: Neighbour, analysis: ScratchAnalysis | None) -> bool:
    """Whether, once the neighbour is motion-compensated, its copy of the scratch lies clear of this one's mask."""
    if analysis is None:
        return False
    there = [ln for ln in analysis.lines.get(neighbour.index, []) if ln.track == scratch.line.track]
    if not there:
        return True  # the scratch has not started, or has ended, in that frame
    height = scratch.mask.shape[0]
    band = neighbour.flow[:, scratch.x0:scratch.x0 + scratch.mask.shape[1], 0][scratch.mask]
    content_dx = float(np.median(band)) if band.size else 0.0
    # the neighbour's scratch at x_k shows, after compensation, at x_k - flow
    offset = abs(there[0].x - content_dx - scratch.line.x)
    width = float(scratch.mask.sum(axis=1).max()) if height else 0.0
    return offset >= width + 1.0


def scratch_free(current: np.ndarray, inpainted: np.ndarray, mask: np.ndarray, polarity: int,
                 neighbours: list[Neighbour], cols: slice) -> list[Neighbour]:
    """Neighbours whose motion-compensated picture under the scratch lacks it (checked pixel by pixel)."""
    contrast = float(np.median(polarity * (current - inpainted)[mask]))
    if contrast <= 0:
        return []
    clean = []
    for n in neighbours:
        drop = polarity * (current - n.warped[:, cols])[mask]
        if float(np.mean(drop >= 0.5 * contrast)) >= 0.9:
            clean.append(n)
    return clean


def defect_codes(shape: tuple[int, int], found: FrameDefects) -> np.ndarray:
    """uint8 map: 0 clean, 1 dust or blotch, 2 scratch, 3 detected but kept original, 4 unsure and left."""
    codes = np.zeros(shape, np.uint8)
    codes[found.dust.mask] = DUST
    for b in found.blotches:
        crop = codes[b.rows, b.cols]
        crop[b.mask] = DUST if b.repaired else UNSURE
    for s in found.scratches:
        band = codes[:, s.x0:s.x0 + s.mask.shape[1]]
        band[s.mask] = SCRATCH
    for x, y, w, h in found.keep:
        region = codes[y:y + h, x:x + w]
        region[region > 0] = KEPT
    return codes


def _kept(bbox: tuple[int, int, int, int], keep: list[tuple[int, int, int, int]]) -> bool:
    x, y, w, h = bbox
    return any(x < kx + kw and kx < x + w and y < ky + kh and ky < y + h for kx, ky, kw, kh in keep)


def side_data(found: FrameDefects, codes: np.ndarray) -> dict[str, Any]:
    """GUI side data: the defect map and one record per connected defect (bbox, area, confidence, kind)."""
    components = []
    for d in found.dust.defects:
        record = d.to_side()
        record["surround"] = round(d.surround, 3)
        record["moving"] = round(d.moving, 2)
        record["kept"] = _kept(d.bbox, found.keep)
        components.append(record)
    for b in found.blotches:
        components.append({"bbox": list(b.bbox), "area": b.area, "polarity": "bright" if b.polarity > 0 else "dark",
                           "confidence": round(b.confidence if b.repaired else 0.0, 3),
                           "kind": "blotch" if b.repaired else "left as unsure",
                           "repaired": b.repaired, **({"left_because": b.reason} if b.reason else {}),
                           **({"filled": "over moving picture, partly inpainted"} if b.patch is not None else {}),
                           "kept": _kept(b.bbox, found.keep)})
    for s in found.scratches:
        ys = np.flatnonzero(s.mask.any(axis=1))
        xs = np.flatnonzero(s.mask.any(axis=0))
        bbox = (int(s.x0 + xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1))
        confidence = float(1.0 - np.exp(-s.strength / 6.0))
        components.append({"bbox": list(bbox), "area": int(s.mask.sum()),
                           "polarity": "bright" if s.line.polarity > 0 else "dark",
                           "confidence": round(confidence, 3), "kind": "scratch", "kept": _kept(bbox, found.keep)})
    return {"defects": codes, "components": components, "motion_rejected": int(found.dust.rejected),
            "defect_fraction": round(float((codes > 0).mean()), 6)}


def overlay(frame: np.ndarray, codes: np.ndarray, found: FrameDefects) -> np.ndarray:
    """The frame with defects tinted (dust red, scratches blue, kept yellow) and each dust defect boxed."""
    out = frame.copy()
    for code, colour in OVERLAY.items():
        hit = codes == code
        out[hit] = 0.35 * out[hit] + 0.65 * np.asarray(colour, np.float32)
    for d in found.dust.defects:
        x, y, w, h = d.bbox
        colour = OVERLAY[KEPT] if _kept(d.bbox, found.keep) else OVERLAY[DUST]
        cv2.rectangle(out, (x - 2, y - 2), (x + w + 1, y + h + 1), colour, 1)
    return out

"""Stage `denoise`: film-grain-aware, motion-compensated denoising driven by a grain model measured per shot."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ...device import pick_device
from .grain import GrainModel, measure_grain
from .mcdenoise import BLOCK, STEP, aligned_neighbours, block_to_pixels, denoise_frame
from ...params import Param, declare
from ...stage import ClipFrames, FrameWindow, Shot, Stage, StageOutput

GRAIN_MODES = ("keep", "remove", "regrain")
MEASURE_SAMPLES = 5     # frame triplets measured per shot ...
MEASURE_SPAN = 48       # ... spread over its first 48 frames: a long shot is not read to its end first
FLOW_SCALE = 0.5        # flow is estimated at half size: grain averages out, and it is 4x cheaper
FLOW_PRESET = "medium"
MARGIN = BLOCK - STEP   # mirrored margin so that the edge pixels are covered by as many blocks as the rest


class GrainDenoise(Stage):
    name = "denoise"
    title = "Grain & noise"
    min_size = BLOCK
    min_size_reason = f"it measures and cleans the grain in {BLOCK}x{BLOCK}-px blocks"
    summary = "Motion-compensated denoising driven by a measured grain model; keep, remove or regrain the grain."
    params = declare(
        Param("strength", "float", 1.0, "Denoising strength relative to the measured grain level (1 = as measured).",
              minimum=0.0, maximum=3.0, step=0.05),
        Param("temporal_radius", "int", 4, "Motion-compensated frames used on each side.", minimum=0, maximum=4,
              unit="frames"),
        Param("spatial", "float", 1.0, "Spatial cleaning of what the neighbours cannot average away (0 = temporal "
              "only).", minimum=0.0, maximum=1.0, step=0.05),
        Param("grain", "choice", "keep", "keep part of the film's own grain, remove it, or regrain from the measured "
              "model.", choices=GRAIN_MODES),
        Param("grain_amount", "float", 1.0, "Level of the synthesized grain relative to the measured grain "
              "(grain = regrain).", minimum=0.0, maximum=2.0, step=0.05),
        Param("keep_amount", "float", 0.5, "Share of the film's own grain kept (grain = keep): 0 removes it all, "
              "1 leaves the scan untouched.", minimum=0.0, maximum=1.0, step=0.05),
        Param("grain_size_scale", "float", 1.0, "Size of the synthesized grain relative to the measured (regrain).",
              minimum=0.25, maximum=4.0, step=0.05),
        Param("seed", "int", 0, "Seed of the synthesized grain; every frame draws from it and its frame index.",
              minimum=0, maximum=2 ** 31 - 1),
    )

    def temporal_radius(self, params: Mapping[str, Any]) -> int:
        return int(params["temporal_radius"])

    def needs_analysis(self, params: Mapping[str, Any]) -> bool:
        return True

    def analyze(self, frames: ClipFrames, shot: Shot, params: Mapping[str, Any]) -> GrainModel:
        """The shot's GrainModel, measured on up to MEASURE_SAMPLES frame triplets from its first MEASURE_SPAN frames."""
        return measure_grain((frame for _, frame in frames), len(shot), MEASURE_SAMPLES, FLOW_SCALE, MEASURE_SPAN)

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: GrainModel) -> StageOutput:
        model = analysis
        frames, center = distinct_frames(window)
        clean, leftover = denoise(frames, center, model, float(params["strength"]), float(params["spatial"]))
        out = grain_output(window.current, clean, leftover, model, params, window.index)
        return StageOutput(np.clip(out, 0.0, 1.0).astype(np.float32, copy=False), {"grain_model": model.to_dict()})


def distinct_frames(window: FrameWindow) -> tuple[list[np.ndarray], int]:
    """The window's frames with mirrored repeats dropped (a repeat carries the same grain, not new evidence)."""
    seen = {window.index}
    frames = [window.current]
    for k, (index, frame) in enumerate(zip(window.indices, window.frames)):
        if k != window.center and index not in seen:
            seen.add(index)
            frames.append(frame)
    return frames, 0


def denoise(frames: list[np.ndarray], center: int, model: GrainModel, strength: float,
            spatial: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Grain-free estimate of frames[center] from its motion-compensated neighbours and the grain model, and the
    grain variance it still holds per block (None: all of it)."""
    current = frames[center]
    if strength <= 0.0:
        return current.copy(), None
    aligned = aligned_neighbours(frames, center, FLOW_SCALE, FLOW_PRESET, margin=MARGIN)
    return denoise_frame(aligned, center, model.sigma_at, model.channel_correlation, model.dct_noise_variance(),
                         strength=strength, spatial=spatial, device=pick_device("auto"))


def grain_output(current: np.ndarray, clean: np.ndarray, leftover: np.ndarray | None, model: GrainModel,
                 params: Mapping[str, Any], index: int) -> np.ndarray:
    """The restorer's grain choice applied to the denoised frame.

    regrain tops up the grain the denoiser left (`leftover`, a variance per block) to grain_amount x the measured
    level, so old and new grain together have the measured strength.
    """
    mode = params["grain"]
    if mode == "keep":
        return clean + np.float32(params["keep_amount"]) * (current - clean)
    amount = float(params["grain_amount"])
    if mode == "remove" or amount == 0.0:
        return clean
    height, width = clean.shape[:2]
    seed = int(np.random.SeedSequence([int(params["seed"]), int(index)]).generate_state(1)[0])
    unit = model.unit_grain((height, width), seed, float(params["grain_size_scale"]))
    wanted = np.square(model.sigma_at(clean) * np.float32(amount))
    left = np.square(model.sigma_at(current)) if leftover is None else block_to_pixels(leftover, height, width)
    return clean + unit * np.sqrt(np.maximum(wanted - left, 0.0))

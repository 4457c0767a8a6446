"""Stage `sr`: AI super-resolution with a fidelity mode that invents nothing and a perceptual mode for presentation.

Pretrained networks come from installed registry packages (ncnn files converted once to torch and cached as
safetensors, restoration.stages.sr.models) or from the user's own ESRGAN-family file. Frames run tiled with blended
overlaps inside a memory budget (tiling.py); model passes reach the needed enlargement and an exact
resize lands on the scale or target frame (geometry.py). `perceptual` blends the GAN result over the
fidelity (or Lanczos) result by `detail`; `temporal` blends each output with its flow-warped neighbours where the
low-res frames agree after warping, cutting GAN flicker without ghosting on motion.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Mapping

import cv2
import numpy as np

from ...device import pick_device, pick_dtype
from ...errors import ParamError
from ...flow import consistent_flows, luma8, warp_by_flow
from ...params import Param, declare
from . import models
from .allocator import retain_freed_memory
from .engine import Upscaler, frame_to_tensor, prepare, tensor_to_frame, upscale_to
from .geometry import Geometry, lanczos_upscale, place_on_canvas, plan_geometry
from .multiframe import align, back_project, self_alignment
from ...stage import FrameWindow, Stage, StageOutput

FIDELITY_FAMILIES = ("srmdnf", "waifu2x-photo")  # in order of preference (PSNR on Set5/Set14/Vid4)
PERCEPTUAL_FAMILY = "realesrgan-x4plus"
FLOW_TOLERANCE_PX = 1.0  # forward/backward flow disagreement beyond which a neighbour is not used
MATCH_SIGMA = 0.03  # LR luma mismatch after warping at which a neighbour's weight falls to 1/e


def fidelity_family() -> str:
    """The best fidelity model family whose registry package is installed; ParamError names what to install."""
    for family in FIDELITY_FAMILIES:
        if any(models.is_installed(m) for m in models.family_models(family)):
            return family
    wanted = models.family_models(FIDELITY_FAMILIES[0])[0].distribution
    raise ParamError("sr.model", f"no fidelity model installed; install one with `pip install {wanted}`")


def model_choice(params: Mapping[str, Any]) -> tuple[str, str | None]:
    """(main model, base model for the detail blend or None) for the chosen mode."""
    named = params["model"].strip()
    if params["mode"] == "fidelity":
        return (named if named and named != "auto" else fidelity_family()), None
    main = named if named and named != "auto" else PERCEPTUAL_FAMILY
    base = fidelity_family() if params["base"] == "fidelity" and params["detail"] < 1.0 else None
    return main, base


def frame_key(window: FrameWindow, position: int) -> tuple[int, str]:
    """Identity of one window frame: its clip index and a digest of its pixels (cheap, and order-independent)."""
    frame = window.frames[position]
    return window.indices[position], hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).hexdigest()


def neighbour_weight(current: np.ndarray, neighbour: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """LR flow current→neighbour and a per-pixel blend weight: zero where the flow is inconsistent (occlusion)
    and falling off where the warped neighbour's luma does not match (motion the flow missed)."""
    cur8, nb8 = luma8(current), luma8(neighbour)
    forward, _, reliable = consistent_flows(cur8, nb8, "medium", FLOW_TOLERANCE_PX)
    warped = warp_by_flow(nb8.astype(np.float32) / 255.0, forward, interpolation=cv2.INTER_LINEAR)
    mismatch = np.abs(warped - cur8.astype(np.float32) / 255.0)
    mismatch = cv2.GaussianBlur(mismatch, (0, 0), 1.0)
    weight = strength * reliable * np.exp(-(mismatch / MATCH_SIGMA) ** 2)
    return forward, weight.astype(np.float32)


def temporal_blend(current: np.ndarray, neighbours: list[tuple[np.ndarray, np.ndarray]], lr_current: np.ndarray,
                   strength: float) -> tuple[np.ndarray, float]:
    """Blend an upscaled picture with its flow-warped upscaled neighbours (LR frame, picture) where reliable."""
    height, width = current.shape[:2]
    lr_h, lr_w = lr_current.shape[:2]
    total = current.astype(np.float32).copy()
    weights = np.ones((height, width), np.float32)
    for lr_neighbour, picture in neighbours:
        flow, weight = neighbour_weight(lr_current, lr_neighbour, strength)
        flow_hr = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        flow_hr[..., 0] *= width / lr_w
        flow_hr[..., 1] *= height / lr_h
        weight_hr = cv2.resize(weight, (width, height), interpolation=cv2.INTER_LINEAR)
        total += warp_by_flow(picture, flow_hr, interpolation=cv2.INTER_LINEAR) * weight_hr[..., None]
        weights += weight_hr
    return total / weights[..., None], float(weights.mean() - 1.0)


class SuperResolution(Stage):
    name = "sr"
    title = "Super-resolution"
    summary = "Tiled super-resolution with fidelity and perceptual modes."
    params = declare(
        Param("model", "str", "auto", "Model or family name (see restoration.stages.sr.models), or a .pth/.safetensors "
                                      "ESRGAN-family file; auto picks by mode."),
        Param("scale", "int", 2, "Upscaling factor (ignored when a target size is given).", minimum=2, maximum=4),
        Param("target", "str", "", "Target frame: WxH, hd, 2k, uhd, 4k-dci (empty: use scale)."),
        Param("fit", "choice", "fit", "Target framing: fit shows the whole picture (black bars), fill crops.",
              choices=("fit", "fill")),
        Param("pixel_aspect", "str", "1:1", "Source sample aspect ratio (e.g. 16:15 for PAL 4:3), honoured with "
                                            "a target size."),
        Param("mode", "choice", "fidelity", "fidelity invents nothing; perceptual is for presentation copies.",
              choices=("fidelity", "perceptual")),
        Param("detail", "float", 0.5, "Perceptual mode: blend of the GAN result over the base result.",
              minimum=0.0, maximum=1.0, step=0.05),
        Param("base", "choice", "fidelity", "Perceptual mode: what the GAN detail is blended over.",
              choices=("fidelity", "lanczos")),
        Param("tile", "int", 0, "Tile size in source pixels (0: from the memory budget; small values are raised "
                                "to the model's minimum).", minimum=0, maximum=4096, unit="px"),
        Param("device", "choice", "auto", "Compute device.", choices=("auto", "cpu", "cuda", "mps")),
        Param("precision", "choice", "auto", "Arithmetic precision (auto: fp16 on GPU, bf16 on capable CPUs).",
              choices=("auto", "fp32", "fp16", "bf16")),
        Param("temporal", "bool", False, "Flow-guided blending of consecutive outputs against flicker."),
        Param("temporal_strength", "float", 1.0, "Weight of each reliably aligned neighbour in the temporal blend.",
              minimum=0.0, maximum=1.0, step=0.05),
        Param("backprojection", "int", 0, "Fidelity + temporal: multi-frame back-projection iterations against "
                                          "±2 observed frames (assumes bicubic-like blur; 0: off).",
              minimum=0, maximum=50),
    )

    def __init__(self) -> None:
        self._upscalers: dict[tuple[str, str, str], Upscaler] = {}
        self._pictures: OrderedDict[tuple, tuple[np.ndarray, dict]] = OrderedDict()

    def temporal_radius(self, params: Mapping[str, Any]) -> int:
        if not params["temporal"]:
            return 0
        return 2 if params["mode"] == "fidelity" and params["backprojection"] > 0 else 1

    def output_size(self, width: int, height: int, params: Mapping[str, Any]) -> tuple[int, int]:
        return self.geometry(width, height, params).canvas

    def geometry(self, width: int, height: int, params: Mapping[str, Any]) -> Geometry:
        return plan_geometry(width, height, int(params["scale"]), params["target"], params["fit"],
                             params["pixel_aspect"])

    def chain(self, model: str, params: Mapping[str, Any]) -> dict[int, Upscaler]:
        """Loaded networks of a model or family, by native scale, on the chosen device and precision."""
        device = pick_device(params["device"])
        dtype = pick_dtype(device, params["precision"])
        if device.type == "cpu":
            retain_freed_memory()  # else every layer's activation is page-faulted in anew (~30 % more CPU time)
        shipped = models.family_models(model)
        names = [m.name for m in shipped] if shipped else [model]
        chain: dict[int, Upscaler] = {}
        for name in names:
            key = (name, str(device), str(dtype))
            if key not in self._upscalers:
                self._upscalers[key] = prepare(name, models.load_model(name), device, dtype)
            upscaler = self._upscalers[key]
            chain.setdefault(upscaler.scale, upscaler)
        return chain

    def upscale_picture(self, frame: np.ndarray, geometry: Geometry,
                        params: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
        """The source frame enlarged to the geometry's picture size in the chosen mode."""
        main, base = model_choice(params)
        chain = self.chain(main, params)
        device = next(iter(chain.values())).device
        image = frame_to_tensor(frame, device)
        result, passes = upscale_to(chain, image, geometry.picture, geometry.needed_scale, params["tile"])
        picture = tensor_to_frame(result)
        info = {"model": main, "passes": passes,
                "tile": next(iter(chain.values())).tile_size(params["tile"]), "device": str(device),
                "precision": str(next(iter(chain.values())).dtype).removeprefix("torch.")}
        if params["mode"] == "perceptual" and params["detail"] < 1.0:
            if base is not None:
                base_result, _ = upscale_to(self.chain(base, params), image, geometry.picture,
                                            geometry.needed_scale, params["tile"])
                base_picture = tensor_to_frame(base_result)
            else:
                base_picture = lanczos_upscale(frame, geometry.picture)
            picture = base_picture + float(params["detail"]) * (picture - base_picture)
            info["base"] = base or "lanczos"
        return picture, info

    def cached_picture(self, window: FrameWindow, position: int, geometry: Geometry,
                       params: Mapping[str, Any]) -> tuple[np.ndarray, dict]:
        """The upscaled picture of one window frame, reused across neighbouring windows (keyed by content)."""
        settings = tuple(sorted((k, str(v)) for k, v in params.items() if not k.startswith("temporal")))
        key = (frame_key(window, position), settings)
        if key in self._pictures:
            self._pictures.move_to_end(key)
            return self._pictures[key]
        result = self.upscale_picture(window.frames[position], geometry, params)
        self._pictures[key] = result
        while len(self._pictures) > 2 * self.temporal_radius(params) + 2:
            self._pictures.popitem(last=False)
        return result

    def process(self, window: FrameWindow, params: Mapping[str, Any], analysis: Any) -> StageOutput:
        frame = window.current
        height, width = frame.shape[:2]
        geometry = self.geometry(width, height, params)
        if not params["temporal"]:
            picture, info = self.upscale_picture(frame, geometry, params)
        else:
            picture, info = self.cached_picture(window, window.center, geometry, params)
            info = dict(info)
            neighbours: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            for position, index in enumerate(window.indices):
                if index != window.index and index not in neighbours:
                    pic = self.cached_picture(window, position, geometry, params)[0]
                    neighbours[index] = (window.frames[position], pic)
            adjacent = [pair for index, pair in neighbours.items() if abs(index - window.index) == 1]
            blended, used = temporal_blend(picture, adjacent, frame, float(params["temporal_strength"]))
            info["temporal_weight"] = round(used, 4)
            if params["mode"] == "fidelity" and params["backprojection"] > 0:
                observations = [(frame, self_alignment(picture.shape[:2]))]
                observations += [(low, align(picture, pic)) for low, pic in neighbours.values()]
                blended = back_project(blended, observations, int(params["backprojection"]))
            picture = blended
        out = place_on_canvas(np.clip(picture, 0.0, 1.0).astype(np.float32), geometry)
        info["size"] = list(geometry.canvas)
        return StageOutput(out, side={"sr": info})

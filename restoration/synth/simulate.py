"""The degradation simulator: a clean clip in, a damaged clip with exact ground truth out.

Physical order, as the damage happens to a print and its scan:
  content -> intended camera pan (truth = these panned clean frames)
  -> colour fade (dye loss in density space, slowly varying)            [the print ages]
  -> film grain (intensity-dependent, correlated, per channel, per frame)  [the emulsion's silver/dye clouds]
  -> dust, dirt, hair, lint, blotches (one frame, occasionally two) and vertical line scratches (many frames)
  -> flicker (per-frame gain/offset and a low-frequency gain field)
  -> gate weave (sub-pixel shift + rotation of the whole film frame, AR(1) over time)
  -> blur + downscale for SR (the degraded frame is then the low-resolution one).
Grain, dust, scratches and flicker live on the film frame, so the weave moves them with the picture; the masks
are given in the degraded frame's coordinates.

Geometry: when a pan or the weave is on, the frames are cropped: the output is the source less the pan's travel
and a weave margin on each side (even sizes), so truth and degraded frames hold picture everywhere (no reflected
or black borders). Without pan and weave the output has the source's size (cut to a multiple of the SR scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from restoration.errors import ParamError
from restoration.synth import defects as dmg
from restoration.synth import geometry as geo
from restoration.synth import grain as grn
from restoration.synth import tone
from restoration.synth.settings import DAMAGES, DamageSettings

MASK_LEVEL = 1e-3  # a woven (bilinearly resampled) opacity above this marks the pixel as defect
LOW_RES_MASK_COVERAGE = 0.25  # a low-resolution pixel is a defect when a quarter of it is
MONOCHROME_TOLERANCE = 1.0 / 512


@dataclass
class SynthClip:
    """A degraded clip, its ground truth and every parameter that made it (lists hold one entry per frame)."""

    degraded: list[np.ndarray]             # float32 RGB HxWx3 in [0, 1] (the low-resolution frames for 'blur')
    truth: list[np.ndarray]                # the clean frames as a restorer should return them: panned, no damage
    defect_masks: list[np.ndarray] | None  # bool HxW per frame: dust/dirt/hair/lint/blotch pixels (degraded coords)
    scratch_masks: list[np.ndarray] | None  # bool HxW per frame: line scratch pixels (degraded coords)
    grain: list[np.ndarray] | None         # float32 HxWx3: the grain added, on the film frame (truth coordinates)
    weave: np.ndarray | None               # (N, 3) dx, dy (px), rotation (deg): see geometry.weave_matrix
    pan: np.ndarray | None                 # (N, 2) intended camera path (px, relative to frame 0); content moves -pan
    flicker: np.ndarray | None             # (N, 2) gain, offset (spatial grids in params['flicker'])
    fade: np.ndarray | None                # (N, 7) strength, density scale k_R k_G k_B, fog R G B
    low_res: list[np.ndarray] | None       # 'blur': the low-resolution frames (== degraded)
    params: dict                           # JSON-ready: seed, damages, settings, geometry and every draw


def _check_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(frames) == 0:
        raise ParamError("frames", "no frames to degrade")
    out = []
    shape = None
    for i, frame in enumerate(frames):
        array = np.asarray(frame)
        if array.ndim != 3 or array.shape[2] != 3:
            raise ParamError(f"frame {i}", f"expected an HxWx3 RGB frame, got shape {array.shape}")
        if shape is not None and array.shape != shape:
            raise ParamError(f"frame {i}", f"size {array.shape[1]}x{array.shape[0]} differs from the first frame")
        shape = array.shape
        out.append(array.astype(np.float32, copy=False))
    return out


def _check_damage(damage: Iterable[str]) -> list[str]:
    chosen = []
    for name in damage:
        name = str(name).strip()
        if name not in DAMAGES:
            raise ParamError("damage", f"unknown damage {name!r}; choose from {', '.join(DAMAGES)}")
        if name not in chosen:
            chosen.append(name)
    return [d for d in DAMAGES if d in chosen]  # canonical order


def _is_monochrome(frame: np.ndarray) -> bool:
    return bool(np.abs(frame[..., 0] - frame[..., 1]).max() < MONOCHROME_TOLERANCE
                and np.abs(frame[..., 1] - frame[..., 2]).max() < MONOCHROME_TOLERANCE)


@dataclass
class FrameResult:
    """One simulated frame and its ground truth (masks are None when their damage is off)."""

    degraded: np.ndarray
    truth: np.ndarray
    defect_mask: np.ndarray | None
    scratch_mask: np.ndarray | None
    grain: np.ndarray | None


@dataclass
class SynthPlan:
    """Every per-clip draw of a simulation, made before any frame is rendered (frames then render in order)."""

    n_frames: int
    damage: list[str]
    settings: DamageSettings
    layout: geo.ClipGeometry
    pan: np.ndarray
    weave: np.ndarray | None
    fade: np.ndarray | None
    flicker: np.ndarray | None
    flicker_grids: list[np.ndarray]
    dust: list[dmg.Defect]
    scratches: list[dmg.Scratch]
    sigma_curve: np.ndarray
    monochrome: bool
    streams: dict[str, np.random.Generator]
    params: dict

    def on(self, name: str) -> bool:
        return name in self.damage


def plan_clip(n_frames: int, first_frame: np.ndarray, damage: Iterable[str], seed: int = 0,
              settings: DamageSettings | None = None, overlay_dir: Path | None = None) -> SynthPlan:
    """Draw the clip-level randomness (weave, fade, flicker, defect and scratch layouts) and record it in params."""
    settings = settings if settings is not None else DamageSettings()
    settings.validate()
    first = _check_frames([first_frame])[0]
    chosen = _check_damage(damage)
    if n_frames < 1:
        raise ParamError("frames", "no frames to degrade")
    n = int(n_frames)
    height, width = first.shape[:2]
    streams = dict(zip(DAMAGES, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(DAMAGES)))))
    on = {d: d in chosen for d in DAMAGES}

    margin = (geo.weave_margin_px((width, height), settings.weave_translation_sigma_px,
                                  settings.weave_rotation_sigma_deg) if on["weave"] else 0)
    layout = geo.plan_geometry((width, height), n, settings.pan_px_per_frame, margin,
                               settings.sr_scale if on["blur"] else 1)
    out_w, out_h = layout.output_size
    pan = geo.pan_path(n, settings.pan_px_per_frame)
    params: dict = {"seed": int(seed), "damage": chosen, "frames": n, "settings": settings.to_dict(),
                    "geometry": layout.to_dict(),
                    "random_streams": "numpy SeedSequence(seed).spawn(7), one stream per damage in DAMAGES order"}
    params["geometry"]["pan_mode"] = "crop (output = source less pan travel and weave margin)"
    params["pan"] = {"px_per_frame": list(settings.pan_px_per_frame), "values": pan.tolist(),
                     "convention": "camera position relative to frame 0 (x right, y down); content moves by -pan"}

    weave = None
    if on["weave"]:
        weave = geo.weave_path(n, settings.weave_translation_sigma_px, settings.weave_rotation_sigma_deg,
                               settings.weave_correlation, streams["weave"])
        params["weave"] = {"model": "AR(1) per component, clipped at 3 sigma",
                           "convention": "forward map film->degraded = geometry.weave_matrix(dx, dy, rot_deg, "
                                         "output_size): rotation about ((w-1)/2, (h-1)/2), counter-clockwise "
                                         "on screen for positive degrees (cv2.getRotationMatrix2D), then shift",
                           "interpolation": "cubic B-spline (scipy.ndimage, order 3), exact sub-pixel positions",
                           "values": weave.tolist()}
    fade = None
    if on["fade"]:
        strengths = tone.fade_path(n, settings.fade_strength, settings.fade_variation, streams["fade"])
        fade = np.array([np.concatenate([[s], tone.fade_parameters(s, settings.fade_dye_loss, settings.fade_fog)])
                         for s in strengths])
        params["fade"] = {"columns": ["strength", "k_R", "k_G", "k_B", "fog_R", "fog_G", "fog_B"],
                          "model": "D = -log10(v^2.2) (D <= 3.0); D' = k*D + fog; v' = 10^(-D'/2.2)",
                          "values": fade.tolist()}
    flicker = None
    grids: list[np.ndarray] = []
    if on["flicker"]:
        flicker = tone.flicker_path(n, settings.flicker_gain_sigma, settings.flicker_offset_sigma,
                                    streams["flicker"])
        g = settings.flicker_spatial_grid
        grids = [streams["flicker"].standard_normal((g, g)) for _ in range(n)]
        params["flicker"] = {"columns": ["gain", "offset"],
                             "model": "v' = gain * (1 + spatial * F(x, y)) * v + offset, F = bicubic upsampling "
                                      "of the grid, normalised to zero mean and unit std",
                             "values": flicker.tolist(), "spatial_grids": [gr.tolist() for gr in grids]}
    dust_plan: list[dmg.Defect] = []
    if on["dust"]:
        library = dmg.OverlayLibrary.scan(overlay_dir if overlay_dir is not None else dmg.default_overlay_dir())
        dust_plan = dmg.plan_dust(n, layout.canvas_size, settings, library, streams["dust"])
        params["dust"] = {"overlay_source": library.note, "procedural_only": not library.files,
                          "alpha_cut": dmg.ALPHA_CUT, "defects": [d.to_dict() for d in dust_plan]}
    scratch_plan: list[dmg.Scratch] = []
    if on["scratches"]:
        scratch_plan = dmg.plan_scratches(n, layout.canvas_size, settings, streams["scratches"])
        params["scratches"] = {"tracks": [s.to_dict() for s in scratch_plan],
                               "x_convention": "canvas px at the frame's middle row; column = x + slope*(row - h/2)"}
    monochrome = _is_monochrome(first)
    curve = grn.film_sigma_curve(settings.grain_sigma,
                                 (1.0, 1.0, 1.0) if monochrome else settings.grain_channel_weights,
                                 settings.grain_shadow_floor)
    if on["grain"]:
        params["grain"] = {"sigma_curve": curve.tolist(), "sigma_curve_at": "linspace(0, 1, 33)",
                           "grain_size": settings.grain_size, "monochrome": monochrome,
                           "channel_correlation": 1.0 if monochrome else settings.grain_channel_correlation,
                           "field_coordinates": "film frame = truth coordinates, before flicker and weave",
                           "sigma_of": "each channel's pre-grain value (the faded value when 'fade' is on)"}
    if on["blur"]:
        params["blur"] = {"scale": settings.sr_scale, "kernel": settings.sr_kernel,
                          "protocol": "BI: MATLAB imresize bicubic, antialiased" if settings.sr_kernel == "bicubic"
                          else f"BD: Gaussian sigma {settings.sr_gaussian_sigma} (replicate border), then "
                               f"every {settings.sr_scale}th pixel from {(settings.sr_scale - 1) // 2}",
                          "low_res_size": [out_w // settings.sr_scale, out_h // settings.sr_scale],
                          "mask_rule": f"low-res pixel is a defect when >= {LOW_RES_MASK_COVERAGE} of it is"}
    return SynthPlan(n, chosen, settings, layout, pan, weave, fade, flicker, grids, dust_plan, scratch_plan, curve,
                     monochrome, streams, params)


def render_frame(plan: SynthPlan, t: int, source_frame: np.ndarray) -> FrameResult:
    """Degrade frame t of the plan; frames must be rendered in order 0, 1, 2, ... (grain/scratch draws)."""
    settings, layout = plan.settings, plan.layout
    if source_frame.shape[:2] != (layout.source_size[1], layout.source_size[0]):
        raise ParamError(f"frame {t}", "size differs from the first frame")
    m = layout.weave_margin
    out_w, out_h = layout.output_size
    origin = (layout.canvas_origin[0] + plan.pan[t, 0], layout.canvas_origin[1] + plan.pan[t, 1])
    film = geo.crop_canvas(np.asarray(source_frame, dtype=np.float32), origin, layout.canvas_size)
    clean = np.clip(film[m:m + out_h, m:m + out_w], 0.0, 1.0)
    x = film.copy()
    grain = None
    if plan.on("fade"):
        x = tone.apply_fade(x, plan.fade[t, 1:])
    if plan.on("grain"):
        field = grn.grain_field(x.shape, x, plan.sigma_curve, settings.grain_size, plan.streams["grain"],
                                1.0 if plan.monochrome else settings.grain_channel_correlation)
        grained = np.clip(x + field, 0.0, 1.0)
        grain = np.ascontiguousarray((grained - x)[m:m + out_h, m:m + out_w])  # what was really added
        x = grained
    dust_cover = dmg.apply_dust(x, plan.dust, t) if plan.on("dust") else None
    scratch_cover = (dmg.apply_scratches(x, plan.scratches, t, plan.streams["scratches"])
                     if plan.on("scratches") else None)
    if plan.on("flicker"):
        gain_field = tone.spatial_gain(plan.flicker_grids[t], layout.canvas_size, settings.flicker_spatial)
        x = tone.apply_flicker(x, plan.flicker[t, 0], plan.flicker[t, 1], gain_field)
    covers = [dust_cover, scratch_cover]
    if plan.on("weave"):
        weave = tuple(plan.weave[t])
        x = np.clip(geo.apply_weave(x, weave, m, layout.output_size), 0.0, 1.0)
        covers = [None if c is None else geo.apply_weave(c, weave, m, layout.output_size, order=1) > MASK_LEVEL
                  for c in covers]
    else:
        x = x[m:m + out_h, m:m + out_w]
        covers = [None if c is None else c[m:m + out_h, m:m + out_w] > 0 for c in covers]
    x = np.ascontiguousarray(x, dtype=np.float32)
    if plan.on("blur"):
        x = geo.downscale(x, settings.sr_scale, settings.sr_kernel, settings.sr_gaussian_sigma)
        covers = [None if c is None else _low_res_mask(c, settings.sr_scale) for c in covers]
    return FrameResult(x, np.ascontiguousarray(clean, dtype=np.float32), covers[0], covers[1], grain)


def simulate(frames: Sequence[np.ndarray], damage: Iterable[str], seed: int = 0,
             settings: DamageSettings | None = None, overlay_dir: Path | None = None) -> SynthClip:
    """Degrade `frames` (float32 RGB [0, 1]) with the chosen damages; same seed and inputs -> identical arrays.

    Each damage draws from its own random stream (spawned from the seed), so switching one damage on or off
    leaves the draws of the others unchanged. `overlay_dir` defaults to defects.default_overlay_dir().
    """
    source = _check_frames(frames)
    plan = plan_clip(len(source), source[0], damage, seed, settings, overlay_dir)
    results = [render_frame(plan, t, frame) for t, frame in enumerate(source)]
    pick = (lambda name, on: [getattr(r, name) for r in results] if on else None)
    degraded = [r.degraded for r in results]
    return SynthClip(degraded, [r.truth for r in results], pick("defect_mask", plan.on("dust")),
                     pick("scratch_mask", plan.on("scratches")), pick("grain", plan.on("grain")), plan.weave,
                     plan.pan, plan.flicker, plan.fade, degraded if plan.on("blur") else None, plan.params)


def _low_res_mask(mask: np.ndarray, scale: int) -> np.ndarray:
    h, w = mask.shape
    coverage = mask.reshape(h // scale, scale, w // scale, scale).mean(axis=(1, 3))
    return coverage >= LOW_RES_MASK_COVERAGE

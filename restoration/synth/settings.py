"""Damage names and the physically motivated settings of the degradation simulator."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from restoration.errors import ParamError

DAMAGES = ("dust", "scratches", "grain", "flicker", "weave", "fade", "blur")  # 'blur' = blur + downscale for SR

SR_KERNELS = ("bicubic", "gaussian")

# Relative frequency of each overlay category among the overlay defects (dust and dirt specks dominate on real prints).
DEFAULT_CATEGORY_WEIGHTS = {
    "dots": 0.20, "smut": 0.15, "spots": 0.10, "dirt": 0.10, "sprinkles": 0.05,
    "hair": 0.10, "hair-short": 0.10, "lint": 0.08, "scratches": 0.05, "stain": 0.07,
}


@dataclass
class DamageSettings:
    """Strength of every damage; defaults are typical of a worn 35 mm release print scanned at SD/HD."""

    # dust, dirt, hair, lint, blotches (one-frame defects)
    dust_density: float = 25.0
    """Mean number of defects per frame per megapixel (Poisson); 25 gives about 10 on a 720x576 frame."""
    dust_two_frame_fraction: float = 0.1
    """Share of defects that stay on a second, following frame (dirt stuck in the gate for one more pull-down)."""
    dust_bright_fraction: float = 0.3
    """Share of bright defects: dirt on the negative prints white; dirt on the positive (the usual case) is dark."""
    dust_procedural_fraction: float = 0.35
    """Share of procedural specks/hairs/blotches among defects when overlays are available (1.0 without them)."""
    dust_size_scale: float = 1.0
    """Multiplier on every defect size (sizes are set for 576-line frames and follow the frame height)."""
    dust_category_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_CATEGORY_WEIGHTS))
    """Relative frequency of each overlay category (folder name) among overlay defects."""

    # large blotches (emulsion damage, mould, big dirt): one or two frames, up to a quarter of the frame
    blotch_rate: float = 0.0
    """Mean number of large blotches per frame (Poisson); 0 leaves them out."""
    blotch_min_area_px: float = 2000.0
    """Smallest blotch area in px² on a 576-line frame (follows the frame area)."""
    blotch_max_fraction: float = 0.25
    """Largest blotch area as a share of the frame (sizes are log-uniform between the two)."""
    blotch_two_frame_fraction: float = 0.25
    """Share of blotches that stay for a second frame."""

    # vertical line scratches (persistent)
    scratch_count: int = 2
    """Number of vertical line scratches in the clip; each lasts 50-100 % of the clip (at least 10 frames)."""
    scratch_bright_fraction: float = 0.6
    """Share of light scratches (emulsion scraped off the positive) vs dark ones (scratched negative)."""
    scratch_drift_px: float = 0.15
    """Std of the per-frame horizontal random-walk drift of a scratch, in px (film wander against the scratching edge)."""

    # film grain
    grain_sigma: float = 0.02
    """Grain std in midtones of a weight-1 channel, in [0, 1] units (about 5 code values in 8 bit)."""
    grain_size: float = 0.8
    """Std in px of the Gaussian kernel that correlates the grain spatially (grain clumps of 2-3 px at SD)."""
    grain_channel_weights: tuple[float, float, float] = (1.0, 0.85, 1.3)
    """Relative grain of R, G, B: the blue-sensitive layer is the grainiest, green the finest."""
    grain_shadow_floor: float = 0.35
    """Grain std at black and white relative to midtones (noise level function a + (1-a)*4v(1-v))."""
    grain_channel_correlation: float = 0.25
    """Correlation of grain between channels (dye-layer crosstalk); monochrome sources always get 1.0."""

    # flicker
    flicker_gain_sigma: float = 0.04
    """Std of the per-frame global gain around 1 (exposure/development variation of a few percent)."""
    flicker_offset_sigma: float = 0.01
    """Std of the per-frame global offset, in [0, 1] units."""
    flicker_spatial: float = 0.03
    """Std across the frame of the low-frequency relative gain field (uneven development), per frame."""
    flicker_spatial_grid: int = 3
    """Control grid (n x n) of the spatial gain field, upsampled smoothly to the frame."""

    # gate weave and intended camera move
    weave_translation_sigma_px: float = 1.5
    """Stationary std of the weave translation per axis, px (clipped at 3 sigma)."""
    weave_rotation_sigma_deg: float = 0.15
    """Stationary std of the weave rotation about the frame centre, degrees (clipped at 3 sigma)."""
    weave_correlation: float = 0.6
    """Frame-to-frame AR(1) coefficient of the weave: the gate wanders over a few frames, not white jitter."""
    pan_px_per_frame: tuple[float, float] = (0.0, 0.0)
    """Intended camera move (x right, y down) in source px per frame; the restorer must keep it."""

    # colour fade
    fade_strength: float = 0.5
    """Dye loss at the clip's middle: 0 none, 1 a print whose cyan and yellow dyes have lost 55-65 % of density."""
    fade_variation: float = 0.15
    """Relative change of the fade strength across the clip (linear drift between random end values)."""
    fade_dye_loss: tuple[float, float, float] = (0.55, 0.10, 0.65)
    """Density loss at strength 1 of the cyan (R), magenta (G) and yellow (B) dye: Eastmancolor dark fading."""
    fade_fog: tuple[float, float, float] = (0.02, 0.03, 0.05)
    """Stain/fog density added at strength 1 per channel (yellowing of the base), log10 units."""

    # blur + downscale for super-resolution
    sr_scale: int = 4
    """Downscale factor 2, 3 or 4."""
    sr_kernel: str = "bicubic"
    """'bicubic' (MATLAB imresize, antialiased: the BI protocol) or 'gaussian' (blur then subsample: BD)."""
    sr_gaussian_sigma: float = 1.6
    """Gaussian blur std for the 'gaussian' (BD) kernel, px in the high-resolution frame (standard: 1.6)."""

    def __post_init__(self) -> None:
        self.pan_px_per_frame = tuple(float(v) for v in self.pan_px_per_frame)  # type: ignore[assignment]
        self.grain_channel_weights = tuple(float(v) for v in self.grain_channel_weights)  # type: ignore[assignment]
        self.fade_dye_loss = tuple(float(v) for v in self.fade_dye_loss)  # type: ignore[assignment]
        self.fade_fog = tuple(float(v) for v in self.fade_fog)  # type: ignore[assignment]
        self.dust_category_weights = {str(k): float(v) for k, v in dict(self.dust_category_weights).items()}
        self.validate()

    def validate(self) -> None:
        """Raise ParamError naming the first field that is out of range."""
        nonneg = ("dust_density", "dust_size_scale", "grain_sigma", "grain_size", "grain_shadow_floor",
                  "flicker_gain_sigma", "flicker_offset_sigma", "flicker_spatial", "weave_translation_sigma_px",
                  "weave_rotation_sigma_deg", "fade_strength", "fade_variation", "sr_gaussian_sigma",
                  "scratch_drift_px")
        for name in nonneg:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ParamError(f"synth.{name}", f"must be a finite number >= 0, got {value!r}")
        for name in ("blotch_rate", "blotch_min_area_px"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ParamError(f"synth.{name}", f"must be a finite number >= 0, got {value!r}")
        for name in ("dust_two_frame_fraction", "dust_bright_fraction", "dust_procedural_fraction",
                     "blotch_max_fraction", "blotch_two_frame_fraction",
                     "scratch_bright_fraction", "grain_channel_correlation", "fade_strength"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ParamError(f"synth.{name}", f"must be within 0..1, got {value!r}")
        if not -0.99 <= self.weave_correlation <= 0.99:
            raise ParamError("synth.weave_correlation", f"must be within -0.99..0.99, got {self.weave_correlation!r}")
        if not isinstance(self.scratch_count, int) or self.scratch_count < 0:
            raise ParamError("synth.scratch_count", f"must be an integer >= 0, got {self.scratch_count!r}")
        if not isinstance(self.flicker_spatial_grid, int) or self.flicker_spatial_grid < 2:
            raise ParamError("synth.flicker_spatial_grid", f"must be an integer >= 2, got {self.flicker_spatial_grid!r}")
        if self.sr_scale not in (2, 3, 4):
            raise ParamError("synth.sr_scale", f"must be 2, 3 or 4, got {self.sr_scale!r}")
        if self.sr_kernel not in SR_KERNELS:
            raise ParamError("synth.sr_kernel", f"must be one of {', '.join(SR_KERNELS)}, got {self.sr_kernel!r}")
        for name in ("pan_px_per_frame",):
            if len(getattr(self, name)) != 2:
                raise ParamError(f"synth.{name}", "must be two numbers (x, y)")
        for name in ("grain_channel_weights", "fade_dye_loss", "fade_fog"):
            values = getattr(self, name)
            if len(values) != 3 or any(not math.isfinite(v) or v < 0 for v in values):
                raise ParamError(f"synth.{name}", f"must be three numbers >= 0 (R, G, B), got {values!r}")
        if any(v < 0 for v in self.dust_category_weights.values()):
            raise ParamError("synth.dust_category_weights", "weights must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DamageSettings":
        """Build from a (possibly partial) dict; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ParamError(f"synth.{key}", "unknown damage setting")
        return cls(**data)

"""Old-film degradation simulator: damaged clips with exact ground truth, seeded and reproducible.

See restoration.synth.simulate for the physical model and the order of the damages.
"""

from restoration.synth.defects import OVERLAY_ENV, OverlayLibrary, default_overlay_dir
from restoration.synth.files import SynthWriter, read_synth, run_synth, write_synth
from restoration.synth.geometry import bicubic_downscale, downscale, unweave, weave_matrix
from restoration.synth.grain import film_sigma_curve, grain_field
from restoration.synth.settings import DAMAGES, DamageSettings
from restoration.synth.simulate import FrameResult, SynthClip, SynthPlan, plan_clip, render_frame, simulate

__all__ = [
    "DAMAGES",
    "OVERLAY_ENV",
    "DamageSettings",
    "FrameResult",
    "OverlayLibrary",
    "SynthClip",
    "SynthPlan",
    "SynthWriter",
    "bicubic_downscale",
    "default_overlay_dir",
    "downscale",
    "film_sigma_curve",
    "grain_field",
    "plan_clip",
    "read_synth",
    "render_frame",
    "run_synth",
    "simulate",
    "unweave",
    "weave_matrix",
    "write_synth",
]

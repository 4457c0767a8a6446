"""Stage `denoise`: film-grain-aware denoising with measured regrain (placeholder until its issue lands)."""

from ..params import Param, declare
from ..stage import PlaceholderStage, register


@register
class GrainDenoise(PlaceholderStage):
    name = "denoise"
    title = "Grain & noise"
    summary = "Motion-compensated denoising driven by a measured grain model."
    params = declare(
        Param("strength", "float", 1.0, "Denoising strength relative to the measured noise level.",
              minimum=0.0, maximum=3.0, step=0.05),
        Param("temporal_radius", "int", 2, "Motion-compensated frames on each side.", minimum=0, maximum=4,
              unit="frames"),
        Param("spatial", "float", 0.5, "Strength of the spatial pass.", minimum=0.0, maximum=1.0, step=0.05),
        Param("grain", "choice", "keep", "keep the film's grain, remove it, or regrain from the measured model.",
              choices=("keep", "remove", "regrain")),
        Param("grain_amount", "float", 1.0, "Amount of grain kept or synthesized.", minimum=0.0, maximum=2.0,
              step=0.05),
        Param("grain_size_scale", "float", 1.0, "Scale of the synthesized grain size.", minimum=0.25, maximum=4.0,
              step=0.05),
    )

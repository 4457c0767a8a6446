"""Stage `stabilize`: gate-weave removal that keeps camera moves (placeholder until its issue lands)."""

from ..params import Param, declare
from ..stage import PlaceholderStage, register


@register
class GateWeave(PlaceholderStage):
    name = "stabilize"
    title = "Gate weave"
    summary = "Dense-flow gate-weave removal that keeps intended pans and tilts."
    params = declare(
        Param("smoothing", "float", 0.5, "Strength of trajectory smoothing (higher keeps less weave).",
              minimum=0.0, maximum=1.0, step=0.05),
        Param("mode", "choice", "smooth", "smooth: keep camera moves; tripod: lock to a reference frame.",
              choices=("smooth", "tripod")),
        Param("border", "choice", "fill", "How exposed borders are handled.", choices=("crop", "fill", "mirror", "black")),
        Param("max_correction", "float", 20.0, "Largest shift corrected.", minimum=0.0, maximum=200.0, unit="px"),
    )

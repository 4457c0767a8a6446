"""Stage `color`: per-shot colour-fade correction (placeholder until its issue lands)."""

from ..params import Param, declare
from ..stage import PlaceholderStage, register


@register
class FadeCorrection(PlaceholderStage):
    name = "color"
    title = "Colour fade"
    summary = "Per-shot dye-fade correction, stable over time."
    params = declare(
        Param("strength", "float", 1.0, "Fraction of the estimated correction applied.", minimum=0.0, maximum=1.0,
              step=0.05),
        Param("mode", "choice", "auto", "auto, match a reference, or balance on a picked neutral.",
              choices=("auto", "reference", "neutral")),
        Param("reference", "str", "", "Reference still (path) or frame number for reference mode."),
        Param("neutral", "list", [], "Grey pick for neutral mode: [x, y] or [x, y, w, h]."),
        Param("preserve_bw", "bool", True, "Detect black-and-white material and correct tone only."),
        Param("temporal_smoothing", "float", 0.8, "Smoothing of the correction across the shot.", minimum=0.0,
              maximum=1.0, step=0.05),
    )

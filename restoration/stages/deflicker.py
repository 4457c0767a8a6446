"""Stage `deflicker`: global and local brightness flicker removal (placeholder until its issue lands)."""

from ..params import Param, declare
from ..stage import PlaceholderStage, register


@register
class Deflicker(PlaceholderStage):
    name = "deflicker"
    title = "Deflicker"
    summary = "Match each frame's tone to a temporally smoothed target."
    params = declare(
        Param("window", "int", 7, "Frames on each side used for the smoothed target.", minimum=1, maximum=50,
              unit="frames"),
        Param("strength", "float", 1.0, "Fraction of the measured flicker removed.", minimum=0.0, maximum=1.0,
              step=0.05),
        Param("local", "bool", True, "Also correct block-wise (uneven) flicker."),
        Param("block_size", "int", 64, "Block size of the local correction.", minimum=16, maximum=512, unit="px"),
    )

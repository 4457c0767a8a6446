"""Stage `dust`: dust, dirt and scratch repair (placeholder until its issue lands)."""

from ..params import Param, declare
from ..stage import PlaceholderStage, register


@register
class DustRepair(PlaceholderStage):
    name = "dust"
    title = "Dust & scratches"
    summary = "Motion-compensated dust, dirt and vertical scratch repair."
    params = declare(
        Param("sensitivity", "float", 0.5, "How readily a spot that differs from both neighbours is called a defect.",
              minimum=0.0, maximum=1.0, step=0.05),
        Param("min_size", "int", 2, "Smallest defect repaired.", minimum=1, maximum=100, unit="px"),
        Param("max_size", "int", 2000, "Largest defect repaired (area).", minimum=10, maximum=100000, unit="px²"),
        Param("motion_protect", "float", 0.7, "How strongly flow inconsistency vetoes a detection.",
              minimum=0.0, maximum=1.0, step=0.05),
        Param("scratches", "bool", True, "Also detect and repair vertical line scratches."),
        Param("scratch_sensitivity", "float", 0.5, "How readily a persistent vertical line is called a scratch.",
              minimum=0.0, maximum=1.0, step=0.05),
        Param("temporal_radius", "int", 2, "Neighbouring frames used on each side.", minimum=1, maximum=3,
              unit="frames"),
        Param("show_mask", "bool", False, "Output the defect map for review instead of the repair."),
        Param("keep_original", "list", [], "Regions left untouched: [[frame, x, y, w, h], ...]."),
    )

"""Gate weave: measured weave, the camera-move model per shot, borders."""

from .stage import GateWeave

__all__ = ["GateWeave"]

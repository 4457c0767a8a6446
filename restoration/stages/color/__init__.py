"""Colour fade: the dye-fade model in density space, per-shot estimate, CIELAB matching."""

from .stage import FadeCorrection

__all__ = ["FadeCorrection"]

"""Deflicker: motion-compensated brightness ratios, global and block-wise gain."""

from .stage import Deflicker

__all__ = ["Deflicker"]

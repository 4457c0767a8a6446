"""Dust, dirt and scratches: DustMap detection, repair from neighbours, scratch tracking."""

from .stage import DustRepair

__all__ = ["DustRepair"]

"""Grain and noise: the GrainModel measurement, motion-compensated denoising, regrain."""

from .stage import GrainDenoise

__all__ = ["GrainDenoise"]

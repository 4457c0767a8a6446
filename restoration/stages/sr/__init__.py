"""Super-resolution: ncnn reader, torch architectures, model registry, tiling, geometry, engine."""

from .stage import SuperResolution

__all__ = ["SuperResolution"]

"""Super-resolution internals: ncnn reader, torch architectures, model registry, tiling, geometry and engine."""

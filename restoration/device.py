"""Compute device and precision choice for the torch parts (CUDA fp16, Apple MPS, CPU bf16/fp32)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch

from .errors import ParamError


def pick_device(preference: str = "auto") -> torch.device:
    """`auto` takes CUDA, then MPS, then the CPU; asking for an absent device is an error naming it."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ParamError("device", "cuda was asked for but no CUDA GPU is available")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ParamError("device", "mps was asked for but Apple MPS is not available")
    return torch.device(preference)


def cpu_supports_bf16() -> bool:
    """True when oneDNN reports native bf16 (AVX-512 BF16 / AMX); then bf16 autocast is fast on this CPU."""
    mkldnn = getattr(torch.backends, "mkldnn", None)
    checker = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    if mkldnn is None or not mkldnn.is_available() or checker is None:
        return False
    try:
        return bool(checker())
    except RuntimeError:
        return False


def pick_dtype(device: torch.device, preference: str = "auto") -> torch.dtype:
    """fp16 on CUDA, bf16 on a bf16-capable CPU, else fp32, unless `preference` names one."""
    named = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if preference in named:
        return named[preference]
    if device.type in ("cuda", "mps"):
        return torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def cpu_count() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run torch's CPU operators with `count` threads inside the block (None: leave as is), then restore."""
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def describe_torch() -> str:
    """Which torch build this runs on and the device `auto` picks, for `filmrestore --version`, e.g.
    `torch 2.13.0+cpu (CPU build), device cpu` or `torch 2.13.0+cu128 (CUDA 12.8 build), device cuda (NVIDIA …)`."""
    cuda = torch.version.cuda
    hip = getattr(torch.version, "hip", None)
    build = f"CUDA {cuda} build" if cuda else f"ROCm {hip} build" if hip else "CPU build"
    device = pick_device("auto")
    where = f"device {device.type}"
    if device.type == "cuda":
        where += f" ({torch.cuda.get_device_name(0)})"
    return f"torch {torch.__version__} ({build}), {where}"

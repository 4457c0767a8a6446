"""Users' own ESRGAN-family weights: layouts detected from keys and shapes, anything else refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restoration.errors import ParamError
from restoration.stages.sr import archs, models


def _random_state(net: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=generator) * 0.05 for k, v in net.state_dict().items()}


def _old_esrgan_keys(state: dict[str, torch.Tensor], num_block: int) -> dict[str, torch.Tensor]:
    """The original ESRGAN sequential naming of a Real-ESRGAN-layout RRDBNet state dict (×4)."""
    old = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "body":
            old[f"model.1.sub.{parts[1]}.{parts[2].upper()}.{parts[3]}.0.{parts[4]}"] = value
        else:
            index = {"conv_first": 0, "conv_body": None, "conv_up1": 3, "conv_up2": 6, "conv_hr": 8,
                     "conv_last": 10}[parts[0]]
            name = f"model.1.sub.{num_block}" if index is None else f"model.{index}"
            old[f"{name}.{parts[1]}"] = value
    return old


def _save(state: dict[str, torch.Tensor], path: Path, wrapper: str | None = None) -> Path:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({wrapper: state} if wrapper else state, str(path))
    return path


def _same_output(a: torch.nn.Module, b: torch.nn.Module, size: int = 12) -> bool:
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        return torch.allclose(a(x), b(x), atol=1e-6)


@pytest.mark.parametrize("suffix, wrapper", [(".pth", "params_ema"), (".pth", "params"), (".safetensors", None)])
def test_real_esrgan_layout_is_detected(tmp_path, suffix, wrapper):
    reference = archs.RRDBNet(num_feat=16, num_block=2, num_grow_ch=8, scale=4)
    reference.load_state_dict(_random_state(reference, 1))
    path = _save(reference.state_dict(), tmp_path / f"mine{suffix}", wrapper)
    net = models.load_user_model(path)
    assert net.arch == "rrdbnet" and net.scale == 4
    assert net.config["num_block"] == 2 and net.config["num_feat"] == 16 and net.config["num_grow_ch"] == 8
    assert _same_output(net, reference)


def test_real_esrgan_x2_pixel_unshuffle_layout_is_detected(tmp_path):
    reference = archs.RRDBNet(num_feat=16, num_block=1, num_grow_ch=8, scale=2, unshuffle=2)
    reference.load_state_dict(_random_state(reference, 2))
    net = models.load_user_model(_save(reference.state_dict(), tmp_path / "x2.pth", "params_ema"))
    assert net.scale == 2 and net.config["unshuffle"] == 2
    assert _same_output(net, reference)
    assert net(torch.rand(1, 3, 8, 10)).shape == (1, 3, 16, 20)
    assert net(torch.rand(1, 3, 7, 9)).shape == (1, 3, 14, 18)  # odd sides are padded for the unshuffle


def test_old_esrgan_layout_is_detected(tmp_path):
    reference = archs.RRDBNet(num_feat=16, num_block=3, num_grow_ch=8, scale=4)
    reference.load_state_dict(_random_state(reference, 4))
    old = _old_esrgan_keys(reference.state_dict(), 3)
    assert "model.1.sub.0.RDB1.conv1.0.weight" in old and "model.10.weight" in old
    net = models.load_user_model(_save(old, tmp_path / "4x-community.pth"))
    assert net.arch == "rrdbnet" and net.scale == 4 and net.config["num_block"] == 3
    assert _same_output(net, reference)


@pytest.mark.parametrize("scale", [2, 4])
def test_compact_layout_is_detected(tmp_path, scale):
    reference = archs.SRVGGNetCompact(num_feat=8, num_conv=3, upscale=scale)
    reference.load_state_dict(_random_state(reference, 5))
    net = models.load_user_model(_save(reference.state_dict(), tmp_path / "compact.safetensors"))
    assert net.arch == "compact" and net.scale == scale and net.config["num_conv"] == 3
    assert _same_output(net, reference)


def test_unknown_architecture_names_what_it_found(tmp_path):
    state = {"encoder.fc.weight": torch.zeros(4, 4), "encoder.fc.bias": torch.zeros(4)}
    with pytest.raises(ParamError, match=r"model foo\.pth: unrecognised architecture .*encoder\.fc\.bias"):
        models.load_user_model(_save(state, tmp_path / "foo.pth"))


def test_shape_mismatch_is_a_named_error(tmp_path):
    reference = archs.SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4)
    state = _random_state(reference, 6)
    state["body.3.weight"] = torch.zeros(5)  # a PReLU with the wrong width
    with pytest.raises(ParamError, match="model bad.pth"):
        models.load_user_model(_save(state, tmp_path / "bad.pth"))


def test_garbage_and_wrong_files_are_refused(tmp_path):
    garbage = tmp_path / "noise.pth"
    garbage.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ParamError, match="model noise.pth: cannot be read"):
        models.load_user_model(garbage)
    with pytest.raises(ParamError, match="unsupported file type"):
        models.load_user_model(tmp_path / "model.onnx")
    with pytest.raises(ParamError, match="file not found"):
        models.load_user_model(tmp_path / "absent.pth")


def test_pth_files_are_loaded_without_unpickling_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Payload()}, str(path))
    with pytest.raises(ParamError, match="cannot be read"):
        models.load_user_model(path)


def test_unknown_model_name_lists_the_shipped_ones():
    with pytest.raises(ParamError, match="unknown model 'nonesuch'.*realesrgan-x4plus"):
        models.load_model("nonesuch")


def test_shipped_weights_are_cached_as_safetensors(tmp_path):
    model = models.shipped_model("realesr-animevideov3-x4")
    if not models.is_installed(model):
        pytest.skip(f"{model.distribution} not installed")
    first = models.load_shipped(model, tmp_path)
    cached = list(tmp_path.glob("realesr-animevideov3-x4-*.safetensors"))
    assert len(cached) == 1
    second = models.load_shipped(model, tmp_path)
    assert _same_output(first, second)
    cached[0].write_bytes(b"damaged")
    third = models.load_shipped(model, tmp_path)  # a damaged entry is rebuilt, not trusted
    assert _same_output(first, third) and cached[0].stat().st_size > 1000

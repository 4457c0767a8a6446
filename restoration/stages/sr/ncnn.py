"""Our own reader for ncnn model files (.param text graph + .bin weights), enough to convert SR networks to torch.

Formats as documented by ncnn (docs/developer-guide/param-and-model-file-structure.md, src/modelbin.cpp):
the .param is a magic line, a "layers blobs" line and one line per layer with `key=value` parameters (array
values under key -23300-k as "count,v1,v2,..."); the .bin concatenates each layer's weights in layer order, a
type-0 blob (convolution kernels) behind a 4-byte storage tag, bias/slope blobs (type 1) as raw float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from ...errors import ParamError

PARAM_MAGIC = 7767517
ARRAY_KEY_BASE = -23300
TAG_FP16 = 0x01306B47
TAG_BF16 = 0x01348B83
TAG_INT8 = 0x000D4B38
TAG_FP32_RAW = 0x0002C056

ParamValue = Union[int, float, str, tuple]


@dataclass(frozen=True)
class NcnnLayer:
    """One line of a .param file: layer type, name, input and output blob names, and its parameter dict."""

    kind: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, ParamValue]

    def get(self, key: int, default: ParamValue) -> ParamValue:
        return self.params.get(key, default)


@dataclass(frozen=True)
class NcnnGraph:
    """A parsed .param: the layers in file (topological) order."""

    layers: tuple[NcnnLayer, ...]
    blob_count: int

    def layer(self, name: str) -> NcnnLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def of_kind(self, *kinds: str) -> list[NcnnLayer]:
        return [layer for layer in self.layers if layer.kind in kinds]


def _number(text: str) -> int | float:
    if any(c in text for c in ".eE") and not text.lstrip("+-").isdigit():
        return float(text)
    return int(text)


def _param_value(key: int, text: str) -> tuple[int, ParamValue]:
    if key <= ARRAY_KEY_BASE:
        count_text, _, rest = text.partition(",")
        values = tuple(_number(v) for v in rest.split(",")) if rest else ()
        if int(count_text) != len(values):
            raise ValueError(f"array of {count_text} values holds {len(values)}")
        return ARRAY_KEY_BASE - key, values
    if "," in text:  # modern files write arrays without the count under the plain key
        return key, tuple(_number(v) for v in text.split(","))
    try:
        return key, _number(text)
    except ValueError:
        return key, text


def parse_param(text: str, where: str = "param") -> NcnnGraph:
    """Parse the text of an ncnn .param file; ParamError names the file and line for anything malformed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != str(PARAM_MAGIC):
        raise ParamError(where, f"not an ncnn .param file (first line should be {PARAM_MAGIC})")
    try:
        layer_count, blob_count = (int(v) for v in lines[1].split())
    except (IndexError, ValueError):
        raise ParamError(where, "line 2 should hold the layer and blob counts") from None
    layers: list[NcnnLayer] = []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        try:
            kind, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
            inputs = tuple(fields[4:4 + n_in])
            outputs = tuple(fields[4 + n_in:4 + n_in + n_out])
            if len(inputs) != n_in or len(outputs) != n_out:
                raise ValueError("blob names missing")
            params: dict[int, ParamValue] = {}
            for item in fields[4 + n_in + n_out:]:
                key_text, _, value_text = item.partition("=")
                key, value = _param_value(int(key_text), value_text)
                params[key] = value
        except (IndexError, ValueError) as exc:
            raise ParamError(f"{where} line {number}", f"malformed layer line ({exc})") from None
        layers.append(NcnnLayer(kind, name, inputs, outputs, params))
    if len(layers) != layer_count:
        raise ParamError(where, f"header says {layer_count} layers but {len(layers)} follow")
    return NcnnGraph(tuple(layers), blob_count)


def read_param(path: Path) -> NcnnGraph:
    return parse_param(Path(path).read_text(encoding="ascii", errors="replace"), str(path))


class _BinReader:
    """Sequential reader over the .bin bytes, following ncnn's ModelBin::load rules."""

    def __init__(self, data: bytes, where: str):
        self.data = memoryview(data)
        self.offset = 0
        self.where = where

    def _take(self, size: int) -> memoryview:
        if self.offset + size > len(self.data):
            raise ParamError(self.where, f"truncated: needs {size} bytes at offset {self.offset}, "
                                         f"file holds {len(self.data)}")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def raw_fp32(self, count: int) -> np.ndarray:
        """A type-1 blob: raw little-endian float32, no tag."""
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)

    def tagged(self, count: int) -> np.ndarray:
        """A type-0 blob: 4-byte storage tag, then fp16 / fp32 / quantised data (padded to 4 bytes)."""
        tag_bytes = bytes(self._take(4))
        tag = int.from_bytes(tag_bytes, "little")
        if tag == TAG_FP16:
            raw = self._take(_align4(2 * count))
            return np.frombuffer(raw[:2 * count], dtype="<f2").astype(np.float32)
        if tag == TAG_BF16:
            raw = self._take(_align4(2 * count))
            halves = np.frombuffer(raw[:2 * count], dtype="<u2").astype(np.uint32) << 16
            return halves.view(np.float32)
        if tag == TAG_FP32_RAW or tag == 0:
            return self.raw_fp32(count)
        if tag == TAG_INT8:
            raise ParamError(self.where, "int8-quantised weights are not supported (convert the model to fp16/fp32)")
        if sum(tag_bytes) != 0:
            table = self.raw_fp32(256)
            indices = np.frombuffer(self._take(_align4(count))[:count], dtype=np.uint8)
            return table[indices]
        raise ParamError(self.where, f"unknown weight storage tag 0x{tag:08X} at offset {self.offset - 4}")


def _align4(size: int) -> int:
    return (size + 3) // 4 * 4


LayerWeights = dict[str, np.ndarray]


def _conv_weights(layer: NcnnLayer, reader: _BinReader, transposed: bool) -> LayerWeights:
    num_output = int(layer.get(0, 0))
    kernel_w = int(layer.get(1, 0))
    kernel_h = int(layer.get(11, kernel_w))
    size = int(layer.get(6, 0))
    groups = int(layer.get(7, 1)) if layer.kind.endswith("DepthWise") else 1
    if int(layer.get(8, 0)):
        raise ParamError(reader.where, f"layer {layer.name}: int8 convolution is not supported")
    if num_output <= 0 or kernel_w <= 0 or size % (num_output * kernel_w * kernel_h):
        raise ParamError(reader.where, f"layer {layer.name}: inconsistent convolution shape parameters")
    num_input = size // (num_output * kernel_w * kernel_h) * groups
    weight = reader.tagged(size).reshape(num_output, num_input // groups, kernel_h, kernel_w)
    if transposed:  # ncnn keeps deconvolution kernels output-major; torch wants (in, out, kh, kw)
        weight = np.ascontiguousarray(weight.transpose(1, 0, 2, 3))
    out: LayerWeights = {"weight": weight}
    if int(layer.get(5, 0)):
        out["bias"] = reader.raw_fp32(num_output)
    return out


def read_weights(graph: NcnnGraph, data: bytes, where: str = "bin") -> dict[str, LayerWeights]:
    """Weights of every layer that carries any, by layer name, as float32 arrays in torch layout.

    Supports the layer types SR networks use; a weighted layer of another type is a ParamError naming it.
    """
    reader = _BinReader(data, where)
    weights: dict[str, LayerWeights] = {}
    for layer in graph.layers:
        if layer.kind in ("Convolution", "ConvolutionDepthWise"):
            weights[layer.name] = _conv_weights(layer, reader, transposed=False)
        elif layer.kind == "Deconvolution":
            weights[layer.name] = _conv_weights(layer, reader, transposed=True)
        elif layer.kind == "PReLU":
            weights[layer.name] = {"weight": reader.raw_fp32(int(layer.get(0, 0)))}
        elif layer.kind == "Scale":
            count = int(layer.get(0, 0))
            entry = {"weight": reader.raw_fp32(count)} if count != -233 else {}
            if int(layer.get(1, 0)):
                entry["bias"] = reader.raw_fp32(count)
            weights[layer.name] = entry
        elif layer.kind == "InnerProduct":
            num_output, size = int(layer.get(0, 0)), int(layer.get(2, 0))
            entry = {"weight": reader.tagged(size).reshape(num_output, size // max(num_output, 1))}
            if int(layer.get(1, 0)):
                entry["bias"] = reader.raw_fp32(num_output)
            weights[layer.name] = entry
        elif layer.kind in _WEIGHTLESS:
            continue
        else:
            raise ParamError(where, f"layer {layer.name}: unsupported ncnn layer type {layer.kind}")
    if reader.offset != len(reader.data):
        raise ParamError(where, f"{len(reader.data) - reader.offset} bytes left over after the last layer "
                                "(the .param and .bin do not belong together)")
    return weights


_WEIGHTLESS = frozenset({"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle", "Crop",
                         "ReLU", "Sigmoid", "Pooling", "Clip", "TanH", "Reshape", "Permute", "Flatten",
                         "Dropout", "Noop", "Slice", "UnaryOp"})


def read_model(param_path: Path, bin_path: Path) -> tuple[NcnnGraph, dict[str, LayerWeights]]:
    """Parse a .param/.bin pair."""
    graph = read_param(param_path)
    return graph, read_weights(graph, Path(bin_path).read_bytes(), str(bin_path))

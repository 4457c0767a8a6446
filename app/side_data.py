"""Stage side data sorted for display, whatever a stage puts in it: masks become overlays, series become plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Number
from typing import Any, Mapping

import numpy as np

from restoration.errors import ParamError
from restoration.stage import stage_class

MIN_OVERLAY_PX = 16  # 2-D arrays at least this big on both sides are pictures (masks, maps), not tables
MAX_SERIES = 8  # a 2-D array with this few rows (or columns) is that many curves
MAX_DEPTH = 4
MAX_CLASS_CODE = 15  # integer maps with codes this small are class maps (dust/scratch/kept): shown where non-zero


@dataclass
class Overlay:
    """A mask or map drawn over the picture: `alpha` is uint8 (0 transparent .. 255 opaque), any size."""

    key: str
    label: str
    alpha: np.ndarray


@dataclass
class Plot:
    """Curves a stage measured (weave, grain level, fade curves): name -> y values over their index."""

    key: str
    label: str
    series: dict[str, np.ndarray]


@dataclass
class SideData:
    """Everything the active stages said about one frame, ready for the viewer and the data panel."""

    overlays: list[Overlay] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    values: list[tuple[str, str]] = field(default_factory=list)


def describe_side_data(side: Mapping[str, Mapping[str, Any]]) -> SideData:
    """Sort `Pipeline.side_data(i)` ({stage: {name: value}}) into overlays, plots and plain values."""
    out = SideData()
    for stage, data in side.items():
        try:
            title = stage_class(stage).title
        except ParamError:
            title = stage
        for name, value in (data or {}).items():
            _describe(out, f"{stage}/{name}", f"{title}: {name}", value, 0)
    return out


def _describe(out: SideData, key: str, label: str, value: Any, depth: int) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        series = _series_dict(value)
        if series:
            out.plots.append(Plot(key, label, series))
            return
        if depth < MAX_DEPTH:
            for name, item in value.items():
                _describe(out, f"{key}/{name}", f"{label}.{name}", item, depth + 1)
        return
    if isinstance(value, (bool, np.bool_, str, Number, np.number)):
        out.values.append((label, _text(value)))
        return
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
        out.values.append((label, f"{len(value)} record{'s' if len(value) != 1 else ''}"))
        return
    array = _as_array(value)
    if array is None:
        out.values.append((label, _text(value)))
        return
    if array.ndim == 2 and min(array.shape) >= MIN_OVERLAY_PX:
        out.overlays.append(Overlay(key, label, mask_alpha(array)))
        return
    series = _series(array)
    if series:
        out.plots.append(Plot(key, label, series))
        return
    if array.size == 1:
        out.values.append((label, _text(array.reshape(-1)[0].item())))
        return
    out.values.append((label, f"array {array.dtype} {'x'.join(map(str, array.shape))}"))


def mask_alpha(array: np.ndarray) -> np.ndarray:
    """uint8 opacity for a boolean, 0/1, 8-bit or [0, 1] float mask."""
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint8 and int(array.max(initial=0)) > MAX_CLASS_CODE:
        return np.ascontiguousarray(array)  # an 8-bit confidence or opacity map
    if np.issubdtype(array.dtype, np.integer):
        return (array > 0).astype(np.uint8) * 255
    return (np.clip(np.nan_to_num(array.astype(np.float32)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _as_array(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value if value.dtype != object else None
    if isinstance(value, (list, tuple)) and value:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError):
            return None
        if array.dtype.kind in "biuf":
            return array
    return None


def _series(array: np.ndarray) -> dict[str, np.ndarray]:
    if array.dtype.kind not in "biuf":
        return {}
    if array.ndim == 1 and array.size >= 2:
        return {"value": array.astype(np.float64)}
    if array.ndim == 2 and min(array.shape) <= MAX_SERIES and max(array.shape) >= 2:
        columns = array if array.shape[0] >= array.shape[1] else array.T
        return {f"{i}": columns[:, i].astype(np.float64) for i in range(columns.shape[1])}
    return {}


def _series_dict(value: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A small dict whose every entry is a numeric 1-D sequence: one plot with a curve per entry."""
    if not value or len(value) > MAX_SERIES:
        return {}
    series: dict[str, np.ndarray] = {}
    for name, item in value.items():
        array = _as_array(item)
        if array is None or array.ndim != 1 or array.size < 2 or array.dtype.kind not in "biuf":
            return {}
        series[str(name)] = array.astype(np.float64)
    return series


def _text(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."

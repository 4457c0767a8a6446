"""Stage side data sorted for display, whatever a stage puts in it: masks become overlays, series become plots."""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Number
from typing import Any, Mapping

import numpy as np

from restoration.errors import ParamError
from restoration.stages import stage_class

from .vocabulary import HIDDEN, records_text, side_name, value_text, with_unit

MIN_OVERLAY_PX = 16  # 2-D arrays at least this big on both sides are pictures (masks, maps), not tables
MAX_SERIES = 8  # at most this many curves share one plot
MAX_CURVES = 4  # a 2-D array with this few rows (or columns) is that many curves (RGB fade curves); else a map
MIN_SERIES = 5  # shorter number lists are shown as text (a correction vector is not a curve)
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
    """Curves a stage measured (weave, grain level, fade curves): name -> y values over their index.

    `first_frame` is set when the values run over clip frames (a dict with an integer `start` beside its series).
    """

    key: str
    label: str
    series: dict[str, np.ndarray]
    first_frame: int | None = None


@dataclass
class Map:
    """A small grid of numbers (block-wise gains, local levels) shown as a heat map beside the picture."""

    key: str
    label: str
    values: np.ndarray


@dataclass
class SideData:
    """Everything the active stages said about one frame, ready for the viewer and the data panel."""

    overlays: list[Overlay] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)
    maps: list[Map] = field(default_factory=list)
    values: list[tuple[str, str]] = field(default_factory=list)
    raw: Mapping[str, Any] = field(default_factory=dict)  # the stages' side data as given (for dedicated views)


def describe_side_data(side: Mapping[str, Mapping[str, Any]]) -> SideData:
    """Sort `Pipeline.side_data(i)` ({stage: {name: value}}) into overlays, plots and plain values."""
    out = SideData(raw=side)
    for stage, data in side.items():
        try:
            title = stage_class(stage).title
        except ParamError:
            title = stage
        for name, value in (data or {}).items():
            _describe(out, f"{stage}/{name}", title, value, 0)
    return out


def _label(key: str, title: str) -> str:
    """'Gate weave: horizontal weave (px)': the stage's title and the restorer's name of the key, with its unit."""
    return f"{title}: {with_unit(*side_name(key))}"


def _value(out: SideData, key: str, title: str, value: Any) -> None:
    name, unit = side_name(key)
    out.values.append((f"{title}: {name}", value_text(key, value, unit)))


def _describe(out: SideData, key: str, title: str, value: Any, depth: int) -> None:
    if value is None or key in HIDDEN:
        return
    if isinstance(value, Mapping):
        _describe_mapping(out, key, title, value, depth)
        return
    if isinstance(value, (bool, np.bool_)):
        _value(out, key, title, bool(value))
        return
    if isinstance(value, (str, Number, np.number)):
        _value(out, key, title, value.item() if isinstance(value, np.generic) else value)
        return
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
        out.values.append((f"{title}: {side_name(key)[0]}", records_text(list(value))))
        return
    if isinstance(value, (list, tuple)) and (not value or all(isinstance(v, str) for v in value)):
        _value(out, key, title, list(value))
        return
    array = _as_array(value)
    if array is None:
        _value(out, key, title, _text(value))
        return
    label = _label(key, title)
    if array.ndim == 2 and min(array.shape) >= MIN_OVERLAY_PX and array.dtype.kind in "bui":
        out.overlays.append(Overlay(key, label, mask_alpha(array)))
        return
    if array.size == 1:
        _value(out, key, title, array.reshape(-1)[0].item())
        return
    if array.size <= 16:
        if array.ndim == 1:
            _value(out, key, title, np.round(array.astype(np.float64), 4).tolist())
        else:
            _value(out, key, title, _text(np.round(array.astype(np.float64), 3).tolist()))
        return
    series = _series(array)
    if series:
        out.plots.append(Plot(key, label, series))
        return
    if array.ndim == 2 and array.dtype.kind in "biuf":
        out.maps.append(Map(key, label, np.nan_to_num(array.astype(np.float64))))
        return
    out.values.append((label, f"{'×'.join(map(str, array.shape))} values"))


def _describe_mapping(out: SideData, key: str, title: str, value: Mapping[str, Any], depth: int) -> None:
    """Series in one dict share plots (`measured_dx` and `intended_dx` become one 'dx' plot); the rest recurse."""
    series = {str(k): v for k, v in value.items() if _is_series(v)}
    start = value.get("start")
    first_frame = int(start) if isinstance(start, (int, np.integer)) and not isinstance(start, bool) and series else None
    suffixes = [k.split("_", 1)[1] for k in series if "_" in k]
    groups: dict[str, dict[str, np.ndarray]] = {}
    for name, item in series.items():
        prefix, _, suffix = name.partition("_")
        if suffix and suffixes.count(suffix) >= 2:
            groups.setdefault(suffix, {})[prefix] = np.asarray(item, np.float64)
        else:
            groups.setdefault("", {})[name] = np.asarray(item, np.float64)
    for group, curves in groups.items():
        if group:
            out.plots.append(Plot(f"{key}/{group}", _label(f"{key}/{group}", title), curves, first_frame))
        elif len(curves) <= MAX_SERIES:
            out.plots.append(Plot(key, _label(key, title), curves, first_frame))
        else:
            for name, curve in curves.items():
                out.plots.append(Plot(f"{key}/{name}", _label(f"{key}/{name}", title), {"value": curve}, first_frame))
    if depth >= MAX_DEPTH:
        return
    for name, item in value.items():
        if str(name) in series or (name == "start" and first_frame is not None):
            continue
        _describe(out, f"{key}/{name}", title, item, depth + 1)


def _is_series(value: Any) -> bool:
    if isinstance(value, Mapping) or isinstance(value, (str, bytes)):
        return False
    array = _as_array(value)
    return array is not None and array.ndim == 1 and array.size >= MIN_SERIES and array.dtype.kind in "biuf"


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
    if array.ndim == 1 and array.size >= MIN_SERIES:
        return {"value": array.astype(np.float64)}
    if array.ndim == 2 and min(array.shape) <= MAX_CURVES and max(array.shape) >= MIN_SERIES:
        columns = array if array.shape[0] >= array.shape[1] else array.T
        names = ("R", "G", "B") if columns.shape[1] == 3 else tuple(str(i + 1) for i in range(columns.shape[1]))
        return {names[i]: columns[:, i].astype(np.float64) for i in range(columns.shape[1])}
    return {}


def _text(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."

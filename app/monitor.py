"""Monitor panel: live GPU memory and load (or, with no GPU, this process's RAM and CPU), and per-stage preview time."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
import psutil
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from restoration.stages import stage_class

from . import theme
from .preview import StageTiming

log = logging.getLogger("filmrestore.app")
# a stage's short name under its bar (the titles are too long for the axis)
SHORT_NAMES = {"dust": "dust", "stabilize": "weave", "deflicker": "flicker", "denoise": "grain", "color": "colour",
               "sr": "upscale"}
HISTORY = 120  # samples (one a second)
MIB = 1 << 20


@dataclass
class Sample:
    """One reading. `gpu` True: device-wide GPU figures; False: this process (and its render children)."""

    gpu: bool
    used_mib: float
    free_mib: float
    load_percent: float | None
    children_mib: float = 0.0
    device: str = ""


class ResourceProbe:
    """GPU memory via torch.cuda.mem_get_info and load via NVML when present; otherwise psutil on this process."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.process.cpu_percent(None)
        self.cuda = False
        self.device = ""
        self._nvml = None
        self._torch = None
        try:
            import torch

            if torch.cuda.is_available():
                self._torch = torch
                self.cuda = True
                self.device = torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001 - a broken CUDA install means: show the CPU view
            log.warning("CUDA query failed; monitoring the process instead", exc_info=True)
        if self.cuda:
            try:
                import pynvml  # optional (nvidia-ml-py)

                pynvml.nvmlInit()
                self._nvml = (pynvml, pynvml.nvmlDeviceGetHandleByIndex(0))
            except Exception:  # noqa: BLE001 - NVML is optional: utilisation is then shown as n/a
                self._nvml = None

    def sample(self) -> Sample:
        children = 0.0
        try:
            children = sum(c.memory_info().rss for c in self.process.children(recursive=True)) / MIB
        except psutil.Error:
            pass
        if self.cuda:
            free, total = self._torch.cuda.mem_get_info()
            load = None
            if self._nvml is not None:
                pynvml, handle = self._nvml
                load = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            return Sample(True, (total - free) / MIB, free / MIB, load, children, self.device)
        rss = self.process.memory_info().rss / MIB
        available = psutil.virtual_memory().available / MIB
        return Sample(False, rss, available, self.process.cpu_percent(None), children)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _plot(title: str, unit: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background=theme.PANEL)
    plot.setTitle(title, color=theme.TEXT_DIM, size="9pt")
    plot.showGrid(x=False, y=True, alpha=0.15)
    plot.setLabel("left", unit, color=theme.TEXT_DIM)
    plot.getAxis("bottom").setStyle(showValues=False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.setMenuEnabled(False)
    plot.setMinimumHeight(96)
    return plot


class MonitorPanel(QWidget):
    """Live memory and load plots, labelled for what they really show, and last preview's per-stage times."""

    def __init__(self, parent: QWidget | None = None, interval_ms: int = 1000) -> None:
        super().__init__(parent)
        self.probe: ResourceProbe | None = None
        self._box: dict = {"probe": None, "taken": None, "sampling": False}  # shared with the monitor's threads
        self._probe_thread: threading.Thread | None = None
        self.last: Sample | None = None
        self.history: dict[str, deque[float]] = {k: deque(maxlen=HISTORY) for k in ("used", "free", "load", "children")}
        self.headline = QLabel("Starting monitor…")
        self.headline.setWordWrap(True)
        self.memory_plot = _plot("Memory", "MiB")
        self.load_plot = _plot("Load", "%")
        self.stage_plot = _plot("Last preview frame: time per stage", "ms")
        self.stage_plot.getAxis("bottom").setStyle(showValues=True)
        self.stage_plot.setMinimumHeight(130)
        self.stage_text = QLabel("No preview yet")
        self.stage_text.setObjectName("frameInfo")
        self.stage_text.setWordWrap(True)
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._bars: pg.BarGraphItem | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.headline)
        layout.addWidget(self.memory_plot, 1)
        layout.addWidget(self.load_plot, 1)
        layout.addWidget(self.stage_plot, 1)
        layout.addWidget(self.stage_text)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(interval_ms)
        QTimer.singleShot(0, self.refresh)

    def _set_up_curves(self, gpu: bool) -> None:
        self.memory_plot.clear()
        self.load_plot.clear()
        if gpu:
            self._title(self.memory_plot, "GPU memory, whole device: <b>used</b> · free · render process")
            self._title(self.load_plot, "GPU utilisation")
            names = {"used": "used", "free": "free", "children": "render process RAM"}
            load_name = "GPU busy"
        else:
            self._title(self.memory_plot, "No GPU · RAM: <b>this process</b> · render process")
            self._title(self.load_plot, "No GPU · CPU of this process (100 % = 1 core)")
            names = {"used": "process RAM", "children": "render process RAM"}
            load_name = "process CPU"
        colours = {"used": theme.ACCENT, "free": theme.SHOT_MARK, "children": "#7fc08a"}
        self._curves = {key: self.memory_plot.plot(pen=pg.mkPen(colours[key], width=2), name=name)
                        for key, name in names.items()}
        self._curves["load"] = self.load_plot.plot(pen=pg.mkPen(theme.ACCENT, width=2), name=load_name,
                                                   fillLevel=0, brush=pg.mkBrush(216, 155, 60, 50))
        self.load_plot.setYRange(0, 100 if gpu else max(100, 100 * (psutil.cpu_count() or 1)), padding=0.02)

    @staticmethod
    def _title(plot: pg.PlotWidget, text: str) -> None:
        for key, colour in (("<b>", f"<span style='color:{theme.ACCENT}'>"), ("</b>", "</span>")):
            text = text.replace(key, colour)
        text = text.replace("· free", f"· <span style='color:{theme.SHOT_MARK}'>free</span>")
        text = text.replace("· render process", "· <span style='color:#7fc08a'>render process</span>")
        plot.setTitle(text, color=theme.TEXT_DIM, size="8pt")

    def _start_probe(self) -> None:
        """Build the probe on a thread: it imports torch and asks CUDA, which takes seconds the window must not
        freeze for; `refresh` samples once it is there."""
        box = self._box

        def build() -> None:
            try:
                box["probe"] = ResourceProbe()
            except Exception:  # noqa: BLE001 - the monitor must never take the session down
                log.warning("monitor probe failed", exc_info=True)

        self._probe_thread = threading.Thread(target=build, name="monitor-probe", daemon=True)
        self._probe_thread.start()

    def _sample_async(self) -> None:
        """Take the next reading on a thread (psutil walks /proc for the render children: milliseconds, more on a
        busy machine); the GUI thread only plots the reading already taken."""
        box = self._box  # a plain object: the thread never touches the widget (a Qt wrapper) itself
        if box["sampling"]:
            return
        box["sampling"] = True
        probe = self.probe

        def take() -> None:
            try:
                box["taken"] = probe.sample()
            except Exception:  # noqa: BLE001 - the monitor must never take the session down
                log.warning("monitor sample failed", exc_info=True)
            finally:
                box["sampling"] = False

        threading.Thread(target=take, name="monitor-sample", daemon=True).start()

    def refresh(self) -> None:
        try:
            if self.probe is None:
                if self._probe_thread is None:
                    self._start_probe()
                built = self._box["probe"]
                if built is None:
                    return
                self.probe = built
                self._set_up_curves(self.probe.cuda)
            self._sample_async()
            sample, self._box["taken"] = self._box["taken"], None
            if sample is None:
                return
        except Exception:  # noqa: BLE001 - the monitor must never take the session down
            log.warning("monitor sample failed", exc_info=True)
            return
        self.last = sample
        self.history["used"].append(sample.used_mib)
        self.history["free"].append(sample.free_mib)
        self.history["children"].append(sample.children_mib)
        self.history["load"].append(sample.load_percent if sample.load_percent is not None else 0.0)
        for key, curve in self._curves.items():
            curve.setData(np.asarray(self.history[key], dtype=float))
        self._hold_axes()
        self.headline.setText(self.describe(sample))

    def _hold_axes(self) -> None:
        """Fixed ranges that change only when the readings outgrow them: pyqtgraph then keeps its axes drawn and
        a reading redraws the curves alone (an auto-ranged axis was re-laid out on every reading)."""
        for plot in (self.memory_plot, self.load_plot):
            plot.setXRange(0, HISTORY - 1, padding=0)
        top = max((max(self.history[k], default=0.0) for k in ("used", "free", "children")
                   if k in self._curves), default=0.0)
        held = getattr(self, "_memory_top", 0.0)
        if top > held or top < held / 4:
            step = 10 ** max(0, int(np.log10(max(top, 1.0))))
            self._memory_top = float(np.ceil(top * 1.25 / step) * step)
            self.memory_plot.setYRange(0, self._memory_top, padding=0)

    @staticmethod
    def describe(sample: Sample) -> str:
        children = f" · render process {sample.children_mib:,.0f} MiB" if sample.children_mib else ""
        if sample.gpu:
            load = "n/a (install nvidia-ml-py)" if sample.load_percent is None else f"{sample.load_percent:.0f} %"
            return (f"<b>GPU</b> {sample.device}: {sample.used_mib:,.0f} MiB used, {sample.free_mib:,.0f} MiB free "
                    f"(super-resolution sizes its tiles from this) · busy {load}{children}")
        return (f"<b>No GPU</b> — this process: RAM {sample.used_mib:,.0f} MiB, CPU {sample.load_percent or 0:.0f} % · "
                f"RAM available {sample.free_mib:,.0f} MiB (super-resolution sizes its tiles from this){children}")

    def show_timings(self, timings: list[StageTiming], read_seconds: float, total_seconds: float) -> None:
        """Bar chart of the last preview frame's per-stage time (0 where the stage's output was cached)."""
        names = ["decode"] + [SHORT_NAMES.get(t.stage, t.stage) for t in timings]
        values = [read_seconds * 1000] + [t.seconds * 1000 for t in timings]
        if self._bars is not None:
            self.stage_plot.removeItem(self._bars)
        positions = np.arange(len(values))
        self._bars = pg.BarGraphItem(x=positions, height=values, width=0.6, brush=pg.mkBrush(theme.ACCENT_SOFT),
                                     pen=pg.mkPen(theme.ACCENT))
        self.stage_plot.addItem(self._bars)
        self.stage_plot.getAxis("bottom").setTicks([list(zip(positions.tolist(), names))])
        self.stage_plot.setYRange(0, max(values + [1.0]) * 1.15, padding=0)
        parts = [f"decoding {_ms(read_seconds)}"]
        for timing in timings:
            title = stage_class(timing.stage).title
            if timing.computed == 0:
                parts.append(f"{title}: cached")
                continue
            text = f"{title}: {_ms(timing.seconds)} for {timing.computed} frame{'s' if timing.computed > 1 else ''}"
            if timing.analysis_frames:
                text += f" (shot analysis {_ms(timing.analysis_seconds)} over {timing.analysis_frames} frames)"
            parts.append(text)
        parts.append(f"total {_ms(total_seconds)}")
        self.stage_text.setText("  ·  ".join(parts))

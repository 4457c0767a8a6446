"""`filmrestore demo`: restore a real film excerpt and a still damaged like old film; write masters and a contact sheet.

Runs anywhere: it needs only resources/demo (24 scanned frames of *A Trip Down Market Street*, 1906, and a
public-domain still whose clean original is the ground truth).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from .bundle import resource_dir
from .export.paths import (Sources, check_output, commit, discard, reserve_temp, write_manifest,
                           write_text_atomic)
from .io import open_source, read_image, write_image
from .metrics import psnr
from .preview import GUTTER_PX, side_by_side
from .progress import ProgressPrinter
from .project import new_project
from .render import render_project
from .stage import STAGE_ORDER
from .synth import DamageSettings, simulate

DEMO_DIR = resource_dir() / "demo"
DEMO_STILL = DEMO_DIR / "coffee.png"
DEMO_FILM = DEMO_DIR / "market_street"
DEMO_DAMAGE = ("dust", "scratches", "grain", "flicker", "weave", "fade")
DEMO_SEED = 1895


def run_demo(output: Path, frames: int = 24, width: int | None = None, overwrite: bool = False) -> int:
    """Restore the film excerpt (its first `frames` frames) and a `frames`-frame clip damaged from the still.

    `width` scales both first (a quick look, or a fast test), keeping their aspect ratio.
    """
    output = check_output(output, True, Sources.of(DEMO_STILL, DEMO_FILM), overwrite)
    started = time.monotonic()
    scans = sorted(DEMO_FILM.glob("*.png"))[:frames]
    still, _ = read_image(DEMO_STILL)
    still = _scaled(still, width)
    print(f"demo: simulating {frames} frames of worn film from {DEMO_STILL.name} "
          f"({', '.join(DEMO_DAMAGE)}; seed {DEMO_SEED})", file=sys.stderr)
    clip = simulate([still] * frames, DEMO_DAMAGE, seed=DEMO_SEED,
                    settings=DamageSettings(pan_px_per_frame=(0.75, 0.25)))
    film = new_project(name="market_street")
    damaged = new_project(name="demo", export={"format": "ffv1"})
    # Everything is built aside and moved in whole; the masters then render from their final place, so their
    # provenance names real paths, and the project files name their sources relative to themselves.
    temp = reserve_temp(output, sequence=True)
    try:
        for sub in ("market_street", "damaged", "truth"):
            (temp / sub).mkdir()
        for scan in scans:
            if width is None:
                shutil.copyfile(scan, temp / "market_street" / scan.name)
            else:
                frame, _ = read_image(scan)
                write_image(temp / "market_street" / scan.name, _scaled(frame, width), bits=8)
        for index, (worn, truth) in enumerate(zip(clip.degraded, clip.truth)):
            write_image(temp / "damaged" / f"damaged_{index:06d}.png", worn, bits=16)
            write_image(temp / "truth" / f"truth_{index:06d}.png", truth, bits=16)
        for project, sub, name in ((film, "market_street", "market_street"), (damaged, "damaged", "demo")):
            project.source = str(temp / sub)
            project.save(temp / f"{name}.filmrestore.json")
            project.source = str(output / sub)
        write_manifest(temp, "demo")
        commit(temp, output, overwrite)
    finally:
        discard(temp)  # gone already when committed
    stages = [name for name in STAGE_ORDER if film.stages[name].enabled]
    print(f"demo: restoring with {', '.join(stages)}", file=sys.stderr)
    print(f"demo: 1/2 A Trip Down Market Street (1906), {len(scans)} scanned frames", file=sys.stderr)
    film_result = render_project(film, output / "market_street_restored.mkv", progress=ProgressPrinter())
    print(f"demo: 2/2 the still damaged like worn film, {frames} frames", file=sys.stderr)
    result = render_project(damaged, output / "restored.mkv", progress=ProgressPrinter())

    scan_middle, middle = len(scans) // 2, frames // 2
    with open_source(output / "market_street") as source, open_source(film_result.output) as master:
        film_pair = (source.frame(scan_middle), master.frame(scan_middle))
        film_number = source.frame_number(scan_middle)
    with open_source(result.output) as master:
        restored = master.frame(middle)
    rows = [side_by_side(*film_pair, (f"scan, frame {film_number}", "restored")),
            side_by_side(clip.degraded[middle], restored, ("damaged", "restored")),
            side_by_side(clip.truth[middle], restored, ("ground truth", "restored"))]
    write_image(output / "contact_sheet.png", contact_sheet(rows), bits=8)
    report = _scores(clip.truth[middle], clip.degraded[middle], restored)
    report.update(stages=stages, frames=frames, film_frames=len(scans), render_fps=round(result.fps, 2),
                  film_render_fps=round(film_result.fps, 2), seconds=round(time.monotonic() - started, 1))
    write_text_atomic(output / "demo-report.json", json.dumps(report, indent=2) + "\n")
    write_manifest(output, "demo")
    print(f"demo: PSNR to ground truth, frame {middle}: damaged {report['psnr_damaged_db']} dB, "
          f"restored {report['psnr_restored_db']} dB; {report['seconds']} s in all", file=sys.stderr)
    print(f"wrote {output}/: contact_sheet.png, market_street_restored.mkv, restored.mkv (each with provenance "
          "and framemd5), their sources and project files, truth/, demo-report.json")
    return 0


def contact_sheet(rows: list[np.ndarray]) -> np.ndarray:
    """Before/after rows stacked, each scaled to the widest one's width."""
    width = max(row.shape[1] for row in rows)
    scaled = [row if row.shape[1] == width else
              cv2.resize(row, (width, round(row.shape[0] * width / row.shape[1])), interpolation=cv2.INTER_AREA)
              for row in rows]
    gutter = np.zeros((GUTTER_PX, width, 3), np.float32)
    return np.concatenate([part for row in scaled for part in (row, gutter)][:-1])


def _scaled(frame: np.ndarray, width: int | None) -> np.ndarray:
    if width is None or width == frame.shape[1]:
        return frame
    height = 2 * round(frame.shape[0] * width / frame.shape[1] / 2)
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def _scores(truth: np.ndarray, damaged: np.ndarray, restored: np.ndarray) -> dict[str, float | str]:
    """PSNR against ground truth; an upscaled restoration is area-averaged back to the truth's size first."""
    scores: dict[str, float | str] = {"psnr_damaged_db": round(float(psnr(damaged, truth)), 2)}
    if restored.shape != truth.shape:
        scores["restored_size"] = f"{restored.shape[1]}x{restored.shape[0]}"
        restored = cv2.resize(restored, (truth.shape[1], truth.shape[0]), interpolation=cv2.INTER_AREA)
    scores["psnr_restored_db"] = round(float(psnr(restored, truth)), 2)
    return scores

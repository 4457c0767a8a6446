"""`filmrestore demo`: damage a shipped public-domain still like old film, restore it, write the results.

Runs anywhere: it needs only the still in resources/demo (the film-damage overlays beside the checkout are used
when present, else the simulator's procedural defects).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from .export.paths import (Sources, check_output, commit, discard, reserve_temp, write_manifest,
                           write_text_atomic)
from .io import read_image, write_image
from .metrics import psnr
from .pipeline import StageSetting
from .preview import side_by_side
from .progress import ProgressPrinter
from .project import Project
from .render import render_project
from .stage import STAGE_ORDER
from .stages import implemented_stage_names
from .synth import DamageSettings, simulate

DEMO_STILL = Path(__file__).resolve().parent.parent / "resources" / "demo" / "coffee.png"
DEMO_DAMAGE = ("dust", "scratches", "grain", "flicker", "weave", "fade")
DEMO_SEED = 1895


def run_demo(output: Path, frames: int = 24, width: int | None = None, overwrite: bool = False) -> int:
    """Write damaged/ (16-bit PNGs), truth/, restored.mkv (FFV1 master) and before_after.png into `output`.

    `width` scales the shipped still first (a quick look, or a fast test), keeping its aspect ratio.
    """
    output = check_output(output, True, Sources.of(DEMO_STILL), overwrite)
    still, _ = read_image(DEMO_STILL)
    if width is not None and width != still.shape[1]:
        height = 2 * round(still.shape[0] * width / still.shape[1] / 2)
        still = cv2.resize(still, (width, height), interpolation=cv2.INTER_AREA)
    print(f"demo: simulating {frames} frames of worn film from {DEMO_STILL.name} "
          f"({', '.join(DEMO_DAMAGE)}; seed {DEMO_SEED})", file=sys.stderr)
    clip = simulate([still] * frames, DEMO_DAMAGE, seed=DEMO_SEED,
                    settings=DamageSettings(pan_px_per_frame=(0.75, 0.25)))
    stages = implemented_stage_names()
    skipped = [name for name in STAGE_ORDER if name not in stages]
    project = Project(source=str(output / "damaged"), name="demo",
                      stages={n: StageSetting(n in stages) for n in STAGE_ORDER}, export={"format": "ffv1"})
    # The clip is built aside and moved in whole; the master then renders from its final place, so its
    # provenance names real paths.
    temp = reserve_temp(output, sequence=True)
    try:
        for sub in ("damaged", "truth"):
            (temp / sub).mkdir()
        for index, (damaged, truth) in enumerate(zip(clip.degraded, clip.truth)):
            write_image(temp / "damaged" / f"damaged_{index:06d}.png", damaged, bits=16)
            write_image(temp / "truth" / f"truth_{index:06d}.png", truth, bits=16)
        project.save(temp / "demo.filmrestore.json")
        write_manifest(temp, "demo")
        commit(temp, output, overwrite)
    finally:
        discard(temp)  # gone already when committed
    print(f"demo: restoring with {', '.join(stages) or 'no stages (none implemented yet)'}"
          + (f"; not implemented yet: {', '.join(skipped)}" if skipped else ""), file=sys.stderr)
    master = output / "restored.mkv"
    result = render_project(project, master, progress=ProgressPrinter())

    from .io import open_source

    middle = frames // 2
    with open_source(master) as restored_source:
        restored = restored_source.frame(middle)
    write_image(output / "before_after.png", side_by_side(clip.degraded[middle], restored,
                                                          ("damaged", "restored")), bits=8)
    report = _scores(clip.truth[middle], clip.degraded[middle], restored)
    report.update(stages=stages, not_implemented=skipped, frames=frames, render_fps=round(result.fps, 2))
    write_text_atomic(output / "demo-report.json", json.dumps(report, indent=2) + "\n")
    write_manifest(output, "demo")
    scaled = f" (the {report['restored_size']} master scaled back)" if "restored_size" in report else ""
    print(f"demo: PSNR to ground truth, frame {middle}: damaged {report['psnr_damaged_db']} dB, "
          f"restored {report['psnr_restored_db']} dB{scaled}", file=sys.stderr)
    print(f"wrote {output}/: restored.mkv, before_after.png, damaged/, truth/, demo-report.json")
    return 0


def _scores(truth: np.ndarray, damaged: np.ndarray, restored: np.ndarray) -> dict[str, float | str]:
    """PSNR against ground truth; an upscaled restoration is area-averaged back to the truth's size first."""
    scores: dict[str, float | str] = {"psnr_damaged_db": round(float(psnr(damaged, truth)), 2)}
    if restored.shape != truth.shape:
        scores["restored_size"] = f"{restored.shape[1]}x{restored.shape[0]}"
        restored = cv2.resize(restored, (truth.shape[1], truth.shape[0]), interpolation=cv2.INTER_AREA)
    scores["psnr_restored_db"] = round(float(psnr(restored, truth)), 2)
    return scores

"""`filmrestore demo`: damage a shipped public-domain still like old film, restore it, write the results.

Runs anywhere: it needs only the still in resources/demo (the film-damage overlays beside the checkout are used
when present, else the simulator's procedural defects).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

from .errors import ExportError
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
MARKER = ".filmrestore-demo"


def run_demo(output: Path, frames: int = 24, width: int | None = None) -> int:
    """Write damaged/ (16-bit PNGs), truth/, restored.mkv (FFV1 master) and before_after.png into `output`.

    `width` scales the shipped still first (a quick look, or a fast test), keeping its aspect ratio.
    """
    _claim_folder(output)
    still, _ = read_image(DEMO_STILL)
    if width is not None and width != still.shape[1]:
        height = 2 * round(still.shape[0] * width / still.shape[1] / 2)
        still = cv2.resize(still, (width, height), interpolation=cv2.INTER_AREA)
    print(f"demo: simulating {frames} frames of worn film from {DEMO_STILL.name} "
          f"({', '.join(DEMO_DAMAGE)}; seed {DEMO_SEED})", file=sys.stderr)
    clip = simulate([still] * frames, DEMO_DAMAGE, seed=DEMO_SEED,
                    settings=DamageSettings(pan_px_per_frame=(0.75, 0.25)))
    damaged_dir = _fresh(output / "damaged")
    truth_dir = _fresh(output / "truth")
    for index, (damaged, truth) in enumerate(zip(clip.degraded, clip.truth)):
        write_image(damaged_dir / f"damaged_{index:06d}.png", damaged, bits=16)
        write_image(truth_dir / f"truth_{index:06d}.png", truth, bits=16)

    stages = implemented_stage_names()
    skipped = [name for name in STAGE_ORDER if name not in stages]
    project = Project(source=str(damaged_dir), name="demo",
                      stages={n: StageSetting(n in stages) for n in STAGE_ORDER}, export={"format": "ffv1"})
    project.save(output / "demo.filmrestore.json")
    print(f"demo: restoring with {', '.join(stages) or 'no stages (none implemented yet)'}"
          + (f"; not implemented yet: {', '.join(skipped)}" if skipped else ""), file=sys.stderr)
    master = output / "restored.mkv"
    result = render_project(project, master, overwrite=True, progress=ProgressPrinter())

    from .io import open_source

    middle = frames // 2
    with open_source(master) as restored_source:
        restored = restored_source.frame(middle)
    write_image(output / "before_after.png", side_by_side(clip.degraded[middle], restored,
                                                          ("damaged", "restored")), bits=8)
    report = _scores(clip.truth[middle], clip.degraded[middle], restored)
    report.update(stages=stages, not_implemented=skipped, frames=frames, render_fps=round(result.fps, 2))
    (output / "demo-report.json").write_text(json.dumps(report, indent=2) + "\n")
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


def _claim_folder(output: Path) -> None:
    """Use `output` only if it is new, empty, or an earlier demo's folder: never clobber a user's files."""
    if output.exists() and any(output.iterdir()) and not (output / MARKER).exists():
        raise ExportError(output, "exists and was not made by `filmrestore demo`; choose another -o folder")
    output.mkdir(parents=True, exist_ok=True)
    (output / MARKER).write_text("made by filmrestore demo\n")


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder

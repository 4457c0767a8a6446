"""Before/after figure for the colour stage's report: the middle frame of each colour clip, every method.

    .venv/bin/python -m restoration.bench.color_figures [--data ../shared/data]

Writes restoration/bench/color_before_after.png (needs the shared test media). Peers run at their full-run settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from restoration import metrics as M  # noqa: E402
from restoration.bench import corpus as C  # noqa: E402
from restoration.bench import peers as P  # noqa: E402
from restoration.pipeline import run_stage_on_frames  # noqa: E402
from restoration.stage import Shot  # noqa: E402

HERE = Path(__file__).resolve().parent
PEERS = ("grayworld", "colorlevels")
THUMB_HEIGHT = 120  # px per row: keeps the PNG under 300 KB


def _label(output: np.ndarray, truth: np.ndarray) -> str:
    return f"ΔE2000 {M.delta_e2000(output, truth)[0]:.1f}"


def _thumb(frame: np.ndarray) -> np.ndarray:
    import cv2

    height, width = frame.shape[:2]
    size = (round(width * THUMB_HEIGHT / height), THUMB_HEIGHT)
    return np.clip(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), 0.0, 1.0)


def colour_figure(data: Path, out: Path) -> None:
    specs = C.specs_for("color")
    specs = [s for s in specs if s.role == "fade"]  # the B/W clip's chroma is in the report's table
    columns = 2 + 1 + len(PEERS)
    fig, axes = plt.subplots(len(specs), columns, figsize=(1.4 * columns, 1.7 * len(specs)), dpi=72)
    for row, spec in enumerate(specs):
        clip = C.build_clip(spec, data, C.PROFILES["full"])
        frames, middle = list(clip.degraded), len(clip.degraded) // 2
        shown = {"ground truth": clip.truth[middle], "input": frames[middle],
                 "FilmRestore": run_stage_on_frames("color", frames, shots=[Shot(0, len(frames))])[middle]}
        for name in PEERS:
            peer = P.peer(name)
            shown[f"FFmpeg {name}"] = peer.run(frames, peer.settings)[middle]
        for column, (title, image) in enumerate(shown.items()):
            ax = axes[row, column]
            ax.imshow(_thumb(image))
            ax.set_axis_off()
            caption = spec.name if column == 0 else _label(image, clip.truth[middle])
            ax.set_title(f"{title}\n{caption}", fontsize=7, loc="left")
    fig.tight_layout(pad=0.3, h_pad=0.8)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    _save_png(rgb, out)


def _save_png(rgb: np.ndarray, out: Path) -> None:
    """RGB (no alpha), losslessly optimised: the photo thumbnails dominate the size."""
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(rgb)).save(out, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=C.default_data_dir())
    args = parser.parse_args()
    colour_figure(args.data, HERE / "color_before_after.png")


if __name__ == "__main__":
    main()

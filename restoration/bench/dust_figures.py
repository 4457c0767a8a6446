"""Before/after crops of the dust stage on the real old film: defects removed, motion left alone, and what still fails.

    .venv/bin/python -m restoration.bench.dust_figures [--data ../shared/data]

Writes restoration/bench/dust_realfilm_before_after.png (needs the shared test media).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from restoration.bench import corpus as C
from restoration.pipeline import run_stage_on_frames

HERE = Path(__file__).resolve().parent
FIRST, LAST = 1010, 1045  # frames run through the stage: every frame shown has its ±3 neighbours
CHANGED = 2.0 / 255.0
SCALE = 2  # crops are drawn this much larger, pixel for pixel

# (frame, x0, y0, x1, y1, caption): crops of the 640x480 scan
CROPS = (
    (1031, 470, 90, 610, 220, "frame 1031: dark blotch and white streak removed"),
    (1038, 40, 200, 180, 330, "frame 1038: blotch on a window removed"),
    (1017, 100, 220, 240, 350, "frame 1017: the swinging hand left alone (it was 'repaired' before)"),
    (1038, 310, 230, 450, 360, "frame 1038: STILL FAILS: slivers of the turning head and coat 'repaired'"),
)


def load_frames(data: Path) -> dict[int, np.ndarray]:
    folder = data / C.FILM_FOLDER
    return {i: C.read_rgb(folder / f"{i}.png") for i in range(FIRST, LAST + 1)}


def panel(before: np.ndarray, after: np.ndarray, box: tuple[int, int, int, int], caption: str) -> np.ndarray:
    """One row: before | changed pixels in red | after, with the caption above."""
    x0, y0, x1, y1 = box
    crop_before, crop_after = before[y0:y1, x0:x1], after[y0:y1, x0:x1]
    marked = crop_before.copy()
    marked[np.abs(crop_after - crop_before).max(axis=2) > CHANGED] = (1.0, 0.0, 0.0)
    gap = np.ones((y1 - y0, 4, 3), np.float32)
    row = np.concatenate([crop_before, gap, marked, gap, crop_after], axis=1)
    row = cv2.resize(to_bgr8(row), None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
    title = np.full((26, row.shape[1], 3), 255, np.uint8)  # OpenCV draws text on 8-bit images only
    cv2.putText(title, caption, (4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([title, row], axis=0)


def to_bgr8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0.0, 1.0)[..., ::-1] * 255.0 + 0.5).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=C.default_data_dir())
    args = parser.parse_args()
    frames = load_frames(args.data)
    indices = sorted(frames)
    out = dict(zip(indices, run_stage_on_frames("dust", [frames[i] for i in indices])))
    rows = [panel(frames[t], out[t], (x0, y0, x1, y1), caption) for t, x0, y0, x1, y1, caption in CROPS]
    width = max(r.shape[1] for r in rows)
    header = np.full((26, width, 3), 255, np.uint8)
    for k, name in enumerate(("before", "changed (red)", "after")):
        cv2.putText(header, name, (6 + k * (width // 3), 19), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    path = HERE / "dust_realfilm_before_after.png"
    cv2.imwrite(str(path), np.concatenate([header, *rows], axis=0), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

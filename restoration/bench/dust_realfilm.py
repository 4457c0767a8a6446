"""The dust stage on the real old films (no reference): share of pixels changed, and contact sheets to look at.

Per film: the 12 largest repairs, and the 12 largest changes next to moving picture (where the picture moves
against the camera, the place a dust remover eats real motion), each as input | output | the change (×4 on grey).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from restoration.pipeline import ArraySource, Pipeline, settings_for

FILMS = (("rtn", "archival/rtn_test_data_1_002_f1000-1149"), ("market_street", "archival/rrtn_market_street"),
         ("san_francisco", "archival/rrtn_san_francisco"))
CHANGE = 2.0 / 255.0
OWN_MOTION_PX = 1.5   # a change is next to moving picture where the flow differs this much from the camera's
SHEET_CROPS = 12
CROP_PX = 64          # each crop is at least this wide and high around the change (shown at 2×)


def load_film(folder: Path, frames: int | None) -> list[np.ndarray]:
    paths = sorted(folder.glob("*.png"))[:frames]
    return [cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
            for p in paths]


def own_motion(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Per pixel, how far the picture moves against the whole frame's (median) motion, px (DIS flow)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    a = (cv2.cvtColor(previous, cv2.COLOR_RGB2GRAY) * 255).astype(np.uint8)
    b = (cv2.cvtColor(current, cv2.COLOR_RGB2GRAY) * 255).astype(np.uint8)
    flow = dis.calc(b, a, None)
    camera = np.median(flow.reshape(-1, 2)[::16], axis=0)
    return np.hypot(flow[..., 0] - camera[0], flow[..., 1] - camera[1])


def crop_pair(before: np.ndarray, after: np.ndarray, bbox: tuple[int, int, int, int]) -> np.ndarray:
    """input | output | what changed (×4) around bbox, each 240 px, 8-bit RGB."""
    x, y, w, h = bbox
    height, width = before.shape[:2]
    side = max(CROP_PX, w + 16, h + 16)
    side = min(side, 240, width, height)
    cx, cy = x + w // 2, y + h // 2
    x0 = int(np.clip(cx - side // 2, 0, width - side))
    y0 = int(np.clip(cy - side // 2, 0, height - side))
    change = np.clip(0.5 + 4.0 * (after - before), 0.0, 1.0)
    pair = [cv2.resize(image[y0:y0 + side, x0:x0 + side], (240, 240), interpolation=cv2.INTER_NEAREST
                       if side <= 120 else cv2.INTER_AREA) for image in (before, after, change)]
    gap = np.ones((240, 4, 3), np.float32)
    return (np.clip(np.hstack([pair[0], gap, pair[1], gap, pair[2]]), 0, 1) * 255).astype(np.uint8)


def sheet(items: list[tuple[str, np.ndarray]], path: Path) -> None:
    """A contact sheet, two triples a row, each captioned."""
    if not items:
        return
    tiles = []
    for caption, pair in items:
        tile = np.full((pair.shape[0] + 22, pair.shape[1], 3), 255, np.uint8)
        tile[22:] = pair
        cv2.putText(tile, caption, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.pad(tile, ((4, 4), (4, 4), (0, 0)), constant_values=255))
    while len(tiles) % 2:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[i:i + 2]) for i in range(0, len(tiles), 2)]
    # JPEG: six sheets of crops stay under 2 MB in the repository (PNG took 11 MB)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


def measure(data: Path, folder: Path, frames: int | None = None, log: Callable[[str], None] = print
            ) -> list[dict[str, Any]]:
    """Render each real film with the dust stage's defaults; write the two contact sheets per film into
    `folder`; return one record per film."""
    records = []
    folder.mkdir(parents=True, exist_ok=True)  # cv2.imwrite does not say when the folder is missing
    for key, relative in FILMS:
        source = Path(data) / relative
        if not source.is_dir():
            continue
        clip = load_film(source, frames)
        pipeline = Pipeline(ArraySource(clip, Fraction(24)), settings_for(["dust"]))
        repairs, near_motion, changed, outputs = [], [], [], []
        kinds: dict[str, int] = {}
        for t, out in pipeline.frames():
            side = pipeline.side_data(t)["dust"]
            for comp in side["components"]:
                if comp.get("repaired", True) and not comp.get("kept"):
                    kinds[comp["kind"]] = kinds.get(comp["kind"], 0) + 1
                    repairs.append((comp["area"], t, comp["kind"], tuple(comp["bbox"])))
                elif not comp.get("repaired", True):
                    kinds["left as unsure"] = kinds.get("left as unsure", 0) + 1
            outputs.append(np.round(np.clip(out, 0, 1) * 255).astype(np.uint8))  # the sheets' crops, kept small
            diff = np.abs(out - clip[t]).max(axis=2) > CHANGE
            changed.append(float(diff.mean()))
            if diff.any():
                motion = own_motion(clip[max(t - 1, 0)] if t else clip[1], clip[t])
                count, labels, stats, _ = cv2.connectedComponentsWithStats(
                    cv2.dilate(diff.astype(np.uint8), np.ones((5, 5), np.uint8)), connectivity=8)
                for label in range(1, count):
                    x, y, w, h, area = (int(v) for v in stats[label])
                    ring = motion[max(0, y - 8):y + h + 8, max(0, x - 8):x + w + 8]
                    if float(ring.max()) >= OWN_MOTION_PX:
                        near_motion.append((int(diff[labels == label].sum()), t, float(ring.max()), (x, y, w, h)))
            log(f"[dust real film] {key} {t + 1}/{len(clip)}")
        repairs.sort(reverse=True)
        near_motion.sort(reverse=True)
        first = sorted(source.glob("*.png"))[0].stem
        number = int(first) if first.isdigit() else 0
        repair_items = [(f"{key} frame {number + t}: {kind} {area} px", crop_pair(clip[t], outputs[t] / np.float32(255), bbox))
                        for area, t, kind, bbox in repairs[:SHEET_CROPS]]
        motion_items = [(f"{key} frame {number + t}: {area} px, moves {speed:.0f} px",
                         crop_pair(clip[t], outputs[t] / np.float32(255), bbox))
                        for area, t, speed, bbox in near_motion[:SHEET_CROPS]]
        sheet(repair_items, folder / f"realfilm_dust_{key}_repairs.jpg")
        sheet(motion_items, folder / f"realfilm_dust_{key}_near_motion.jpg")
        records.append({"film": key, "source": relative, "frames": len(clip), "size": list(clip[0].shape[1::-1]),
                        "changed_pct": 100 * float(np.mean(changed)), "changed_pct_max": 100 * float(np.max(changed)),
                        "repairs": kinds, "largest_repair_px": repairs[0][0] if repairs else 0,
                        "changes_near_motion": len(near_motion),
                        "sheets": [f"realfilm_dust_{key}_repairs.jpg", f"realfilm_dust_{key}_near_motion.jpg"]})
    return records


def section(records: list[dict[str, Any]]) -> list[str]:
    """Markdown for the report's dust section."""
    if not records:
        return []
    lines = ["**Real films** (`../shared/data/archival`, no reference; the dust stage's defaults). Share of pixels "
             "changed by more than 2/255, what was repaired, and two contact sheets per film — the 12 largest "
             "repairs and the 12 largest changes next to moving picture (input | output | the change ×4 on grey):", "",
             "| film | frames | size | changed % (mean / max frame) | repairs | largest repair px | changes next to "
             "motion |", "|---|---|---|---|---|---|---|"]
    for r in records:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["repairs"].items())) or "none"
        lines.append(f"| {r['film']} | {r['frames']} | {r['size'][0]}×{r['size'][1]} | {r['changed_pct']:.3f} / "
                     f"{r['changed_pct_max']:.3f} | {kinds} | {r['largest_repair_px']} | {r['changes_near_motion']} |")
    lines.append("")
    for r in records:
        for name in r["sheets"]:
            lines += [f"![{r['film']}]({name})", ""]
    return lines

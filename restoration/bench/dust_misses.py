"""Large-blotch recall of the dust stage over more blotch seeds than the bench holds, and every large blotch missed.

    .venv/bin/python -m restoration.bench.dust_misses [--seeds 9] [--clips barbara-pan-dust ...]

Each blotch clip is built (and cached beside the bench's) for seeds 0 .. N-1, run through the stage as the bench
runs it and scored with `score_dust`; then each large defect (LARGE_DEFECT_PX, frame-scaled) is listed with the
share of its visible pixels that right detections cover (0.5 counts as found), so a session can measure a miss
instead of guessing it. Prints the mean and population spread of the per-clip recall.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from restoration.bench import corpus as C
from restoration.bench import scoring as S
from restoration.bench.runner import our_method, repo_root
from restoration.bench.variants import OUR_VARIANTS

NEAR = 0.65  # a found defect covered under this share is listed too: one frame's luck from a miss


def dust_spec(name: str) -> C.ClipSpec:
    """The bench's dust clip of that name, or a blotch clip of a seed past the bench's."""
    for spec in C.specs_for("dust"):
        if spec.name == name:
            return spec
    if name.startswith("blotches-"):
        return C.blotch_spec(int(name.split("-", 1)[1]))
    raise KeyError(f"no dust clip {name!r}")


def load_clip(spec: C.ClipSpec, data: Path, profile: C.Profile, cache_dir: Path) -> C.Clip:
    """The clip from the bench's cache, built there first if missing (the cache key is the bench's own)."""
    path = cache_dir / f"dust-{spec.name}-{profile.name}-{C.cache_key(spec, profile)}.npz"
    if not path.exists():
        C._save(C.build_clip(spec, data, profile), path)
    return C._load(path)


def large_coverage(clip: C.Clip, changed: list[np.ndarray]) -> list[tuple[int, int, int, float, tuple]]:
    """(frame, area, visible px, covered share, (y0, y1, x0, x1)) of each large defect, covered as the bench's
    visible_detection_scores counts it: by changed regions that lie at least half in the true mask grown by 1 px."""
    found = []
    for t, (mask, seen, large, flagged) in enumerate(zip(clip.damage_masks, S.visible_damage(clip),
                                                         S.large_defects(clip), changed)):
        near = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        count, regions = cv2.connectedComponents(flagged.astype(np.uint8), connectivity=8)
        right = np.bincount(regions[near], minlength=count) >= 0.5 * np.bincount(regions.ravel(), minlength=count)
        right[0] = False
        _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        for label in np.unique(labels[large]):
            if label == 0:
                continue
            defect = labels == label
            visible = defect & seen
            if visible.sum() < S.MIN_DEFECT_PX:
                continue
            ys, xs = np.nonzero(defect)
            covered = float((visible & right[regions]).sum() / visible.sum())
            found.append((t, int(defect.sum()), int(visible.sum()), covered,
                          (int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max()))))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=9, help="blotch clips blotches-0 .. blotches-(N-1)")
    parser.add_argument("--clips", nargs="*", default=[], help="other dust clips to list too (barbara-pan-dust)")
    parser.add_argument("--data", type=Path, default=C.default_data_dir())
    parser.add_argument("--profile", default="full")
    args = parser.parse_args()
    profile = C.PROFILES[args.profile]
    cache_dir = repo_root() / "restoration" / "bench" / "cache"
    method = our_method("dust", OUR_VARIANTS["dust"][0])
    recalls = []
    for name in [f"blotches-{k}" for k in range(args.seeds)] + list(args.clips):
        clip = load_clip(dust_spec(name), args.data, profile, cache_dir)
        out = method.run(clip.degraded, {}, clip)
        metrics, _ = S.score_dust(clip, out, {})
        changed = S.change_masks(out, clip.degraded)
        recall = metrics.get("large_recall", 1.0)
        if name.startswith("blotches-"):
            recalls.append(recall)
        print(f"{name}: large recall {recall:.3f} of {metrics.get('large_defects', 0):.0f}, F1 ÷ bound "
              f"{metrics.get('defect_f1_of_bound', float('nan')):.4f}, changed outside "
              f"{metrics['changed_outside_pct']:.3f} %", flush=True)
        for t, area, visible, covered, (y0, y1, x0, x1) in large_coverage(clip, changed):
            if covered < NEAR:
                print(f"  frame {t:2d}  {area:6d} px ({visible} visible)  covered {covered:.2f}  "
                      f"y {y0}-{y1} x {x0}-{x1}  {'MISSED' if covered < 0.5 else 'near'}", flush=True)
    if recalls:
        print(f"large-blotch recall over {len(recalls)} blotch seeds: {np.mean(recalls):.3f} ± {np.std(recalls):.3f}")


if __name__ == "__main__":
    main()

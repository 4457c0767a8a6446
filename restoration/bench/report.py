"""restoration/bench/REPORT.md from the results files: per-stage tables (ours beside every peer), targets, speed, plots."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from restoration.bench import render_speed, sr_speed
from restoration.bench.corpus import FADE_FAMILIES, FADED_FAMILIES

STAGES = ("dust", "stabilize", "deflicker", "denoise", "color", "sr", "chain", render_speed.SECTION)
OURS = "filmrestore"
INPUT = "input"
CROP = (160, 120)  # film crop (width, height) shown per method

STAGE_TITLES = {"dust": "Dust & scratches (`dust`)", "stabilize": "Gate weave (`stabilize`)",
                "deflicker": "Flicker (`deflicker`)", "denoise": "Grain & noise (`denoise`)",
                "color": "Colour fade (`color`)", "sr": "Super-resolution ×4 (`sr`)",
                "chain": "Full chain (`dust` → `stabilize` → `deflicker` → `denoise` → `color`)"}


HOW_MEASURED = {
    "dust": "A method's defect map is the set of pixels it changed by more than 2/255 in any channel (peers give "
            "no map). Defect F1 (≥ 3 px visible): a changed region (8-connected) is a right detection when ≥ 50 % of "
            "it lies in the true mask grown by 1 px; a true defect counts when ≥ 3 of its pixels are visible (the "
            "damage moved them by more than 2/255 from the grainy film, i.e. what a perfect repair would change) "
            "and is found when right detections cover ≥ 50 % of its visible pixels. A perfect repair (the grainy "
            "film put back inside the masks) scores 1.0; a filter that changes most of the frame makes one region "
            "mostly off the defects and finds nothing. F1 (old def.): the earlier rule, kept for comparison — a "
            "defect was found when ≥ 50 % of its whole mask changed (faint soft edges that no repair changes "
            "included: the perfect repair scores 0.93–0.96) and a changed region was right when it merely touched "
            "a defect (a frame-wide filter scores well). False-positive area: changed pixels outside the true "
            "masks, over all pixels. PSNR in masks is against the clean truth (grain-free), the gain is over the "
            "damaged input's; dust and scratch masks also separately. Ideal bound: a counted defect is detectable "
            "when an ideal detector could find it — perfect registration onto up to four undamaged neighbours "
            "(±1, ±2) and its exact shape known, so that only the grain is left to beat: matched-filter SNR ≥ 5 "
            "over its visible pixels, the real correlated grain included. Their share bounds any method's recall "
            "(ideal R bound; F1 bound = that recall at precision 1); R (SNR ≥ 5) is the recall over those "
            "defects alone. Film: share of pixels changed.",
    "stabilize": "Per frame, the sub-pixel shift of the output against the truth on the central 60 % "
                 "(restoration.metrics.frame_shift). Residual jitter: its RMS about the line fitted to it over the "
                 "clip (mean and linear drift removed: the drift is what the pan kept error reports, and counting it "
                 "twice left 0.6–0.8 px on average for any pan-keeping method on 16–34 frames; see the notes). "
                 "Old definition: RMS about the clip mean only. Pan kept error: slope of a line fitted to the "
                 "shift × (frames − 1), i.e. intended camera travel lost or added over the clip. "
                 "Black border: pixels black in the output where the truth is not. Film (locked-off camera): RMS of "
                 "the output's frame-to-frame shift.",
    "deflicker": "Flicker index: std over time of the frame-to-frame change of mean luma, less the truth's own "
                 "change; local: the same per 64×64 block. Reduction = 1 − output/input. PSNR loss: on a grain-only "
                 "clip, PSNR(input) − PSNR(output) against the clean truth. Film: the same index without truth.",
    "denoise": "PSNR/SSIM against the clean truth. Warping error: |out_t − warp(out_t+1)| with flow from the truth, "
               "occlusion-checked, relative to the truth's own. Grain left: noise level function of (out − truth) "
               "over that of the grain put in; spectrum corr.: radial power spectra of the two; NLF error: their mean "
               "relative difference (for `-regrain`, the grain-match targets). Grain left (old def.) counts the "
               "picture detail a method loses as grain; regrain level: the same figure for `-regrain` once that "
               "loss is taken out of out − truth, the loss being the part of `filmrestore`'s (grain remove) error "
               "that does not flip with the grain: ½(f(truth + grain) + f(truth − grain)) − truth. "
               "Film: Immerkær's blind noise σ of luma.",
    "color": "ΔE2000 over every pixel of every frame against the truth. Stability: mean ΔE2000 between consecutive "
             "frames' mean CIELAB colour; 'vs truth' subtracts the truth's. Chroma: mean CIELAB chroma.",
    "sr": "PSNR/SSIM on BT.601 Y (16–235) with `scale` px cropped at each border, on the shipped bicubic ×4 LR. "
          "Warping error on Vid4 city, as for denoise.",
    "chain": "The whole clip against the clean truth; jitter and flicker as in their stages.",
}


@dataclass(frozen=True)
class Column:
    metric: str
    header: str
    digits: int = 2


COLUMNS: dict[str, dict[str, tuple[Column, ...]]] = {
    "dust": {
        "damaged": (Column("defect_f1", "F1 (≥3 px visible)", 3), Column("defect_f1_of_bound", "F1 ÷ ideal bound", 3),
                    Column("large_recall", "R blotches ≥ 2 000 px²", 3), Column("psnr_film", "PSNR to film dB"),
                    Column("defect_precision", "P", 3),
                    Column("defect_recall", "R", 3), Column("defect_recall_detectable", "R (SNR ≥ 5)", 3),
                    Column("detectable_share", "ideal R bound", 3), Column("defect_f1_bound", "ideal F1 bound", 3),
                    Column("object_f1", "F1 (old def.)", 3),
                    Column("object_precision", "P (old def.)", 3), Column("object_recall", "R (old def.)", 3),
                    Column("pixel_f1", "pixel F1", 3),
                    Column("fp_area_pct", "false-pos. area %", 3), Column("psnr_in_mask", "PSNR in masks dB"),
                    Column("psnr_in_mask_gain_db", "gain vs input dB"),
                    Column("psnr_in_dust_mask_gain_db", "gain in dust dB"),
                    Column("psnr_in_scratch_mask_gain_db", "gain in scratches dB"),
                    Column("changed_outside_pct", "changed outside masks %", 3)),
        "clean": (Column("fp_area_pct", "false-pos. area %", 3), Column("psnr", "PSNR dB")),
        "moving": (Column("figure_changed_pct", "moving arms changed %", 2),
                   Column("fp_area_pct", "false-pos. area %", 3), Column("psnr", "PSNR dB")),
        "film": (Column("changed_pct", "pixels changed > 2/255 %", 3),),
    },
    "stabilize": {
        "weave": (Column("jitter_px", "residual jitter px RMS", 3),
                  Column("jitter_mean_only_px", "jitter about mean (old def.) px", 3),
                  Column("pan_error_px", "pan kept error px", 3),
                  Column("black_border_pct", "black border %", 2)),
        "film": (Column("interframe_shift_px", "frame-to-frame shift px RMS", 3),),
    },
    "deflicker": {
        "flicker": (Column("flicker_index", "flicker index", 5), Column("flicker_reduction_pct", "reduction %", 1),
                    Column("flicker_local", "local flicker", 5),
                    Column("flicker_local_reduction_pct", "local reduction %", 1), Column("psnr", "PSNR dB")),
        "flicker-free": (Column("psnr", "PSNR dB"), Column("psnr_loss_db", "PSNR loss dB", 3)),
        "film": (Column("flicker_index", "luma flicker (no ref.)", 5), Column("flicker_reduction_pct", "reduction %", 1)),
    },
    "denoise": {
        "grain": (Column("psnr", "PSNR dB"), Column("ssim", "SSIM", 4), Column("warping_error", "warping error", 5),
                  Column("warping_excess_pct", "warp. err. vs clean %", 1),
                  Column("grain_kept_pct", "grain left % (old def.)", 1),
                  Column("regrain_level_pct", "regrain level %", 1),
                  Column("grain_spectrum_corr", "grain spectrum corr.", 3),
                  Column("grain_nlf_error", "NLF error", 3)),
        "film": (Column("noise_sigma", "noise σ (blind est.)", 5), Column("noise_reduction_pct", "reduction %", 1),
                 Column("changed_pct", "changed %", 1)),
    },
    "color": {
        "fade": (Column("de2000_mean", "ΔE2000 mean"), Column("de2000_p95", "ΔE2000 p95"),
                 Column("colour_stability", "stability ΔE"), Column("stability_excess", "stability vs truth ΔE")),
        "bw": (Column("chroma_mean", "chroma"), Column("chroma_change", "chroma change")),
        "film": (Column("chroma_change", "chroma change"), Column("colour_stability", "stability ΔE")),
    },
    "chain": {
        "all": (Column("psnr", "PSNR dB"), Column("ssim", "SSIM", 4), Column("de2000_mean", "ΔE2000 mean"),
                Column("jitter_px", "residual jitter px", 3),
                Column("jitter_mean_only_px", "jitter about mean (old def.) px", 3),
                Column("flicker_reduction_pct", "flicker reduction %", 1)),
        "film": (Column("flicker_index", "luma flicker (no ref.)", 5),
                 Column("interframe_shift_px", "frame-to-frame shift px RMS", 3)),
    },
    "sr": {
        "sr-stills": (Column("psnr_y", "PSNR-Y dB"), Column("ssim_y", "SSIM-Y", 4)),
        "sr-video": (Column("psnr_y", "PSNR-Y dB"), Column("ssim_y", "SSIM-Y", 4),
                     Column("warping_error", "warping error", 5), Column("warping_error_truth", "GT's own", 5)),
    },
}


@dataclass(frozen=True)
class Target:
    """One issue target: a metric averaged over clips of some roles, compared with a threshold."""

    metric: str
    roles: tuple[str, ...]
    text: str
    higher: bool
    threshold: float | None = None            # absolute target
    peer_margin: float | None = None          # relative: ours ≥ best peer + margin (higher) / ≤ best − margin
    against: tuple[str, ...] = ()             # peers a relative target compares with (all when empty)
    label: str = ""


TARGETS: dict[str, tuple[Target, ...]] = {
    "dust": (Target("defect_f1_of_bound", ("damaged",), "≥ 0.90", True, 0.90,
                    label="defect F1 as a share of the ideal detector's F1 bound"),
             Target("defect_f1", ("damaged",), "(no target)", True, label="defect F1 (≥ 3 px visible)"),
             Target("large_recall", ("damaged",), "≥ 0.95", True, 0.95,
                    label="recall of blotches over 2 000 px² (frame-scaled)"),
             Target("psnr_film", ("damaged",), "> tmedian", True, peer_margin=0.0, against=("tmedian",),
                    label="whole-frame PSNR to the grainy film, dB"),
             Target("defect_recall_detectable", ("damaged",), "(no target)", True,
                    label="recall of the defects an ideal detector could find (SNR ≥ 5)"),
             Target("object_f1", ("damaged",), "(old def.)", True, label="defect F1, old definition"),
             Target("pixel_f1", ("damaged",), "(no target)", True, label="defect pixel F1"),
             Target("fp_area_pct", ("clean",), "≤ 0.1 %", False, 0.1, label="false-positive area, clean moving clip"),
             Target("figure_changed_pct", ("moving",), "≤ 0.5 %", False, 0.5,
                    label="pixels changed on fast-swinging arms (motion eaten), %"),
             Target("psnr_in_mask_gain_db", ("damaged",), "≥ 8 dB", True, 8.0, label="PSNR gain inside masks"),
             Target("changed_outside_pct", ("damaged",), "≤ 0.1 %", False, 0.1, label="pixels changed outside masks"),
             Target("fps", ("speed",), "≥ 9.9", True, 9.9, label="speed, fps")),
    "stabilize": (Target("jitter_px", ("weave",), "≤ 0.10 px", False, 0.10, label="residual jitter, px RMS"),
                  Target("jitter_mean_only_px", ("weave",), "(old def.)", False,
                         label="jitter about the mean only, old definition"),
                  Target("pan_error_px", ("weave",), "≤ 0.5 px", False, 0.5, label="intended pan kept, px"),
                  Target("fps", ("speed",), "≥ 10", True, 10.0, label="speed, fps")),
    "deflicker": (Target("flicker_reduction_pct", ("flicker",), "≥ 85 %", True, 85.0, label="flicker reduction"),
                  Target("psnr_loss_db", ("flicker-free",), "≤ 0.2 dB", False, 0.2,
                         label="PSNR loss, flicker-free clip"),
                  Target("fps", ("speed",), "≥ 30", True, 30.0, label="speed, fps")),
    "denoise": (Target("psnr", ("grain",), "≥ best peer + 1.0 dB", True, peer_margin=1.0, label="PSNR (grain remove)"),
                Target("warping_excess_pct", ("grain",), "≤ 10 %", False, 10.0,
                       label="warping error above the clean reference"),
                Target("fps", ("speed",), "≥ 4", True, 4.0, label="speed, fps")),
    "color": (Target("de2000_mean", ("fade",), "≤ 3.0", False, 3.0, label="ΔE2000 mean"),
              Target("de2000_p95", ("fade",), "≤ 8", False, 8.0, label="ΔE2000 95th percentile"),
              Target("stability_excess", ("fade",), "≤ 0.5 ΔE", False, 0.5, label="colour stability vs truth's"),
              Target("chroma_change", ("bw",), "≤ 0.5", False, 0.5, label="B/W chroma change (absolute)"),
              *(Target("de2000_mean", (f"fade:{f}",), "≤ 3.0", False, 3.0, label=f"ΔE2000 mean, fade family '{f}'")
                for f in FADED_FAMILIES),
              *(Target("de2000_p95", (f"fade:{f}",), "≤ 8", False, 8.0, label=f"ΔE2000 p95, fade family '{f}'")
                for f in FADED_FAMILIES),
              *(Target("de2000_mean", (f"no-harm:{f}",), "≤ 1.0", False, 1.0,
                       label=f"ΔE2000 to the input, do-no-harm family '{f}'")
                for f in FADE_FAMILIES if f not in FADED_FAMILIES),
              Target("fps", ("speed",), "≥ 30", True, 30.0, label="speed, fps")),
    "sr": (Target("psnr_y", ("sr-stills", "sr-video"), "≥ Lanczos + 1.5 dB", True, peer_margin=1.5,
                  against=("lanczos",), label="PSNR-Y (fidelity)"),),
}


# ------------------------------------------------------------------------------------------------------------
# reading results


def load_results(out: Path) -> dict[str, dict[str, Any]]:
    """Every `<stage>.json` present in `out`, in stage order."""
    results = {}
    for stage in STAGES:
        path = Path(out) / f"{stage}.json"
        if path.exists():
            results[stage] = json.loads(path.read_text())
    return results


def _roles(result: dict[str, Any]) -> dict[str, str]:
    return {c["clip"]: c["role"] for c in result["corpus"]}


def selected_records(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in result["records"] if r.get("selected", True)]


def method_order(result: dict[str, Any]) -> list[str]:
    return [m["method"] for m in result["methods"]]


def aggregate(result: dict[str, Any], method: str, metric: str, roles: Iterable[str]) -> float | None:
    """Mean of `metric` over the method's selected records on clips of `roles` ('speed': the speed clip's fps)."""
    roles = tuple(roles)
    role_of = _roles(result)
    values = []
    for r in selected_records(result):
        if r["method"] != method or r.get("status", "ok") != "ok":
            continue
        if roles == ("speed",):
            if r.get("speed_clip"):
                values.append(r.get("fps"))
        elif role_of.get(r["clip"]) in roles:
            values.append(r["metrics"].get(metric))
    values = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(values)) if values else None


def method_status(result: dict[str, Any], method: str) -> str:
    for m in result["methods"]:
        if m["method"] == method:
            return m.get("status", "ok")
    return "absent"


def peer_names(result: dict[str, Any]) -> list[str]:
    return [m["method"] for m in result["methods"] if m["kind"] == "peer"]


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        text = f"{value:.{digits}f}"
        return text[1:] if text.startswith("-") and float(text) == 0 else text
    return str(value)


def _settings(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) if params else "default"


# ------------------------------------------------------------------------------------------------------------
# markdown


def _target_rows(stage: str, result: dict[str, Any]) -> list[str]:
    rows = []
    peers = [p for p in peer_names(result) if method_status(result, p) == "ok"]
    ours_status = method_status(result, OURS)
    for target in TARGETS.get(stage, ()):
        compared = [p for p in peers if not target.against or p in target.against]
        peer_values = {p: aggregate(result, p, target.metric, target.roles) for p in compared}
        peer_values = {p: v for p, v in peer_values.items() if v is not None}
        best_peer = None
        if peer_values:
            chooser = max if target.higher else min
            key = (lambda p: abs(peer_values[p])) if target.metric == "chroma_change" else (lambda p: peer_values[p])
            best_peer = (min if target.metric == "chroma_change" else chooser)(peer_values, key=key)
        input_value = aggregate(result, INPUT, target.metric, target.roles) if target.roles != ("speed",) else None
        digits = 1 if target.metric == "fps" else 3
        if ours_status != "ok":
            ours_text, met = ours_status, "—"
        else:
            ours = aggregate(result, OURS, target.metric, target.roles)
            ours_text = _fmt(ours, digits)
            met = "—"
            if ours is not None:
                if target.peer_margin is not None and best_peer is not None:
                    bar = peer_values[best_peer] + (target.peer_margin if target.higher else -target.peer_margin)
                    ok = ours >= bar if target.higher else ours <= bar
                    met = "yes" if ok else "no"
                elif target.threshold is not None:
                    value = abs(ours) if target.metric == "chroma_change" else ours
                    ok = value >= target.threshold if target.higher else value <= target.threshold
                    met = "yes" if ok else "no"
        peer_text = f"{_fmt(peer_values[best_peer], digits)} ({best_peer})" if best_peer else "—"
        rows.append(f"| {target.label} | {target.text} | {_fmt(input_value, digits)} | {ours_text} | {peer_text} "
                    f"| {met} |")
    return rows


def _family_table(result: dict[str, Any]) -> list[str]:
    """Colour fade families: ΔE2000 mean ± spread over the family's seeds (and the mean p95) per method."""
    role_of = _roles(result)
    families = [r for r in dict.fromkeys(role_of.values()) if r.startswith(("fade:", "no-harm:"))]
    if not families:
        return []
    methods = method_order(result)
    lines = ["**Fade families** (ΔE2000 to the truth: mean ± standard deviation over seeds, [mean p95]; for the "
             "do-no-harm families the truth is the input):", "",
             "| family | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for family in families:
        cells = []
        for method in methods:
            means, p95s = [], []
            for r in selected_records(result):
                if r["method"] == method and r.get("status", "ok") == "ok" and role_of.get(r["clip"]) == family:
                    means.append(r["metrics"].get("de2000_mean"))
                    p95s.append(r["metrics"].get("de2000_p95"))
            means = [v for v in means if v is not None]
            p95s = [v for v in p95s if v is not None]
            cells.append(f"{np.mean(means):.2f} ± {np.std(means):.2f} [{np.mean(p95s):.1f}]" if means else "—")
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return lines + [""]


SEED_METRICS: dict[str, dict[str, tuple[Column, ...]]] = {
    "dust": {"damaged": (Column("defect_f1", "defect F1", 3), Column("defect_f1_of_bound", "F1 ÷ bound", 3),
                         Column("large_recall", "R blotches ≥ 2 000 px²", 3), Column("psnr_film", "PSNR to film dB")),
             "moving": (Column("figure_changed_pct", "motion eaten %", 2),
                        Column("fp_area_pct", "false-pos. area %", 3))},
}


def _seed_table(stage: str, result: dict[str, Any]) -> list[str]:
    """Clips drawn afresh per seed (named <kind>-<seed>): mean ± standard deviation over the seeds, per method."""
    wanted = SEED_METRICS.get(stage)
    if not wanted:
        return []
    role_of = _roles(result)
    kinds: dict[str, list[str]] = {}
    for name, role in role_of.items():
        stem, _, last = name.rpartition("-")
        if stem and last.isdigit() and role in wanted:
            kinds.setdefault(stem, []).append(name)
    if not kinds:
        return []
    methods = method_order(result)
    lines = ["**Over seeds** (clips drawn afresh per seed: mean ± standard deviation, and the number of seeds):", "",
             "| clip kind | figure | " + " | ".join(methods) + " |", "|---" * (len(methods) + 2) + "|"]
    for stem, names in kinds.items():
        for column in wanted[role_of[names[0]]]:
            cells = []
            for method in methods:
                values = [r["metrics"].get(column.metric) for r in selected_records(result)
                          if r["method"] == method and r.get("status", "ok") == "ok" and r["clip"] in names]
                values = [v for v in values if v is not None and math.isfinite(v)]
                cells.append(f"{np.mean(values):.{column.digits}f} ± {np.std(values):.{column.digits}f} "
                             f"({len(values)})" if values else "—")
            lines.append(f"| {stem} | {column.header} | " + " | ".join(cells) + " |")
    return lines + [""]


def _clip_table(stage: str, result: dict[str, Any], clip: dict[str, Any]) -> list[str]:
    if clip["role"].startswith(("fade:", "no-harm:")):
        return []
    columns = COLUMNS[stage].get(clip["role"], ())
    if not columns:
        return []
    header = "| method | setting | " + " | ".join(c.header for c in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    records = {r["method"]: r for r in selected_records(result) if r["clip"] == clip["clip"]}
    for method in method_order(result):
        record = records.get(method)
        if record is None:
            continue
        name = f"**{method}**" if method.startswith(OURS) else method
        status = record.get("status", "ok")
        if status != "ok":
            cells = [status] + [""] * (len(columns) - 1)
            setting = "—"
        else:
            cells = [_fmt(record["metrics"].get(c.metric), c.digits) for c in columns]
            setting = "—" if method == INPUT else (_settings(_shown_params(result, method, record))
                                                   if not method.startswith(OURS) else "defaults" +
                                                   _variant_suffix(result, method))
        lines.append(f"| {name} | {setting} | " + " | ".join(cells) + " |")
    return lines


def _shown_params(result: dict[str, Any], method: str, record: dict[str, Any]) -> dict[str, Any]:
    """A swept peer's setting shown by the parameters its sweep varied (the fixed ones are in the tuning table)."""
    params = dict(record.get("params") or {})
    tuning = (result.get("tuning") or {}).get(method)
    if not tuning:
        return params
    candidates = [c["params"] for c in tuning["candidates"]]
    varied = [k for k in params if len({json.dumps(c.get(k)) for c in candidates}) > 1]
    return {k: params[k] for k in varied} or params


def _variant_suffix(result: dict[str, Any], method: str) -> str:
    for m in result["methods"]:
        if m["method"] == method and m.get("note"):
            return f" ({m['note']})"
    return ""


def _speed_table(result: dict[str, Any]) -> list[str]:
    speed = [r for r in selected_records(result) if r.get("speed_clip") and r.get("status", "ok") == "ok"]
    if not speed:
        return []
    ours = next((r for r in speed if r["method"] == OURS), None)
    lines = ["| method | fps | frames × size | peak RSS MiB | RSS rise MiB | FilmRestore ÷ method |",
             "|---|---|---|---|---|---|"]
    for r in speed:
        size = f"{r.get('speed_frames', r['frames'])} × {r['size'][0]}×{r['size'][1]}"
        ratio = "—"
        if ours is not None and ours.get("fps") and r.get("fps") and r["method"] != OURS:
            ratio = f"{ours['fps'] / r['fps']:.3g}×"
        lines.append(f"| {r['method']} | {_fmt(r.get('fps'), 2)} | {size} | {_fmt(r.get('rss_mb'), 0)} "
                     f"| {_fmt(r.get('rss_delta_mb'), 0)} | {ratio} |")
    for m in result["methods"]:
        if m["kind"] != "input" and m.get("status", "ok") != "ok":
            lines.append(f"| {m['method']} | {m['status']} | | | | |")
    return lines


def _tuning_table(result: dict[str, Any]) -> list[str]:
    tuning = result.get("tuning") or {}
    if not tuning:
        return []
    lines = ["| peer | setting | score | selected |", "|---|---|---|---|"]
    for peer, info in tuning.items():
        for cand in info["candidates"]:
            chosen = "yes" if cand["params"] == info["selected"] else ""
            lines.append(f"| {peer} | {_settings(cand['params'])} | {info['metric']} = {_fmt(cand['score'], 3)} "
                         f"| {chosen} |")
    return lines


def _peer_notes(result: dict[str, Any]) -> list[str]:
    lines = []
    for m in result["methods"]:
        if m["kind"] == "peer":
            extra = f"; {m['note']}" if m.get("note") else ""
            lines.append(f"- `{m['method']}`: {m['tool']} via {m['backend']}{extra}.")
    return lines


def _stage_section(stage: str, result: dict[str, Any], figures: dict[str, list[str]]) -> list[str]:
    lines = [f"## {STAGE_TITLES[stage]}", ""]
    ours_status = method_status(result, OURS)
    if ours_status != "ok":
        lines += [f"FilmRestore `{stage}`: **{ours_status}** — its rows below say so; only the input and the "
                  "peers are measured.", ""]
    lines += [f"Run {result['date']}, profile `{result['profile']}`, {result['seconds']:.0f} s "
              f"(corpus {result.get('corpus_seconds', 0):.0f} s of it).", ""]
    if stage in HOW_MEASURED:
        lines += [f"How measured: {HOW_MEASURED[stage]}", ""]
    targets = _target_rows(stage, result)
    if stage == "sr":
        targets += sr_speed.target_rows(result)
    if targets:
        lines += ["**Targets** (issue): mean over the clips of the kind named; speed on the speed clip.", "",
                  "| figure | target | input | FilmRestore | best peer | met |", "|---|---|---|---|---|---|"]
        lines += targets + [""]
    lines += _family_table(result)
    lines += _seed_table(stage, result)
    for clip in result["corpus"]:
        table = _clip_table(stage, result, clip)
        if not table:
            continue
        ref = "no reference" if not clip["reference"] else "reference"
        lines += [f"**{clip['clip']}** — {clip['note']} ({clip['frames']} frames, {clip['size'][0]}×{clip['size'][1]}"
                  f", {ref})", ""] + table + [""]
    speed = _speed_table(result)
    if speed:
        runs = max((int(r.get("fps_runs") or 1) for r in selected_records(result) if r.get("speed_clip")), default=1)
        lines += [f"**Speed** on the first frames of `{result.get('speed_clip')}` (median of {runs} timed runs after "
                  "a warm-up; variants of our stage are not timed; "
                  "peak RSS of the whole benchmark process incl. its corpus, and its rise over the level before the "
                  "method ran, sampled every 20 ms with the ffmpeg child processes):", ""]
        lines += speed + [""]
    if stage == "sr":
        lines += sr_speed.speed_section(result)
    tuning = _tuning_table(result)
    if tuning:
        lines += ["**Peer tuning** (full run: every setting on the clips the score averages; the best is the row shown above):",
                  ""] + tuning + [""]
    notes = _peer_notes(result)
    if notes:
        lines += ["Peers:", ""] + notes + [""]
    if stage == "dust" and result.get("real_film"):
        from restoration.bench import dust_realfilm

        lines += dust_realfilm.section(result["real_film"])
    for figure in figures.get(stage, []):
        lines += [f"![{stage}]({figure})", ""]
    return lines


NOTES_FOLDER = "notes"


def _owner_material(stage: str, folder: Path, ours: Iterable[str]) -> list[str]:
    """What a stage's owner keeps beside the report: `notes/<stage>.md` inlined, and `<stage>_*.png` figures
    (other than the bench's own), so regenerating the report never drops them."""
    lines: list[str] = []
    notes = folder / NOTES_FOLDER / f"{stage}.md"
    if notes.is_file():
        lines += [notes.read_text().strip(), ""]
    for image in sorted(folder.glob(f"{stage}_*.png")):
        if image.name not in ours:
            lines += [f"![{image.stem}]({image.name})", ""]
    return lines


def write_report(out: Path, report_path: Path) -> Path:
    """Regenerate the report (and its figures, beside it) from the results in `out`."""
    results = load_results(out)
    report_path = Path(report_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    figures = make_figures(results, Path(out), report_path.parent)
    first = next(iter(results.values()), None)
    lines = ["# FilmRestore benchmark", "",
             "Generated by `filmrestore bench` (restoration.bench) — do not edit by hand; rerun the bench.", ""]
    if first is None:
        lines += ["No results yet: run `filmrestore bench --quick`.", ""]
    else:
        machine = first["machine"]
        lines += [f"- Machine: {machine['cpu']}, {machine['cores']} cores usable, "
                  f"{machine.get('memory_gb', '?')} GB RAM; {machine['os']}; Python {machine['python']}.",
                  "- Versions: " + ", ".join(f"{k} {v}" for k, v in first["versions"].items()) + ".",
                  "- Runs: " + "; ".join(f"`{s}` {r['date']} ({r['profile']}, load average "
                                         f"{_load_text(r)})" for s, r in results.items()) + ". A load average "
                  "above the core count means other processes shared the cores: every speed figure then reads "
                  "low, ours and the peers' alike (the ratios hold better than the absolute fps).",
                  f"- Data: `{first['data']}`; corpus built by `restoration.synth` with fixed seeds "
                  "(restoration/bench/corpus.py); results JSON in "
                  f"`{_relative(Path(out), report_path.parent)}`.", ""]
        quick = [s for s, r in results.items() if r["profile"] != "full" and s != render_speed.SECTION]
        if quick:
            lines += [f"Stages {', '.join(quick)} come from a reduced run (`--quick`/tiny): 352×288 centre crops, "
                      "6 frames a clip, 3 Set5 images and 2 Vid4 frames for SR, each peer at its fixed setting, "
                      "variants of our stages on the speed clip only, speed measured on the crop — not the 720×576 "
                      "figures the targets name.", ""]
        lines += ["How each method is run: every method gets the same float32 RGB frames. `input` is the damaged "
                  "clip itself. FFmpeg peers run through PyAV's bundled libavfilter where it has the filter, else "
                  "through the `ffmpeg` binary over lossless 16-bit raw files (process start and file I/O are in "
                  "their time). Temporal FFmpeg filters that drop edge frames (tmedian) get mirrored edges, as our "
                  "pipeline does. A dust method's defect map is the set of pixels it changed by more than 2/255.",
                  ""]
        placeholders = [s for s, r in results.items()
                        if s != render_speed.SECTION and method_status(r, OURS) != "ok"]
        if placeholders:
            lines += ["Placeholders: " + ", ".join(f"`{s}`" for s in placeholders) +
                      " — placeholder — not implemented yet; their rows carry no figures.", ""]
    own = {name for names in figures.values() for name in names}
    for stage, result in results.items():
        if stage == render_speed.SECTION:  # whole commands, not methods on a corpus: its own layout
            lines += render_speed.render_section(result)
        else:
            lines += _stage_section(stage, result, figures)
        lines += _owner_material(stage, report_path.parent, own)
    if figures.get("film"):
        source = next((c["source"] for r in results.values() for c in r.get("corpus", [])
                       if c["role"] == "film" and c.get("source")), "archival")
        lines += ["## Real old film (no reference)", "",
                  f"The old film's cleanest stretch (`{source}`): the middle frame's centre crop as each method leaves it — input, FilmRestore where "
                  "implemented, and the three peers that scored best on the stage's reference clips.", ""]
        lines += [f"![film crops]({name})" for name in figures["film"]] + [""]
    partial = report_path.with_name(report_path.name + ".partial")
    partial.write_text("\n".join(lines).rstrip() + "\n")
    os.replace(partial, report_path)
    return report_path


def _load_text(result: dict[str, Any]) -> str:
    start, end = result.get("load_avg_start"), result.get("load_avg_end")
    if not start:
        return "unknown"
    return f"{start[0]:.1f} → {end[0]:.1f}" if end else f"{start[0]:.1f}"


def _relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:
        return str(path)


# ------------------------------------------------------------------------------------------------------------
# figures


def save_film_crops(path: Path, frames: dict[str, np.ndarray]) -> None:
    """Keep a centre crop of each method's middle film frame (8-bit) for the report's crop figure."""
    crops = {}
    for method, frame in frames.items():
        h, w = frame.shape[:2]
        cw, ch = min(CROP[0], w), min(CROP[1], h)
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        crops[method] = (np.clip(frame[y0:y0 + ch, x0:x0 + cw], 0, 1) * 255 + 0.5).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **crops)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _style(method: str) -> dict[str, Any]:
    if method == INPUT:
        return {"color": "0.55", "lw": 1.2, "ls": ":"}
    if method.startswith(OURS):
        return {"color": "black", "lw": 2.0}
    return {"lw": 1.2}


def _save(fig: Any, path: Path) -> str:
    fig.savefig(path, dpi=80)
    _pyplot().close(fig)
    return path.name


def _plot_jitter(result: dict[str, Any], folder: Path) -> str | None:
    plt = _pyplot()
    clips = [c for c in result["corpus"] if c["role"] == "weave"]
    if not clips:
        return None
    fig, axes = plt.subplots(1, len(clips), figsize=(4.2 * len(clips), 3.0), squeeze=False)
    for ax, clip in zip(axes[0], clips):
        for r in selected_records(result):
            series = r.get("series") or {}
            if r["clip"] != clip["clip"] or "shift_x" not in series:
                continue
            dx, dy = np.array(series["shift_x"]), np.array(series["shift_y"])
            t = np.arange(dx.size)
            line_x, line_y = (np.polyval(np.polyfit(t, v, 1), t) if v.size >= 3 else v.mean() for v in (dx, dy))
            residual = np.hypot(dx - line_x, dy - line_y)  # as the residual jitter: mean and linear drift removed
            ax.plot(residual, label=r["method"], **_style(r["method"]))
        ax.set_title(clip["clip"], fontsize=9)
        ax.set_xlabel("frame", fontsize=8)
        ax.set_ylabel("|shift − fitted line| vs truth, px", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Residual weave per frame (input = the weave itself)", fontsize=10)
    fig.tight_layout()
    return _save(fig, folder / "stabilize_jitter.png")


def _plot_luma(result: dict[str, Any], folder: Path) -> str | None:
    plt = _pyplot()
    clips = [c for c in result["corpus"] if c["role"] in ("flicker", "film")]
    if not clips:
        return None
    fig, axes = plt.subplots(1, len(clips), figsize=(4.2 * len(clips), 3.0), squeeze=False)
    for ax, clip in zip(axes[0], clips):
        truth_drawn = False
        for r in selected_records(result):
            series = r.get("series") or {}
            if r["clip"] != clip["clip"] or "mean_luma" not in series:
                continue
            if not truth_drawn and "truth_mean_luma" in series:
                ax.plot(series["truth_mean_luma"], label="truth", color="tab:green", lw=2.5, alpha=0.5)
                truth_drawn = True
            ax.plot(series["mean_luma"], label=r["method"], **_style(r["method"]))
        ax.set_title(clip["clip"], fontsize=9)
        ax.set_xlabel("frame", fontsize=8)
        ax.set_ylabel("mean luma", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Mean luma per frame", fontsize=10)
    fig.tight_layout()
    return _save(fig, folder / "deflicker_luma.png")


def _plot_spectra(result: dict[str, Any], folder: Path) -> str | None:
    plt = _pyplot()
    clips = [c for c in result["corpus"] if c["role"] == "grain"]
    if not clips:
        return None
    fig, axes = plt.subplots(1, len(clips), figsize=(4.6 * len(clips), 3.2), squeeze=False)
    for ax, clip in zip(axes[0], clips):
        base = (result.get("baselines") or {}).get(clip["clip"], {})
        freq = None
        for r in selected_records(result):
            series = r.get("series") or {}
            if r["clip"] != clip["clip"] or "residual_spectrum" not in series or r["method"] == INPUT:
                continue
            freq = series["residual_spectrum_freq"]
            ax.semilogy(freq, np.maximum(series["residual_spectrum"], 1e-12), label=f"{r['method']} (out − truth)",
                        **_style(r["method"]))
        if freq is not None and "grain_spectrum" in base:
            ax.semilogy(freq, np.maximum(base["grain_spectrum"], 1e-12), label="grain put in", color="tab:green",
                        lw=2.5, alpha=0.6)
        ax.set_title(clip["clip"], fontsize=9)
        ax.set_xlabel("cycles / px", fontsize=8)
        ax.set_ylabel("radial power", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=6)
    fig.suptitle("Grain spectra: what each method leaves (out − truth) vs the grain put in", fontsize=10)
    fig.tight_layout()
    return _save(fig, folder / "denoise_spectra.png")


def _key_rank(result: dict[str, Any], method: str) -> float:
    from restoration.bench.scoring import TUNING_KEY

    metric, higher, roles = TUNING_KEY[result["stage"]]
    value = aggregate(result, method, metric, roles)
    if value is None:
        return math.inf
    return -value if higher else value


def _plot_film_crops(results: dict[str, dict[str, Any]], out: Path, folder: Path) -> str | None:
    plt = _pyplot()
    rows = []
    for stage in ("dust", "denoise", "color"):
        path = out / f"film_{stage}.npz"
        if stage not in results or not path.exists():
            continue
        with np.load(path) as z:
            crops = {k: z[k] for k in z.files}
        peers = sorted((m for m in crops if m not in (INPUT,) and not m.startswith(OURS)),
                       key=lambda m: _key_rank(results[stage], m))[:3]
        order = [INPUT] + [m for m in crops if m.startswith(OURS)][:1] + peers
        rows.append((stage, [(m, crops[m]) for m in order if m in crops]))
    if not rows:
        return None
    cols = max(len(r[1]) for r in rows)
    height, width = rows[0][1][0][1].shape[:2]
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * width / 80 * 1.02, len(rows) * (height / 80 + 0.3)),
                             squeeze=False)
    for (stage, panels), row in zip(rows, axes):
        for ax in row:
            ax.axis("off")
        for ax, (method, crop) in zip(row, panels):
            grey = crop.mean(axis=2) if np.ptp(crop.astype(np.int16), axis=2).max() <= 2 else None
            ax.imshow(grey if grey is not None else crop, cmap="gray" if grey is not None else None,
                      vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(f"{stage}: {method}", fontsize=7)
    fig.suptitle("Real old film (no reference), centre crop of the middle frame", fontsize=9)
    fig.tight_layout()
    return _save(fig, folder / "film_crops.png")


def make_figures(results: dict[str, dict[str, Any]], out: Path, folder: Path) -> dict[str, list[str]]:
    """Draw the plots the results allow; return figure file names per stage (relative to the report)."""
    figures: dict[str, list[str]] = {}
    makers: dict[str, Callable[[dict[str, Any], Path], str | None]] = {
        "stabilize": _plot_jitter, "deflicker": _plot_luma, "denoise": _plot_spectra}
    for stage, maker in makers.items():
        if stage in results:
            name = maker(results[stage], folder)
            if name:
                figures.setdefault(stage, []).append(name)
    crops = _plot_film_crops(results, out, folder)
    if crops:
        figures.setdefault("film", []).append(crops)
    return figures

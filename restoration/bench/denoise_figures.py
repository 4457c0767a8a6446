"""Figures for the denoise stage's report: grain model vs the simulated grain, and crops from the real old film.

    .venv/bin/python -m restoration.bench.denoise_figures [--data ../shared/data] [--frames 12]

Writes restoration/bench/denoise_grain_spectra.png, restoration/bench/denoise_synthetic_crops.png and restoration/bench/denoise_realfilm_crops.png
(needs the shared test media).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from restoration import metrics as M  # noqa: E402
from restoration.bench import corpus as C  # noqa: E402
from restoration.stages.denoise.grain import measure_grain  # noqa: E402
from restoration.pipeline import run_stage_on_frames  # noqa: E402
from restoration.stage import Shot  # noqa: E402

HERE = Path(__file__).resolve().parent
CHANNELS = ("R", "G", "B")
COLOURS = ("tab:red", "tab:green", "tab:blue")


def grain_clip(name: str, data: Path, frames: int) -> C.Clip:
    spec = next(s for s in C.specs_for("denoise") if s.name == name)
    profile = C.PROFILES["full"]
    clip = C.build_clip(spec, data, profile)
    clip.degraded, clip.truth, clip.grain = clip.degraded[:frames], clip.truth[:frames], clip.grain[:frames]
    return clip


def spectra_figure(data: Path, frames: int, out: Path) -> None:
    names = ("city-grain", "barbara-pan-grain")
    fig, axes = plt.subplots(2, len(names), figsize=(10, 6.4))
    for column, name in enumerate(names):
        clip = grain_clip(name, data, frames)
        shot = [Shot(0, len(clip.degraded))]
        model = measure_grain(clip.degraded, len(clip.degraded))
        regrained = run_stage_on_frames("denoise", clip.degraded, {"grain": "regrain", "grain_amount": 1.0},
                                        shots=shot)
        residual = [o - t for o, t in zip(regrained, clip.truth)]
        levels, true_nlf, _ = M.noise_level_function(clip.grain, clip.truth)
        _, new_nlf, _ = M.noise_level_function(residual, clip.truth)
        ax = axes[0, column]
        for c in range(3):
            ax.plot(levels, true_nlf[:, c], "-", color=COLOURS[c], lw=2, alpha=0.35,
                    label="simulated" if c == 0 else None)
            measured = np.where(model.counts[:, c] > 0, model.sigma[:, c], np.nan)
            ax.plot(model.levels, measured, "o", color=COLOURS[c], ms=4, label="measured" if c == 0 else None)
            ax.plot(model.levels, model.sigma[:, c], ":", color=COLOURS[c], lw=1)
            ax.plot(levels, new_nlf[:, c], "x", color=COLOURS[c], ms=4, label="regrained output" if c == 0 else None)
        ax.set_title(f"{name}: grain level (NLF error {M.nlf_error(model.sigma, true_nlf):.0%})", fontsize=9)
        ax.set_xlabel("intensity")
        ax.set_ylabel("grain std")
        ax.legend(fontsize=7)
        ax = axes[1, column]
        freq, true_power = M.radial_power_spectrum(clip.grain)
        _, new_power = M.radial_power_spectrum(residual)
        scale = float(np.mean([np.var(g) for g in clip.grain]))
        ax.plot(freq, true_power, "-", color="0.6", lw=3, label="source grain (simulated)")
        ax.plot(model.frequencies, model.spectrum * scale, "o--", color="tab:purple", ms=3,
                label=f"measured model (size {model.grain_size:.2f} px)")
        ax.plot(freq, new_power, "-", color="tab:orange", lw=1.2,
                label=f"regrained output (corr {M.spectrum_correlation(residual, clip.grain):.3f})")
        ax.set_xlim(0, 0.5)
        ax.set_xlabel("frequency (cycles/px)")
        ax.set_ylabel("power")
        ax.set_title(f"{name}: radial power spectrum", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def film_crops(data: Path, out: Path, frames: int = 9, crop: tuple[int, int, int] = (150, 250, 128)) -> None:
    """Scan / remove / keep (default) / regrain crops (3x, nearest) of the middle frame of the real film stretch,
    and what `remove` took away (x8 around mid-grey): grain shows as noise, over-cleaning would show as edges."""
    clip = C.load_film(data, frames, None)
    shot = [Shot(0, len(clip))]
    middle = len(clip) // 2
    outputs = {label: run_stage_on_frames("denoise", clip, params, shots=shot)[middle]
               for label, params in (("remove", {"grain": "remove"}), ("keep 0.5 (default)", {}),
                                     ("regrain", {"grain": "regrain"}))}
    panels = [("scan", clip[middle]), *outputs.items(),
              ("removed x8", 0.5 + 8.0 * (clip[middle] - outputs["remove"]))]
    y, x, size = crop
    tiles = [_tile(frame[y:y + size, x:x + size], label, 3) for label, frame in panels]
    cv2.imwrite(str(out), cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])


def synthetic_crops(data: Path, out: Path, frames: int = 7) -> None:
    """Truth / grainy / remove / keep (default) / regrain crops (2x) of the two simulated grain clips."""
    rows = []
    for name, (y, x) in (("city-grain", (200, 300)), ("barbara-pan-grain", (250, 380))):
        clip = grain_clip(name, data, frames)
        shot = [Shot(0, len(clip.degraded))]
        middle = len(clip.degraded) // 2
        panels = [("truth", clip.truth[middle]), ("grainy", clip.degraded[middle])]
        for label, params in (("remove", {"grain": "remove"}), ("keep 0.5", {}), ("regrain", {"grain": "regrain"})):
            panels.append((label, run_stage_on_frames("denoise", clip.degraded, params, shots=shot)[middle]))
        rows.append(np.concatenate([_tile(frame[y:y + 104, x:x + 104], label, 2) for label, frame in panels], 1))
    cv2.imwrite(str(out), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def _tile(crop: np.ndarray, label: str, zoom: int) -> np.ndarray:
    tile = cv2.resize(crop, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    tile = (np.clip(tile, 0, 1) * 255 + 0.5).astype(np.uint8)
    cv2.rectangle(tile, (0, 0), (8 + 9 * len(label), 22), (0, 0, 0), -1)
    cv2.putText(tile, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
    return np.pad(tile, ((0, 4), (0, 4), (0, 0)), constant_values=255)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=C.default_data_dir())
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--crops-only", action="store_true", help="only the real-film crops")
    args = parser.parse_args()
    if not args.crops_only:
        spectra_figure(args.data, args.frames, HERE / "denoise_grain_spectra.png")
    synthetic_crops(args.data, HERE / "denoise_synthetic_crops.png")
    film_crops(args.data, HERE / "denoise_realfilm_crops.png")


if __name__ == "__main__":
    main()

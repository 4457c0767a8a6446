"""Synthetic clips on disk: write a SynthClip as PNG sequences + params.json, read it back, and the CLI entry."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from restoration.errors import ExportError, MediaError, ParamError
from restoration.export.paths import Sources, check_output, commit, discard, reserve_temp, write_manifest
from restoration.synth.settings import DamageSettings
from restoration.synth.simulate import FrameResult, SynthClip, plan_clip, render_frame

STILL_FRAMES = 24
STILL_PAN = (0.75, 0.25)  # px/frame: the motion a still gets when no pan is asked for
GRAIN_OFFSET = 0.5        # grain PNGs store grain + 0.5 in 16 bit


def _frame_name(index: int) -> str:
    return f"{index:06d}.png"


def _write_table(path: Path, header: list[str], rows: np.ndarray) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", *header])
        for i, row in enumerate(rows):
            writer.writerow([i, *(repr(float(v)) for v in row)])


def _mask_image(mask: np.ndarray) -> np.ndarray:
    return np.repeat(mask.astype(np.float32)[..., None], 3, axis=2)


class SynthWriter:
    """Writes a synthetic clip frame by frame into a temporary folder that becomes `outdir` on finish()."""

    def __init__(self, outdir: Path, overwrite: bool = False, sources: Sources | None = None) -> None:
        self.outdir = check_output(outdir, True, sources or Sources.of(), overwrite)
        self.overwrite = overwrite
        self.temp = reserve_temp(self.outdir, sequence=True)

    def _guard(self, action, *args) -> None:
        try:
            action(*args)
        except OSError as exc:
            self.abort()
            raise ExportError(self.outdir, f"cannot write ({exc.strerror or exc})") from None

    def frame(self, t: int, result: FrameResult) -> None:
        """Write frame t's degraded and truth frames, masks and grain."""
        self._guard(self._frame, t, result)

    def _frame(self, t: int, result: FrameResult) -> None:
        from restoration.io import write_image

        items = [("degraded", result.degraded, 16), ("truth", result.truth, 16)]
        if result.defect_mask is not None:
            items.append(("masks/defects", _mask_image(result.defect_mask), 8))
        if result.scratch_mask is not None:
            items.append(("masks/scratches", _mask_image(result.scratch_mask), 8))
        if result.grain is not None:
            items.append(("grain", result.grain + np.float32(GRAIN_OFFSET), 16))
        for sub, image, bits in items:
            folder = self.temp / sub
            folder.mkdir(parents=True, exist_ok=True)
            write_image(folder / _frame_name(t), image, bits=bits)

    def finish(self, params: dict, weave, pan, flicker, fade) -> Path:
        """Write the tables and params.json, then move the folder to its final name."""
        self._guard(self._tables, params, weave, pan, flicker, fade)
        self._guard(write_manifest, self.temp, "synth")
        self._guard(commit, self.temp, self.outdir, self.overwrite)
        return self.outdir

    def _tables(self, params: dict, weave, pan, flicker, fade) -> None:
        if weave is not None:
            _write_table(self.temp / "weave.csv", ["dx_px", "dy_px", "rotation_deg"], weave)
        if pan is not None:
            _write_table(self.temp / "pan.csv", ["x_px", "y_px"], pan)
        if flicker is not None:
            _write_table(self.temp / "flicker.csv", ["gain", "offset"], flicker)
        if fade is not None:
            _write_table(self.temp / "fade.csv", params["fade"]["columns"], fade)
        params = dict(params)
        params["files"] = {
            "degraded": "degraded/NNNNNN.png, 16-bit RGB" + (" (low resolution)" if "blur" in params["damage"]
                                                            else ""),
            "truth": "truth/NNNNNN.png, 16-bit RGB",
            "masks": "masks/{defects,scratches}/NNNNNN.png, 8-bit, 255 = defect, in degraded-frame coordinates",
            "grain": f"grain/NNNNNN.png, 16-bit RGB, grain = value - {GRAIN_OFFSET}, in truth coordinates",
            "tables": "weave.csv, pan.csv, flicker.csv, fade.csv (one row per frame)",
        }
        with open(self.temp / "params.json", "w") as handle:
            json.dump(params, handle, indent=1)

    def abort(self) -> None:
        """Remove the temporary folder (nothing appears at the final name)."""
        discard(self.temp)


def write_synth(clip: SynthClip, outdir: Path, overwrite: bool = False) -> None:
    """Write the clip into `outdir` (built under a temporary name, renamed when complete)."""
    writer = SynthWriter(Path(outdir), overwrite)
    try:
        for t in range(len(clip.degraded)):
            pick = (lambda seq: None if seq is None else seq[t])
            writer.frame(t, FrameResult(clip.degraded[t], clip.truth[t], pick(clip.defect_masks),
                                        pick(clip.scratch_masks), pick(clip.grain)))
        writer.finish(clip.params, clip.weave, clip.pan, clip.flicker, clip.fade)
    except BaseException:
        writer.abort()
        raise


def _read_table(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return np.array([[float(v) for v in row[1:]] for row in rows], dtype=np.float64)


def read_synth(outdir: Path) -> SynthClip:
    """Load a clip written by write_synth (16-bit values, so within 1/65535 of the in-memory arrays)."""
    from restoration.io import read_image

    outdir = Path(outdir)
    try:
        params = json.loads((outdir / "params.json").read_text())
    except (OSError, ValueError) as exc:
        raise ParamError(outdir / "params.json", f"not a synthetic clip's parameters ({exc})") from None
    n = int(params["frames"])

    def frames(sub: str) -> list[np.ndarray] | None:
        folder = outdir / sub
        if not folder.is_dir():
            return None
        return [read_image(folder / _frame_name(i))[0] for i in range(n)]

    degraded, truth = frames("degraded"), frames("truth")
    defects, scratches, grain = frames("masks/defects"), frames("masks/scratches"), frames("grain")
    as_mask = (lambda seq: None if seq is None else [f[..., 0] > 0.5 for f in seq])
    grain = None if grain is None else [f - np.float32(GRAIN_OFFSET) for f in grain]
    return SynthClip(degraded, truth, as_mask(defects), as_mask(scratches), grain, _read_table(outdir / "weave.csv"),
                     _read_table(outdir / "pan.csv"), _read_table(outdir / "flicker.csv"),
                     _read_table(outdir / "fade.csv"), degraded if "blur" in params["damage"] else None, params)


def run_synth(source: str, outdir: str, damage: list[str], seed: int, *, settings: DamageSettings | None = None,
              overlay_dir: Path | None = None, max_frames: int | None = None, still_frames: int = STILL_FRAMES,
              overwrite: bool = False) -> Path:
    """`filmrestore synth SOURCE -o OUTDIR --damage ... --seed N`: degrade a clip or still and write it all.

    Frames stream from the source to the output one at a time, so memory does not grow with the clip. A single
    still becomes a clip of `still_frames` frames moved by a pan (the settings' pan, else 0.75, 0.25 px/frame).
    """
    from restoration.io import open_source

    out = Path(outdir)
    settings = settings if settings is not None else DamageSettings()
    with open_source(source) as src:
        sources = Sources.of(src.info)
        check_output(out, True, sources, overwrite)  # before the planning: fail fast
        total = len(src)
        count = total if max_frames is None else min(total, max_frames)
        first = src.frame(0)
        note = {"path": str(source), "frames_in_source": total, "frames_used": count}
        still = total == 1
        if still:
            if tuple(settings.pan_px_per_frame) == (0.0, 0.0):
                settings = DamageSettings.from_dict({**settings.to_dict(), "pan_px_per_frame": STILL_PAN})
            count = still_frames
            note["still"] = f"one still repeated {still_frames} times; motion from the pan"
        plan = plan_clip(count, first, damage, seed, settings, overlay_dir)
        plan.params["source"] = note
        writer = SynthWriter(out, overwrite, sources)
        try:
            frames = ((t, first) for t in range(count)) if still else src.frames(0, count)
            rendered = 0
            for t, frame in frames:
                writer.frame(t, render_frame(plan, t, frame))
                rendered += 1
            if rendered != count:
                raise MediaError(source, f"decoded {rendered} frames where the probe promised {count}")
            writer.finish(plan.params, plan.weave, plan.pan, plan.flicker, plan.fade)
        except BaseException:
            writer.abort()
            raise
    return out

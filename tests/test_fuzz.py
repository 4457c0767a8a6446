"""Seeded fuzzing of every source kind: byte flips and truncations through probe, a short render and preview.

Each case must end in a result (exit 0) or in one `filmrestore: error:` line (exit 2; notes allowed), with no
traceback, nothing at the output name, no partial beside it and the source unchanged. A case is reproduced on its
own with `pytest tests/test_fuzz.py -k case_137`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from media import make_sequence, make_video, pattern_frame

from restoration.cli import main
from restoration.io import write_image
from restoration.project import Project
from restoration.pipeline import StageSetting

SEED = 16
CASES = 320
SUBPROCESS_CASES = (3, 101, 202)  # a few through a real process, so stray warnings or FFmpeg logs show too
PROGRESS = re.compile(r"^[\w ]+: \d+/\d+ frames, ")
MEDIA = ("png_sequence", "ffv1_mkv", "h264_mp4", "tiff_still", "dpx_still", "project_json")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """One small specimen of each source kind, written once for the module."""
    root = tmp_path_factory.mktemp("pristine")
    make_sequence(root / "png_sequence", 3, width=32, height=24, bits=16, fmt="png")
    make_video(root / "ffv1_mkv.mkv", 4, 32, 24, codec="ffv1", audio=True)
    make_video(root / "h264_mp4.mp4", 6, 32, 24, codec="libx264", audio=True)
    write_image(root / "tiff_still.tif", pattern_frame(0, 32, 24, 16).astype(np.float32) / 65535, bits=16)
    write_image(root / "dpx_still.dpx", pattern_frame(1, 32, 24, 10).astype(np.float32) / 1023, bits=10)
    project = Project(source=str(root / "png_sequence"), range=(0, 2), name="fuzz")
    project.stages["color"] = StageSetting(True, {"strength": 0.5})
    project.save(root / "project_json.json")
    return root


@dataclass
class Case:
    index: int
    seed: int
    medium: str
    mutation: str
    command: str  # probe | render | preview


def make_case(index: int, seed: int = SEED) -> Case:
    rng = np.random.default_rng([seed, index])
    medium = MEDIA[index % len(MEDIA)]
    mutation = str(rng.choice(["flip", "flip_header", "truncate", "flip_truncate", "zero_run"]))
    turn = index // len(MEDIA)  # every medium meets every command in turn
    command = "preview" if turn % 5 == 4 else "render" if turn % 2 else "probe"
    if medium == "project_json" and command == "probe":
        command = "render"
    return Case(index, seed, medium, mutation, command)


def mutate(data: bytes, mutation: str, rng: np.random.Generator) -> bytes:
    """`data` with a few bytes flipped (anywhere or in the first 256), cut short, or a run zeroed."""
    buf = bytearray(data)
    if mutation in ("flip", "flip_header", "flip_truncate"):
        span = min(len(buf), 256) if mutation == "flip_header" else len(buf)
        for _ in range(int(rng.integers(1, 9))):
            buf[int(rng.integers(0, span))] ^= 1 << int(rng.integers(0, 8))
    if mutation in ("truncate", "flip_truncate"):
        del buf[int(rng.integers(0, len(buf))):]
    if mutation == "zero_run":
        start = int(rng.integers(0, len(buf)))
        buf[start:start + int(rng.integers(1, 64))] = bytes(min(len(buf) - start, 64))[:len(buf[start:start + 64])]
    return bytes(buf)


def damaged_source(pristine: Path, case: Case, where: Path) -> tuple[Path, Path]:
    """Copy the case's medium into `where`, damage one file of it; returns (source argument, damaged file)."""
    rng = np.random.default_rng([case.seed, case.index, 1])
    if case.medium == "png_sequence":
        source = shutil.copytree(pristine / "png_sequence", where / "png_sequence")
        victim = sorted(source.iterdir())[int(rng.integers(0, 3))]
    elif case.medium == "project_json":
        shutil.copytree(pristine / "png_sequence", where / "png_sequence")
        text = (pristine / "project_json.json").read_text().replace(str(pristine), str(where))
        source = victim = where / "project_json.json"
        victim.write_text(text)
    else:
        suffix = {"ffv1_mkv": ".mkv", "h264_mp4": ".mp4", "tiff_still": ".tif", "dpx_still": ".dpx"}[case.medium]
        source = victim = Path(shutil.copy(pristine / f"{case.medium}{suffix}", where / f"{case.medium}{suffix}"))
    victim.write_bytes(mutate(victim.read_bytes(), case.mutation, rng))
    return source, victim


def arguments(case: Case, source: Path, output: Path) -> list[str]:
    source_args = ["--project", str(source)] if case.medium == "project_json" else [str(source)]
    if case.command == "probe":
        return ["probe", *source_args]
    if case.command == "preview":
        frame = "0" if case.medium in ("tiff_still", "dpx_still") else "1"
        return ["preview", *source_args, "--frame", frame, "-o", str(output), "--stages", "stabilize,color"]
    stages = "color" if case.index % 2 else "none"
    project_range = [] if case.medium == "project_json" else ["--range", "0:2"]
    if case.medium in ("tiff_still", "dpx_still"):
        project_range = []
    return ["render", *source_args, "-o", str(output), *project_range, "--stages", stages,
            "--progress-every", "3600"]


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_in_process(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


def run_in_subprocess(args: list[str]) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "restoration.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    return done.returncode, done.stderr


def check_outcome(case: Case, code: int, stderr: str, source_dir: Path, output: Path, before: dict[str, str]) -> None:
    lines = [line for line in stderr.splitlines() if line and not PROGRESS.match(line)]
    assert "Traceback" not in stderr, f"{case}: {stderr}"
    assert code in (0, 2), f"{case}: exit {code}: {stderr}"
    errors = [line for line in lines if line.startswith("filmrestore: error: ")]
    others = [line for line in lines if not line.startswith(("filmrestore: error: ", "filmrestore: note: "))]
    assert not others, f"{case}: stray stderr lines {others}"
    if code == 2:
        assert len(errors) == 1, f"{case}: {lines}"
        assert not output.exists(), f"{case}: {output} left after an error"
    else:
        assert not errors, f"{case}: {lines}"
    partials = [p.name for p in output.parent.iterdir() if "partial" in p.name]
    assert not partials, f"{case}: partial outputs left: {partials}"
    assert digest(source_dir) == before, f"{case}: the source was written"


# Cases that failed once (seed, index -> what the line must say; None: a result), replayed on every run.
FOUND = {
    "ffv1_flac_block_damaged": (99, 31, "audio cannot be read"),  # was blamed on the master: "cannot write"
    "mp4_audio_handler_damaged": (99, 800, "audio stream 1"),  # AttributeError in the audio carrier
    "dpx_creator_not_utf8": (7, 256, None),  # UnicodeDecodeError reading the header's timecode
}


@pytest.mark.parametrize("index", [pytest.param(i, id=f"case_{i}") for i in range(CASES)])
def test_damaged_input_ends_in_one_line_or_a_result(pristine, tmp_path, index):
    run_case(pristine, tmp_path, make_case(index))


@pytest.mark.parametrize("name", list(FOUND))
def test_case_the_fuzzer_found(pristine, tmp_path, name):
    seed, index, expected = FOUND[name]
    code, stderr = run_case(pristine, tmp_path, make_case(index, seed))
    assert code == (0 if expected is None else 2), stderr
    assert expected is None or expected in stderr, stderr


def run_case(pristine: Path, tmp_path: Path, case: Case) -> tuple[int, str]:
    source_dir = tmp_path / "in"
    source_dir.mkdir()
    source, _ = damaged_source(pristine, case, source_dir)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / ("before_after.png" if case.command == "preview" else "master.mkv")
    before = digest(source_dir)
    args = arguments(case, source, output)
    runner = run_in_subprocess if case.seed == SEED and case.index in SUBPROCESS_CASES else run_in_process
    code, stderr = runner(args)
    check_outcome(case, code, stderr, source_dir, output, before)
    return code, stderr

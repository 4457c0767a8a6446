"""Nothing of an archive's data is lost silently: bit depth, geometry/colour/timing metadata, fields (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from media import make_sequence

from restoration.cli import main
from restoration.io import open_source, probe

W, H = 64, 48


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("filmrestore: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def mixed_depth_sequence(folder: Path, fmt: str = "png") -> list[np.ndarray]:
    """Frames 0-1 at 8 bits, 2-3 at 16 bits; returns each frame's values on the 16-bit scale."""
    _, low = make_sequence(folder, 2, W, H, bits=8, fmt=fmt)
    _, high = make_sequence(folder, 2, W, H, bits=16, fmt=fmt, start_number=2)
    return [v.astype(np.uint16) * 257 for v in low] + list(high)


# --- bit depth -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_probe_reports_the_deepest_frame_of_a_sequence(tmp_path, fmt):
    mixed_depth_sequence(tmp_path / "scan", fmt)
    assert probe(tmp_path / "scan").bit_depth == 16


def test_mixed_8_and_16_bit_sequence_makes_a_16_bit_ffv1_master(tmp_path):
    want = mixed_depth_sequence(tmp_path / "scan")
    out = tmp_path / "master.mkv"
    assert main(["render", str(tmp_path / "scan"), "-o", str(out), "--stages", "none"]) == 0
    with av.open(str(out)) as container:
        got = [f.to_ndarray(format="rgb48le") for f in container.decode(video=0)]
    assert len(got) == 4
    for g, w in zip(got, want):
        assert np.array_equal(g, w)
    record = json.loads((tmp_path / "master.mkv.provenance.json").read_text())
    assert record["source"]["bit_depth"] == 16 and record["output"]["bit_depth"] == 16


@pytest.mark.parametrize("fmt, out_name, depth", [("h264", "o.mp4", 8), ("prores", "o.mov", 10),
                                                   ("dpx", "o_dpx", 10)])
def test_a_format_too_shallow_for_the_source_is_refused(tmp_path, capsys, fmt, out_name, depth):
    make_sequence(tmp_path / "scan", 2, W, H, bits=16, fmt="png")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["render", str(tmp_path / "scan"), "-o", str(tmp_path / out_name), "--format", fmt])
    line = one_error_line(capsys)
    assert code == 2
    assert out_name in line and f"{depth} bits" in line and "16-bit" in line and "--allow-depth-loss" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_depth_loss_when_asked_for_is_recorded(tmp_path):
    make_sequence(tmp_path / "scan", 2, W, H, bits=16, fmt="png")
    out = tmp_path / "access.mp4"
    assert main(["render", str(tmp_path / "scan"), "-o", str(out), "--allow-depth-loss"]) == 0
    record = json.loads((tmp_path / "access.mp4.provenance.json").read_text())
    assert record["export_settings"]["allow_depth_loss"] is True
    assert record["output"]["bit_depth"] == 8 and "16-bit source" in record["output"]["depth_loss"]


def test_a_format_deep_enough_needs_no_permission(tmp_path):
    make_sequence(tmp_path / "scan", 2, W, H, bits=10, fmt="dpx")
    assert main(["render", str(tmp_path / "scan"), "-o", str(tmp_path / "o.mov")]) == 0
    record = json.loads((tmp_path / "o.mov.provenance.json").read_text())
    assert record["output"]["bit_depth"] == 10 and "depth_loss" not in record["output"]

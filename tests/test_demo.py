"""`filmrestore demo` builds its damaged clip from the shipped still and writes a master and stills."""

from __future__ import annotations

import json

from restoration.cli import main
from restoration.io import open_source, read_image


def test_demo_writes_master_stills_and_report(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--frames", "4", "--width", "160"]) == 0
    with open_source(out / "restored.mkv") as master:
        assert len(master) == 4
    image, bits = read_image(out / "before_after.png")
    assert bits == 8 and image.shape[1] > image.shape[0]
    report = json.loads((out / "demo-report.json").read_text())
    assert report["frames"] == 4 and report["psnr_damaged_db"] < 35
    assert report["psnr_restored_db"] > report["psnr_damaged_db"]  # scored even when sr changed the size
    assert (out / "restored.mkv.provenance.json").is_file()
    assert main(["demo", "-o", str(out), "--frames", "3", "--width", "96"]) == 2  # asks first
    assert main(["demo", "-o", str(out), "--frames", "3", "--width", "96", "--overwrite"]) == 0  # its own folder
    assert len(list((out / "damaged").iterdir())) == 3


def test_demo_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["demo", "-o", str(out), "--overwrite"]) == 2
    assert "did not write" in capsys.readouterr().err and (out / "notes.txt").read_text() == "keep me"

"""`filmrestore demo` builds its damaged clip from the shipped still and writes a master and stills."""

from __future__ import annotations

import json
import os
import stat

from restoration.cli import main
from restoration.io import open_source, read_image


def test_demo_writes_master_stills_and_report(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    monkeypatch.chdir(tmp_path)
    old_umask = os.umask(0o022)
    try:
        assert main(["demo", "-o", "demo", "--frames", "4", "--width", "160"]) == 0
    finally:
        os.umask(old_umask)
    with open_source(out / "restored.mkv") as master:
        assert len(master) == 4
    with open_source(out / "market_street_restored.mkv") as master, open_source(out / "market_street") as scan:
        assert len(master) == 4 and master.info.width == 160  # real film: the shipped excerpt's first frames
        assert scan.frame_number(0) == 25
    assert (out / "market_street_restored.mkv.provenance.json").is_file()
    assert (out / "market_street_restored.mkv.framemd5").is_file()
    image, bits = read_image(out / "contact_sheet.png")
    assert bits == 8 and image.shape[1] == 2 * 160 + 8 and image.shape[0] > 3 * 100  # film, damaged, truth rows
    for name in ("market_street", "demo"):
        project = out / f"{name}.filmrestore.json"
        assert stat.S_IMODE(project.stat().st_mode) == 0o644
        assert not os.path.isabs(json.loads(project.read_text())["source"])
    # the project files render as they are, from any working folder
    assert main(["render", "--project", "demo/demo.filmrestore.json", "-o", "again.mkv", "--stages", "none"]) == 0
    monkeypatch.chdir(out)
    assert main(["render", "--project", "market_street.filmrestore.json", "-o", str(tmp_path / "film.mkv"),
                 "--stages", "none"]) == 0
    monkeypatch.chdir(tmp_path)
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

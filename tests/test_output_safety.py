"""Output safety for every command that writes: never a source, never another's files, nothing left on a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media import make_sequence, make_video

from restoration.cli import main
from restoration.export.paths import MANIFEST, PartialOwner, clear_stale_partials
from restoration.io import read_image

REPO = Path(__file__).resolve().parent.parent


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes (what must not change)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error(err: str, expected: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("filmrestore: error:")]
    assert len(lines) == 1 and expected in lines[0], err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    make_sequence(tmp_path / "scans", 4, 48, 32, bits=16, fmt="png")
    return tmp_path / "scans"


# --- preview: the source and its folder ----------------------------------------------------------------------

@pytest.mark.parametrize("target", ["frame", "symlink", "hardlink", "dotdot", "inside"])
def test_preview_never_writes_a_source_frame_or_into_its_folder(tmp_path, scans, capsys, target):
    frame = sorted(scans.iterdir())[3]
    output = {
        "frame": frame,
        "symlink": tmp_path / "link.png",
        "hardlink": tmp_path / "hard.png",
        "dotdot": scans / ".." / "scans" / frame.name,
        "inside": scans / "compare.png",
    }[target]
    if target == "symlink":
        output.symlink_to(frame)
    if target == "hardlink":
        os.link(frame, output)
    before = tree(scans)
    assert main(["preview", "--stages", "none", str(scans), "--frame", "3", "-o", str(output), "--overwrite"]) == 2
    line = one_error(capsys.readouterr().err, str(output))
    assert "source" in line
    assert tree(scans) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["scans", *(["link.png"] if target == "symlink" else []), *(["hard.png"] if target == "hardlink" else [])])


def test_preview_needs_overwrite_for_an_existing_file(tmp_path, scans, capsys):
    out = tmp_path / "compare.png"
    out.write_bytes(b"a still I keep")
    assert main(["preview", "--stages", "none", str(scans), "--frame", "1", "-o", str(out)]) == 2
    one_error(capsys.readouterr().err, "already exists")
    assert out.read_bytes() == b"a still I keep"
    assert main(["preview", "--stages", "none", str(scans), "--frame", "1", "-o", str(out), "--overwrite"]) == 0
    image, bits = read_image(out)
    assert bits == 8 and image.shape[0] == 32 and image.shape[1] > 2 * 48
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.png", "scans"]


def test_preview_into_a_read_only_folder_names_the_output(tmp_path, scans, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root ignores permission bits: answer as the kernel would a user
            real_open = os.open
            monkeypatch.setattr(os, "open", lambda p, flags, *a, **k: (_ for _ in ()).throw(
                PermissionError(13, "Permission denied", str(p))) if Path(p).parent == locked
                and flags & os.O_CREAT else real_open(p, flags, *a, **k))
        assert main(["preview", "--stages", "none", str(scans), "--frame", "0", "-o", str(locked / "p.png")]) == 2
        line = one_error(capsys.readouterr().err, str(locked / "p.png"))
        assert "partial" not in line
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


# --- --overwrite on folders: only a sequence we wrote --------------------------------------------------------

def test_overwrite_refuses_a_folder_we_did_not_write(tmp_path, scans, capsys):
    out = tmp_path / "some_folder"
    (out / "sub").mkdir(parents=True)
    (out / "important.txt").write_text("the catalogue")
    (out / "sub" / "notes.md").write_text("reel notes")
    before = tree(out)
    assert main(["render", "--stages", "none", str(scans), "-o", str(out), "--format", "tiff", "--overwrite"]) == 2
    one_error(capsys.readouterr().err, "did not write")
    assert tree(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_sequence_we_wrote_can_be_overwritten_and_lists_its_files(tmp_path, scans):
    out = tmp_path / "reel"
    assert main(["render", "--stages", "none", str(scans), "-o", str(out), "--format", "tiff"]) == 0
    import json
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["files"] == [f"reel_{n:06d}.tif" for n in range(4)]
    assert main(["render", "--stages", "none", str(scans), "-o", str(out), "--format", "tiff", "--range", "1:3", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "reel_000001.tif", "reel_000002.tif"]


def test_overwrite_refuses_our_sequence_with_a_file_added(tmp_path, scans, capsys):
    out = tmp_path / "reel"
    # 16-bit scans into 10-bit DPX: the depth loss is asked for, as it must be since the depth-loss refusal
    assert main(["render", "--stages", "none", str(scans), "-o", str(out), "--format", "dpx", "--allow-depth-loss"]) == 0
    (out / "grading-notes.txt").write_text("keep")
    assert main(["render", "--stages", "none", str(scans), "-o", str(out), "--format", "dpx", "--allow-depth-loss", "--overwrite"]) == 2
    one_error(capsys.readouterr().err, "grading-notes.txt")
    assert (out / "grading-notes.txt").read_text() == "keep" and len(list(out.glob("*.dpx"))) == 4


def test_render_into_the_source_sequence_folder_is_refused(tmp_path, scans, capsys):
    before = tree(scans)
    assert main(["render", "--stages", "none", str(scans), "-o", str(scans / "master.mkv")]) == 2
    one_error(capsys.readouterr().err, "source sequence's folder")
    assert main(["render", "--stages", "none", str(scans), "-o", str(scans / "sub"), "--format", "tiff"]) == 2
    one_error(capsys.readouterr().err, "source sequence's folder")
    assert tree(scans) == before


def test_bench_out_needs_overwrite_and_never_the_data(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "clips").mkdir(parents=True)
    out = tmp_path / "results"
    out.mkdir()
    (out / "mine.json").write_text("{}")
    assert main(["bench", "--stage", "dust", "--quick", "--data", str(data), "--out", str(out)]) == 2
    one_error(capsys.readouterr().err, "--overwrite")
    assert main(["bench", "--stage", "dust", "--quick", "--data", str(data), "--out", str(data / "clips")]) == 2
    one_error(capsys.readouterr().err, "source")
    assert (out / "mine.json").read_text() == "{}" and list((data / "clips").iterdir()) == []


# --- signals and stale partials --------------------------------------------------------------------------------

def start_render(source: Path, output: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "restoration.cli", "render", str(source), "-o", str(output),
                             "--stages", "none", *extra], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_partial(folder: Path, process: subprocess.Popen, timeout: float = 120) -> Path:
    """The render's partial output, once it is being written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in folder.iterdir() if ".partial-" in p.name and not p.name.endswith(".owner")]
        if found:
            return found[0]
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError("the render never started writing")


@pytest.fixture(scope="module")
def long_scans(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("long") / "scans"
    make_sequence(folder, 60, 320, 240, bits=16, fmt="png")
    return folder


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_cancel_like_ctrl_c(tmp_path, long_scans, signum, code):
    process = start_render(long_scans, tmp_path / "m.mkv")
    wait_for_partial(tmp_path, process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert f"cancelled by {signal.Signals(signum).name}" in err and "Traceback" not in err
    # nothing at or beside the output but the render's work folder, kept so that the same command resumes
    assert [p.name for p in tmp_path.iterdir()] in ([], ["m.mkv.work"])


def running(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker states from /proc")
def test_a_cancel_while_the_workers_start_up_ends_the_render_at_once(tmp_path, long_scans):
    """SIGTERM while both workers are still starting (held there by a seam; under load, importing torch takes that
    long): the cancel used to be held until every worker was up, up to five minutes. It must kill them and end."""
    held, out = tmp_path / "held", tmp_path / "out"
    held.mkdir()
    out.mkdir()
    process = subprocess.Popen([sys.executable, str(REPO / "tests" / "held_worker_start.py"), "render",
                                str(long_scans), "-o", str(out / "m.mkv"), "--stages", "none", "--workers", "2"],
                               cwd=REPO, env={**os.environ, "HELD_WORKERS": str(held), "PYTHONPATH": str(REPO)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(held.iterdir())) < 2:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    workers = [int(p.name) for p in held.iterdir()]
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        for pid in [process.pid, *workers]:
            os.kill(pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("the cancel waited for the workers to start")
    assert process.returncode == 143, err
    assert "cancelled by SIGTERM" in err and "Traceback" not in err
    assert not [pid for pid in workers if running(pid)], "a worker outlived the cancelled render"
    assert [p.name for p in out.iterdir()] in ([], ["m.mkv.work"])


@pytest.mark.parametrize("output, fmt", [("m.mkv", "ffv1"), ("frames", "tiff")])
def test_a_killed_runs_partial_is_named_and_removed_by_the_next_render(tmp_path, long_scans, output, fmt):
    process = start_render(long_scans, tmp_path / output, "--format", fmt)
    partial = wait_for_partial(tmp_path, process)
    time.sleep(0.3)
    process.kill()
    process.communicate(timeout=60)
    assert partial.exists() and partial.with_name(partial.name + ".owner").exists()

    again = start_render(long_scans, tmp_path / output, "--format", fmt)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    notes = [line for line in err.splitlines()
             if line.startswith("filmrestore: note:") and "resuming:" not in line  # the engine's own resume note
             and not line.startswith("filmrestore: note: stages:")]  # and the stages every render names
    assert len(notes) == 1 and "removed stale partial output" in notes[0] and partial.name in notes[0], err
    assert sorted(p.name for p in tmp_path.iterdir() if ".partial" in p.name) == []
    assert (tmp_path / output).exists()


def test_a_cancel_just_after_the_owner_marker_is_made_leaves_nothing(tmp_path, scans, monkeypatch):
    """A cancel between the marker's creation and the writer holding it (seen once at load 20: the SIGHUP test left
    a lone `.m.partial-….mkv.owner`) must remove the marker with the partial."""
    from restoration.export import writer as writer_module

    real = writer_module.PartialOwner

    def cancelled_owner(partial: Path, final: Path):
        real(partial, final)
        raise KeyboardInterrupt

    monkeypatch.setattr(writer_module, "PartialOwner", cancelled_owner)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["render", "--stages", "none", str(scans), "-o", str(out / "m.mkv"), "--workers", "1"]) == 130
    assert [p.name for p in out.iterdir()] in ([], ["m.mkv.work"])


def test_a_partial_not_provably_ours_or_still_written_is_only_named(tmp_path):
    final = tmp_path / "m.mkv"
    foreign = tmp_path / ".m.partial-0123abcd.mkv"   # our name pattern, no owner marker
    foreign.write_bytes(b"x" * 2000)
    living = tmp_path / ".m.partial-89abcdef.mkv"    # owned by a render that is still running (this one)
    living.write_bytes(b"y")
    owner = PartialOwner(living, final)
    try:
        notes = clear_stale_partials(final)
    finally:
        owner.release()
    assert len(notes) == 2 and all("left alone" in n for n in notes)
    assert foreign.exists() and living.exists()
    (tmp_path / ".unrelated.partial-0123abcd.mkv").write_bytes(b"z")   # another output's: not ours to judge
    assert len(clear_stale_partials(final)) == 2


def test_a_dead_owners_partial_is_removed(tmp_path):
    final = tmp_path / "frames"
    partial = tmp_path / ".frames.partial-0badc0de"
    partial.mkdir()
    (partial / "frames_000000.tif").write_bytes(b"t" * 3000)
    marker = tmp_path / ".frames.partial-0badc0de.owner"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import json
    import socket
    marker.write_text(json.dumps({"filmrestore_partial": 1, "output": "frames", "pid": int(dead.stdout),
                                  "host": socket.gethostname()}))
    notes = clear_stale_partials(final)
    assert len(notes) == 1 and "removed stale partial output" in notes[0] and "3 kB" in notes[0]
    assert list(tmp_path.iterdir()) == []


def test_render_never_writes_over_its_own_project_file(tmp_path, scans, capsys):
    """Even a project file named like a master (other extensions are refused anyway) is never the output."""
    project = tmp_path / "reel.mkv"
    project.write_text('{"version": 1, "source": "%s"}' % scans)
    before = project.read_bytes()
    for target in (project, tmp_path / "link.mkv"):
        if target.name == "link.mkv":
            target.symlink_to(project)
        code = main(["render", "--project", str(project), "-o", str(target), "--format", "ffv1", "--overwrite",
                     "--stages", "none"])
        assert code == 2
        one_error(capsys.readouterr().err, "is the source itself")
    assert project.read_bytes() == before

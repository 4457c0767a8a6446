"""Smoke test of the built application bundle (packaging/build.sh), skipped unless FILMRESTORE_TEST_BUNDLE=1.

The archive (dist/FilmRestore-*-linux-x86_64.tar.gz, or $FILMRESTORE_BUNDLE_ARCHIVE) is unpacked into a clean
folder and its executables run with an environment that has no Python, no venv and no PYTHONPATH: PATH is an
empty folder, HOME and the XDG folders are fresh. What is checked is what an archivist meets first: the version
(with the torch build), probe, a 12-frame render with the default chain on two worker processes (the spawn start
method re-runs the executable: without freeze_support() each worker would start the command line again), a frame
with super-resolution from the weights converted at build time (nothing may be converted or cached at first use),
`--ray` saying it is not included, the demo finding its shipped frames, and the window drawn off-screen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import av
import pytest
from filelock import FileLock

from restoration import __version__
from media import make_sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(os.environ.get("FILMRESTORE_TEST_BUNDLE") != "1",
                                reason="bundle smoke test: build with packaging/build.sh, set FILMRESTORE_TEST_BUNDLE=1")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    if os.environ.get("FILMRESTORE_BUNDLE_DIR"):  # an already unpacked bundle (quicker while working on the build)
        return Path(os.environ["FILMRESTORE_BUNDLE_DIR"])
    archive = Path(os.environ.get("FILMRESTORE_BUNDLE_ARCHIVE")
                   or REPO_ROOT / "dist" / f"FilmRestore-{__version__}-linux-x86_64.tar.gz")
    if not archive.is_file():
        pytest.fail(f"{archive} not found: run packaging/build.sh first")
    # Unpacked once per test run, also under pytest-xdist, whose workers share their base temp folder's parent.
    base = tmp_path_factory.getbasetemp()
    clean = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "bundle-unpacked"
    with FileLock(str(clean) + ".lock"):
        if not clean.is_dir():
            with tarfile.open(archive) as tar:
                tar.extractall(str(clean) + ".part", filter="tar")
            os.rename(str(clean) + ".part", clean)
    (folder,) = clean.iterdir()
    return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """No Python anywhere: PATH is an empty folder; nothing of this test run's environment is inherited."""
    base = tmp_path_factory.mktemp("user")
    for sub in ("bin", "home", "cache", "data", "config"):
        (base / sub).mkdir()
    env = {"PATH": str(base / "bin"), "HOME": str(base / "home"), "XDG_CACHE_HOME": str(base / "cache"),
           "XDG_DATA_HOME": str(base / "data"), "XDG_CONFIG_HOME": str(base / "config"), "LANG": "C.UTF-8",
           "TMPDIR": str(base)}
    assert shutil.which("python3", path=env["PATH"]) is None and shutil.which("python", path=env["PATH"]) is None
    return env


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clip") / "scan"
    make_sequence(folder, 12, width=160, height=120, bits=16)
    return folder


def run(bundle: Path, env: dict[str, str], *args: str, exe: str = "filmrestore", timeout: float = 600,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(bundle / exe), *map(str, args)], env=env, cwd=cwd or Path(env["HOME"]),
                            capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_version_names_the_bundle_and_its_torch(bundle, env):
    result = run(bundle, env, "--version")
    assert result.returncode == 0, result.stderr
    assert f"filmrestore {__version__} (application bundle)" in result.stdout
    assert "torch 2.13.0" in result.stdout and "(CPU build), device cpu" in result.stdout


def test_probe(bundle, env, clip):
    result = run(bundle, env, "probe", clip, "--fps", "24", "--json")
    assert result.returncode == 0, result.stderr
    assert '"frame_count": 12' in result.stdout


def test_render_with_the_default_chain_on_two_workers(bundle, env, clip, tmp_path):
    output = tmp_path / "restored.mkv"
    result = run(bundle, env, "render", clip, "--fps", "24", "-o", output, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "stages: dust, stabilize, deflicker, denoise, color" in result.stderr
    assert "usage:" not in result.stderr  # a worker that started the command line instead of its task
    with av.open(str(output)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12
    assert not list(Path(env["XDG_CACHE_HOME"]).glob("**/models"))


def test_super_resolution_uses_the_weights_converted_at_build_time(bundle, env, clip, tmp_path):
    output = tmp_path / "sr.mkv"
    result = run(bundle, env, "render", clip, "--fps", "24", "-o", output, "--stages", "sr", "--range", "0:2",
                 "--workers", "1")
    assert result.returncode == 0, result.stderr
    with av.open(str(output)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (320, 240)
    assert not list(Path(env["XDG_CACHE_HOME"]).glob("**/*.safetensors"))  # no conversion at first use
    assert sorted(p.name for p in (bundle / "_internal" / "models").iterdir()) == sorted(
        f"{name}.safetensors" for name in ("realesrgan-x4plus", "realesrgan-x4plus-anime", "realesr-animevideov3-x4",
                                           "realesr-animevideov3-x3", "realesr-animevideov3-x2", "srmdnf-x4",
                                           "srmdnf-x3", "srmdnf-x2", "waifu2x-photo-x2"))


def test_ray_says_it_is_not_included(bundle, env, clip, tmp_path):
    result = run(bundle, env, "render", clip, "--fps", "24", "-o", tmp_path / "x.mkv", "--ray", "local")
    assert result.returncode == 2
    assert "Ray is not included in the FilmRestore application bundle" in result.stderr
    assert not (tmp_path / "x.mkv").exists()


def test_demo_finds_its_shipped_frames(bundle, env, tmp_path):
    result = run(bundle, env, "demo", "--frames", "2", "--width", "96", "-o", tmp_path / "demo")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "demo" / "market_street_restored.mkv").is_file()


def test_window_screenshot_offscreen(bundle, env, clip, tmp_path):
    shot = tmp_path / "window.png"
    result = run(bundle, env, "--screenshot", shot, "--open", clip, "--size", "900x600", "--stages", "dust",
                 exe="FilmRestore")
    assert result.returncode == 0, result.stderr
    assert "Could not find the Qt platform plugin" not in result.stderr
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed (apt-get install xvfb)")
def test_window_on_x11(bundle, env, clip, tmp_path):
    """The xcb platform plugin loads from the bundle (on a virtual X server): what a desktop user gets."""
    display = 50 + os.getpid() % 400
    server = subprocess.Popen([shutil.which("Xvfb"), f":{display}", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not Path(f"/tmp/.X11-unix/X{display}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        shot = tmp_path / "x11.png"
        result = run(bundle, dict(env, QT_QPA_PLATFORM="xcb", DISPLAY=f":{display}"), "--screenshot", shot,
                     "--open", clip, "--size", "900x600", "--stages", "none", exe="FilmRestore")
    finally:
        server.terminate()
        server.wait(10)
    assert result.returncode == 0, result.stderr
    assert "Could not find the Qt platform plugin" not in result.stderr
    assert shot.is_file()


def test_only_the_qt_parts_it_needs(bundle):
    qt = bundle / "_internal" / "PySide6" / "Qt"
    platforms = sorted(p.name for p in (qt / "plugins" / "platforms").iterdir())
    assert {"libqxcb.so", "libqoffscreen.so"} <= set(platforms) and all(
        name.startswith(("libqxcb", "libqoffscreen", "libqwayland")) for name in platforms)
    assert not (qt / "translations").exists() and not (qt / "qml").exists()
    assert not list((bundle / "_internal").glob("**/libQt6WebEngine*")) and not (bundle / "_internal" / "ray").exists()

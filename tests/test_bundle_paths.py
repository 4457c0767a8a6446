"""What changes when FilmRestore runs frozen (the application bundle), checked from the source tree: the SR
weights converted at build time are found without the ncnn packages, `--ray` says Ray is not included, the
render queue starts the bundle's own executable, and the shipped data is found through one helper."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from restoration import bundle
from restoration.errors import ParamError
from restoration.render import executors
from restoration.stages.sr import models


def test_converted_weights_are_used_without_the_ncnn_package(tmp_path, monkeypatch):
    model = models.shipped_model("realesr-animevideov3-x2")
    if importlib.util.find_spec(model.module) is None:
        pytest.skip(f"{model.distribution} not installed (needed to convert)")
    written = models.export_converted(tmp_path / "models")
    assert {p.name for p in written} >= {f"{m.name}.safetensors" for m in models.SHIPPED
                                           if importlib.util.find_spec(m.module) is not None}
    reference = models.load_shipped(model, tmp_path / "cache")
    # as in the bundle: the weights folder exists and the registry packages do not
    monkeypatch.setattr(models, "converted_models_dir", lambda: tmp_path / "models")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.endswith("_ncnn_py") else real_find_spec(name, *a))
    assert models.is_installed(model)
    net = models.load_shipped(model, tmp_path / "no-cache")
    assert not (tmp_path / "no-cache").exists()  # nothing converted, nothing cached at first use
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(net(x), reference(x))
    (tmp_path / "models" / f"{model.name}.safetensors").write_bytes(b"damaged")
    with pytest.raises(ParamError, match="cannot be read; reinstall the application"):
        models.load_shipped(model, tmp_path / "no-cache")


def test_outside_a_bundle_nothing_is_looked_up_in_a_bundle():
    assert not bundle.FROZEN
    assert bundle.converted_models_dir() is None and bundle.torch_addon_dir() is None
    assert (bundle.resource_dir() / "presets" / "archival-master.json").is_file()
    assert (bundle.resource_dir() / "demo" / "market_street").is_dir()
    assert bundle.cli_command() == [sys.executable, "-m", "restoration.cli"]


def test_frozen_paths_point_into_the_bundle(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "FROZEN", True)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "_internal"), raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "filmrestore"))
    assert bundle.resource_dir() == tmp_path / "_internal" / "resources"
    assert bundle.converted_models_dir() == tmp_path / "_internal" / "models"
    assert bundle.cli_command() == [str(tmp_path / "filmrestore")]
    assert bundle.torch_addon_dir() is None
    (tmp_path / bundle.TORCH_ADDON_FOLDER).mkdir()
    assert bundle.torch_addon_dir() == tmp_path / bundle.TORCH_ADDON_FOLDER


def test_ray_in_the_bundle_says_it_is_not_included(monkeypatch):
    monkeypatch.setattr(executors, "FROZEN", True)
    with pytest.raises(ParamError, match="Ray is not included in the FilmRestore application bundle"):
        executors.check_ray("local")


def test_version_names_the_torch_build_and_device():
    text = bundle.version_text()
    assert text.startswith("filmrestore ") and f"torch {torch.__version__}" in text
    assert ("CUDA" in text) == bool(torch.version.cuda) and "device " in text


def test_version_in_the_bundle_says_whose_torch_runs(monkeypatch, tmp_path):
    monkeypatch.setattr(bundle, "FROZEN", True)
    monkeypatch.setattr(bundle, "torch_addon_dir", lambda: tmp_path)  # an add-on folder torch was not loaded from
    assert bundle.version_text().splitlines()[0].endswith("(application bundle)")
    site = Path(torch.__file__).resolve().parent.parent  # as if torch came from the add-on
    monkeypatch.setattr(bundle, "torch_addon_dir", lambda: site)
    assert bundle.version_text().splitlines()[0].endswith(f"(application bundle; torch from {site})")

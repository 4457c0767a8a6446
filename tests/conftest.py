"""Shared test set-up: offscreen Qt, and the shared test media beside the checkout (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def analysis_cache_folder(tmp_path_factory, monkeypatch):
    """Shot analyses kept between renders go to a folder of this test run, never the user's cache."""
    monkeypatch.setenv("FILMRESTORE_CACHE", str(tmp_path_factory.getbasetemp() / "analysis-cache"))

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("FILMRESTORE_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (or $FILMRESTORE_DATA); tests that need it are skipped where it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test media not found at {SHARED_DATA}")
    return SHARED_DATA

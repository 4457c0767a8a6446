"""Where things are when FilmRestore runs from a source tree and when it runs frozen (the PyInstaller bundle).

The one place that knows the difference: shipped data (`resources/`), the SR weights converted at build time,
how to start another `filmrestore` process, and the optional torch add-on folder of a bundle.
"""

from __future__ import annotations

import sys
from pathlib import Path

FROZEN = bool(getattr(sys, "frozen", False))
# A bundle looks for a replacement torch (e.g. a CUDA build) here, beside its executables; see packaging/README.md.
TORCH_ADDON_FOLDER = "torch-addon"


def _bundle_root() -> Path:
    return Path(getattr(sys, "_MEIPASS", Path(sys.executable).resolve().parent))


def resource_dir() -> Path:
    """The shipped data folder: the bundle's copy when frozen, else the repository's `resources/`."""
    if FROZEN:
        return _bundle_root() / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def converted_models_dir() -> Path | None:
    """The bundle's folder of SR weights converted at build time (`<name>.safetensors`); None outside a bundle."""
    return _bundle_root() / "models" if FROZEN else None


def cli_command() -> list[str]:
    """The argv prefix that runs `filmrestore` in a new process from this installation."""
    if FROZEN:
        return [sys.executable]  # the bundle's `filmrestore` executable (FilmRestore is a link to it)
    return [sys.executable, "-m", "restoration.cli"]


def torch_addon_dir() -> Path | None:
    """A bundle's torch add-on folder when it exists (its torch replaces the bundled CPU build); else None."""
    if not FROZEN:
        return None
    folder = Path(sys.executable).resolve().parent / TORCH_ADDON_FOLDER
    return folder if folder.is_dir() else None


def version_text() -> str:
    """What `filmrestore --version` and Help ▸ About say: the version, how it is installed (source or bundle, and
    whose torch), and the torch build and device in use, so a CUDA set-up can be told from the CPU one."""
    import torch

    from . import __version__
    from .device import describe_torch

    if FROZEN:
        addon = torch_addon_dir()
        origin = "application bundle"
        if addon is not None and Path(torch.__file__).resolve().is_relative_to(addon.resolve()):
            origin += f"; torch from {addon}"
    else:
        origin = "Python " + ".".join(map(str, sys.version_info[:3]))
    return f"filmrestore {__version__} ({origin})\n{describe_torch()}"

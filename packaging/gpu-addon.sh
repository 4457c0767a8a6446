#!/usr/bin/env bash
# The GPU add-on of the FilmRestore application bundle: puts a CUDA build of torch into the bundle's
# `torch-addon/` folder, which the bundle puts ahead of its own CPU torch at every start (packaging/entry.py).
# Run it from the unpacked bundle (it lies there beside `filmrestore`), or name the bundle:
#   ./gpu-addon.sh [cu128|cu126|cpu]        install (default cu128: CUDA 12.8, NVIDIA driver 570 or newer)
#   ./gpu-addon.sh remove                   back to the bundled CPU torch
#   FILMRESTORE_BUNDLE=/opt/FilmRestore-0.1.0 ./gpu-addon.sh
# Needs a network connection and any Python 3 with pip, only to download (the wheels are for the bundle's
# Python 3.11, whatever Python runs pip); several GB with the CUDA libraries. Then
#   ./filmrestore --version     names the torch build and the device: "torch 2.13.0+cu128 (CUDA 12.8 build),
#                               device cuda (NVIDIA ...)" and "torch from .../torch-addon".
# FILMRESTORE_ADDON_INDEX overrides the wheel index (empty: pip's own configuration); FILMRESTORE_ADDON_PIP_ARGS adds
# pip options, e.g. offline from wheels fetched elsewhere: "--no-index --find-links DIR"; PYTHON picks the Python.
set -euo pipefail
bundle=${FILMRESTORE_BUNDLE:-$(cd "$(dirname "$0")" && pwd)}
[ -x "$bundle/filmrestore" ] || { echo "gpu-addon: $bundle has no filmrestore executable; set FILMRESTORE_BUNDLE" >&2; exit 2; }
addon="$bundle/torch-addon"
variant=${1:-cu128}
if [ "$variant" = "remove" ]; then
    rm -rf "$addon"
    echo "gpu-addon: removed; the bundle runs its own CPU torch again"
    exec "$bundle/filmrestore" --version
fi
case "$variant" in
    cu128|cu126|cpu) ;;
    *) echo "usage: gpu-addon.sh [cu128|cu126|cpu|remove]" >&2; exit 2 ;;
esac
torch_version=$(sed -n 's/^torch_version = //p' "$bundle/torch-version.txt" 2>/dev/null || true)
torch_version=${torch_version:-2.13.0}
index=${FILMRESTORE_ADDON_INDEX-https://download.pytorch.org/whl/$variant}
python=${PYTHON:-$(command -v python3 || true)}
[ -n "$python" ] || { echo "gpu-addon: needs a python3 with pip to download torch" >&2; exit 2; }
index_args=()
[ -n "$index" ] && index_args=(--index-url "$index")
rm -rf "$addon.part"
# shellcheck disable=SC2086
# Wheels for CPython 3.11 on manylinux x86_64, whatever this Python is; into a folder aside, moved in when complete.
"$python" -m pip install --disable-pip-version-check --target "$addon.part" --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    "${index_args[@]}" ${FILMRESTORE_ADDON_PIP_ARGS:-} "torch==$torch_version"
rm -rf "$addon" && mv "$addon.part" "$addon"
echo "gpu-addon: installed torch $torch_version ($variant) into $addon"
exec "$bundle/filmrestore" --version

#!/usr/bin/env bash
# One-step set-up and run for a fresh machine:
#   packaging/setup.sh demo [ARGS...]   set up if needed, then `filmrestore demo ARGS`
#   packaging/setup.sh test [ARGS...]   set up if needed, then run the whole test suite
#   packaging/setup.sh run ARGS...      set up if needed, then `filmrestore ARGS`
# Environment: PYTHON (default python3.11, else python3), FILMRESTORE_VENV (default .venv),
# FILMRESTORE_TORCH (default torch==2.13.0; e.g. "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=${FILMRESTORE_VENV:-$root/.venv}
torch_spec=${FILMRESTORE_TORCH:-torch==2.13.0}
python=${PYTHON:-$(command -v python3.11 || command -v python3)}

# System libraries Qt (PySide6) needs for offscreen and X11 windows, tcmalloc for torch on large frames,
# and FFmpeg's command-line tool for the benchmark's peers that PyAV's build lacks (hqdn3d, vidstab).
system_packages=(libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0
                 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libtcmalloc-minimal4 ffmpeg)
install_system_packages() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    local missing=()
    for package in "${system_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
            echo "setup: please install these system packages: ${missing[*]}" >&2; return 0; fi
    fi
    echo "setup: installing system packages: ${missing[*]}" >&2
    # Wait (up to 5 minutes) for another apt or unattended-upgrades run to release its lock instead of failing.
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" >/dev/null
}

install_python_packages() {
    local stamp="$venv/.filmrestore-installed"
    local wanted
    wanted="$(cat pyproject.toml packaging/constraints.txt)$torch_spec"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then return 0; fi
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    # torch first and pinned, so nothing below can make pip resolve a bare (CUDA) torch.
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install -q $torch_spec
    # Exactly the versions CI tested (packaging/constraints.txt), not the newest that pyproject.toml's ranges admit.
    "$venv/bin/python" -m pip install -q -c packaging/constraints.txt -e ".[test,cluster]"
    printf '%s' "$wanted" > "$stamp"
}

install_system_packages
install_python_packages

command=${1:-test}
shift || true
case "$command" in
    demo) exec "$venv/bin/filmrestore" demo "$@" ;;
    test) export QT_QPA_PLATFORM=offscreen
          # one test process per core (pytest-xdist, in the test extra): the suite takes about half as long
          exec "$venv/bin/python" -m pytest -q -n auto "$@" ;;
    run)  exec "$venv/bin/filmrestore" "$@" ;;
    *) echo "usage: packaging/setup.sh demo|test|run [ARGS...]" >&2; exit 2 ;;
esac

"""Optional tcmalloc for the torch parts: glibc malloc returns large buffers to the OS after every frame, so each
new activation is page-faulted in again; tcmalloc keeps them. Proposed for the CLI's start-up (see report)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

TCMALLOC_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",  # Debian/Ubuntu libtcmalloc-minimal4
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",  # Fedora gperftools-libs
    "/usr/lib/libtcmalloc_minimal.so.4",
)
OPT_OUT = "FILMRESTORE_ALLOCATOR"  # set to "system" to keep glibc malloc


def tcmalloc_library() -> Path | None:
    """The installed tcmalloc-minimal shared library, if any (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    for candidate in TCMALLOC_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def preload_environment(environ: dict[str, str]) -> dict[str, str] | None:
    """The environment to re-execute with tcmalloc preloaded, or None when it is absent, loaded or declined."""
    library = tcmalloc_library()
    if library is None or environ.get(OPT_OUT) == "system" or "tcmalloc" in environ.get("LD_PRELOAD", ""):
        return None
    env = dict(environ)
    env["LD_PRELOAD"] = f"{library}:{env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else str(library)
    env[OPT_OUT] = "tcmalloc"  # a second start never re-executes again
    return env


def reexec_with_tcmalloc(argv: list[str]) -> None:
    """Replace this process by itself with tcmalloc preloaded (call first thing in the CLI's main)."""
    env = preload_environment(dict(os.environ))
    if env is not None:
        os.execve(sys.executable, [sys.executable, *argv], env)

"""Output safety: never the source, never an existing output unasked, never a partial file at the final name."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av

from restoration.errors import ExportError
from restoration.io.info import MediaInfo

_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def source_paths(info: MediaInfo | None) -> set[str]:
    """Real paths of everything the source consists of (its path and, for sequences, every file)."""
    if info is None:
        return set()
    paths = {os.path.realpath(info.path)} if info.path else set()
    paths.update(os.path.realpath(f) for f in info.files)
    return paths


def _is_within(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives
        return False


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def check_output(output: str | os.PathLike, sequence: bool, source: MediaInfo | None, overwrite: bool) -> Path:
    """The absolute final path, after refusing the source, an existing output and a missing or read-only folder."""
    final = Path(os.path.abspath(output))
    real = os.path.realpath(final)
    sources = sorted(source_paths(source))
    if real in sources:
        raise ExportError(output, "is the source itself: FilmRestore never writes over its source")
    for src in sources:
        if sequence and _is_within(src, real):
            raise ExportError(output, f"this folder holds the source ({src}): choose another output folder")
    parent = final.parent
    if not parent.is_dir():
        raise ExportError(output, f"the folder {parent} does not exist")
    if os.path.lexists(final):
        if sequence and not final.is_dir():
            raise ExportError(output, "exists and is a file; image sequences are written to a folder")
        if not sequence and final.is_dir():
            raise ExportError(output, "is a folder; give a file name ending in the format's extension")
        if not overwrite and not (sequence and _is_empty_dir(final)):
            raise ExportError(output, "already exists (use --overwrite to replace it)")
    if not os.access(parent, os.W_OK):
        raise ExportError(output, f"the folder {parent} is read-only")
    return final


def reserve_temp(final: Path, sequence: bool) -> Path:
    """Create the hidden temporary file (or folder) beside `final` that the render writes into."""
    token = secrets.token_hex(4)
    try:
        if sequence:
            temp = final.parent / f".{final.name}.partial-{token}"
            os.mkdir(temp)
        else:
            temp = final.parent / f".{final.stem}.partial-{token}{final.suffix}"
            os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except OSError as exc:
        raise export_error(final, exc) from None
    return temp


def discard(temp: Path | None) -> None:
    """Remove a temporary output, whatever state it is in; never raises."""
    if temp is None:
        return
    try:
        if temp.is_dir() and not temp.is_symlink():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)
    except OSError:
        pass


def commit(temp: Path, final: Path, overwrite: bool) -> None:
    """Move the finished temporary output to its final name (replacing an old output only with `overwrite`)."""
    if os.path.lexists(final) and not overwrite and not _is_empty_dir(final):
        raise ExportError(final, "appeared while rendering; not replaced (use --overwrite to replace it)")
    if final.is_dir() and not final.is_symlink():
        old = final.parent / f".{final.name}.replaced-{secrets.token_hex(4)}"
        os.rename(final, old)
        try:
            os.rename(temp, final)
        except OSError:
            os.rename(old, final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(temp, final)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a small text file under a temporary name beside it, then rename it into place."""
    temp = path.parent / f".{path.name}.partial-{secrets.token_hex(4)}"
    try:
        with open(temp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def export_error(output: str | os.PathLike, exc: BaseException) -> ExportError:
    """A one-line ExportError for an OS-level write failure (disk full, read-only, ...)."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        return ExportError(output, "disk full (no space left on device); the partial output was removed")
    if code == errno.EDQUOT:
        return ExportError(output, "disk quota exceeded; the partial output was removed")
    if code in _READ_ONLY:
        return ExportError(output, f"cannot write in {Path(output).parent}: read-only or permission denied")
    text = str(exc).strip()
    reason = getattr(exc, "strerror", None) or (text.splitlines()[0] if text else type(exc).__name__)
    return ExportError(output, f"cannot write ({reason})")


@contextmanager
def os_errors_as_export_errors(output: str | os.PathLike) -> Iterator[None]:
    """Turn OS and FFmpeg write errors inside the block into one-line ExportErrors."""
    try:
        yield
    except ExportError:
        raise
    except (OSError, av.FFmpegError) as exc:
        raise export_error(output, exc) from exc

"""Output safety: never the source, never an existing output unasked, never a partial file at the final name."""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import socket
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the pid alone says whether the owner lives
    fcntl = None

import av

from restoration.errors import ExportError
from restoration.io.info import MediaInfo

_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)
MANIFEST = ".filmrestore-sequence.json"
PARTIAL_MARK = ".owner"

Source = MediaInfo | str | os.PathLike | None


def source_paths(info: MediaInfo | None) -> set[str]:
    """Real paths of everything the source consists of (its path and, for sequences, every file)."""
    if info is None:
        return set()
    paths = {os.path.realpath(info.path)} if info.path else set()
    paths.update(os.path.realpath(f) for f in info.files)
    return paths


def _identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(st_dev, st_ino) of what `path` resolves to: the same file under any name, link or letter case."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


@dataclass(frozen=True)
class Sources:
    """What no output may be, resolve to, or lie inside: the source files and every sequence's folder."""

    files: dict[tuple[int, int] | str, str]    # identity (or normcased real path when missing) -> shown path
    folders: dict[tuple[int, int] | str, str]  # folders of image sequences (and source folders given as such)

    @classmethod
    def of(cls, *sources: Source) -> "Sources":
        files: dict[tuple[int, int] | str, str] = {}
        folders: dict[tuple[int, int] | str, str] = {}

        def key(path: str) -> tuple[int, int] | str:
            return _identity(path) or os.path.normcase(os.path.realpath(path))

        for source in sources:
            if source is None:
                continue
            if isinstance(source, MediaInfo):
                names = [str(source.path)] if source.path else []
                names += [str(f) for f in source.files]
                for name in names:
                    (folders if os.path.isdir(name) else files)[key(name)] = name
                    if source.kind == "sequence" and not os.path.isdir(name):
                        parent = os.path.dirname(os.path.abspath(name))
                        folders[key(parent)] = parent
            else:
                name = os.fspath(source)
                (folders if os.path.isdir(name) else files)[key(name)] = name
                if "%" in os.path.basename(name) and not os.path.exists(name):  # a printf sequence pattern
                    parent = os.path.dirname(os.path.abspath(name))
                    folders[key(parent)] = parent
        return cls(files, folders)


def _ancestors(path: Path) -> Iterator[Path]:
    """`path` and every folder above it, as written (links and `..` are resolved by identity, not by text)."""
    yield path
    yield from path.parents


def _lies_within(path: Path, folders: dict[tuple[int, int] | str, str]) -> str | None:
    """The source folder that `path` (or any folder above it) is, by identity or by normcased real path."""
    for above in _ancestors(path):
        for key in (_identity(above), os.path.normcase(os.path.realpath(above))):
            if key is not None and key in folders:
                return folders[key]
    return None


def _holds(folder: Path, sources: Sources) -> str | None:
    """A source file or folder that lies inside `folder` (replacing the folder would take it along)."""
    target = _identity(folder)
    real = os.path.normcase(os.path.realpath(folder))
    for name in [*sources.files.values(), *sources.folders.values()]:
        for above in _ancestors(Path(os.path.abspath(name))):
            if (target is not None and _identity(above) == target) or \
                    os.path.normcase(os.path.realpath(above)) == real:
                return name
    return None


def guard_source(output: str | os.PathLike, sources: Sources, folder: bool) -> None:
    """Refuse an output that is, resolves to, or lies inside a source, or (a folder) holds one."""
    final = Path(os.path.abspath(output))
    key = _identity(final) or os.path.normcase(os.path.realpath(final))
    if key in sources.files or key in sources.folders:
        shown = sources.files.get(key) or sources.folders.get(key)
        same = "" if os.path.abspath(shown) == str(final) else f" (the same file as {shown})"
        raise ExportError(output, f"is the source itself{same}: FilmRestore never writes over its source")
    inside = _lies_within(final.parent, sources.folders) or \
        _lies_within(Path(os.path.realpath(final)).parent, sources.folders)  # a link that points in there
    if inside is not None:
        raise ExportError(output, f"lies inside the source sequence's folder {inside}: choose another place")
    if folder:
        held = _holds(final, sources)
        if held is not None:
            raise ExportError(output, f"this folder holds the source ({held}): choose another output folder")


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def check_output(output: str | os.PathLike, sequence: bool, source: Source | Sources, overwrite: bool) -> Path:
    """The absolute final path, after refusing the source, an existing output and a missing or read-only folder.

    The one guard every command that writes goes through; `sequence` means the output is a folder.
    """
    final = Path(os.path.abspath(output))
    guard_source(output, source if isinstance(source, Sources) else Sources.of(source), sequence)
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
        if sequence:
            check_replaceable(final)
    if not os.access(parent, os.W_OK):
        raise ExportError(output, f"the folder {parent} is read-only")
    return final


# --- folders we wrote --------------------------------------------------------------------------------------------

def _folder_contents(folder: Path) -> tuple[set[str], set[str]]:
    """(files, folders) under `folder` as relative POSIX paths; links count as files (never followed)."""
    files: set[str] = set()
    folders: set[str] = set()
    for root, dirs, names in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for name in dirs:
            path = Path(root) / name
            (files if path.is_symlink() else folders).add((rel / name).as_posix())
        files.update((rel / name).as_posix() for name in names)
    return files, folders


def write_manifest(folder: Path, kind: str) -> None:
    """Record every file now in `folder` as ours, so a later --overwrite may replace exactly these."""
    files, _ = _folder_contents(folder)
    files.discard(MANIFEST)
    record = {"filmrestore_manifest": 1, "kind": kind, "files": sorted(files)}
    (folder / MANIFEST).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def check_replaceable(folder: Path) -> None:
    """Refuse to replace a non-empty folder unless our manifest lists everything in it."""
    files, folders = _folder_contents(folder)
    if not files and not folders:
        return
    try:
        listed = set(json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ExportError(folder, "is a folder FilmRestore did not write (it has no "
                          f"{MANIFEST}); not replaced: choose a new or empty folder") from None
    ours = listed | {MANIFEST}
    parents = {p.as_posix() for name in listed for p in Path(name).parents if p != Path(".")}
    foreign = sorted((files - ours) | (folders - parents))
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise ExportError(folder, f"holds files FilmRestore did not write ({foreign[0]}{more}); not replaced: "
                          "move them or choose another folder")


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


# --- partial outputs and their owners ----------------------------------------------------------------------------

def _partial_pattern(final: Path) -> re.Pattern[str]:
    """Names reserve_temp gives `final`'s partials: `.NAME.partial-XXXXXXXX` (folders) or `.STEM.partial-XXXXXXXX.EXT`."""
    if final.suffix:
        return re.compile(rf"\.{re.escape(final.stem)}\.partial-[0-9a-f]{{8}}{re.escape(final.suffix)}")
    return re.compile(rf"\.{re.escape(final.name)}\.partial-[0-9a-f]{{8}}")


def owner_marker(partial: Path) -> Path:
    """Where the marker naming the render that writes `partial` lies."""
    return partial.with_name(partial.name + PARTIAL_MARK)


class PartialOwner:
    """A marker beside a partial output naming the render writing it, locked for as long as that render lives."""

    def __init__(self, partial: Path, final: Path) -> None:
        self.path = owner_marker(partial)
        self._fd: int | None = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            record = {"filmrestore_partial": 1, "output": final.name, "pid": os.getpid(),
                      "host": socket.gethostname()}
            os.write(self._fd, json.dumps(record).encode())
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Remove the marker (before unlocking, so no scan ever sees it unlocked while we live)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None


def _owner_is_gone(marker: Path, final: Path) -> bool:
    """True only when the marker is ours for `final` and its render has provably ended (lock free, pid dead)."""
    try:
        fd = os.open(marker, os.O_RDONLY)
    except OSError:
        return False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # still held: that render is running
        try:
            record = json.loads(os.read(fd, 4096).decode())
            pid, host, output = int(record["pid"]), record["host"], record["output"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if output != final.name or host != socket.gethostname():
            return False
        return fcntl is not None or not _pid_alive(pid)  # a free lock alone proves it: the owner held it till death
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return path.lstat().st_size


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def clear_stale_partials(final: Path) -> list[str]:
    """Find partial outputs of `final` left by a killed run: remove those provably ours and orphaned, name the rest.

    Returns one note per partial found. A later resume may reuse them instead; the finding stays here.
    """
    notes: list[str] = []
    pattern = _partial_pattern(final)
    try:
        names = sorted(os.listdir(final.parent))
    except OSError:
        return notes
    for name in names:
        if name.endswith(PARTIAL_MARK) and pattern.fullmatch(name[:-len(PARTIAL_MARK)]) \
                and name[:-len(PARTIAL_MARK)] not in names and _owner_is_gone(final.parent / name, final):
            discard(final.parent / name)  # killed after its partial was removed: nothing to report
        if not pattern.fullmatch(name):
            continue
        partial = final.parent / name
        marker = partial.with_name(name + PARTIAL_MARK)
        try:
            size = _megabytes(_size(partial))
        except OSError:
            size = "unknown size"
        if _owner_is_gone(marker, final):
            discard(partial)
            discard(marker)
            notes.append(f"removed stale partial output {partial} ({size}) from an earlier interrupted run")
        else:
            notes.append(f"partial output {partial} ({size}) left alone: another render may be writing it, "
                         "or it is not provably FilmRestore's; remove it yourself if no render is running")
    return notes


def print_notes(notes: Iterable[str]) -> None:
    for note in notes:
        print(f"filmrestore: note: {note}", file=sys.stderr)


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
        check_replaceable(final)  # again: files may have been put there while we rendered
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

"""Image sequences (a folder, or a pattern such as scan_%06d.dpx / scan_######.dpx) and single stills.

Frame index i is the i-th existing file in frame-number order. Gaps in the numbering are reported
in MediaInfo.missing_frames (they do not count as frames and raise nothing).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from restoration.errors import MediaError
from restoration.io.image import IMAGE_CODECS, decode_image_file
from restoration.io.info import MediaInfo
from restoration.io.pixels import format_bit_depth, format_has_alpha, format_is_grayscale, frame_to_rgb
from restoration.io.source import DEFAULT_CACHE_BYTES, FrameSource
from restoration.io.tags import colour_tags

DEFAULT_SEQUENCE_RATE = Fraction(24, 1)
_PLACEHOLDER = re.compile(r"%0?(\d*)d|#+")
_NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")
_PREFETCH = 3  # files decoded ahead while streaming


@dataclass
class SequenceFiles:
    """The files of a sequence in frame order, their frame numbers and the numbers that are missing."""

    files: list[Path]
    numbers: list[int]
    missing: list[int]


def is_sequence_pattern(text: str) -> bool:
    """True for printf-style (%06d, %d) or hash (######) frame-number patterns."""
    return bool(_PLACEHOLDER.search(Path(text).name))


def _pattern_regex(name: str, source: Path) -> re.Pattern[str]:
    matches = list(_PLACEHOLDER.finditer(name))
    if len(matches) != 1:
        raise MediaError(source, "a sequence pattern needs exactly one frame-number placeholder (%06d or ######)")
    match = matches[0]
    token = match.group(0)
    if token.startswith("#"):
        digits = f"{{{len(token)},}}" if len(token) > 1 else "+"
    else:
        width = match.group(1)
        digits = f"{{{int(width)},}}" if width else "+"
    return re.compile(re.escape(name[: match.start()]) + rf"(\d{digits})" + re.escape(name[match.end():]) + r"\Z")


def _order(source: Path, numbered: list[tuple[int, Path]]) -> SequenceFiles:
    numbered.sort()
    for (a, path_a), (b, path_b) in zip(numbered, numbered[1:]):
        if a == b:
            raise MediaError(path_b, f"frame number {b} appears twice (also {path_a.name})")
    numbers = [n for n, _ in numbered]
    present = set(numbers)
    missing = [n for n in range(numbers[0], numbers[-1] + 1) if n not in present]
    return SequenceFiles([p for _, p in numbered], numbers, missing)


def _visible_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]


def find_pattern_files(pattern: str | Path) -> SequenceFiles:
    """Files matching a printf/hash pattern, in frame order."""
    pattern = Path(pattern)
    folder = pattern.parent
    if not folder.is_dir():
        raise MediaError(pattern, f"folder {folder} not found")
    regex = _pattern_regex(pattern.name, pattern)
    numbered = []
    for path in _visible_files(folder):
        match = regex.match(path.name)
        if match:
            numbered.append((int(match.group(1)), path))
    if not numbered:
        raise MediaError(pattern, "no files match this pattern")
    if pattern.suffix.lower() not in IMAGE_CODECS:
        raise MediaError(pattern, f"unknown image type '{pattern.suffix}' (readable: {', '.join(IMAGE_CODECS)})")
    return _order(pattern, numbered)


def find_folder_files(folder: str | Path) -> SequenceFiles:
    """All image files of one type and one naming pattern in a folder, in frame order."""
    folder = Path(folder)
    images = [p for p in _visible_files(folder) if p.suffix.lower() in IMAGE_CODECS]
    if not images:
        raise MediaError(folder, f"no image files ({', '.join(sorted(set(IMAGE_CODECS.values())))}) in this folder")
    types = sorted({p.suffix.lower() for p in images})
    if len(types) > 1:
        raise MediaError(folder, f"holds images of several types ({', '.join(types)}); give a pattern like scan_%06d.dpx")
    if len(images) == 1 and not _NUMBERED.match(images[0].stem):
        return SequenceFiles(images, [0], [])
    templates: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for path in images:
        match = _NUMBERED.match(path.stem)
        if not match:
            raise MediaError(path, "has no frame number in its name, unlike the other images in the folder")
        prefix, digits, suffix = match.groups()
        templates.setdefault((prefix, suffix), []).append((int(digits), path))
    if len(templates) > 1:
        names = ", ".join(f"{p}*{s}{types[0]}" for p, s in sorted(templates))
        raise MediaError(folder, f"holds several image sequences ({names}); give a pattern like scan_%06d.dpx")
    return _order(folder, next(iter(templates.values())))


# --- cheap size check from file headers (so probing 10 000 scans does not decode them all) ---------

def _read_at(handle, offset: int, size: int) -> bytes:
    handle.seek(offset)
    return handle.read(size)


def _tiff_size(handle, head: bytes) -> tuple[int, int, int] | None:
    order = "<" if head[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", head[4:8])
    count_bytes = _read_at(handle, ifd, 2)
    if len(count_bytes) < 2:
        return None
    (count,) = struct.unpack(order + "H", count_bytes)
    entries = _read_at(handle, ifd + 2, 12 * count)
    size: dict[int, int] = {}
    for i in range(min(count, len(entries) // 12)):
        tag, kind, n = struct.unpack(order + "HHI", entries[12 * i : 12 * i + 8])
        raw = entries[12 * i + 8 : 12 * i + 12]
        if tag in (256, 257):
            size[tag] = struct.unpack(order + "H", raw[:2])[0] if kind == 3 else struct.unpack(order + "I", raw)[0]
        elif tag == 258 and kind == 3:  # BitsPerSample: inline for one or two samples, else at an offset
            if n > 2:
                raw = _read_at(handle, struct.unpack(order + "I", raw)[0], 2)
            size[tag] = struct.unpack(order + "H", raw[:2])[0]
    if 256 not in size or 257 not in size:
        return None
    return size[256], size[257], size.get(258, 1)  # BitsPerSample defaults to 1 (bilevel)


def _jpeg_size(head: bytes) -> tuple[int, int, int] | None:
    pos = 2
    while pos + 9 < len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        (length,) = struct.unpack(">H", head[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return width, height, head[pos + 4]
        pos += 2 + length
    return None


def header_size(path: Path) -> tuple[int, int] | None:
    """Width and height read from a PNG/DPX/TIFF/JPEG header, or None when it cannot tell."""
    found = header_geometry(path)
    return found[:2] if found else None


def header_geometry(path: Path) -> tuple[int, int, int] | None:
    """Width, height and bits per component from a PNG/DPX/TIFF/JPEG header, or None when it cannot tell."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
            if head[:2] == b"\xff\xd8":
                head += handle.read(262144)  # EXIF/ICC segments can push the frame header far in
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 26:
                width, height = struct.unpack(">II", head[16:24])
                return width, height, 8 if head[25] == 3 else head[24]  # palette entries are 8-bit RGB
            if head[:4] in (b"SDPX", b"XPDS") and len(head) >= 804:
                order = ">" if head[:4] == b"SDPX" else "<"
                return (*struct.unpack(order + "II", head[772:780]), head[803])
            if head[:4] in (b"II*\x00", b"MM\x00*"):
                return _tiff_size(handle, head)
            if head[:2] == b"\xff\xd8":
                return _jpeg_size(head)
    except (OSError, struct.error):
        return None
    return None


def _check_sizes(files: list[Path], width: int, height: int, bits: int) -> int:
    """Refuse a frame of another size; return the deepest bits per component of all frames."""
    for path in files:
        found = header_geometry(path)
        if found is None or not 1 <= found[2] <= 32:
            frame = decode_image_file(path)
            found = (frame.width, frame.height, format_bit_depth(frame.format.name))
        if tuple(found[:2]) != (width, height):
            raise MediaError(
                path, f"is {found[0]}x{found[1]} but the sequence is {width}x{height} (mixed frame sizes)"
            )
        bits = max(bits, found[2])
    return bits


def _first_frame_number(numbers: list[int]) -> int:
    return numbers[0] if numbers else 0


def _timecode_of(frame: av.VideoFrame) -> str | None:
    """The image header's timecode; None when it has none or its header text is not readable (damaged)."""
    try:
        return frame.metadata.get("timecode") if frame.metadata else None
    except UnicodeDecodeError:
        return None


def probe_files(source: str | Path, found: SequenceFiles, kind: str, frame_rate: Fraction | None) -> MediaInfo:
    """MediaInfo for an image sequence or a single still (kind 'sequence' or 'image')."""
    rate = Fraction(frame_rate) if frame_rate else DEFAULT_SEQUENCE_RATE
    if rate <= 0:
        raise MediaError(source, f"frame rate must be positive, got {rate}")
    first_path = found.files[0]
    first = decode_image_file(first_path)
    pix_fmt = first.format.name
    bits = format_bit_depth(pix_fmt)
    if kind == "sequence":  # a master must be as deep as the deepest frame, not the first
        bits = _check_sizes(found.files[1:], first.width, first.height, bits)
    count = len(found.files)
    timecode = _timecode_of(first)
    return MediaInfo(
        path=str(source),
        kind=kind,
        container="image_sequence" if kind == "sequence" else "image",
        codec=IMAGE_CODECS[first_path.suffix.lower()],
        width=first.width,
        height=first.height,
        frame_count=count,
        frame_rate=rate,
        time_base=1 / rate,
        variable_frame_rate=False,
        bit_depth=bits,
        pixel_format=pix_fmt,
        sample_aspect_ratio=Fraction(first.sample_aspect_ratio) if getattr(first, "sample_aspect_ratio", None) else Fraction(1),
        rotation=0,
        timecode=timecode or None,
        has_alpha=format_has_alpha(pix_fmt),
        is_grayscale=format_is_grayscale(pix_fmt),
        audio=[],
        first_frame_number=_first_frame_number(found.numbers) if kind == "sequence" else 0,
        missing_frames=list(found.missing),
        duration=float(count / rate),
        files=[str(p) for p in found.files],
        **colour_tags(first),
    )


class ImageSequenceSource(FrameSource):
    """Frames of an image sequence or a single still; RGB/gray files convert exactly (v / (2**bits - 1))."""

    def __init__(
        self,
        info: MediaInfo,
        numbers: list[int],
        cache_frames: int = 32,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        super().__init__(info, cache_frames, cache_bytes)
        self.numbers = list(numbers)

    def frame_pts(self) -> list[int]:
        """Sequences are constant rate: frame i is at pts i in units of 1 / frame_rate."""
        return list(range(len(self.files)))

    def frame_number(self, index: int) -> int:
        return self.numbers[self._check_index(index)]

    def _read(self, index: int) -> np.ndarray:
        path = self.files[index]
        frame = decode_image_file(path)
        if frame.width != self.info.width or frame.height != self.info.height:
            raise MediaError(
                path,
                f"is {frame.width}x{frame.height} but the sequence is {self.info.width}x{self.info.height} "
                "(mixed frame sizes)",
            )
        return frame_to_rgb(frame)

    def _stream(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sequence-read") as pool:
            pending: list[tuple[int, Future[np.ndarray]]] = []
            next_index = start
            try:
                while next_index < stop or pending:
                    while next_index < stop and len(pending) < _PREFETCH:
                        pending.append((next_index, pool.submit(self._read, next_index)))
                        next_index += 1
                    index, future = pending.pop(0)
                    yield index, future.result()
            finally:
                for _, future in pending:
                    future.cancel()

"""The master formats FilmRestore writes, and how an output path chooses one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from restoration.errors import ExportError


@dataclass(frozen=True)
class OutputFormat:
    """One master format: what the GUI shows, where it goes, which codec and pixel format it uses."""

    name: str
    label: str
    codec: str
    extension: str  # container suffix (".mkv") or, for sequences, each image file's suffix (".tif")
    sequence: bool
    container: str | None  # FFmpeg muxer name; None for image sequences
    pix_fmt: str  # the encoder's pixel format for 8-bit sources
    deep_pix_fmt: str  # ... and for sources deeper than 8 bits
    lossless: bool
    depth: int  # the deepest source (bits per component) the format holds without losing precision
    chroma_subsampling: tuple[int, int] = (1, 1)  # (horizontal, vertical) factors that width/height must divide
    options: tuple[tuple[str, str], ...] = ()

    def pixel_format(self, source_bits: int) -> str:
        """Encoder pixel format for a source of `source_bits` per component."""
        return self.deep_pix_fmt if source_bits > 8 else self.pix_fmt

    @property
    def pix_fmt_rule(self) -> str:
        """The pixel-format choice in words, for docs and the GUI."""
        if self.pix_fmt == self.deep_pix_fmt:
            return self.pix_fmt
        return f"{self.pix_fmt} for 8-bit sources, {self.deep_pix_fmt} for deeper ones"


FORMATS: dict[str, OutputFormat] = {
    f.name: f
    for f in (
        OutputFormat("ffv1", "FFV1 / Matroska (lossless archival master)", "ffv1", ".mkv", False, "matroska",
                     "bgr0", "gbrp16le", True, 16,
                     options=(("level", "3"), ("slicecrc", "1"), ("g", "1"), ("slices", "16"))),
        OutputFormat("prores", "ProRes 422 HQ / MOV", "prores_ks", ".mov", False, "mov",
                     "yuv422p10le", "yuv422p10le", False, 10, (2, 1),
                     options=(("profile", "3"), ("vendor", "apl0"))),
        OutputFormat("prores4444", "ProRes 4444 / MOV", "prores_ks", ".mov", False, "mov",
                     "yuv444p10le", "yuv444p10le", False, 10,
                     options=(("profile", "4"), ("vendor", "apl0"))),
        OutputFormat("tiff", "TIFF 16-bit image sequence", "tiff", ".tif", True, None,
                     "rgb48le", "rgb48le", True, 16),
        OutputFormat("dpx", "DPX 10-bit image sequence", "dpx", ".dpx", True, None,
                     "gbrp10le", "gbrp10le", True, 10),
        OutputFormat("png", "PNG 16-bit image sequence", "png", ".png", True, None,
                     "rgb48be", "rgb48be", True, 16),
        OutputFormat("h264", "H.264 / MP4 access copy", "libx264", ".mp4", False, "mp4",
                     "yuv420p", "yuv420p", False, 8, (2, 2)),
    )
}

# Container suffix -> the format it means when none is named.
_FORMAT_BY_SUFFIX = {".mkv": "ffv1", ".mov": "prores", ".mp4": "h264"}
_IMAGE_SUFFIXES = {".tif", ".tiff", ".dpx", ".png", ".jpg", ".jpeg", ".exr"}


def format_for_output(path: str | os.PathLike, explicit_format: str | None = None) -> str:
    """The format name for writing to `path`: the explicit one checked against the suffix, else inferred.

    .mkv -> ffv1, .mov -> prores, .mp4 -> h264, a folder (no suffix) -> tiff sequence.
    """
    path = Path(path)
    suffix = "" if path.is_dir() else path.suffix.lower()
    if explicit_format is not None:
        fmt = FORMATS.get(str(explicit_format).lower())
        if fmt is None:
            raise ExportError(path, f"unknown export format '{explicit_format}' (choose {', '.join(FORMATS)})")
        if fmt.sequence:
            if suffix in _FORMAT_BY_SUFFIX or suffix in _IMAGE_SUFFIXES:
                raise ExportError(path, f"{fmt.name} is an image sequence: give a folder name without an extension")
        elif suffix != fmt.extension:
            raise ExportError(path, f"format {fmt.name} is written as {fmt.extension}, not '{suffix or 'a folder'}'")
        return fmt.name
    if suffix in _FORMAT_BY_SUFFIX:
        return _FORMAT_BY_SUFFIX[suffix]
    if suffix == "":
        return "tiff"
    if suffix in _IMAGE_SUFFIXES:
        raise ExportError(path, "image sequences are written to a folder: give a folder name without an extension")
    raise ExportError(path, f"unknown output extension '{suffix}' (use .mkv, .mov, .mp4 or a folder)")


def check_geometry(path: str | os.PathLike, fmt: OutputFormat, width: int, height: int) -> None:
    """Refuse frame sizes the format cannot hold (odd sizes for 4:2:0/4:2:2)."""
    if width < 1 or height < 1:
        raise ExportError(path, f"cannot write an empty {width}x{height} picture")
    sub_x, sub_y = fmt.chroma_subsampling
    if width % sub_x or height % sub_y:
        what = "width and height" if sub_y > 1 else "width"
        raise ExportError(path, f"{fmt.name} ({fmt.pix_fmt}) needs an even {what}, got {width}x{height}: "
                                "export to ffv1 or tiff instead")


def check_depth(path: str | os.PathLike, fmt: OutputFormat, source_bits: int, allow_loss: bool) -> None:
    """Refuse a format shallower than the source's deepest frame unless the user accepts the loss."""
    if source_bits > fmt.depth and not allow_loss:
        deep = ", ".join(f.name for f in FORMATS.values() if f.depth >= source_bits)
        raise ExportError(path, f"{fmt.name} holds {fmt.depth} bits per component but the source has "
                                f"{source_bits}-bit frames; export to {deep}, or pass --allow-depth-loss")

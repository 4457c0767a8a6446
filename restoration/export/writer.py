"""MasterWriter: frames in, a verified master with its provenance sidecar out, or nothing at all."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np

from restoration.errors import ExportError, MediaError
from restoration.export.audio import AudioCarrier
from restoration.export.fixity import DecodedMaster, hash_container, hash_sequence
from restoration.export.formats import FORMATS, check_depth, check_geometry, format_for_output
from restoration.export.paths import (
    PartialOwner,
    check_output,
    clear_stale_partials,
    commit,
    discard,
    os_errors_as_export_errors,
    owner_marker,
    print_notes,
    reserve_temp,
    write_manifest,
)
from restoration.export.pictures import check_frame, rgb_values, stored_bits, values_digest, values_to_frame
from restoration.export.provenance import software, source_checksum, to_json, utc_now
from restoration.export.settings import ExportSettings
from restoration.export.targets import ContainerTarget, SequenceTarget
from restoration.export.timing import plan_timing
from restoration.io.info import MediaInfo
from restoration.io.tags import offset_timecode
from restoration.io.video import probe_video


def sidecar_paths(final: Path) -> tuple[Path, Path]:
    """(`<output>.provenance.json`, `<output>.framemd5`) beside a master file or sequence folder."""
    return final.with_name(final.name + ".provenance.json"), final.with_name(final.name + ".framemd5")


class MasterWriter:
    """Writes one master from float32 RGB frames; use as a context manager.

    Everything is written under a hidden temporary name beside the output. On a clean exit the master is
    flushed, its audio completed, decoded back and hashed (framemd5), the provenance sidecar written and the
    temporary renamed to the final name. On any exception (cancel included) the temporary is removed and
    nothing appears at the final name.
    """

    def __init__(
        self,
        output: str | os.PathLike,
        settings: ExportSettings | None = None,
        *,
        source_info: MediaInfo,
        width: int,
        height: int,
        bit_depth: int | None = None,
        frame_pts: Sequence[int] | None = None,
        frame_numbers: Sequence[int] | None = None,
        start_time: Fraction | float | None = None,
        end_time: Fraction | float | None = None,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings or ExportSettings()
        self.format = FORMATS[format_for_output(output, self.settings.format)]
        self.width, self.height = int(width), int(height)
        check_geometry(output, self.format, self.width, self.height)
        self.final = check_output(output, self.format.sequence, source_info, self.settings.overwrite)
        self.source_info = source_info
        self.bit_depth = int(bit_depth if bit_depth is not None else source_info.bit_depth or 8)
        check_depth(output, self.format, self.bit_depth, self.settings.allow_depth_loss)
        self.pix_fmt = self.format.pixel_format(self.bit_depth)
        self.timing = plan_timing(source_info, frame_pts, start_time, end_time)
        self.frame_numbers = self._plan_numbers(source_info, frame_pts, frame_numbers)
        self.provenance = dict(provenance or {})
        self.sidecar_path, self.framemd5_path = sidecar_paths(self.final)
        self.frames_written = 0
        self.decoded: DecodedMaster | None = None
        self._temp: Path | None = None
        self._owner: PartialOwner | None = None
        self._target: ContainerTarget | SequenceTarget | None = None
        self._audio: AudioCarrier | None = None
        self._audio_streams: list[dict[str, object]] = []
        self._digests: list[str] = []
        self._staged: list[tuple[Path, Path]] = []
        self._done = False
        self._read_back: MediaInfo | None = None

    @property
    def stored_depth(self) -> int:
        """Bits per component the master keeps of each sample."""
        return min(stored_bits(self.pix_fmt), self.format.depth)

    def carried_tags(self) -> dict[str, Any]:
        """The source's geometry, colour and timing tags as the master should carry them."""
        info = self.source_info
        timecode = info.timecode
        if timecode and self.frame_numbers:  # the master starts at its first frame's timecode, not the source's
            timecode = offset_timecode(timecode, self.frame_numbers[0] - info.first_frame_number,
                                       Fraction(info.frame_rate)) or timecode
        return {"rotation": info.rotation, "sample_aspect_ratio": info.sample_aspect_ratio,
                "color_primaries": info.color_primaries, "color_transfer": info.color_transfer,
                "field_order": info.field_order, "timecode": timecode}

    def written_tags(self) -> dict[str, Any]:
        """What the finished master itself says about geometry, colour and timing (read back; None for sequences)."""
        info = self._read_back
        keys = ("rotation", "sample_aspect_ratio", "color_primaries", "color_transfer", "color_matrix",
                "color_range", "field_order", "timecode")
        return {key: getattr(info, key) if info is not None else None for key in keys}

    def tags_not_held(self) -> list[str]:
        """The source tags the master does not say as the source did (the container cannot hold them)."""
        written, carried = self.written_tags(), self.carried_tags()
        unset = (None, 0, "progressive", "interlaced", Fraction(1))
        return sorted(key for key, value in carried.items() if value not in unset and written.get(key) != value)

    # --- plan ------------------------------------------------------------------------------------
    @staticmethod
    def _plan_numbers(info: MediaInfo, frame_pts: Sequence[int] | None,
                      frame_numbers: Sequence[int] | None) -> list[int] | None:
        """Sequence file numbers: as given, else the source frame numbers that the pts imply."""
        if frame_numbers is not None:
            return [int(n) for n in frame_numbers]
        if frame_pts is None:
            return None
        if info.kind == "sequence":  # sequence pts count frames from the first file
            return [info.first_frame_number + int(p) for p in frame_pts]
        rate = Fraction(info.frame_rate or 25)
        time_base = Fraction(info.time_base) if info.time_base else 1 / rate
        return [round(int(p) * time_base * rate) for p in frame_pts]  # video: the frame's index at its rate

    def frame_number(self, index: int) -> int:
        """The number of the `index`-th written frame (used to name sequence files)."""
        if self.frame_numbers and index < len(self.frame_numbers):
            return self.frame_numbers[index]
        base = self.frame_numbers[-1] + 1 - len(self.frame_numbers) if self.frame_numbers else \
            self.source_info.first_frame_number
        return base + index

    # --- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> "MasterWriter":
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False

    def open(self) -> "MasterWriter":
        """Create the temporary output and its encoder (and the audio carrier)."""
        if self._temp is not None or self._done:
            raise RuntimeError("MasterWriter.open() called twice")
        print_notes(clear_stale_partials(self.final))
        self._temp = reserve_temp(self.final, self.format.sequence)
        try:
            with os_errors_as_export_errors(self.final):
                self._owner = PartialOwner(self._temp, self.final)
                if self.format.sequence:
                    self._target = SequenceTarget(self._temp, self.final.name, self.format,
                                                  self.width, self.height, self.pix_fmt)
                else:
                    self._target = ContainerTarget(self._temp, self.format, self.settings, self.width,
                                                   self.height, self.pix_fmt, self.timing,
                                                   self.source_info.sample_aspect_ratio, self.carried_tags())
                    self._audio = self._open_audio(self._target)
        except BaseException:
            self.abort()
            raise
        return self

    def _open_audio(self, target: ContainerTarget) -> AudioCarrier | None:
        info = self.source_info
        if not (self.settings.audio and info.audio and info.kind == "video"):
            return None
        try:
            return AudioCarrier(info.path, [a.index for a in info.audio], target.container,
                                self.format.container or "", self.timing.start)
        except (av.FFmpegError, ValueError) as exc:
            raise ExportError(info.path, f"cannot carry its audio into {self.format.name}: {exc}") from exc

    def write(self, frame: np.ndarray) -> None:
        """Encode the next frame (float32 RGB, H x W x 3, in [0, 1])."""
        if self._target is None:
            raise RuntimeError("MasterWriter.write() before open() or after close()")
        problem = check_frame(frame, self.width, self.height)
        if problem:
            raise ExportError(self.final, f"frame {self.frames_written}: {problem}")
        self.write_values(rgb_values(frame, self.pix_fmt))

    def write_values(self, values: np.ndarray) -> None:
        """Encode the next frame given as the integers the master stores (what `rgb_values` makes of a frame)."""
        if self._target is None:
            raise RuntimeError("MasterWriter.write_values() before open() or after close()")
        index = self.frames_written
        problem = check_frame(values, self.width, self.height)
        if problem:
            raise ExportError(self.final, f"frame {index}: {problem}")
        with os_errors_as_export_errors(self.final):
            if self.format.lossless:
                self._digests.append(values_digest(values))
            self._target.write(values_to_frame(values, self.pix_fmt), index, self.frame_number(index))
            if self._audio is not None:
                timing = self.timing
                shown_until = (timing.frame_pts(index) + timing.frame_duration(index)) * timing.time_base
                # With no known end, lag a second so the tail can still be cut at close.
                self._audio.advance(shown_until if timing.end is not None else shown_until - 1,
                                    self._target.mux, timing.end)
        self.frames_written += 1

    def close(self) -> Path:
        """Finish, verify, write the sidecar and move the master to its final name; returns that path."""
        if self._done:
            return self.final
        if self._target is None:
            raise RuntimeError("MasterWriter.close() before open()")
        try:
            if self.frames_written == 0:
                raise ExportError(self.final, "no frames were rendered; nothing written")
            self._finish_encoding()
            self.decoded = self._verify()
            self._stage_sidecars(self.decoded)
            with os_errors_as_export_errors(self.final):
                if self.format.sequence:
                    write_manifest(self._temp, self.format.name)
                commit(self._temp, self.final, self.settings.overwrite)
                self._temp = None
                for temp, final in self._staged:
                    os.replace(temp, final)
                self._staged = []
                self._owner.release()
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.final

    def abort(self) -> None:
        """Drop everything written so far; nothing is left at the final name or beside it. Never raises."""
        for closer in (self._audio.close if self._audio else None, self._target.close if self._target else None):
            try:
                if closer is not None:
                    closer()
            except Exception:
                pass
        self._audio = self._target = None
        temp, self._temp = self._temp, None
        discard(temp)
        if self._owner is not None:
            self._owner.release()
        elif temp is not None:  # a cancel landed after the marker was made, before this writer held it
            discard(owner_marker(temp))
        for temp, _ in self._staged:
            discard(temp)
        self._staged = []
        self._done = True

    # --- finishing ---------------------------------------------------------------------------------
    def _audio_end(self) -> Fraction:
        timing = self.timing
        if timing.end is not None:
            return timing.end
        last = self.frames_written - 1
        return timing.start + (timing.frame_pts(last) + timing.frame_duration(last)) * timing.time_base

    def _finish_encoding(self) -> None:
        with os_errors_as_export_errors(self.final):
            self._target.finish()
            if self._audio is not None:
                self._audio.finish(self._audio_end(), self._target.mux)
                self._audio_streams = self._audio.describe()
                self._audio.close()
                self._audio = None
            self._target.close()

    def _verify(self) -> DecodedMaster:
        """Decode the temporary master back: frame count, lossless values and timestamps must match."""
        try:
            if isinstance(self._target, SequenceTarget):
                decoded = hash_sequence(self._target.files, self.timing.rate)
            else:
                decoded = hash_container(self._temp)
        except (MediaError, av.FFmpegError, OSError, ValueError) as exc:
            raise ExportError(self.final, f"the written master does not decode back ({exc})") from exc
        count = len(decoded.value_digests)
        if count != self.frames_written:
            raise ExportError(self.final, f"decoding the written master gave {count} frames, "
                                          f"{self.frames_written} were written")
        if self.format.lossless:
            if decoded.value_bits != stored_bits(self.pix_fmt):
                raise ExportError(self.final, f"decodes to {decoded.value_bits}-bit values, "
                                              f"{stored_bits(self.pix_fmt)}-bit were written")
            for index, (wrote, read) in enumerate(zip(self._digests, decoded.value_digests)):
                if wrote != read:
                    raise ExportError(self.final, f"frame {index} does not decode to the values written "
                                                  "(lossless check failed)")
        if isinstance(self._target, ContainerTarget):
            self._check_times(decoded.frame_times)
            self._read_back = probe_video(self._temp)[0]
        return decoded

    def _check_times(self, times: list[Fraction]) -> None:
        timing = self.timing
        tick = max(Fraction(1, 1000), timing.time_base)  # Matroska stores milliseconds
        for index, when in enumerate(times):
            expected = timing.frame_pts(index) * timing.time_base
            if abs(when - times[0] - expected) > tick:
                raise ExportError(self.final, f"frame {index} decodes at {float(when):.6f} s, "
                                              f"expected {float(expected):.6f} s")

    def _stage_sidecars(self, decoded: DecodedMaster) -> None:
        texts = [(self.sidecar_path, to_json(self.record(decoded)))]
        if self.settings.framemd5_file:
            texts.append((self.framemd5_path, decoded.framemd5))
        for final, text in texts:
            temp = final.with_name(f".{final.name}.partial-{secrets.token_hex(4)}")
            self._staged.append((temp, final))
            with os_errors_as_export_errors(final):
                temp.write_text(text, encoding="utf-8")

    def record(self, decoded: DecodedMaster) -> dict[str, Any]:
        """The provenance sidecar's content."""
        info, timing = self.source_info, self.timing
        try:
            checksum = source_checksum(info)
        except OSError as exc:
            raise ExportError(info.path, f"cannot read the source to checksum it ({exc.strerror or exc})") from exc
        output: dict[str, Any] = {
            "path": str(self.final),
            "format": self.format.name,
            "codec": self.format.codec,
            "container": self.format.container or "image sequence",
            "pix_fmt": self.pix_fmt,
            "decoded_pix_fmt": decoded.pix_fmt,
            "width": self.width,
            "height": self.height,
            "bit_depth": self.stored_depth,
            "frames": self.frames_written,
            "frame_rate": timing.rate,
            "variable_frame_rate": timing.variable,
            "time_base": timing.time_base,
            "range_seconds": [timing.start, self._audio_end()],
            "audio": self._audio_streams,
        }
        output["metadata"] = self.written_tags()
        output["metadata_not_held"] = self.tags_not_held()
        if self.stored_depth < self.bit_depth:
            output["depth_loss"] = f"{self.bit_depth}-bit source written as {self.stored_depth}-bit (allow_depth_loss)"
        if self.format.sequence:
            output["files"] = [p.name for p in self._target.files] if self._target else []
        return {
            "provenance_version": 1,
            "created_utc": utc_now(),
            "software": software(),
            "source": {
                "path": os.path.abspath(info.path),
                "kind": info.kind,
                "width": info.width,
                "height": info.height,
                "frame_rate": info.frame_rate,
                "bit_depth": info.bit_depth,
                "pixel_format": info.pixel_format,
                "sample_aspect_ratio": info.sample_aspect_ratio,
                "rotation": info.rotation,
                "color_primaries": info.color_primaries,
                "color_transfer": info.color_transfer,
                "color_matrix": info.color_matrix,
                "color_range": info.color_range,
                "field_order": info.field_order,
                "pulldown": info.pulldown,
                "timecode": info.timecode,
                **checksum,
            },
            "output": output,
            "export_settings": self.settings.to_dict(),
            "provenance": self.provenance,
            "framemd5": decoded.framemd5,
        }

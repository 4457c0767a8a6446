"""Media input: probe and decode video files, image sequences and stills through PyAV."""

from restoration.io.image import read_image, write_image
from restoration.io.info import AudioStreamInfo, MediaInfo
from restoration.io.probe import open_source, probe, source_kind
from restoration.io.sequence import ImageSequenceSource
from restoration.io.source import FrameSource
from restoration.io.video import VideoSource

__all__ = [
    "AudioStreamInfo",
    "FrameSource",
    "ImageSequenceSource",
    "MediaInfo",
    "VideoSource",
    "open_source",
    "probe",
    "read_image",
    "source_kind",
    "write_image",
]

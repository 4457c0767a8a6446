"""Media input: probe and decode video files, image sequences and stills through PyAV."""

from restoration.io.image import read_image, write_image
from restoration.io.info import AudioStreamInfo, MediaInfo

__all__ = ["AudioStreamInfo", "MediaInfo", "read_image", "write_image"]

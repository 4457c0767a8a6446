"""Export of masters: FFV1/MKV, ProRes/MOV, TIFF/DPX/PNG sequences and H.264 access copies, with provenance."""

from restoration.export.fixity import hash_container, hash_sequence
from restoration.export.formats import FORMATS, OutputFormat, check_geometry, format_for_output
from restoration.export.provenance import source_checksum
from restoration.export.settings import EXPORT_PARAMS, ExportSettings
from restoration.export.writer import MasterWriter, sidecar_paths

__all__ = [
    "EXPORT_PARAMS",
    "FORMATS",
    "ExportSettings",
    "MasterWriter",
    "OutputFormat",
    "check_geometry",
    "format_for_output",
    "hash_container",
    "hash_sequence",
    "sidecar_paths",
    "source_checksum",
]

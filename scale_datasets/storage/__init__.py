"""The HDF5 format (version 1): atomic writer, reader, content hash, verify, merge."""

from .format import FORMAT_NAME, FORMAT_VERSION
from .reader import FileInfo, read_info
from .verify import verify_file

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "FileInfo", "read_info", "verify_file"]

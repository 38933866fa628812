"""The one error hierarchy of the library.

Library code raises these; only the CLI turns them into exit codes and one-line messages.
"""

from __future__ import annotations


class ScaleDatasetsError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code: int = 1


class InvalidParameterError(ScaleDatasetsError, ValueError):
    """A parameter is out of range or inconsistent (names the field and the allowed range)."""

    exit_code = 2


class OutputExistsError(InvalidParameterError):
    """The output file exists and overwriting was not asked for."""

    exit_code = 2


class NoSuchFileError(InvalidParameterError, FileNotFoundError):
    """A file given to us (to read, verify, merge, export or train on) does not exist."""

    exit_code = 2


class SourceNotFoundError(ScaleDatasetsError, FileNotFoundError):
    """Source data is missing and could not be downloaded."""

    exit_code = 4


class SourceCorruptError(ScaleDatasetsError):
    """Source data exists but is truncated, malformed or inconsistent."""

    exit_code = 4


class IntegrityError(ScaleDatasetsError):
    """A stored file does not match its recorded content hash or structure, or is not ours."""

    exit_code = 3

"""Atomic file creation: a file appears under its final name complete, or not at all.

Content goes to `<out>.tmp-<pid>` in the target folder; on success it is flushed, fsynced and
`os.replace`d over the final name; on any exception (KeyboardInterrupt and the SystemExit that
the CLI raises on SIGTERM included) the temp file is removed.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import InvalidParameterError, OutputExistsError

# Called right before a temporary file is renamed into place; raising aborts the write (the
# CLI registers its signal check here, so a signal that arrives before the rename always
# aborts and one that arrives after it finds the file complete).
BEFORE_PUBLISH: list[Callable[[], None]] = []

# Longest file name most filesystems take, in bytes.
NAME_MAX = 255


def temp_path_for(out: Path, pid: int | None = None) -> Path:
    """``<out>.tmp-<pid>`` beside ``out``, the name cut so that a legal output name of up to
    NAME_MAX bytes still gives a legal temporary name."""
    suffix = f".tmp-{os.getpid() if pid is None else pid}"
    room = NAME_MAX - len(suffix.encode())
    name = out.name.encode()[:room].decode("utf-8", "ignore")
    return out.with_name(name + suffix)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # someone else's process, or not a pid at all
    return True


def left_by_dead_processes(folder: Path, prefix: str, tagged: bool = False) -> list[Path]:
    """The entries of ``folder`` named ``<prefix><pid>`` (``tagged``: ``<prefix><pid>-<tag>``)
    whose process is gone: what a SIGKILL or a power cut left behind."""
    found = []
    for entry in folder.glob(glob.escape(prefix) + "*"):
        pid = entry.name[len(prefix) :]
        if tagged:
            pid, dash, _ = pid.partition("-")
            if not dash:
                continue
        if pid.isdigit() and not pid_alive(int(pid)):
            found.append(entry)
    return found


def sweep_stale_temps(out: Path) -> None:
    """Remove the temporary files of earlier writes of ``out`` whose process is gone:
    ``<out>.tmp-<pid>`` with a dead pid."""
    prefix = temp_path_for(out, 0).name[: -len(".tmp-0")] + ".tmp-"
    for candidate in left_by_dead_processes(out.parent, prefix):
        with contextlib.suppress(OSError):
            candidate.unlink()


def check_can_create(out: Path, overwrite: bool) -> None:
    """Fail early, before any work, when the output exists and may not be replaced."""
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; pass --overwrite to replace it")
    if out.exists() and out.is_dir():
        raise OutputExistsError(f"{out} is a directory, not a file path")
    if not out.parent.is_dir():
        raise InvalidParameterError(f"out: {out.parent} is not an existing folder")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems do not allow fsync on directories
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_output(out: Path, overwrite: bool = False, checked: bool = True) -> Iterator[Path]:
    """Yield a temp path to write; publish it as `out` only if the block succeeds (and, when
    ``checked``, the BEFORE_PUBLISH checks pass)."""
    out = Path(out)
    check_can_create(out, overwrite)
    sweep_stale_temps(out)
    tmp = temp_path_for(out)
    try:
        try:
            yield tmp
            with open(tmp, "rb+") as handle:
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            if exc.errno == errno.ENOSPC or "No space left on device" in str(exc):
                # HDF5 reports it as a multi-line message with timestamps and addresses
                raise OSError(
                    errno.ENOSPC, "no space left on device while writing", str(out)
                ) from None
            raise
        check_can_create(out, overwrite)  # someone may have created it meanwhile
        for check in BEFORE_PUBLISH if checked else ():  # the CLI's: a noted Ctrl-C aborts
            check()
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text_atomic(out: Path, text: str) -> None:
    """Small text files (dataset cards) get the same all-or-nothing treatment; they follow a
    published data file, so a signal does not stop them (the data file decided the outcome)."""
    with atomic_output(out, overwrite=True, checked=False) as tmp:
        tmp.write_text(text, encoding="utf-8")

"""What can go wrong with the DuckDB file itself, as one-line errors naming the file and the cause.

DuckDB's own messages are long (a lock error runs to ~300 characters and ends in a link) and
some arrive masked (a failed ROLLBACK hides the disk-full error that caused it). The errors here
are what a user sees instead: one line each, the file, the cause and what to do. The original
DuckDB exception stays chained (``__cause__``) for the Dagster UI.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import duckdb

MAX_ECHO = 80  # characters of a program name or DuckDB message repeated in a line
PATH_ECHO = 160  # characters of a path

_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")
_FILE = re.compile(r'file "(?P<path>[^"]+)"')
_NO_SPACE = ("no space left on device", "disk full", "not enough space")


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks a cut)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def first_line(exc: BaseException, limit: int = 200) -> str:
    lines = str(exc).strip().splitlines()
    return clip(lines[0] if lines else type(exc).__name__, limit)


class DuckDBFileError(RuntimeError):
    """The DuckDB file cannot be used right now; ``str()`` is one line for the terminal."""


class DuckDBBusy(DuckDBFileError):
    """Another process holds the file's lock (``holder_pid`` and whether it only reads)."""

    def __init__(self, message: str, holder_pid: int | None, holder_reads: bool) -> None:
        super().__init__(message)
        self.holder_pid = holder_pid
        self.holder_reads = holder_reads


class DuckDBDamaged(DuckDBFileError):
    """The file is truncated, not a DuckDB file, or fails DuckDB's checks when read."""


class DuckDBUnwritable(DuckDBFileError):
    """The file or its directory cannot be written (read-only filesystem, permissions)."""


class DiskFull(DuckDBFileError):
    """The filesystem holding the file ran out of space; the transaction was rolled back."""


def is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def busy_error(exc: BaseException, path: str, writing: bool) -> DuckDBBusy:
    """The one line for a lock held by another process, naming it when DuckDB does."""
    text = str(exc)
    match = _HOLDER.search(text)
    pid = int(match.group("pid")) if match else None
    holder_reads = "read-only mode" in text  # DuckDB adds this hint when the holder only reads
    who = f"another process (pid {pid}, {clip(match.group('exe'))})" if match else "another process"
    if writing and holder_reads:
        message = (f"the DuckDB file {clip(path, PATH_ECHO)} is held read-only by {who}, e.g. a notebook; "
                   f"a run needs to write it: close that connection and run again")
    elif writing:
        message = f"the DuckDB file {clip(path, PATH_ECHO)} is busy: {who} is writing it; try again when it ends"
    else:
        message = (f"the DuckDB file {clip(path, PATH_ECHO)} is busy: {who} is writing it, a run perhaps; "
                   f"try again when it ends")
    return DuckDBBusy(message, pid, holder_reads)


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def disk_full_error(exc: BaseException, path: str | None = None, during: str = "") -> DiskFull | None:
    """A :class:`DiskFull` when ``exc`` (or anything in its chain) is "No space left on device".

    ``during`` names a failure after COMMIT (the checkpoint when a connection closes): then the
    committed work is in the write-ahead log and DuckDB applies it at the next open.
    """
    for link in _chain(exc):
        if isinstance(link, DiskFull):
            return link
        text = str(link)
        if not any(marker in text.lower() for marker in _NO_SPACE):
            continue
        match = _FILE.search(text)
        target = match.group("path") if match else path
        where = f"writing {clip(target, PATH_ECHO)}" if target else "writing the DuckDB file"
        device = ""
        if target:
            try:
                mount = _mount_point(Path(target).parent)
                usage = shutil.disk_usage(mount)
                device = f" (filesystem {clip(str(mount), PATH_ECHO)}: {_size(usage.free)} free of {_size(usage.total)})"
            except OSError:
                pass
        outcome = ("committed work stays in the write-ahead log and is applied at the next open"
                   if during else "the transaction was rolled back and nothing of it was written")
        when = f" {during}" if during else ""
        return DiskFull(f"disk full: no space left on device {where}{when}{device}; {outcome}; "
                        "free space and run again")
    return None


_DAMAGE = ("not a valid duckdb database file", "could not read enough bytes", "corrupt", "checksum",
           "failed to deserialize", "invalid block", "malformed")


def open_error(exc: BaseException, path: str, writing: bool) -> DuckDBFileError | None:
    """The one-line error for a failed open of ``path`` (None: not a file problem, re-raise)."""
    text = str(exc)
    lowered = text.lower()
    full = disk_full_error(exc, path)
    if full is not None:
        return full
    if "read-only file system" in lowered or "permission denied" in lowered:
        what = "written" if writing else "read"
        cause = "read-only file system" if "read-only" in lowered else "permission denied"
        return DuckDBUnwritable(f"the DuckDB file {clip(path, PATH_ECHO)} cannot be {what}: {cause}")
    if any(marker in lowered for marker in _DAMAGE) or isinstance(
        exc, duckdb.SerializationException | duckdb.InternalException
    ):
        return damaged_error(path, first_line(exc, 120))
    return None


def damaged_error(path: str, detail: str) -> DuckDBDamaged:
    return DuckDBDamaged(f"the DuckDB file {clip(path, PATH_ECHO)} is damaged: {detail}; restore it from a backup, "
                         "or move it away and re-materialize")

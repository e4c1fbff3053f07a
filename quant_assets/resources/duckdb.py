"""DuckDB access: one file, schema by idempotent migrations, a bounded wait on a held lock.

DuckDB lets one process write a file at a time, and no other process read it meanwhile (a
file opened read-only by several readers cannot be written). Runs are serialised among
themselves by the Dagster concurrency pool ``duckdb`` (see ``definitions.py``); what this module
does about other processes:

- **Writers** (``connect()``, every asset and check): create the directory, open read-write and
  apply the migrations. When another process holds the file (a notebook, ``quant report``, an
  alert sensor's tick) the open is retried with jittered exponential backoff (0.25 s doubling up
  to 5 s) for up to ``lock_timeout_s`` (30 s by default), then fails with one line naming the
  holder's PID and whether it reads or writes (:class:`~quant_assets.resources.errors.DuckDBBusy`).
  For a minute after such a failure, further writers of the same process wait only 2 s.
- **Readers** (``connect(read_only=True)``, ``quant report``): never create or migrate anything,
  work on a read-only filesystem, and wait at most ``read_lock_timeout_s`` (2 s) for a writer
  before the same one-line error: a run holds its lock for minutes, so waiting longer rarely helps.
- **Both** refuse a file shorter than the blocks it uses (a truncated copy, a disk that lost
  its tail) with :class:`~quant_assets.resources.errors.DuckDBDamaged`, before reading or
  migrating anything; a file that is not a DuckDB database at all is damaged too. A full disk
  (in a statement, at COMMIT, at the checkpoint on close) is
  :class:`~quant_assets.resources.errors.DiskFull`, one line naming the file and its filesystem.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field
from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_exponential_jitter

from quant_assets.resources.errors import (
    PATH_ECHO,
    DuckDBFileError,
    DuckDBUnwritable,
    busy_error,
    clip,
    damaged_error,
    disk_full_error,
    first_line,
    is_lock_error,
    open_error,
)
from quant_assets.resources.migrations import apply_migrations

HEADER_BYTES = 3 * 4096  # DuckDB's main header and its two alternating database headers
WRITE_LOCK_TIMEOUT_S = 30.0
READ_LOCK_TIMEOUT_S = 2.0


# When a writer has waited its full time in vain, the holder is not letting go: later writers
# of this process (a run's resource teardown, the next step) wait as briefly as a reader for a
# while, so a run fails after one wait, not one per connection.
_GAVE_UP: dict[str, float] = {}
GAVE_UP_MEMORY_S = 60.0


def _open(path: str, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` retried on lock errors for up to ``timeout_s``; one-line errors."""
    began = time.monotonic()
    key = os.path.abspath(path)
    if not read_only and began - _GAVE_UP.get(key, -math.inf) < GAVE_UP_MEMORY_S:
        timeout_s = min(timeout_s, READ_LOCK_TIMEOUT_S)
    retrying = Retrying(
        retry=retry_if_exception(is_lock_error),
        wait=wait_exponential_jitter(multiplier=0.25, max=5, jitter=0.25),
        stop=stop_before_delay(timeout_s),
        reraise=True,
    )
    try:
        conn = retrying(duckdb.connect, path, read_only=read_only)
    except duckdb.Error as exc:
        if is_lock_error(exc):
            if not read_only:
                _GAVE_UP[key] = time.monotonic()
            raise busy_error(exc, path, not read_only) from exc
        known = open_error(exc, path, writing=not read_only)
        if known is not None:
            raise known from exc
        raise
    _GAVE_UP.pop(key, None)
    return conn


def check_not_truncated(conn: duckdb.DuckDBPyConnection, path: str, precise: bool = False) -> None:
    """Raise :class:`DuckDBDamaged` when the file is shorter than the blocks it uses.

    DuckDB reads blocks lazily, so a truncated file opens and answers ``count(*)`` from its
    catalogue; only reading a lost block fails. After 3 x 4 KiB of headers the file holds
    ``block_size`` blocks; DuckDB trims free blocks off its end, so the file must be at least
    as long as its used blocks (one stat). ``precise`` also finds the highest block any table
    segment or the metadata uses and requires that block (catalogue reads only, tens of ms).
    """
    block_size, used = conn.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = current_database()"
    ).fetchone()
    needed = int(used)
    if precise:
        needed = max(needed, _highest_block_in_use(conn) + 1)
    expected = HEADER_BYTES + needed * int(block_size)
    actual = os.path.getsize(path)
    if actual < expected:
        raise damaged_error(path, f"it is {actual:,} bytes but its blocks need {expected:,} (truncated)")


def _highest_block_in_use(conn: duckdb.DuckDBPyConnection) -> int:
    highest = max((r[0] for r in conn.execute("SELECT block_id FROM pragma_metadata_info()").fetchall()), default=-1)
    tables = conn.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT temporary"
    ).fetchall()
    for schema, table in tables:
        row = conn.execute(
            "SELECT max(greatest(block_id, list_max(additional_block_ids))) FROM pragma_storage_info(?) WHERE persistent",
            [f'"{schema}"."{table}"'],
        ).fetchone()
        if row and row[0] is not None:
            highest = max(highest, int(row[0]))
    return highest


class QuantDuckDB(DuckDBResource):
    """The platform's DuckDB file: writers migrate it, readers only read (see the module doc)."""

    lock_timeout_s: float = Field(
        default=WRITE_LOCK_TIMEOUT_S, description="how long a writer waits for another process's lock"
    )
    read_lock_timeout_s: float = Field(
        default=READ_LOCK_TIMEOUT_S, description="how long a read-only reader waits for a writer's lock"
    )

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        on_disk = self.database != ":memory:" and not self.database.startswith("md:")
        if on_disk and not read_only:
            try:
                Path(self.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DuckDBUnwritable(
                    f"the directory of the DuckDB file {clip(self.database, PATH_ECHO)} cannot be created: "
                    f"{exc.strerror or exc}"
                ) from exc
        timeout = self.read_lock_timeout_s if read_only else self.lock_timeout_s
        conn = _open(self.database, read_only and on_disk, timeout)
        failed = False
        try:
            conn.execute("SET TimeZone = 'UTC'")
            if on_disk:
                check_not_truncated(conn, self.database, precise=read_only)
            if not read_only:
                apply_migrations(conn)
            yield conn
        except duckdb.Error as exc:  # e.g. an auto-committed statement, outside any transaction()
            failed = True
            full = disk_full_error(exc, self.database)
            if full is not None:
                raise full from exc
            raise
        except BaseException:
            failed = True
            raise
        finally:
            if failed:  # a failing close (e.g. its checkpoint on a full disk) must not mask the error
                with suppress(duckdb.Error):
                    conn.close()
            else:
                _close(conn, self.database)


def _close(conn: duckdb.DuckDBPyConnection, path: str) -> None:
    try:
        conn.close()  # checkpoints: the WAL is written into the file
    except duckdb.Error as exc:
        full = disk_full_error(exc, path, during="checkpointing on close")
        if full is not None:
            raise full from exc
        raise DuckDBFileError(f"closing the DuckDB file {clip(path, PATH_ECHO)} failed: {first_line(exc)}") from exc

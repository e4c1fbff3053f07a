"""Idempotent window writes and per-partition content hashes.

Every partitioned table is written the same way: inside one transaction, delete the rows of the
window ``[start, end)`` on its time column and insert the new ones, so a partition materialized
twice holds identical rows. Table and column names are identifiers checked against a strict
pattern before they reach SQL text; every value is a bound parameter.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from quant_assets.quant.calendar import Window
from quant_assets.resources.errors import disk_full_error, first_line

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
EMPTY_HASH = hashlib.sha256(b"").hexdigest()
_OPEN_TRANSACTIONS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, int] = weakref.WeakKeyDictionary()


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction around the block: COMMIT when it ends, ROLLBACK on any exception.

    Re-entrant: a block inside another one joins the outer transaction (DuckDB has no nested
    transactions), so writers can be composed and the outermost block decides.

    The error that ends the block is the one raised: a ROLLBACK that fails as well (DuckDB has
    often ended the transaction itself, e.g. after an I/O error) is added to it as a note, never
    raised in its place. A full disk, in the block or at COMMIT, is raised as one line naming
    the file and its filesystem (:class:`~quant_assets.resources.errors.DiskFull`).
    """
    depth = _OPEN_TRANSACTIONS.get(conn, 0)
    if depth:
        _OPEN_TRANSACTIONS[conn] = depth + 1
        try:
            yield conn
        finally:
            _OPEN_TRANSACTIONS[conn] = depth
        return
    conn.execute("BEGIN TRANSACTION")
    _OPEN_TRANSACTIONS[conn] = 1
    try:
        try:
            yield conn
        except BaseException as exc:
            _rollback(conn, exc)
            raise
        try:
            conn.execute("COMMIT")
        except BaseException as exc:  # DuckDB rolls a failed COMMIT back; make sure of it
            _rollback(conn, exc)
            raise
    except duckdb.Error as exc:
        full = disk_full_error(exc)
        if full is not None:
            raise full from exc
        raise
    finally:
        _OPEN_TRANSACTIONS.pop(conn, None)


def _rollback(conn: duckdb.DuckDBPyConnection, cause: BaseException) -> None:
    """ROLLBACK after ``cause``; a failure to do so is noted on ``cause``, not raised."""
    try:
        conn.execute("ROLLBACK")
    except duckdb.Error as exc:
        if "no transaction is active" not in str(exc):
            cause.add_note(f"ROLLBACK failed too: {first_line(exc)}")


@contextmanager
def registered(conn: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """Expose ``frame`` to SQL as the view ``name`` for the duration of the block."""
    conn.register(name, frame.to_arrow())
    try:
        yield
    except BaseException:
        with suppress(duckdb.Error):  # in an aborted transaction this fails too: keep the first error
            conn.unregister(name)
        raise
    conn.unregister(name)


def ident(name: str) -> str:
    """Quote a table or column name after checking it is a plain lower-case identifier."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f'"{name}"'


def query_frame(conn: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> pl.DataFrame:
    """Run ``sql`` with bound ``params`` and return the result as a polars frame."""
    # DuckDB 2 warns that this copies the rows once more than a relation would; a relation,
    # though, cannot run on a connection that holds an unfinished execute() result.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
        table = conn.execute(sql, params).to_arrow_table()
    return pl.DataFrame(pl.from_arrow(table))


def table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` exists (result fully fetched: DuckDB 2 refuses work on a half-read result)."""
    rows = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall()
    return bool(rows[0][0])


def table_columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


def ensure_columns_match(conn: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str]) -> None:
    existing = table_columns(conn, table)
    if existing != list(columns):
        raise RuntimeError(
            f"table {table} has columns {existing} but the writer produces {list(columns)}; "
            f"the schema changed: drop {table} and re-materialize"
        )


def replace_window(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    start: datetime,
    end: datetime,
    time_column: str = "ts",
) -> int:
    """Replace the rows of ``table`` with ``time_column`` in ``[start, end)`` by ``frame``.

    One transaction (or part of the caller's :func:`transaction`): on any error nothing of
    the window changes. Creates the table from the
    frame's schema when it does not exist yet. Returns the number of rows inserted.
    """
    outside = frame.filter((pl.col(time_column) < start) | (pl.col(time_column) >= end)).height
    if outside:
        raise ValueError(f"{outside} rows for {table} fall outside the window [{start}, {end})")
    quoted = ident(table)
    with registered(conn, "_window_rows", frame), transaction(conn):
        if not table_exists(conn, table):
            # Created with its rows, not empty and then filled: DuckDB 2.0 keeps an empty new table's
            # statistics through a large insert in the same transaction, and a filtered GROUP BY on it
            # (the partition hashes) then finds no rows until the database is reopened.
            conn.execute(f"CREATE TABLE {quoted} AS SELECT * FROM _window_rows")
            return frame.height
        ensure_columns_match(conn, table, frame.columns)
        conn.execute(
            f"DELETE FROM {quoted} WHERE {ident(time_column)} >= ? AND {ident(time_column)} < ?",
            [start, end],
        )
        conn.execute(f"INSERT INTO {quoted} BY NAME SELECT * FROM _window_rows")
    return frame.height


def params_hash(params: Mapping[str, Any]) -> str:
    """SHA-256 of parameters as canonical JSON (sorted keys; dates and paths as strings)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def daily_content_hashes(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    start: datetime,
    end: datetime,
    time_column: str = "ts",
) -> dict[str, tuple[int, str]]:
    """``{YYYY-MM-DD: (row_count, sha256)}`` for each UTC day in ``[start, end)``.

    The hash is a multiset hash: SHA-256 of ``"<row count>:<sum of DuckDB's 64-bit hash() of
    each whole row>"``. Equal partitions hash equal whatever the physical row order; a
    changed, added, removed or duplicated row changes it (accidental collisions have probability about
    2^-64). It is over ten times cheaper than hashing sorted row text. DuckDB's ``hash()`` may
    change across DuckDB versions, which manifests record: compare hashes made by one version.
    Days without rows get ``(0, sha256(b""))``.
    """
    col = ident(time_column)
    rows = conn.execute(
        f"""
        SELECT strftime(CAST({col} AS DATE), '%Y-%m-%d') AS day, count(*) AS n,
               sha256(count(*)::VARCHAR || ':' || sum(hash(t)::HUGEINT)::VARCHAR) AS h
        FROM {ident(table)} AS t
        WHERE {col} >= ? AND {col} < ?
        GROUP BY ALL
        """,
        [start, end],
    ).fetchall()
    found = {day: (int(n), str(h)) for day, n, h in rows}
    return {key: found.get(key, (0, EMPTY_HASH)) for key in Window(start, end).keys()}


def record_partition_hashes(
    conn: duckdb.DuckDBPyConnection,
    asset: str,
    table: str,
    start: datetime,
    end: datetime,
    params: Mapping[str, Any],
    time_column: str = "ts",
) -> dict[str, tuple[int, str]]:
    """Store the per-day content hash of ``table`` in ``partition_hashes``; return them."""
    hashes = daily_content_hashes(conn, table, start, end, time_column)
    p_hash = params_hash(params)
    rows = pl.DataFrame(
        [(asset, table, day, n, h, p_hash) for day, (n, h) in hashes.items()],
        schema=["asset", "table_name", "partition_key", "row_count", "content_hash", "params_hash"],
        orient="row",
    )
    with registered(conn, "_partition_hash_rows", rows):
        conn.execute("INSERT OR REPLACE INTO partition_hashes BY NAME SELECT * FROM _partition_hash_rows")
    return hashes


def preview_markdown(frame: pl.DataFrame, limit: int = 10) -> str:
    """A markdown table of the first ``limit`` rows, for asset metadata."""
    head = frame.head(limit)
    if head.is_empty():
        return "_no rows_"
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    for row in head.iter_rows():
        cells = [f"{v:.6g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merge_window(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    start: datetime,
    end: datetime,
    key: Sequence[str],
    volatile: Sequence[str],
    time_column: str = "ts",
) -> tuple[int, int]:
    """Make the window of ``table`` equal to ``frame``, keeping rows that did not change.

    A stored row whose every column except ``volatile`` ones (e.g. ``fetched_at``) equals a
    row of ``frame`` is kept as stored; others in the window are deleted, and the new or
    changed rows inserted. Re-fetching identical data thus leaves the table byte-identical,
    and ``fetched_at`` keeps meaning "first seen with these values". One transaction (or part
    of the caller's :func:`transaction`).
    Returns ``(inserted, deleted)``.
    """
    quoted, col = ident(table), ident(time_column)
    compared = [c for c in frame.columns if c not in volatile]
    same_row = " AND ".join(f"s.{ident(c)} IS NOT DISTINCT FROM t.{ident(c)}" for c in compared)
    same_key = " AND ".join(f"s.{ident(c)} = t.{ident(c)}" for c in key)
    outside = frame.filter((pl.col(time_column) < start) | (pl.col(time_column) >= end)).height
    if outside:
        raise ValueError(f"{outside} rows for {table} fall outside the window [{start}, {end})")
    with registered(conn, "_merge_rows", frame), transaction(conn):
        deleted = conn.execute(
            f"DELETE FROM {quoted} AS t WHERE t.{col} >= ? AND t.{col} < ? "
            f"AND NOT EXISTS (SELECT 1 FROM _merge_rows AS s WHERE {same_row})",
            [start, end],
        ).fetchone()[0]
        inserted = conn.execute(
            f"INSERT INTO {quoted} BY NAME SELECT s.* FROM _merge_rows AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {quoted} AS t WHERE {same_key})"
        ).fetchone()[0]
    return int(inserted), int(deleted)

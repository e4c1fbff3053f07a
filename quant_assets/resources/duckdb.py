"""DuckDB access: one file, schema by idempotent migrations, retries on a held write lock.

DuckDB lets one process write a file at a time. Writers are serialised by the Dagster
concurrency pool ``duckdb`` (see ``definitions.py``); a lock held by another process (an
analyst's notebook, say) is retried with backoff rather than failing the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from quant_assets.resources.migrations import apply_migrations


def _is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


@retry(
    retry=retry_if_exception(_is_lock_error),
    wait=wait_exponential_jitter(multiplier=0.5, max=10),
    stop=stop_after_attempt(8),
    reraise=True,
)
def _open(path: str, read_only: bool) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(path, read_only=read_only)


class QuantDuckDB(DuckDBResource):
    """The platform's DuckDB file, migrated to the current schema on every connect."""

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        conn = _open(self.database, read_only)
        try:
            conn.execute("SET TimeZone = 'UTC'")
            if not read_only:
                apply_migrations(conn)
            yield conn
        finally:
            conn.close()

"""``ingestion_gaps``: what a provider chain could not deliver, recorded rather than skipped."""

from datetime import datetime

import duckdb

from quant_assets.providers.resilience import one_line, utcnow
from quant_assets.secrets import scrub


def record_gaps(conn: duckdb.DuckDBPyConnection, kind: str, keys: list[tuple[str, str]],
                start: datetime, end: datetime) -> None:
    """``keys``: (key, reason). Re-recording a gap updates its reason and time.

    The reason is stored as one line of at most 500 characters, scrubbed of every secret first.
    """
    now = utcnow()
    for key, reason in keys:
        conn.execute(
            "INSERT OR REPLACE INTO ingestion_gaps VALUES (?, ?, ?, ?, ?, ?)",
            [kind, scrub(key), start, end, one_line(reason, 500) or "unknown", now],
        ).fetchall()

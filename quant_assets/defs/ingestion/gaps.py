"""``ingestion_gaps``: what a provider chain could not deliver, recorded rather than skipped."""

from datetime import datetime

import duckdb

from quant_assets.providers.resilience import utcnow


def record_gaps(conn: duckdb.DuckDBPyConnection, kind: str, keys: list[tuple[str, str]],
                start: datetime, end: datetime) -> None:
    """``keys``: (key, reason). Re-recording a gap updates its reason and time."""
    now = utcnow()
    for key, reason in keys:
        conn.execute(
            "INSERT OR REPLACE INTO ingestion_gaps VALUES (?, ?, ?, ?, ?, ?)",
            [kind, key, start, end, reason[:500], now],
        ).fetchall()

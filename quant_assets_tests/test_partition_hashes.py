"""A table's first write records its true partition hashes, whatever its size.

DuckDB 2.0 keeps the statistics of a table created empty through a large insert in the same
transaction; the filtered GROUP BY of ``daily_content_hashes`` then found no rows, so the first
60-day demo recorded 0 rows for bars_5m, features_5m and factors (and a reproducibility check
named factors as changed). A table is now created with its rows.
"""

from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest

from quant_assets.lib.sql_models import run_model
from quant_assets.resources.tables import (
    daily_content_hashes,
    record_partition_hashes,
    replace_window,
    transaction,
)

START, DAYS = datetime(2026, 10, 3), 60
END = START + timedelta(days=DAYS)
ROWS = 200_000  # more than one DuckDB row group (122,880)


@pytest.fixture
def frame() -> pl.DataFrame:
    step = DAYS * 24 * 3600 // ROWS
    return pl.DataFrame({"ts": [START + timedelta(seconds=step * i) for i in range(ROWS)],
                         "v": [float(i % 977) for i in range(ROWS)]})


def _fresh(path, table) -> dict:
    with duckdb.connect(str(path), read_only=True) as conn:
        return daily_content_hashes(conn, table, START, END)


def test_the_first_large_window_is_hashed_as_a_reopened_file_sees_it(tmp_path, frame):
    path = tmp_path / "x.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE partition_hashes (asset VARCHAR, table_name VARCHAR, partition_key VARCHAR, "
                     "row_count BIGINT, content_hash VARCHAR, params_hash VARCHAR, PRIMARY KEY (table_name, partition_key))")
        with transaction(conn):
            replace_window(conn, "t", frame, START, END)
            recorded = record_partition_hashes(conn, "t", "t", START, END, {})
        conn.execute("CREATE TABLE src AS SELECT * FROM t")
        sql = "SELECT ts, v FROM src WHERE ts >= $window_start AND ts < $window_end"
        run_model(conn, "m", sql, {"window_start": START, "window_end": END}, (START, END), "ts")
        modelled = daily_content_hashes(conn, "m", START, END)
    assert sum(n for n, _ in recorded.values()) == ROWS
    assert recorded == _fresh(path, "t") and modelled == _fresh(path, "m") == _fresh(path, "t")

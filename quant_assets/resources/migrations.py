"""Schema migrations: numbered, each applied once, recorded in ``schema_migrations``.

Tables whose columns follow the configuration (bars, features) are created by their writers
from the first frame or query they store; the fixed tables live here.
"""

from __future__ import annotations

import duckdb

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "raw_candles",
        """
        CREATE TABLE raw_candles (
            symbol VARCHAR NOT NULL,
            ts TIMESTAMP NOT NULL,            -- candle open time, UTC, left-labelled
            interval VARCHAR NOT NULL,        -- base interval, e.g. 1m
            open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
            volume DOUBLE NOT NULL,           -- base-currency units
            quote_volume DOUBLE,              -- quote-currency units, where the source has it
            provider VARCHAR NOT NULL,
            fetched_at TIMESTAMP NOT NULL,    -- when this exact row was first fetched, UTC
            fetch_status VARCHAR NOT NULL CHECK (fetch_status IN ('OK', 'DEGRADED')),
            error VARCHAR,
            PRIMARY KEY (symbol, ts)
        )
        """,
    ),
    (
        2,
        "partition_hashes",
        """
        CREATE TABLE partition_hashes (
            asset VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL,
            partition_key VARCHAR NOT NULL,
            row_count BIGINT NOT NULL,
            content_hash VARCHAR NOT NULL,    -- sha256 over the partition's rows in key order
            params_hash VARCHAR NOT NULL,     -- sha256 of the parameters that shaped the rows
            PRIMARY KEY (table_name, partition_key)
        )
        """,
    ),
    (
        3,
        "signals",
        """
        CREATE TABLE signals (
            symbol VARCHAR NOT NULL,
            ts TIMESTAMP NOT NULL,            -- bar open time of the bar whose close produced it
            signal_name VARCHAR NOT NULL,
            value DOUBLE NOT NULL,            -- target position in [-1, 1], held from the next bar
            PRIMARY KEY (signal_name, symbol, ts)
        )
        """,
    ),
    (
        4,
        "backtests",
        """
        CREATE TABLE backtest_folds (
            fold VARCHAR NOT NULL PRIMARY KEY, -- the out-of-sample day, YYYY-MM-DD
            status VARCHAR NOT NULL CHECK (status IN ('OK', 'SKIPPED_INSUFFICIENT_HISTORY')),
            train_start TIMESTAMP, train_end TIMESTAMP, test_start TIMESTAMP NOT NULL,
            test_end TIMESTAMP NOT NULL,
            train_days_available INTEGER NOT NULL,
            selected_signal VARCHAR,
            train_sharpe DOUBLE,
            candidates_tried INTEGER NOT NULL,
            sharpe DOUBLE, sortino DOUBLE, max_drawdown DOUBLE, total_return DOUBLE,
            hit_rate DOUBLE, turnover DOUBLE, n_bars INTEGER NOT NULL,
            fee_bps DOUBLE NOT NULL, slippage_bps DOUBLE NOT NULL
        );
        CREATE TABLE backtest_pnl (
            fold VARCHAR NOT NULL,
            ts TIMESTAMP NOT NULL,            -- bar open time; returns earned over [ts, ts + bar)
            gross_return DOUBLE NOT NULL, cost DOUBLE NOT NULL, net_return DOUBLE NOT NULL,
            turnover DOUBLE NOT NULL, gross_exposure DOUBLE NOT NULL,
            PRIMARY KEY (ts)
        )
        """,
    ),
    (
        5,
        "governance",
        """
        CREATE TABLE backtest_manifest (
            partition_key VARCHAR NOT NULL PRIMARY KEY,
            fold_start TIMESTAMP NOT NULL,
            manifest_hash VARCHAR NOT NULL,
            git_commit VARCHAR NOT NULL, git_dirty BOOLEAN,
            config_hash VARCHAR NOT NULL,
            experiment_id VARCHAR NOT NULL,
            manifest_json VARCHAR NOT NULL
        );
        CREATE TABLE experiment_registry (
            experiment_id VARCHAR NOT NULL,   -- sha256 of config + signal parameters
            fold VARCHAR NOT NULL,
            hypothesis VARCHAR NOT NULL,
            selected_signal VARCHAR,
            sharpe DOUBLE,
            manifest_hash VARCHAR NOT NULL,
            manifest_path VARCHAR NOT NULL,
            PRIMARY KEY (experiment_id, fold)
        )
        """,
    ),
)


def apply_migrations(conn: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every migration not yet recorded, each in its own transaction; return those applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, ddl in MIGRATIONS:
        if version in done:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(ddl)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, name])
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied

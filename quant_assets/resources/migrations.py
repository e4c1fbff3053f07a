"""Schema migrations: numbered, each applied once, recorded in ``schema_migrations``.

Tables whose columns follow the configuration (bars, features) are created by their writers
from the first frame or query they store; the fixed tables live here.
"""

from __future__ import annotations

import duckdb

from quant_assets.resources.tables import transaction

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
            content_hash VARCHAR NOT NULL,    -- multiset sha256 of the partition's rows (resources.tables)
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
    (
        10,
        "provider_health",
        """
        CREATE TABLE provider_health (
            provider_name VARCHAR NOT NULL PRIMARY KEY,
            status VARCHAR NOT NULL CHECK (status IN ('OK', 'DEGRADED', 'DOWN')),
            last_ok_at TIMESTAMP,             -- UTC, last successful call
            fail_count INTEGER NOT NULL,      -- consecutive failed calls
            disabled_until TIMESTAMP,         -- circuit breaker open until (UTC), else NULL
            last_error VARCHAR,               -- one line, never a key
            updated_at TIMESTAMP NOT NULL
        );
        CREATE TABLE provider_metrics (
            provider_name VARCHAR NOT NULL PRIMARY KEY,
            requests BIGINT NOT NULL,         -- HTTP requests (calls, for local providers) ever
            successes BIGINT NOT NULL,
            latency_ms_total DOUBLE NOT NULL,
            recent_calls VARCHAR NOT NULL,    -- '1'/'0' per call, the last 100, oldest first
            updated_at TIMESTAMP NOT NULL
        )
        """,
    ),
    (
        11,
        "ingestion_gaps",
        """
        CREATE TABLE ingestion_gaps (
            kind VARCHAR NOT NULL,            -- candles, spot, dex
            key VARCHAR NOT NULL,             -- symbol or chainId/pairAddress
            window_start TIMESTAMP NOT NULL,
            window_end TIMESTAMP NOT NULL,
            reason VARCHAR NOT NULL,
            recorded_at TIMESTAMP NOT NULL,
            PRIMARY KEY (kind, key, window_start)
        )
        """,
    ),
    (
        12,
        "polled_tables",
        """
        CREATE TABLE spot_quotes (
            symbol VARCHAR NOT NULL,
            ts TIMESTAMP NOT NULL,            -- the poll tick (UTC), on the polling grid
            quote_ts TIMESTAMP NOT NULL,      -- when the source says the price was current
            price DOUBLE NOT NULL CHECK (price > 0),
            bid DOUBLE, ask DOUBLE,
            provider VARCHAR NOT NULL,
            fetched_at TIMESTAMP NOT NULL,
            fetch_status VARCHAR NOT NULL CHECK (fetch_status IN ('OK', 'DEGRADED')),
            error VARCHAR,
            PRIMARY KEY (symbol, ts)
        );
        CREATE TABLE dex_snapshots (
            pair VARCHAR NOT NULL,            -- chainId/pairAddress
            ts TIMESTAMP NOT NULL,            -- the poll tick (UTC)
            chain_id VARCHAR NOT NULL, pair_address VARCHAR NOT NULL, dex_id VARCHAR,
            base_symbol VARCHAR, quote_symbol VARCHAR,
            price_native DOUBLE NOT NULL CHECK (price_native > 0),
            price_usd DOUBLE, liquidity_usd DOUBLE, volume_h24 DOUBLE, fdv DOUBLE,
            txns_h24_buys BIGINT, txns_h24_sells BIGINT,
            provider VARCHAR NOT NULL,
            fetched_at TIMESTAMP NOT NULL,
            fetch_status VARCHAR NOT NULL CHECK (fetch_status IN ('OK', 'DEGRADED')),
            error VARCHAR,
            PRIMARY KEY (pair, ts)
        )
        """,
    ),
    (
        13,
        "alternative_data",
        """
        CREATE TABLE fear_greed (
            ts TIMESTAMP NOT NULL PRIMARY KEY, -- UTC day the index value is for
            value INTEGER NOT NULL CHECK (value BETWEEN 0 AND 100),
            classification VARCHAR NOT NULL,
            provider VARCHAR NOT NULL,
            fetched_at TIMESTAMP NOT NULL
        );
        CREATE TABLE funding_rates (
            symbol VARCHAR NOT NULL,
            ts TIMESTAMP NOT NULL,            -- funding time, UTC
            funding_rate DOUBLE NOT NULL,
            mark_price DOUBLE,
            provider VARCHAR NOT NULL,
            fetched_at TIMESTAMP NOT NULL,
            PRIMARY KEY (symbol, ts)
        )
        """,
    ),
    (
        20,
        "alerts",
        """
        CREATE TABLE alerts (
            alert_id VARCHAR NOT NULL PRIMARY KEY,
            alert_key VARCHAR NOT NULL,       -- what alerts, e.g. check:raw_candles:raw_candles_valid_ohlcv
            source VARCHAR NOT NULL CHECK (source IN ('asset_check', 'run', 'provider')),
            severity VARCHAR NOT NULL CHECK (severity IN ('WARN', 'ERROR', 'CRITICAL')),
            status VARCHAR NOT NULL CHECK (status IN ('OPEN', 'RESOLVED')),
            message VARCHAR NOT NULL,         -- the latest failing message
            first_seen TIMESTAMP NOT NULL,    -- UTC
            last_seen TIMESTAMP NOT NULL,     -- UTC, latest failing observation
            occurrences INTEGER NOT NULL,     -- consecutive failing observations
            resolved_at TIMESTAMP,
            webhook_status VARCHAR NOT NULL,  -- latest delivery: SENT, FAILED, NOT_CONFIGURED, PENDING
            telegram_status VARCHAR NOT NULL,
            details VARCHAR                   -- JSON: run id, partition, metadata summary
        );
        CREATE TABLE alert_deliveries (
            alert_id VARCHAR NOT NULL,
            notification VARCHAR NOT NULL CHECK (notification IN ('OPENED', 'ESCALATED', 'RESOLVED')),
            sink VARCHAR NOT NULL,
            status VARCHAR NOT NULL CHECK (status IN ('SENT', 'FAILED', 'NOT_CONFIGURED', 'PENDING')),
            attempts INTEGER NOT NULL,
            error VARCHAR,                    -- redacted: never holds a URL or token
            delivered_at TIMESTAMP NOT NULL,  -- UTC, of the latest attempt (or when queued)
            PRIMARY KEY (alert_id, notification, sink)
        )
        """,
    ),
    (
        40,
        "feature_hashes",
        """
        CREATE TABLE feature_hashes (
            table_name VARCHAR NOT NULL,      -- features_<interval>
            symbol VARCHAR NOT NULL,
            partition_key VARCHAR NOT NULL,   -- YYYY-MM-DD, the daily partition
            row_count BIGINT NOT NULL,
            feature_hash VARCHAR NOT NULL,    -- sha256 over the symbol's rows of the day, in ts order
            catalogue_hash VARCHAR NOT NULL,  -- sha256 of the feature catalogue that produced them
            PRIMARY KEY (table_name, symbol, partition_key)
        )
        """,
    ),
    (
        30,
        "raw_trades",
        """
        CREATE TABLE raw_trades (
            symbol VARCHAR NOT NULL,
            ts TIMESTAMP NOT NULL,            -- trade time, UTC, microseconds
            trade_id VARCHAR NOT NULL,
            side VARCHAR,                     -- buy / sell (taker side) where the source has it
            price DOUBLE NOT NULL,            -- quote currency per unit of base
            amount DOUBLE NOT NULL,           -- base-currency units
            provider VARCHAR NOT NULL,
            fetched_at TIMESTAMP NOT NULL,
            fetch_status VARCHAR NOT NULL CHECK (fetch_status IN ('OK', 'DEGRADED')),
            error VARCHAR,
            PRIMARY KEY (symbol, trade_id)
        )
        """,
    ),
    (
        31,
        "signal_ic",
        """
        CREATE TABLE signal_ic (
            day TIMESTAMP NOT NULL,           -- the UTC day (partition) the pairs come from
            signal_name VARCHAR NOT NULL,
            ic DOUBLE,                        -- Pearson, signal at t vs log return of bar t+1
            rank_ic DOUBLE,                   -- Spearman
            n_obs BIGINT NOT NULL,
            PRIMARY KEY (day, signal_name)
        )
        """,
    ),
    (
        32,
        "lookback_status",
        """
        CREATE TABLE lookback_status (
            asset VARCHAR NOT NULL,           -- a daily asset that declares a lookback (lib.lookback)
            partition_key VARCHAR NOT NULL,   -- YYYY-MM-DD
            complete BOOLEAN NOT NULL,        -- every upstream partition its lookback reads was there
            missing_count INTEGER NOT NULL,   -- upstream partitions (days) that were not
            missing VARCHAR NOT NULL,         -- which, e.g. 'raw_candles 2024-05-05'; '' when complete
            lookback VARCHAR NOT NULL,        -- what the asset declares it reads
            PRIMARY KEY (asset, partition_key)
        )
        """,
    ),
    (
        33,
        "signal_validation",
        # The day-pooled IC of next-bar log returns (migration 31) is kept, renamed, with its rows:
        # the cross-sectional validation below measures something else (simple forward returns
        # per horizon, across symbols per bar) and does not reinterpret it.
        """
        ALTER TABLE signal_ic RENAME TO signal_ic_daily_v1;
        CREATE TABLE signal_ic (
            ts TIMESTAMP NOT NULL,            -- the bar whose close the value is known at
            signal_name VARCHAR NOT NULL,     -- a signal rule or a factor
            kind VARCHAR NOT NULL CHECK (kind IN ('rule', 'factor')),
            horizon INTEGER NOT NULL,         -- bars ahead: forward return close[t+h]/close[t]-1
            ic DOUBLE NOT NULL,               -- Pearson across symbols at the bar
            rank_ic DOUBLE NOT NULL,          -- Spearman (average ranks)
            n_assets INTEGER NOT NULL,
            PRIMARY KEY (ts, signal_name, horizon)
        );
        CREATE TABLE signal_ic_pooled (
            day TIMESTAMP NOT NULL,           -- the UTC day whose (symbol, bar) pairs are pooled
            signal_name VARCHAR NOT NULL,
            kind VARCHAR NOT NULL CHECK (kind IN ('rule', 'factor')),
            horizon INTEGER NOT NULL,
            ic DOUBLE,                        -- time-series IC, NULL when undefined
            rank_ic DOUBLE,
            n_obs BIGINT NOT NULL,
            PRIMARY KEY (day, signal_name, horizon)
        );
        CREATE TABLE quantile_bar_returns (
            ts TIMESTAMP NOT NULL,
            signal_name VARCHAR NOT NULL,
            kind VARCHAR NOT NULL CHECK (kind IN ('rule', 'factor')),
            horizon INTEGER NOT NULL,
            quantile INTEGER NOT NULL,        -- 1 = lowest values
            mean_return DOUBLE NOT NULL,      -- forward return demeaned by the bar's cross-sectional mean
            n_assets INTEGER NOT NULL,
            PRIMARY KEY (ts, signal_name, horizon, quantile)
        );
        CREATE TABLE signal_turnover (
            ts TIMESTAMP NOT NULL,
            signal_name VARCHAR NOT NULL,
            kind VARCHAR NOT NULL CHECK (kind IN ('rule', 'factor')),
            rank_autocorr DOUBLE,             -- ranks at ts vs the previous grid bar
            turnover_top DOUBLE,              -- share of the top quantile new since the previous bar
            turnover_bottom DOUBLE,
            PRIMARY KEY (ts, signal_name)
        );
        """,
    ),
    (
        34,
        "backtests_research_ii",
        # The one-rule, one-cost-mode backtest tables of migration 4 are kept, renamed, with their
        # rows: the walk-forward below has cost modes, strategies and positions they do not.
        """
        ALTER TABLE backtest_folds RENAME TO backtest_folds_v1;
        ALTER TABLE backtest_pnl RENAME TO backtest_pnl_v1;
        CREATE TABLE backtest_folds (
            day TIMESTAMP NOT NULL,           -- the out-of-sample day (partition)
            cost_mode VARCHAR NOT NULL CHECK (cost_mode IN ('clean', 'realistic')),
            fold VARCHAR,                     -- the fold's first test day, YYYY-MM-DD; NULL: in no fold
            status VARCHAR NOT NULL CHECK (status IN ('OK', 'SKIPPED_INSUFFICIENT_HISTORY', 'NOT_IN_FOLD',
                                                      'INCOMPLETE_LOOKBACK')),
            train_start TIMESTAMP, train_end TIMESTAMP, test_start TIMESTAMP, test_end TIMESTAMP,
            train_days_available INTEGER NOT NULL,
            candidates_tried INTEGER NOT NULL,
            selected_strategy VARCHAR, selected_kind VARCHAR,
            train_sharpe DOUBLE,              -- annualised, over the training bars
            leverage DOUBLE,                  -- 1, or the fractional Kelly leverage (backtest.sizing = kelly)
            n_bars INTEGER NOT NULL,
            gross_return DOUBLE, cost DOUBLE, total_return DOUBLE,  -- the day's, fractions
            turnover DOUBLE, hit_rate DOUBLE, max_drawdown DOUBLE,
            sharpe DOUBLE, sortino DOUBLE, calmar DOUBLE, cagr DOUBLE, annual_volatility DOUBLE,
            capped_trades INTEGER NOT NULL,
            benchmark_market_return DOUBLE, benchmark_equal_weight_return DOUBLE,
            null_reason VARCHAR,              -- why a figure is NULL
            PRIMARY KEY (day, cost_mode)
        );
        CREATE TABLE backtest_pnl (
            ts TIMESTAMP NOT NULL,            -- bar open time; returns earned over [ts, ts + bar)
            cost_mode VARCHAR NOT NULL,
            fold VARCHAR NOT NULL,
            strategy VARCHAR NOT NULL,
            gross_return DOUBLE NOT NULL, cost DOUBLE NOT NULL, net_return DOUBLE NOT NULL,
            turnover DOUBLE NOT NULL, gross_exposure DOUBLE NOT NULL, net_exposure DOUBLE NOT NULL,
            capped INTEGER NOT NULL,          -- symbols whose trade the participation cap cut
            benchmark_market DOUBLE, benchmark_equal_weight DOUBLE NOT NULL,
            PRIMARY KEY (ts, cost_mode)
        );
        CREATE TABLE backtest_positions (
            ts TIMESTAMP NOT NULL, cost_mode VARCHAR NOT NULL, fold VARCHAR NOT NULL,
            strategy VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
            signal_ts TIMESTAMP NOT NULL,     -- the bar whose close the target was decided at
            target_weight DOUBLE,             -- NULL: no rebalance at this bar (the weight drifts)
            pre_trade_weight DOUBLE NOT NULL, weight DOUBLE NOT NULL,
            PRIMARY KEY (ts, cost_mode, symbol)
        );
        CREATE TABLE backtest_strategy_returns (
            ts TIMESTAMP NOT NULL, cost_mode VARCHAR NOT NULL, fold VARCHAR NOT NULL,
            strategy VARCHAR NOT NULL, kind VARCHAR NOT NULL,
            gross_return DOUBLE NOT NULL, net_return DOUBLE NOT NULL, turnover DOUBLE NOT NULL,
            PRIMARY KEY (ts, cost_mode, strategy)
        );
        CREATE TABLE portfolio_weights (
            ts TIMESTAMP NOT NULL,            -- first bar the weights are held (decided at its open)
            fold VARCHAR NOT NULL, strategy VARCHAR NOT NULL,
            mode VARCHAR NOT NULL CHECK (mode IN ('long_only', 'market_neutral')),
            symbol VARCHAR NOT NULL, weight DOUBLE NOT NULL,
            solver VARCHAR NOT NULL, status VARCHAR NOT NULL,
            PRIMARY KEY (ts, strategy, symbol)
        );
        CREATE TABLE backtest_trials (
            universe VARCHAR NOT NULL,        -- hash of the symbols and the bar interval
            bar_interval VARCHAR NOT NULL,
            strategy VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            config_json VARCHAR NOT NULL,     -- what defines the configuration
            first_day TIMESTAMP NOT NULL,     -- the earliest fold day it was evaluated on
            PRIMARY KEY (universe, bar_interval, config_json)
        );
        CREATE TABLE signal_calibration (
            day TIMESTAMP NOT NULL, fold VARCHAR NOT NULL, signal_name VARCHAR NOT NULL,
            method VARCHAR NOT NULL, bucket INTEGER NOT NULL,
            lower DOUBLE NOT NULL, upper DOUBLE NOT NULL, n BIGINT NOT NULL,
            predicted_mean DOUBLE NOT NULL, realised_rate DOUBLE NOT NULL,
            brier DOUBLE NOT NULL, log_loss DOUBLE NOT NULL, base_rate_brier DOUBLE NOT NULL,
            n_train BIGINT NOT NULL, n_test BIGINT NOT NULL,
            PRIMARY KEY (day, signal_name, bucket)
        );
        """,
    ),
    (
        35,
        "reproducibility_runs",
        """
        CREATE TABLE reproducibility_runs (
            day TIMESTAMP NOT NULL PRIMARY KEY,   -- the out-of-sample day verified
            mode VARCHAR NOT NULL CHECK (mode IN ('strict', 'warn', 'trust')),
            status VARCHAR NOT NULL CHECK (status IN ('MATCH', 'MISMATCH', 'SKIPPED', 'NO_RESULT')),
            max_abs_diff DOUBLE,                  -- largest stored vs recomputed difference
            first_mismatch VARCHAR,               -- the first changed input partition, or output value
            checked_at TIMESTAMP NOT NULL         -- when (kept when a re-check finds the same)
        );
        """,
    ),
    (
        36,
        "experiment_registry",
        """
        ALTER TABLE experiment_registry RENAME TO experiment_registry_v1;  -- per-fold rows, kept as they were
        CREATE TABLE experiment_registry (
            experiment_id VARCHAR NOT NULL PRIMARY KEY,  -- quant.experiments: hypothesis, strategy config,
            cost_mode VARCHAR NOT NULL,                  --   universe, interval, cost mode
            hypothesis VARCHAR NOT NULL,
            config_json VARCHAR NOT NULL,
            universe VARCHAR NOT NULL, bar_interval VARCHAR NOT NULL,
            first_run TIMESTAMP NOT NULL, last_run TIMESTAMP NOT NULL,  -- first and latest registration
            folds INTEGER NOT NULL, first_day TIMESTAMP, last_day TIMESTAMP,  -- out-of-sample days traded
            gross_return DOUBLE, net_return DOUBLE, sharpe DOUBLE, psr DOUBLE, dsr DOUBLE, pbo DOUBLE,
            n_trials INTEGER NOT NULL,                   -- the trials the DSR deflates by
            reproduced INTEGER NOT NULL, mismatched INTEGER NOT NULL, unverified INTEGER NOT NULL,
            stale_days INTEGER NOT NULL,
            status VARCHAR NOT NULL,                     -- REPRODUCED, MISMATCH, STALE, UNVERIFIED
            git_commit VARCHAR, git_dirty BOOLEAN,
            manifest_hash VARCHAR NOT NULL, manifest_path VARCHAR NOT NULL
        );
        CREATE TABLE experiment_folds (                  -- every day an experiment traded, kept when
            experiment_id VARCHAR NOT NULL,              -- a later experiment re-runs the day
            day TIMESTAMP NOT NULL,
            cost_mode VARCHAR NOT NULL,
            manifest_hash VARCHAR NOT NULL, manifest_path VARCHAR NOT NULL,
            selected_strategy VARCHAR, net_return DOUBLE,
            PRIMARY KEY (experiment_id, day)
        );
        CREATE TABLE manifest_inputs (                   -- the input partitions each day's manifest recorded
            day TIMESTAMP NOT NULL,
            table_name VARCHAR NOT NULL, input_partition VARCHAR NOT NULL,
            row_count BIGINT NOT NULL, content_hash VARCHAR NOT NULL,
            PRIMARY KEY (day, table_name, input_partition)
        );
        CREATE VIEW manifest_staleness AS                -- a recorded input whose content changed since
        SELECT i.day, i.table_name, i.input_partition,
               i.content_hash AS recorded_hash, h.content_hash AS current_hash
        FROM manifest_inputs AS i
        LEFT JOIN partition_hashes AS h ON h.table_name = i.table_name AND h.partition_key = i.input_partition
        WHERE h.content_hash IS DISTINCT FROM i.content_hash;
        CREATE TABLE backtest_trials_v2 (
            universe VARCHAR NOT NULL, bar_interval VARCHAR NOT NULL,
            cost_mode VARCHAR NOT NULL,       -- a configuration is one trial per cost mode
            strategy VARCHAR NOT NULL, kind VARCHAR NOT NULL,
            config_json VARCHAR NOT NULL,     -- the strategy and the walk-forward settings it was evaluated with
            experiment_id VARCHAR,            -- the experiment that first evaluated it (NULL before migration 36)
            first_day TIMESTAMP NOT NULL,
            PRIMARY KEY (universe, bar_interval, cost_mode, config_json)
        );
        INSERT INTO backtest_trials_v2
        SELECT t.universe, t.bar_interval, m.cost_mode, t.strategy, t.kind, t.config_json, NULL, t.first_day
        FROM backtest_trials AS t CROSS JOIN (VALUES ('clean'), ('realistic')) AS m(cost_mode);
        DROP TABLE backtest_trials;
        ALTER TABLE backtest_trials_v2 RENAME TO backtest_trials;
        ALTER TABLE backtest_manifest ADD COLUMN experiment_ids VARCHAR;  -- {"clean": id, "realistic": id}
        CREATE TABLE alerts_v2 (
            alert_id VARCHAR NOT NULL PRIMARY KEY,
            alert_key VARCHAR NOT NULL,
            source VARCHAR NOT NULL CHECK (source IN ('asset_check', 'run', 'provider', 'governance')),
            severity VARCHAR NOT NULL CHECK (severity IN ('WARN', 'ERROR', 'CRITICAL')),
            status VARCHAR NOT NULL CHECK (status IN ('OPEN', 'RESOLVED')),
            message VARCHAR NOT NULL, first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL,
            occurrences INTEGER NOT NULL, resolved_at TIMESTAMP,
            webhook_status VARCHAR NOT NULL, telegram_status VARCHAR NOT NULL, details VARCHAR
        );
        INSERT INTO alerts_v2 SELECT * FROM alerts;  -- governance (stale results) may alert too
        DROP TABLE alerts;
        ALTER TABLE alerts_v2 RENAME TO alerts;
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
        with transaction(conn):
            conn.execute(ddl)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", [version, name])
        applied.append(version)
    return applied

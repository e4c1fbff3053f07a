"""Quality gates of the walk-forward tables that need settings (the SQL ones live in dbt_like_sql/tests)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import duckdb

from quant_assets.config import INTERVAL_MINUTES, Settings
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.quant.calendar import Window
from quant_assets.resources.tables import table_exists

TOLERANCE = 1e-8


def backtest_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    pf = settings.portfolio
    step = timedelta(minutes=INTERVAL_MINUTES[settings.features.interval])
    n_symbols = len(settings.symbols)

    @daily_check(settings, asset="portfolio_weights", name="portfolio_weights_valid", description=(
        f"Every rebalance's weights are finite, within the cap ({pf.cap}) to {TOLERANCE}, sum to 1 (long-only) or "
        f"0 (market-neutral) within {TOLERANCE} with sum |w| <= gross ({pf.gross}); a solve that failed holds the "
        "previous weights or none (flat) and says so in its status; every symbol has a row."))
    def portfolio_weights_valid(conn: duckdb.DuckDBPyConnection, day: Window) -> Verdict:
        rows = conn.execute("""
            SELECT count(*) FROM (
                SELECT ts, strategy, any_value(mode) AS mode, any_value(status) AS status, count(*) AS n,
                       sum(weight) AS total, sum(abs(weight)) AS gross, max(abs(weight)) AS largest,
                       bool_and(isfinite(weight)) AS finite
                FROM portfolio_weights WHERE ts >= ? AND ts < ? GROUP BY ts, strategy
            )
            WHERE n <> ? OR NOT finite OR largest > ? + ?
               OR (gross > ? AND (mode = 'long_only' AND abs(total - 1) > ? OR mode = 'market_neutral' AND abs(total) > ?))
               OR (mode = 'market_neutral' AND gross > ? + ?)
               OR (mode = 'long_only' AND gross <= ? AND status LIKE 'optimal%')
        """, [*day, n_symbols, pf.cap, TOLERANCE, TOLERANCE, TOLERANCE, TOLERANCE, pf.gross, TOLERANCE,
              TOLERANCE]).fetchone()[0]
        return Verdict(rows == 0, {"invalid_rebalances": rows})

    @daily_check(settings, asset="backtest_positions", name="backtest_positions_causal", description=(
        "Positions at bar t use only what was known at the close of bar t-1: every row's signal_ts is exactly one "
        "bar before its ts; a signal strategy's target equals its signal at signal_ts / N x the fold's leverage "
        "(to 1e-12); a portfolio's target equals the portfolio_weights row held from ts, where it rebalanced; "
        "targets respect the gross limit."))
    def backtest_positions_causal(conn: duckdb.DuckDBPyConnection, day: Window) -> Verdict:
        early = conn.execute("SELECT count(*) FROM backtest_positions WHERE ts >= ? AND ts < ? AND signal_ts <> ts - ?",
                             [*day, step]).fetchone()[0]
        rule_mismatch = conn.execute("""
            SELECT count(*) FROM backtest_positions p
            JOIN backtest_folds f ON f.day = date_trunc('day', p.ts) AND f.cost_mode = p.cost_mode
            LEFT JOIN signals s ON s.signal_name = p.strategy AND s.symbol = p.symbol AND s.ts = p.signal_ts
            WHERE p.ts >= ? AND p.ts < ? AND f.selected_kind = 'rule'
              AND abs(p.target_weight - coalesce(s.value, 0) / ? * f.leverage) > 1e-12
        """, [*day, n_symbols]).fetchone()[0]
        portfolio_mismatch = 0
        if table_exists(conn, "portfolio_weights"):
            portfolio_mismatch = conn.execute("""
                SELECT count(*) FROM backtest_positions p
                JOIN backtest_folds f ON f.day = date_trunc('day', p.ts) AND f.cost_mode = p.cost_mode
                JOIN portfolio_weights w ON w.strategy = p.strategy AND w.symbol = p.symbol AND w.ts = p.ts
                WHERE p.ts >= ? AND p.ts < ? AND f.selected_kind = 'portfolio'
                  AND abs(p.target_weight - w.weight * f.leverage) > 1e-12
            """, list(day)).fetchone()[0]
        limit = max(1.0, pf.gross) * max(1.0, pf.max_leverage)
        over = conn.execute("""
            SELECT count(*) FROM (SELECT ts, cost_mode, sum(abs(target_weight)) AS g FROM backtest_positions
                                  WHERE ts >= ? AND ts < ? GROUP BY ALL) WHERE g > ? + ?
        """, [*day, limit, TOLERANCE]).fetchone()[0]
        passed = early == 0 and rule_mismatch == 0 and portfolio_mismatch == 0 and over == 0
        return Verdict(passed, {"signal_ts_not_previous_bar": early, "rule_target_mismatch": rule_mismatch,
                                "portfolio_target_mismatch": portfolio_mismatch, "over_gross_limit": over})

    @daily_check(settings, asset="backtest_folds", name="backtest_folds_split", description=(
        "No fold's training window overlaps its test window: for every traded day, train_start < train_end <= "
        "test_start <= day < test_end, and the fold is one of the calendar's (backtest.test_days, step_days)."))
    def backtest_folds_split(conn: duckdb.DuckDBPyConnection, day: Window) -> Verdict:
        bad = conn.execute("""
            SELECT count(*) FROM backtest_folds WHERE day >= ? AND day < ? AND status = 'OK'
              AND NOT (train_start < train_end AND train_end <= test_start AND test_start <= day AND day < test_end
                       AND fold = strftime(test_start, '%Y-%m-%d'))
        """, list(day)).fetchone()[0]
        return Verdict(bad == 0, {"overlapping_or_misplaced_folds": bad})

    @daily_check(settings, asset="signal_calibration", name="signal_calibration_valid", description=(
        "Reliability buckets lie in [0, 1] with lower < upper, hold at least one pair, predicted means within their "
        "bucket and realised rates in [0, 1]; Brier scores in [0, 1]; log losses finite and >= 0."))
    def signal_calibration_valid(conn: duckdb.DuckDBPyConnection, day: Window) -> Verdict:
        bad = conn.execute("""
            SELECT count(*) FROM signal_calibration WHERE day >= ? AND day < ?
              AND NOT (lower >= 0 AND upper <= 1 AND lower < upper AND n >= 1
                       AND predicted_mean BETWEEN lower - 1e-12 AND upper + 1e-12
                       AND realised_rate BETWEEN 0 AND 1 AND brier BETWEEN 0 AND 1 AND base_rate_brier BETWEEN 0 AND 1
                       AND isfinite(log_loss) AND log_loss >= 0)
        """, list(day)).fetchone()[0]
        return Verdict(bad == 0, {"invalid_rows": bad})

    return [portfolio_weights_valid, backtest_positions_causal, backtest_folds_split, signal_calibration_valid]

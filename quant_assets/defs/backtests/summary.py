"""The backtest over its whole out-of-sample path: gross and net, benchmarks, PSR, DSR, PBO and
the bootstrap interval of the Sharpe (core in ``quant.backtest_statistics``).

Unpartitioned: recomputed from the per-bar tables whenever they change, rows read in time order,
so it never depends on which runs built them. ``quant report`` prints it.
"""


import math
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import polars as pl

from quant_assets.config import Settings, bars_per_year
from quant_assets.defs.backtests.setup import universe_hash
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.lib.plots import equity_comparison_png, histogram_png
from quant_assets.quant.backtest_statistics import (
    WALK_FORWARD,
    StatisticsSetup,
    summarise,
    verdict_words,
)
from quant_assets.quant.walk_forward import COST_MODES
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import (
    preview_markdown,
    query_frame,
    registered,
    table_exists,
    transaction,
)


def statistics_setup(settings: Settings) -> StatisticsSetup:
    bt = settings.backtest
    return StatisticsSetup(bars_per_year(settings.features.interval), bt.min_bars_for_sharpe, bt.bootstrap_samples,
                           bt.bootstrap_block_bars, bt.bootstrap_seed, bt.pbo_splits)


def n_trials(conn: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, int]:
    """Per cost mode: configurations ever evaluated on this universe and interval (the trial registry)."""
    if not table_exists(conn, "backtest_trials"):
        return {}
    return dict(conn.execute(
        "SELECT cost_mode, count(*) FROM backtest_trials WHERE universe = ? AND bar_interval = ? GROUP BY cost_mode",
        [universe_hash(settings), settings.features.interval]).fetchall())


def summary_frames(conn: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, Any]:
    """``backtest_summary`` rows, ``backtest_pbo`` rows and the curves the pictures draw."""
    if not table_exists(conn, "backtest_pnl") or not table_exists(conn, "backtest_strategy_returns"):
        return {}
    pnl = query_frame(conn, "SELECT * FROM backtest_pnl ORDER BY cost_mode, ts")
    trials = query_frame(conn, "SELECT ts, cost_mode, strategy, gross_return, net_return, turnover "
                               "FROM backtest_strategy_returns ORDER BY cost_mode, strategy, ts")
    if pnl.is_empty():
        return {}
    summary, pbo, curves = summarise(pnl, trials, n_trials(conn, settings), statistics_setup(settings))
    return {"backtest_summary": summary, "backtest_pbo": pbo, "curves": curves}


def _replace(conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    with registered(conn, "_summary_rows", frame):
        conn.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _summary_rows")


def build_summary(settings: Settings) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec("backtest_summary", group_name="backtests", kinds={"python", "duckdb"},
                     deps=["backtest_pnl", "backtest_strategy_returns", "backtest_folds"],
                     description=(
                         "Per cost mode, over the whole out-of-sample path: the walk-forward (the strategy each fold "
                         "selected), the buy-and-hold benchmarks and every strategy tried. Gross and net total "
                         "return, costs, annualised Sharpe/Sortino/volatility/CAGR (365-day year; only with "
                         f"{settings.backtest.min_bars_for_sharpe}+ bars), bar-level max drawdown, Calmar, turnover, "
                         "hit rate; PSR against 0, DSR with n_trials from the trial registry (every configuration "
                         "ever tried on this universe and interval) and the variance of the trials' Sharpes, MinTRL "
                         "(bars), PBO by CSCV over the trials, and a seeded stationary block-bootstrap 95% interval "
                         "of the Sharpe. NULL figures say why in null_reason.")),
        dg.AssetSpec("backtest_pbo", group_name="backtests", kinds={"python", "duckdb"},
                     deps=["backtest_strategy_returns"],
                     description=("Per cost mode and CSCV split: the logit of the in-sample best strategy's "
                                  "out-of-sample relative rank, and its in- and out-of-sample per-bar Sharpe "
                                  "(PBO = share of logits <= 0).")),
    ]

    @dg.multi_asset(name="backtest_report", specs=specs, pool="duckdb")
    def backtest_report(context: dg.AssetExecutionContext, duckdb: QuantDuckDB):
        with duckdb.connect() as conn:
            frames = summary_frames(conn, settings)
            with transaction(conn):
                for table in ("backtest_summary", "backtest_pbo"):
                    if table in frames:
                        _replace(conn, table, frames[table])
                    else:
                        conn.execute(f"DROP TABLE IF EXISTS {table}")
        summary = frames.get("backtest_summary", pl.DataFrame())
        metadata: dict[str, Any] = {"dagster/row_count": summary.height}
        if summary.height:
            main = summary.filter(pl.col("role") != "trial")
            metadata["summary"] = dg.MetadataValue.md(preview_markdown(main.select(
                "cost_mode", "strategy", "n_bars", "gross_total_return", "total_return", "sharpe", "max_drawdown",
                "psr", "dsr", "n_trials", "pbo", "sharpe_ci_low", "sharpe_ci_high"), 20))
            realistic = summary.filter((pl.col("strategy") == WALK_FORWARD) & (pl.col("cost_mode") == "realistic"))
            if realistic.height:
                r = realistic.row(0, named=True)
                metadata["verdict"] = verdict_words(r["dsr"], r["pbo"])
                for key in ("sharpe", "dsr", "pbo", "total_return", "gross_total_return", "n_trials"):
                    if r[key] is not None:
                        metadata[f"realistic_{key}"] = r[key]
            curves = frames["curves"]
            times = curves.pop("_ts")
            metadata["equity_curves"] = dg.MetadataValue.md(equity_comparison_png(
                times, {k: v.tolist() for k, v in curves.items()},
                f"Out-of-sample equity {times[0]:%Y-%m-%d}..{times[-1]:%Y-%m-%d}: gross, net, benchmarks"))
        yield dg.MaterializeResult(asset_key="backtest_summary", metadata=metadata)
        pbo = frames.get("backtest_pbo", pl.DataFrame())
        pbo_meta: dict[str, Any] = {"dagster/row_count": pbo.height}
        for mode in COST_MODES:
            logits = pbo.filter(pl.col("cost_mode") == mode)["logit"].to_list() if pbo.height else []
            if logits:
                share = float(np.mean(np.asarray(logits) <= 0))
                pbo_meta[f"pbo_{mode}"] = share
                pbo_meta[f"logit_histogram_{mode}"] = dg.MetadataValue.md(histogram_png(
                    logits, f"CSCV logits ({mode} costs): PBO = {share:.2f}", "logit of OOS relative rank", 0.0))
        yield dg.MaterializeResult(asset_key="backtest_pbo", metadata=pbo_meta)

    return backtest_report


def summary_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    @daily_check(settings, asset="backtest_summary", name="backtest_summary_finite", partitioned=False,
                 description=("Every statistic of backtest_summary is finite or NULL with a reason (null_reason); "
                              "PSR, DSR and PBO lie in [0, 1]; the bootstrap interval is ordered; one row per "
                              "cost mode and strategy."))
    def backtest_summary_finite(conn: duckdb.DuckDBPyConnection, _window) -> Verdict:
        if not table_exists(conn, "backtest_summary"):
            return Verdict(True, {"rows": 0})
        numeric = ["sharpe", "sortino", "calmar", "cagr", "annual_volatility", "psr", "dsr", "pbo",
                   "sharpe_ci_low", "sharpe_ci_high", "max_drawdown", "total_return"]
        not_finite = " OR ".join(f"NOT isfinite(coalesce({c}, 0))" for c in numeric)
        unexplained = " OR ".join(f"{c} IS NULL" for c in ("sharpe", "psr", "dsr", "pbo"))
        bad = conn.execute(f"""
            SELECT count(*) FROM backtest_summary
            WHERE {not_finite}
               OR (role <> 'benchmark' AND ({unexplained}) AND null_reason IS NULL)
               OR (role = 'benchmark' AND sharpe IS NULL AND null_reason IS NULL)
               OR NOT (coalesce(psr, 0) BETWEEN 0 AND 1) OR NOT (coalesce(dsr, 0) BETWEEN 0 AND 1)
               OR NOT (coalesce(pbo, 0) BETWEEN 0 AND 1) OR sharpe_ci_low > sharpe_ci_high
        """).fetchone()[0]
        dupes = conn.execute("SELECT count(*) - count(DISTINCT (cost_mode, strategy)) FROM backtest_summary").fetchone()[0]
        return Verdict(bad == 0 and dupes == 0, {"invalid_rows": bad, "duplicate_keys": dupes})

    @daily_check(settings, asset="backtest_pbo", name="backtest_pbo_consistent", partitioned=False,
                 description=("Per cost mode the CSCV has all C(S, S/2) splits (S = backtest.pbo_splits), finite "
                              "logits, and the share of logits <= 0 equals the walk-forward's PBO in backtest_summary."))
    def backtest_pbo_consistent(conn: duckdb.DuckDBPyConnection, _window) -> Verdict:
        if not table_exists(conn, "backtest_pbo") or not table_exists(conn, "backtest_summary"):
            return Verdict(True, {"rows": 0})
        splits = math.comb(settings.backtest.pbo_splits, settings.backtest.pbo_splits // 2)
        bad = conn.execute("""
            SELECT count(*) FROM (
                SELECT cost_mode, count(*) AS n, bool_and(isfinite(logit)) AS finite, avg((logit <= 0)::INT) AS share
                FROM backtest_pbo GROUP BY ALL
            ) AS p LEFT JOIN backtest_summary AS s ON s.cost_mode = p.cost_mode AND s.role = 'selected'
            WHERE p.n <> ? OR NOT p.finite OR s.pbo IS NULL OR abs(p.share - s.pbo) > 1e-12
        """, [splits]).fetchone()[0]
        return Verdict(bad == 0, {"inconsistent_cost_modes": bad, "splits_expected": splits})

    return [backtest_summary_finite, backtest_pbo_consistent]

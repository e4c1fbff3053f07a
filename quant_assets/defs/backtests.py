"""Walk-forward backtest: each daily partition is one fold whose out-of-sample window is that day.

The fold trains on the ``train_days`` days before it (rule selection by in-sample Sharpe) and
trades the chosen EMA-crossover rule on its day only, with next-bar execution, fees and
slippage. Folds with fewer than ``min_train_days`` days of signals are recorded as skipped.
"""


import math
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import numpy as np
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings, bars_per_year
from quant_assets.partitions import daily_partitions, training_window_mapping, window_of
from quant_assets.quant.walk_forward import SKIPPED, run_fold
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import (
    ident,
    preview_markdown,
    query_frame,
    record_partition_hashes,
    replace_window,
)

FOLD_COLUMNS = (
    "fold", "status", "train_start", "train_end", "test_start", "test_end", "train_days_available",
    "selected_signal", "train_sharpe", "candidates_tried", "sharpe", "sortino", "max_drawdown",
    "total_return", "hit_rate", "turnover", "n_bars", "fee_bps", "slippage_bps",
)


def _finite_or_none(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _bar_grid(start: datetime, end: datetime, minutes: int) -> pl.Series:
    return pl.datetime_range(start, end, timedelta(minutes=minutes), closed="left", eager=True, time_unit="us")


def load_panel(
    conn: Any, settings: Settings, start: datetime, end: datetime
) -> tuple[pl.Series, np.ndarray, dict[str, np.ndarray]]:
    """Bar grid ``[start, end)``, (T, N) simple returns and (T, N) signals per candidate."""
    interval = settings.features.interval
    grid = _bar_grid(start, end, INTERVAL_MINUTES[interval])
    symbols = list(settings.symbols)
    frame = pl.DataFrame({"ts": grid})
    bars = query_frame(conn,
        f"SELECT symbol, ts, exp(log_return) - 1 AS ret FROM {ident('bars_' + interval)} "
        "WHERE ts >= ? AND ts < ? AND list_contains(?, symbol)",
        [start, end, symbols],
    )
    returns = _wide(frame, bars, "ret", symbols)
    signals = query_frame(conn,
        "SELECT signal_name, symbol, ts, value FROM signals WHERE ts >= ? AND ts < ? AND list_contains(?, symbol)",
        [start, end, symbols],
    )
    names = [f"ema_cross_{fast}_{slow}" for fast, slow in settings.signals.ema_pairs]
    candidates = {
        name: _wide(frame, signals.filter(pl.col("signal_name") == name), "value", symbols) for name in names
    }
    return grid, returns, candidates


def _wide(grid: pl.DataFrame, long: pl.DataFrame, value: str, symbols: list[str]) -> np.ndarray:
    """(T, N) float array on ``grid`` with symbols in the given order; missing -> NaN."""
    if long.is_empty():
        return np.full((grid.height, len(symbols)), np.nan)
    pivot = long.pivot(on="symbol", index="ts", values=value)
    joined = grid.join(pivot, on="ts", how="left")
    columns = [joined[s] if s in joined.columns else pl.Series(s, [None] * grid.height) for s in symbols]
    return np.column_stack([c.cast(pl.Float64).fill_null(np.nan).to_numpy() for c in columns])


def build_backtest(settings: Settings) -> dg.AssetsDefinition:
    bt = settings.backtest
    interval = settings.features.interval
    per_year = bars_per_year(interval)
    step = timedelta(minutes=INTERVAL_MINUTES[interval])
    partitions = daily_partitions(settings)
    mapping = training_window_mapping(settings)

    @dg.multi_asset(
        name="walk_forward_backtest",
        specs=[
            dg.AssetSpec(
                "backtest_folds",
                group_name="backtests",
                description=(
                    "One row per walk-forward fold (the out-of-sample day): the EMA-crossover rule chosen "
                    f"by Sharpe over the previous {bt.train_days} days, and its out-of-sample Sharpe, "
                    "Sortino, max drawdown, total return, hit rate and turnover after "
                    f"{bt.fee_bps} bps fees + {bt.slippage_bps} bps slippage."
                ),
                deps=[dg.AssetDep("signals", partition_mapping=mapping),
                      dg.AssetDep(f"bars_{interval}", partition_mapping=mapping)],
                kinds={"python", "numpy", "duckdb"},
                metadata={"table": "backtest_folds"},
            ),
            dg.AssetSpec(
                "backtest_pnl",
                group_name="backtests",
                description=(
                    f"Out-of-sample per-bar portfolio returns of the walk-forward backtest on {interval} bars: "
                    "gross, cost, net, turnover and gross exposure. Positions follow the signal of the "
                    "previous bar (next-bar execution), equal risk budget across symbols."
                ),
                deps=[dg.AssetDep("signals", partition_mapping=mapping),
                      dg.AssetDep(f"bars_{interval}", partition_mapping=mapping)],
                kinds={"python", "numpy", "duckdb"},
                metadata={"table": "backtest_pnl"},
            ),
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="duckdb",
    )
    def walk_forward_backtest(context: dg.AssetExecutionContext, duckdb: QuantDuckDB):
        start, end = window_of(context)
        first_train = start - timedelta(days=bt.train_days)
        with duckdb.connect() as conn:
            grid, returns, candidates = load_panel(conn, settings, first_train - step, end)
            folds, pnl = [], []
            day = start
            while day < end:
                fold, bars = _one_fold(day, grid, returns, candidates, settings, per_year, step)
                folds.append(fold)
                if bars is not None:
                    pnl.append(bars)
                day += timedelta(days=1)
            folds_frame = pl.DataFrame(folds, schema_overrides=_FOLD_SCHEMA, orient="row").select(FOLD_COLUMNS)
            pnl_frame = pl.concat(pnl) if pnl else pl.DataFrame(schema=_PNL_SCHEMA)
            replace_window(conn, "backtest_folds", folds_frame, start, end, time_column="test_start")
            replace_window(conn, "backtest_pnl", pnl_frame, start, end)
            params = {"backtest": bt.__dict__, "interval": interval, "pairs": settings.signals.ema_pairs}
            record_partition_hashes(conn, "backtest_folds", "backtest_folds", start, end, params, "test_start")
            record_partition_hashes(conn, "backtest_pnl", "backtest_pnl", start, end, params)
            history = query_frame(conn,
                "SELECT CAST(ts AS DATE) AS day, sum(ln(1 + net_return)) AS log_return "
                "FROM backtest_pnl WHERE ts < ? GROUP BY ALL ORDER BY day", [end],
            )
        ok = folds_frame.filter(pl.col("status") == "OK")
        yield dg.MaterializeResult(
            asset_key="backtest_folds",
            metadata={
                "dagster/row_count": folds_frame.height,
                "folds_ok": ok.height,
                "folds_skipped": folds_frame.height - ok.height,
                "mean_fold_sharpe": float(ok["sharpe"].drop_nulls().mean() or 0.0) if ok.height else 0.0,
                "preview": dg.MetadataValue.md(preview_markdown(folds_frame.tail(10))),
            },
        )
        yield dg.MaterializeResult(
            asset_key="backtest_pnl",
            metadata={
                "dagster/row_count": pnl_frame.height,
                "oos_total_return": float((pnl_frame["net_return"] + 1).product() - 1) if pnl_frame.height else 0.0,
                **equity_metadata(history),
                "preview": dg.MetadataValue.md(preview_markdown(pnl_frame.tail(10))),
            },
        )

    return walk_forward_backtest


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One character per value, scaled between the series' min and max."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / span * len(SPARK)))] for v in values)


def equity_metadata(daily: pl.DataFrame, last: int = 30) -> dict[str, Any]:
    """The out-of-sample equity curve up to this window's end, for the UI.

    ``daily`` holds ``day`` and the day's summed log net return. Equity starts at 1.0 before
    the first out-of-sample day; drawdown is 1 - equity / running peak. Numeric entries
    (``equity_to_date``, ``max_drawdown_to_date``) are plotted by the UI across partitions.
    """
    if daily.is_empty():
        return {"oos_days_to_date": 0}
    curve = daily.with_columns(equity=pl.col("log_return").cum_sum().exp()).with_columns(
        daily_return=pl.col("log_return").exp() - 1,
        drawdown=1 - pl.col("equity") / pl.col("equity").cum_max().clip(lower_bound=1.0),
    )
    tail = curve.tail(last)
    rows = ["| day | daily return | equity | drawdown |", "|---|---|---|---|"]
    rows += [f"| {d} | {r:+.4%} | {e:.4f} | {dd:.2%} |"
             for d, r, e, dd in tail.select("day", "daily_return", "equity", "drawdown").iter_rows()]
    text = f"`{sparkline(tail['equity'].to_list())}` equity, last {tail.height} days\n\n" + "\n".join(rows)
    return {
        "oos_days_to_date": curve.height,
        "equity_to_date": float(curve["equity"][-1]),
        "max_drawdown_to_date": float(curve["drawdown"].max()),
        "equity_curve": dg.MetadataValue.md(text),
    }


_FOLD_SCHEMA = {
    "fold": pl.Utf8, "status": pl.Utf8, "train_start": pl.Datetime("us"), "train_end": pl.Datetime("us"),
    "test_start": pl.Datetime("us"), "test_end": pl.Datetime("us"), "train_days_available": pl.Int32,
    "selected_signal": pl.Utf8, "train_sharpe": pl.Float64, "candidates_tried": pl.Int32,
    "sharpe": pl.Float64, "sortino": pl.Float64, "max_drawdown": pl.Float64, "total_return": pl.Float64,
    "hit_rate": pl.Float64, "turnover": pl.Float64, "n_bars": pl.Int32, "fee_bps": pl.Float64,
    "slippage_bps": pl.Float64,
}
_PNL_SCHEMA = {
    "fold": pl.Utf8, "ts": pl.Datetime("us"), "gross_return": pl.Float64, "cost": pl.Float64,
    "net_return": pl.Float64, "turnover": pl.Float64, "gross_exposure": pl.Float64,
}


def _one_fold(
    day: datetime,
    grid: pl.Series,
    returns: np.ndarray,
    candidates: dict[str, np.ndarray],
    settings: Settings,
    per_year: float,
    step: timedelta,
) -> tuple[dict[str, Any], pl.DataFrame | None]:
    bt = settings.backtest
    train_start, test_end = day - timedelta(days=bt.train_days), day + timedelta(days=1)
    ts = grid.to_numpy()
    lo = int(np.searchsorted(ts, np.datetime64(train_start - step)))
    split = int(np.searchsorted(ts, np.datetime64(day)))
    hi = int(np.searchsorted(ts, np.datetime64(test_end)))
    train_mask = np.zeros(len(ts), dtype=bool)
    train_mask[lo + 1:split] = True
    with_signal = np.zeros(len(ts), dtype=bool)
    for signals in candidates.values():
        with_signal |= ~np.isnan(signals).all(axis=1)
    days_available = len({str(t)[:10] for t in ts[train_mask & with_signal]})
    row: dict[str, Any] = {
        "fold": day.date().isoformat(), "status": SKIPPED, "train_start": train_start, "train_end": day,
        "test_start": day, "test_end": test_end, "train_days_available": days_available,
        "selected_signal": None, "train_sharpe": None, "candidates_tried": len(candidates),
        "sharpe": None, "sortino": None, "max_drawdown": None, "total_return": None,
        "hit_rate": None, "turnover": None, "n_bars": 0, "fee_bps": bt.fee_bps,
        "slippage_bps": bt.slippage_bps,
    }
    if days_available < bt.min_train_days:
        return row, None
    window = {name: s[lo + 1:hi] for name, s in candidates.items()}
    entry = {name: s[lo] for name, s in candidates.items()}
    outcome = run_fold(
        returns[lo + 1:hi], window, entry, split - lo - 1, per_year, bt.fee_bps, bt.slippage_bps
    )
    path, metrics = outcome.test_path, outcome.test_metrics
    assert path is not None and outcome.selected is not None
    row.update(
        status=outcome.status, selected_signal=outcome.selected,
        train_sharpe=_finite_or_none(outcome.train_scores[outcome.selected]),
        sharpe=_finite_or_none(metrics["sharpe"]), sortino=_finite_or_none(metrics["sortino"]),
        max_drawdown=_finite_or_none(metrics["max_drawdown"]),
        total_return=_finite_or_none(metrics["total_return"]),
        hit_rate=_finite_or_none(metrics["hit_rate"]), turnover=_finite_or_none(metrics["turnover"]),
        n_bars=int(metrics["n_bars"]),
    )
    bars = pl.DataFrame(
        {
            "fold": [row["fold"]] * path.net.shape[0],
            "ts": grid[split:hi],
            "gross_return": path.gross, "cost": path.cost, "net_return": path.net,
            "turnover": path.turnover, "gross_exposure": np.abs(path.weights).sum(axis=1),
        },
        schema=_PNL_SCHEMA,
    )
    return row, bars

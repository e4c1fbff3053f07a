"""Forward returns on the bar grid: what a value known at a bar's close is judged against.

``forward_return(t, h) = close[t + h] / close[t] - 1`` (simple return, alphalens'
``compute_forward_returns`` convention), where ``t + h`` is ``h`` bars later **on the grid**
(``ts + h * interval``). A forward return exists only when every bar from ``t`` to ``t + h`` exists:
a missing bar gives no forward return, never one that spans the gap. Each horizon is its own
sample. Forward returns look ahead by definition: they are research outputs, and nothing that
feeds a signal, factor or a backtest's training window may read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import polars as pl

FORWARD_SCHEMA = {"symbol": pl.Utf8, "ts": pl.Datetime("us"), "horizon": pl.Int64, "forward_return": pl.Float64}


def forward_returns(bars: pl.DataFrame, horizons: Sequence[int], interval_minutes: int) -> pl.DataFrame:
    """Long frame ``symbol, ts, horizon, forward_return`` for every bar of ``bars`` (``symbol, ts,
    close``; one row per symbol and bar) and every horizon (bars) whose ``h`` following bars all
    exist in ``bars``. Sorted by ``symbol, ts, horizon``."""
    if any(h < 1 for h in horizons):
        raise ValueError(f"horizons are bars >= 1, got {list(horizons)}")
    if bars.is_empty() or not horizons:
        return pl.DataFrame(schema=FORWARD_SCHEMA)
    step = timedelta(minutes=interval_minutes)
    ordered = bars.select("symbol", pl.col("ts").cast(pl.Datetime("us")), pl.col("close").cast(pl.Float64)).sort("symbol", "ts")
    frames = []
    for h in horizons:
        later_ts = pl.col("ts").shift(-h).over("symbol")
        later_close = pl.col("close").shift(-h).over("symbol")
        frames.append(
            ordered.select(
                "symbol", "ts", pl.lit(h, dtype=pl.Int64).alias("horizon"),
                # h rows later is h bars later on the grid only if no bar in between is missing
                pl.when(later_ts == pl.col("ts") + step * h).then(later_close / pl.col("close") - 1.0)
                .alias("forward_return"),
            ).drop_nulls("forward_return")
        )
    return pl.concat(frames).sort("symbol", "ts", "horizon")

"""Signal validation: information coefficients of signals against the next bar's return.

For a signal value ``s[t]`` (known at the close of bar ``t``) the forward return is the log
return of the next bar of the same symbol, ``r[t+1] = ln(close[t+1] / close[t])`` — exactly
what a position taken from the next bar earns. ``IC`` is the Pearson correlation of ``s[t]``
with ``r[t+1]`` pooled over symbols and bars; ``rank IC`` the Spearman correlation (Pearson on
average ranks). Pairs whose next bar lies outside the frame given are dropped, so a day's IC
uses only that day's bars. NaN (returned as None) when fewer than 3 pairs or a side is constant.
"""

import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl

IC_SCHEMA = {"signal_name": pl.Utf8, "ic": pl.Float64, "rank_ic": pl.Float64, "n_obs": pl.Int64}


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    value = float(np.corrcoef(x, y)[0, 1])
    return value if math.isfinite(value) else None


def information_coefficients(signals: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    """Per ``signal_name``: IC, rank IC and the number of (signal, next-bar return) pairs.

    ``signals``: ``signal_name, symbol, ts, value``. ``bars``: ``symbol, ts, log_return``
    (``log_return`` at ``ts`` is the return over bar ``ts``). The next bar is the next row of
    the symbol in ``bars`` (gaps are facts: the next existing bar).
    """
    forward = bars.sort("symbol", "ts").select(
        "symbol", "ts", pl.col("log_return").shift(-1).over("symbol").alias("forward_return")
    )
    pairs = signals.join(forward, on=["symbol", "ts"], how="inner").drop_nulls(["value", "forward_return"])
    rows = []
    for name in sorted(set(signals["signal_name"].to_list())):
        group = pairs.filter(pl.col("signal_name") == name)
        x, y = group["value"].to_numpy(), group["forward_return"].to_numpy()
        ranks = group.select(pl.col("value").rank("average"), pl.col("forward_return").rank("average"))
        rank_ic = _pearson(ranks["value"].to_numpy(), ranks["forward_return"].to_numpy())
        rows.append((name, _pearson(x, y), rank_ic, group.height))
    return pl.DataFrame(rows, schema=IC_SCHEMA, orient="row")


def daily_information_coefficients(signals: pl.DataFrame, bars: pl.DataFrame, days: list[datetime]) -> pl.DataFrame:
    """:func:`information_coefficients` of each UTC day on that day's bars alone.

    ``days`` are the days' midnights; a day without signals has no rows. Columns ``day``,
    ``signal_name``, ``ic``, ``rank_ic``, ``n_obs``.
    """
    frames = []
    for day in days:
        in_day = (pl.col("ts") >= day) & (pl.col("ts") < day + timedelta(days=1))
        todays = signals.filter(in_day)
        ic = information_coefficients(todays, bars.filter(in_day)) if todays.height else pl.DataFrame(schema=IC_SCHEMA)
        frames.append(ic.with_columns(day=pl.lit(day, dtype=pl.Datetime("us"))))
    if not frames:
        return pl.DataFrame(schema={"day": pl.Datetime("us"), **IC_SCHEMA})
    return pl.concat(frames).select("day", "signal_name", "ic", "rank_ic", "n_obs")

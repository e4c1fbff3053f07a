"""Equity and drawdown of a return stream, by UTC day.

Units: ``log_return`` is the day's summed log net return; ``daily_return`` the day's compounded
simple return (fraction of capital); ``equity`` the growth of 1.0 invested before the first
day; ``drawdown`` the fraction below the running peak of daily equity (the peak starts at 1.0),
so it is a *daily* drawdown: intraday dips between two day ends are not in it.
"""

from __future__ import annotations

import polars as pl


def equity_curve(daily: pl.DataFrame) -> pl.DataFrame:
    """``daily`` (``day``, ``log_return``) -> ``day, daily_return, equity, drawdown`` in day order."""
    return daily.sort("day").with_columns(equity=pl.col("log_return").cum_sum().exp()).with_columns(
        daily_return=pl.col("log_return").exp() - 1,
        drawdown=1 - pl.col("equity") / pl.col("equity").cum_max().clip(lower_bound=1.0),
    ).select("day", "daily_return", "equity", "drawdown")

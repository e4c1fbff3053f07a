"""Long frames to (T, N) arrays on a fixed bar grid: the layout vectorised backtests use."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl


def bar_grid(start: datetime, end: datetime, minutes: int) -> pl.Series:
    """Bar open times ``[start, end)`` every ``minutes`` (left-labelled, UTC, microseconds)."""
    return pl.datetime_range(start, end, timedelta(minutes=minutes), closed="left", eager=True, time_unit="us")


def to_wide(grid: pl.DataFrame, long: pl.DataFrame, value: str, symbols: list[str]) -> np.ndarray:
    """(T, N) float array of ``value`` on ``grid`` (a frame with ``ts``), symbols in the given
    order; a bar or symbol without a row is NaN (gaps stay gaps)."""
    if long.is_empty():
        return np.full((grid.height, len(symbols)), np.nan)
    pivot = long.pivot(on="symbol", index="ts", values=value)
    joined = grid.join(pivot, on="ts", how="left")
    columns = [joined[s] if s in joined.columns else pl.Series(s, [None] * grid.height) for s in symbols]
    return np.column_stack([c.cast(pl.Float64).fill_null(np.nan).to_numpy() for c in columns])

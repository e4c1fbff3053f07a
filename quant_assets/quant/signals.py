"""Trading signals derived from the feature table (pure polars).

A signal value at ``(symbol, ts)`` is a target position in [-1, 1] decided at the
close of bar ``ts`` from data up to and including ``ts``. It is the position to hold
from the *next* bar on; the one-bar shift is applied by
:func:`quant_assets.quant.backtest.simulate_portfolio`, never here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

__all__ = ["SIGNAL_SCHEMA", "crossover_signals", "ema_crossover", "signal_name"]

SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "ts": pl.Datetime(),
    "signal_name": pl.Utf8(),
    "value": pl.Float64(),
}


def _check_pair(fast: int, slow: int) -> tuple[int, int]:
    for name, v in (("fast", fast), ("slow", slow)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if not fast < slow:
        raise ValueError(f"fast ({fast}) must be smaller than slow ({slow})")
    return int(fast), int(slow)


def signal_name(fast: int, slow: int) -> str:
    """Name of the EMA-crossover signal, ``"ema_cross_<fast>_<slow>"``."""
    fast, slow = _check_pair(fast, slow)
    return f"ema_cross_{fast}_{slow}"


def _require(features: pl.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in features.columns]
    if missing:
        raise ValueError(f"features is missing required column(s): {', '.join(missing)}")


def _crossover_expr(fast: int, slow: int) -> pl.Expr:
    f = pl.col(f"ema_{fast}").cast(pl.Float64).fill_nan(None)
    s = pl.col(f"ema_{slow}").cast(pl.Float64).fill_nan(None)
    return (
        pl.when(f.is_null() | s.is_null())
        .then(pl.lit(None, dtype=pl.Float64))
        .when(f > s)
        .then(pl.lit(1.0))
        .when(f < s)
        .then(pl.lit(-1.0))
        .otherwise(pl.lit(0.0))
        .alias(signal_name(fast, slow))
    )


def ema_crossover(features: pl.DataFrame, fast: int, slow: int) -> pl.Series:
    """Row-aligned EMA-crossover signal for ``features``.

    Returns a Float64 Series named ``ema_cross_<fast>_<slow>`` with one value per row of
    ``features`` (same order): +1.0 when ``ema_<fast> > ema_<slow>``, -1.0 when ``<``,
    0.0 when equal, null when either EMA is null/NaN (warm-up). Requires ``fast < slow``;
    raises ``ValueError`` naming ``ema_<n>`` if that column is absent.
    """
    fast, slow = _check_pair(fast, slow)
    _require(features, [f"ema_{fast}", f"ema_{slow}"])
    return features.select(_crossover_expr(fast, slow)).to_series()


def crossover_signals(features: pl.DataFrame, pairs: Sequence[tuple[int, int]]) -> pl.DataFrame:
    """EMA-crossover signals for several ``(fast, slow)`` pairs in long format.

    Columns ``symbol, ts, signal_name, value`` (``value`` Float64 in {-1.0, 0.0, 1.0}, see
    :func:`ema_crossover`). Rows where the signal is undefined (either EMA null) are
    dropped, so there is no signal before warm-up. Sorted by ``(symbol, ts, signal_name)``.
    Raises ``ValueError`` for a missing ``symbol``/``ts``/``ema_<n>`` column or a
    duplicate pair.
    """
    checked = [_check_pair(f, s) for f, s in pairs]
    if len(set(checked)) != len(checked):
        raise ValueError(f"pairs contains duplicates: {list(pairs)!r}")
    needed = ["symbol", "ts"]
    for f, s in checked:
        needed += [c for c in (f"ema_{f}", f"ema_{s}") if c not in needed]
    _require(features, needed)
    if not checked:
        schema = dict(SIGNAL_SCHEMA, symbol=features.schema["symbol"], ts=features.schema["ts"])
        return pl.DataFrame(schema=schema)
    frames = [
        features.select(
            "symbol",
            "ts",
            pl.lit(signal_name(f, s)).alias("signal_name"),
            _crossover_expr(f, s).alias("value"),
        )
        for f, s in checked
    ]
    return pl.concat(frames).drop_nulls("value").sort("symbol", "ts", "signal_name")

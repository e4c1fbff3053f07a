"""Time-series trading rules on the feature table (pure polars): one target position per bar.

Conventions shared by every rule:

* A rule's value at ``(symbol, ts)`` is the target position in [-1, 1] (+1 fully long, -1 fully
  short, 0 flat) decided at the **close** of bar ``ts`` from data with timestamp <= ``ts``. It is
  the position to hold from the *next* bar on; the one-bar shift belongs to the backtest
  (:func:`quant_assets.quant.backtest_engine.simulate_weights`) and to the round trips
  (:mod:`quant_assets.quant.trades`), never here.
* Input frames hold one row per bar of each symbol, sorted by ``(symbol, ts)``. "The previous
  ``n`` bars" are the previous ``n`` rows of the symbol: a missing bar is not counted.
* While an input is null or NaN (warm-up) the value is null: no position is known. A stateful
  rule also forgets its state on such a bar and restarts flat.

Rules (the formulas live here and nowhere else):

* ``ema_crossover(fast, slow)``: +1 when ``ema_<fast> > ema_<slow>``, -1 when ``<``, 0 when equal.
* ``rsi_mean_reversion(period, lower, upper)``: with ``r = rsi_<period>`` (0-100) and the midline
  50: enter long when ``r < lower`` and hold until ``r >= 50``; enter short when ``r > upper`` and
  hold until ``r <= 50``; flat otherwise. On one bar an exit is applied before an entry, so a jump
  from below ``lower`` to above ``upper`` goes straight from long to short.
* ``atr_breakout(channel, atr_period, factor)``: the Donchian channel of the previous ``channel``
  bars, ``upper[t] = max(high[t-channel..t-1])`` and ``lower[t] = min(low[t-channel..t-1])`` (the
  current bar excluded), midline ``(upper + lower) / 2``. The ATR expands when
  ``atr[t] >= factor * atr[t - channel]`` (``atr = atr_<atr_period>``, TA-Lib ATR in price units).
  Enter long when ``close[t] > upper[t]`` while the ATR expands, short when ``close[t] < lower[t]``
  while it expands; a long is held until the close falls below the midline (``close < mid``), a
  short until it rises above it (``close > mid``). An opposite breakout flips the position.

Both stateful rules are one *hysteresis*: a position opened by an entry bar is held until an exit
condition of its side holds on a later bar or a new entry replaces it (:func:`hysteresis`). It is
computed without a Python loop: entries and invalid bars start segments, and a segment holds its
entry side while the cumulative count of exits after its first bar is zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

__all__ = [
    "RULES",
    "Conditions",
    "SIGNAL_SCHEMA",
    "RuleDef",
    "atr_breakout",
    "crossover_signals",
    "ema_crossover",
    "hysteresis",
    "long_signals",
    "rsi_mean_reversion",
    "rule_positions",
    "signal_name",
]

SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "ts": pl.Datetime(),
    "signal_name": pl.Utf8(),
    "value": pl.Float64(),
}
RSI_MIDLINE = 50.0


def _num(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.Float64).fill_nan(None)


def _require(frame: pl.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"features is missing required column(s): {', '.join(missing)}")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _check_pair(fast: int, slow: int) -> tuple[int, int]:
    fast, slow = _positive_int("fast", fast), _positive_int("slow", slow)
    if not fast < slow:
        raise ValueError(f"fast ({fast}) must be smaller than slow ({slow})")
    return fast, slow


def signal_name(fast: int, slow: int) -> str:
    """Name of the EMA-crossover signal, ``"ema_cross_<fast>_<slow>"``."""
    fast, slow = _check_pair(fast, slow)
    return f"ema_cross_{fast}_{slow}"


def _crossover_expr(fast: int, slow: int) -> pl.Expr:
    f, s = _num(f"ema_{fast}"), _num(f"ema_{slow}")
    return (
        pl.when(f.is_null() | s.is_null()).then(pl.lit(None, dtype=pl.Float64))
        .when(f > s).then(pl.lit(1.0))
        .when(f < s).then(pl.lit(-1.0))
        .otherwise(pl.lit(0.0))
    )


@dataclass(frozen=True)
class Conditions:
    """What a stateful rule decides on each bar (see :func:`hysteresis`)."""

    valid: pl.Expr       # inputs exist on the bar
    enter: pl.Expr       # +1 enter long, -1 enter short, 0 none
    exit_long: pl.Expr   # a long held so far is closed on this bar
    exit_short: pl.Expr  # a short held so far is closed on this bar


def hysteresis(frame: pl.DataFrame, conditions: Conditions) -> pl.Series:
    """Stateful position per symbol from entry and exit conditions (rows sorted by symbol, ts).

    The position at bar t is the side of the latest entry at bar s <= t if no exit of that side
    holds on a bar in (s, t], else 0; null where ``valid`` is false, and such a bar restarts the
    state flat. Null conditions count as false. The conditions are evaluated first, on the whole
    frame (their own windows per symbol), and only then split into segments.
    """
    bars = frame.select(
        pl.col("symbol"),
        conditions.valid.fill_null(False).alias("valid"),
        pl.when(conditions.valid).then(conditions.enter).otherwise(0).fill_null(0).alias("enter"),
        conditions.exit_long.fill_null(False).alias("exit_long"),
        conditions.exit_short.fill_null(False).alias("exit_short"),
    )
    valid, enter = pl.col("valid"), pl.col("enter")
    segment = ((~valid) | (enter != 0)).cast(pl.UInt32).cum_sum().over("symbol")
    side = enter.first().over("symbol", segment)

    def exits_after_entry(name: str) -> pl.Expr:
        k = pl.col(name).cast(pl.UInt32)
        return (k.cum_sum() - k.first()).over("symbol", segment)

    return bars.select(
        pl.when(~valid).then(pl.lit(None, dtype=pl.Float64))
        .when((side == 1) & (exits_after_entry("exit_long") == 0)).then(pl.lit(1.0))
        .when((side == -1) & (exits_after_entry("exit_short") == 0)).then(pl.lit(-1.0))
        .otherwise(pl.lit(0.0))
        .alias("value")
    ).to_series()


def _rsi_conditions(period: int, lower: float, upper: float) -> Conditions:
    r = _num(f"rsi_{period}")
    enter = pl.when(r < lower).then(1).when(r > upper).then(-1).otherwise(0)
    return Conditions(r.is_not_null(), enter, r >= RSI_MIDLINE, r <= RSI_MIDLINE)


def donchian(channel: int) -> tuple[pl.Expr, pl.Expr]:
    """``(upper, lower)``: max of ``high`` and min of ``low`` over the previous ``channel`` bars of
    the symbol, the current bar excluded; null until ``channel`` earlier bars exist."""
    upper = _num("high").shift(1).rolling_max(channel).over("symbol")
    lower = _num("low").shift(1).rolling_min(channel).over("symbol")
    return upper, lower


def _atr_conditions(channel: int, atr_period: int, factor: float) -> Conditions:
    close, atr = _num("close"), _num(f"atr_{atr_period}")
    upper, lower = donchian(channel)
    mid = (upper + lower) / 2
    expanding = atr >= factor * atr.shift(channel).over("symbol")
    valid = close.is_not_null() & atr.is_not_null() & expanding.is_not_null() & upper.is_not_null() & lower.is_not_null()
    enter = pl.when(expanding & (close > upper)).then(1).when(expanding & (close < lower)).then(-1).otherwise(0)
    return Conditions(valid, enter, close < mid, close > mid)


def _check_rsi(period: int, lower: float, upper: float) -> tuple[int, float, float]:
    period = _positive_int("period", period)
    for name, v in (("lower", lower), ("upper", upper)):
        if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not np.isfinite(v):
            raise ValueError(f"{name} must be a number, got {v!r}")
    if not 0 < lower < RSI_MIDLINE < upper < 100:
        raise ValueError(f"need 0 < lower ({lower}) < 50 < upper ({upper}) < 100")
    return period, float(lower), float(upper)


def _check_atr(channel: int, atr_period: int, factor: float) -> tuple[int, int, float]:
    channel, atr_period = _positive_int("channel", channel), _positive_int("atr_period", atr_period)
    if isinstance(factor, bool) or not isinstance(factor, int | float | np.number) or not 0 < factor < np.inf:
        raise ValueError(f"factor must be a number > 0, got {factor!r}")
    return channel, atr_period, float(factor)


@dataclass(frozen=True)
class RuleDef:
    """A rule of the catalogue: its parameters (in naming order), the columns it reads on each bar
    and the polars expression of its position.

    ``check(**params)`` validates and normalises the parameters (``ValueError`` naming the bad
    one); ``features(**params)`` are the ``features_<interval>`` columns it needs;
    ``columns(**params)`` every column it reads on the decision bar (features and bars), the
    ones hashed into a round trip's ``entry_feature_hash``. ``expr(**params)`` is the position
    of a stateless rule (an expression) or the :class:`Conditions` of a stateful one.
    """

    prefix: str  # default signal names: <prefix>_<param values>
    params: tuple[str, ...]
    check: Callable[..., tuple[Any, ...]]
    features: Callable[..., tuple[str, ...]]
    columns: Callable[..., tuple[str, ...]]
    expr: Callable[..., pl.Expr | Conditions]
    doc: str

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return dict(zip(self.params, self.check(**params), strict=True))


RULES: dict[str, RuleDef] = {
    "ema_crossover": RuleDef(
        "ema_cross", ("fast", "slow"), _check_pair,
        lambda fast, slow: (f"ema_{fast}", f"ema_{slow}"),
        lambda fast, slow: (f"ema_{fast}", f"ema_{slow}"),
        lambda fast, slow: _crossover_expr(fast, slow),
        "+1 when ema_fast > ema_slow, -1 when <, 0 equal",
    ),
    "rsi_mean_reversion": RuleDef(
        "rsi_mean_reversion", ("period", "lower", "upper"), _check_rsi,
        lambda period, lower, upper: (f"rsi_{period}",),
        lambda period, lower, upper: (f"rsi_{period}",),
        lambda period, lower, upper: _rsi_conditions(period, lower, upper),
        "long below lower until RSI >= 50, short above upper until RSI <= 50",
    ),
    "atr_breakout": RuleDef(
        "atr_breakout", ("channel", "atr_period", "factor"), _check_atr,
        lambda channel, atr_period, factor: (f"atr_{atr_period}",),
        lambda channel, atr_period, factor: ("close", "high", "low", f"atr_{atr_period}"),
        lambda channel, atr_period, factor: _atr_conditions(channel, atr_period, factor),
        "close through the previous-channel Donchian band while ATR >= factor x ATR channel bars ago; "
        "exit through the midline",
    ),
}


def rule_positions(frame: pl.DataFrame, rule: str, params: Mapping[str, Any]) -> pl.Series:
    """Row-aligned Float64 target positions of ``rule`` for ``frame`` (sorted by symbol, ts)."""
    definition = RULES[rule]
    checked = definition.validate(params)
    _require(frame, ["symbol", *definition.columns(**checked)])
    rule_expr = definition.expr(**checked)
    if isinstance(rule_expr, Conditions):
        return hysteresis(frame, rule_expr)
    return frame.select(rule_expr.alias("value")).to_series()


def long_signals(frame: pl.DataFrame, positions: pl.DataFrame) -> pl.DataFrame:
    """Signals in long format, ``symbol, ts, signal_name, value``: one row per (signal, symbol, bar)
    whose value is known (warm-up rows dropped), sorted by (symbol, ts, signal_name).
    ``positions`` holds one column per signal, row-aligned with ``frame``'s ``symbol`` and ``ts``."""
    if not positions.width:
        return pl.DataFrame(schema=dict(SIGNAL_SCHEMA, ts=frame.schema["ts"]))
    wide = pl.concat([frame.select("symbol", "ts"), positions], how="horizontal")
    return (
        wide.unpivot(index=["symbol", "ts"], variable_name="signal_name", value_name="value")
        .drop_nulls("value").sort("symbol", "ts", "signal_name")
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
    return features.select(_crossover_expr(fast, slow).alias(signal_name(fast, slow))).to_series()


def rsi_mean_reversion(features: pl.DataFrame, period: int, lower: float, upper: float) -> pl.Series:
    """Row-aligned RSI mean-reversion position (see the module): +1, -1 or 0; null while
    ``rsi_<period>`` is null. ``features`` sorted by (symbol, ts)."""
    return rule_positions(features, "rsi_mean_reversion", {"period": period, "lower": lower, "upper": upper})


def atr_breakout(frame: pl.DataFrame, channel: int, atr_period: int, factor: float) -> pl.Series:
    """Row-aligned ATR-confirmed Donchian breakout position (see the module): +1, -1 or 0; null
    until the channel, the ATR and the ATR ``channel`` bars ago exist. ``frame`` sorted by
    (symbol, ts) with ``close``, ``high``, ``low`` and ``atr_<atr_period>``."""
    return rule_positions(frame, "atr_breakout", {"channel": channel, "atr_period": atr_period, "factor": factor})


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
        features.select("symbol", "ts", pl.lit(signal_name(f, s)).alias("signal_name"),
                        _crossover_expr(f, s).alias("value"))
        for f, s in checked
    ]
    return pl.concat(frames).drop_nulls("value").sort("symbol", "ts", "signal_name")

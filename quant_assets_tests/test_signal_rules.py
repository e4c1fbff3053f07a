"""The catalogue's rules on hand-built bars, against plain state machines and TA-Lib, and without look-ahead."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_assets.quant import indicators as ind
from quant_assets.quant.signal_catalogue import load_signal_catalogue
from quant_assets.quant.signals import atr_breakout, donchian, long_signals, rsi_mean_reversion
from quant_assets.quant.trades import round_trips

T0 = datetime(2024, 1, 1)


def _rsi_reference(rsi: list[float | None], lower: float, upper: float) -> list[float | None]:
    """The rule as written in the brief: one bar at a time, exit before entry."""
    out: list[float | None] = []
    state = 0
    for r in rsi:
        if r is None:
            state = 0
            out.append(None)
            continue
        if (state == 1 and r >= 50) or (state == -1 and r <= 50):
            state = 0
        if r < lower:
            state = 1
        elif r > upper:
            state = -1
        out.append(float(state))
    return out


def _atr_reference(high, low, close, atr, channel: int, factor: float) -> list[float | None]:
    out: list[float | None] = []
    state = 0
    for t in range(len(close)):
        if t < channel or atr[t] is None or atr[t - channel] is None:
            state = 0
            out.append(None)
            continue
        upper, lower = max(high[t - channel:t]), min(low[t - channel:t])
        mid = (upper + lower) / 2
        expanding = atr[t] >= factor * atr[t - channel]
        if (state == 1 and close[t] < mid) or (state == -1 and close[t] > mid):
            state = 0
        if expanding and close[t] > upper:
            state = 1
        elif expanding and close[t] < lower:
            state = -1
        out.append(float(state))
    return out


def test_rsi_state_machine_by_hand() -> None:
    rsi = [None, 25, 40, 49, 50, 40, 75, 60, 51, 50, 45, 20, 80, 10, None, 40, 20, 55]
    expected = [None,
                1, 1, 1,      # below 30: long, held while RSI < 50
                0, 0,         # 50 closes it; 40 is no entry
                -1, -1, -1,   # above 70: short, held while RSI > 50
                0, 0,         # 50 closes it
                1, -1, 1,     # 20 long; 80 exits and flips short; 10 flips long
                None, 0,      # a NULL bar forgets the long: 40 afterwards is flat
                1, 0]         # 20 long; 55 >= 50 exits
    frame = pl.DataFrame({"symbol": ["A"] * len(rsi), "rsi_14": rsi}, schema_overrides={"rsi_14": pl.Float64})
    assert rsi_mean_reversion(frame, 14, 30, 70).to_list() == expected
    assert _rsi_reference(rsi, 30, 70) == expected


def test_atr_breakout_by_hand() -> None:
    # channel 3: upper/lower over the previous 3 bars; ATR expands when atr[t] >= 1.5 * atr[t - 3]
    high = [10, 11, 12, 11, 13.5, 12, 11, 10, 10, 9, 8, 7, 9]
    low = [9, 10, 11, 10, 12, 11, 10, 8, 8.5, 7, 6, 5, 6]
    close = [9.5, 10.5, 11.5, 10.5, 13.0, 11.8, 10.2, 8.2, 9.0, 7.5, 6.5, 5.5, 8.5]
    atr = [None, 1.0, 1.0, 1.0, 1.6, 1.5, 1.0, 2.5, 1.0, 1.5, 1.5, 1.5, 1.6]
    expected = [None, None, None, None,  # no channel (3 bars) or no ATR 3 bars ago
                1.0,   # 13.0 > max(11, 12, 11) = 12 and 1.6 >= 1.5 * 1.0: long
                1.0,   # 11.8 >= midline (13.5 + 10) / 2 = 11.75: held
                0.0,   # 10.2 < midline 11.75: out
                -1.0,  # 8.2 < min(12, 11, 10) = 10 and 2.5 >= 1.5 * 1.6: short
                -1.0,  # 9.0 <= midline (12 + 8) / 2 = 10: held
                -1.0,  # 7.5 < min(10, 8, 8.5) = 8 and 1.5 >= 1.5 * 1.0: short again
                -1.0,  # 6.5 < 7, but 1.5 < 1.5 * 2.5: no entry; 6.5 <= midline 8.5: held
                -1.0,  # 5.5 < min(8.5, 7, 6) = 6 and 1.5 >= 1.5 * 1.0: short
                0.0]   # 8.5 > midline (9 + 5) / 2 = 7: out
    frame = pl.DataFrame({"symbol": ["A"] * len(close), "high": high, "low": low, "close": close, "atr_14": atr},
                         schema_overrides={c: pl.Float64 for c in ("high", "low", "close", "atr_14")})
    assert atr_breakout(frame, 3, 14, 1.5).to_list() == expected
    assert _atr_reference(high, low, close, atr, 3, 1.5) == expected


def test_bad_parameters_are_named() -> None:
    frame = pl.DataFrame({"symbol": ["A"], "rsi_14": [40.0]})
    with pytest.raises(ValueError, match="lower"):
        rsi_mean_reversion(frame, 14, 60, 70)
    with pytest.raises(ValueError, match="rsi_7"):
        rsi_mean_reversion(frame, 7, 30, 70)
    with pytest.raises(ValueError, match="factor"):
        atr_breakout(frame, 20, 14, 0)


rsi_values = st.lists(st.one_of(st.none(), st.floats(0, 100), st.sampled_from([20.0, 30.0, 50.0, 70.0, 80.0])),
                      min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(a=rsi_values, b=rsi_values, lower=st.sampled_from([20.0, 30.0, 45.0]), upper=st.sampled_from([55.0, 70.0, 80.0]))
def test_rsi_vectorised_equals_the_state_machine_per_symbol(a, b, lower, upper) -> None:
    frame = pl.DataFrame({"symbol": ["A"] * len(a) + ["B"] * len(b), "rsi_14": a + b},
                         schema_overrides={"rsi_14": pl.Float64})
    assert rsi_mean_reversion(frame, 14, lower, upper).to_list() == _rsi_reference(a, lower, upper) + _rsi_reference(b, lower, upper)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 80), channel=st.integers(1, 6),
       factor=st.sampled_from([0.5, 1.0, 1.2]))
def test_atr_vectorised_equals_the_state_machine(seed, n, channel, factor) -> None:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    high, low = close * (1 + rng.uniform(0, 0.02, n)), close * (1 - rng.uniform(0, 0.02, n))
    atr = [None if i < 3 else float(v) for i, v in enumerate(rng.uniform(0.5, 2.0, n))]
    frame = pl.DataFrame({"symbol": ["A"] * n, "high": high, "low": low, "close": close, "atr_14": atr},
                         schema_overrides={"atr_14": pl.Float64})
    expected = _atr_reference(list(high), list(low), list(close), atr, channel, factor)
    assert atr_breakout(frame, channel, 14, factor).to_list() == expected


def test_donchian_channel_equals_talib_max_min_of_the_previous_bars() -> None:
    rng = np.random.default_rng(3)
    high, low = 100 + rng.normal(0, 1, 300).cumsum(), 99 + rng.normal(0, 1, 300).cumsum()
    frame = pl.DataFrame({"symbol": ["A"] * 300, "high": high, "low": low})
    upper, lower = donchian(20)
    got = frame.select(upper.alias("u"), lower.alias("l"))
    want_u = np.concatenate([[np.nan], talib.MAX(high, 20)[:-1]])
    want_l = np.concatenate([[np.nan], talib.MIN(low, 20)[:-1]])
    np.testing.assert_array_equal(got["u"].fill_null(np.nan).to_numpy(), want_u)
    np.testing.assert_array_equal(got["l"].fill_null(np.nan).to_numpy(), want_l)


def _bars(seed: int, n: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for symbol in ("X", "Y"):
        close = 100 * np.exp(np.cumsum(rng.standard_t(3, n) * 0.01 * (1 + (np.arange(n) // 40) % 3)))
        opens = np.concatenate([[close[0]], close[:-1]]) * (1 + rng.normal(0, 0.001, n))
        high = np.maximum(opens, close) * (1 + rng.uniform(0, 0.01, n))
        low = np.minimum(opens, close) * (1 - rng.uniform(0, 0.01, n))
        rows.append(pl.DataFrame({"symbol": symbol, "ts": [T0 + timedelta(hours=i) for i in range(n)],
                                  "open": opens, "high": high, "low": low, "close": close}))
    return pl.concat(rows)


def _with_features(bars: pl.DataFrame) -> pl.DataFrame:
    """The rules' inputs as the feature store computes them (the TA-Lib conventions of ``quant.indicators``)."""
    parts = []
    for (_,), g in bars.group_by("symbol", maintain_order=True):
        c, h, lo = g["close"].to_numpy(), g["high"].to_numpy(), g["low"].to_numpy()
        parts.append(g.with_columns(
            *(pl.Series(f"ema_{n}", ind.ema(c, n)) for n in (9, 21, 50)),
            *(pl.Series(f"rsi_{n}", ind.rsi(c, n)) for n in (7, 14)),
            pl.Series("atr_14", ind.atr(h, lo, c, 14)),
        ))
    return pl.concat(parts).with_columns(pl.col(pl.Float64).fill_nan(None))


def _signals_and_trades(bars: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    catalogue = load_signal_catalogue()
    history = _with_features(bars)
    positions = catalogue.positions(history)
    trades = pl.concat([
        round_trips(history.with_columns(positions[s.name].alias("t")), s.name, s.rule, s.columns, position="t")
        for s in catalogue.signals
    ])
    return long_signals(history, positions), trades


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(60, 230))
def test_appending_future_bars_changes_no_signal_or_trade_before_them(seed, cut) -> None:
    """The past of a longer history equals the shorter history's whole output: no look-ahead, and
    (the same statement, read per day) day-by-day equals one computation over the full history."""
    bars = _bars(seed, 240)
    last = T0 + timedelta(hours=cut)
    short_signals, short_trades = _signals_and_trades(bars.filter(pl.col("ts") <= last))
    long_signals_, long_trades = _signals_and_trades(bars)
    assert short_signals.equals(long_signals_.filter(pl.col("ts") <= last))
    key = ["signal_name", "symbol", "entry_ts", "exit_ts"]
    assert short_trades.sort(key).equals(long_trades.filter(pl.col("exit_ts") <= last).sort(key))
    assert short_trades.height > 0 and long_trades.height >= short_trades.height
    assert set(long_signals_["signal_name"]) == set(load_signal_catalogue().names)

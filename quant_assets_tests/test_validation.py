"""Information coefficients: the pairing with the next bar, and the correlations themselves."""

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quant_assets.quant.validation import information_coefficients

T0 = datetime(2024, 1, 1)


def _frames(values, returns, symbol="BTC/USDT", name="s"):
    ts = [T0 + timedelta(hours=i) for i in range(len(values))]
    signals = pl.DataFrame({"signal_name": name, "symbol": symbol, "ts": ts, "value": values})
    bars = pl.DataFrame({"symbol": symbol, "ts": ts, "log_return": returns})
    return signals, bars


def test_a_signal_that_foresees_the_next_return_has_ic_one():
    returns = [0.0, 0.01, -0.02, 0.03, -0.01, 0.02]
    values = returns[1:] + [0.5]  # value at t equals the return of bar t+1
    ic = information_coefficients(*_frames(values, returns))
    assert ic["ic"][0] == pytest.approx(1.0) and ic["rank_ic"][0] == pytest.approx(1.0)
    assert ic["n_obs"][0] == 5  # the last bar has no next bar in the frame


def test_same_bar_returns_do_not_count_as_forecasts():
    returns = [0.01, -0.02, 0.03, -0.01, 0.02, -0.03]
    ic = information_coefficients(*_frames(returns, returns))  # value = the bar's own return
    expected = np.corrcoef(returns[:-1], returns[1:])[0, 1]
    assert ic["ic"][0] == pytest.approx(expected)
    assert ic["ic"][0] < 0


def test_rank_ic_is_spearman_and_constant_signals_give_null():
    returns = [0.0, 0.01, 0.04, 0.09, 0.16, 0.25]
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    ic = information_coefficients(*_frames(values, returns))
    assert ic["rank_ic"][0] == pytest.approx(1.0) and ic["ic"][0] < 1.0
    flat = information_coefficients(*_frames([1.0] * 6, returns))
    assert flat["ic"][0] is None and flat["rank_ic"][0] is None


def test_next_bar_is_per_symbol():
    a_signals, a_bars = _frames([1.0, -1.0, 1.0], [0.0, 0.02, -0.02], symbol="A")
    b_signals, b_bars = _frames([-1.0, 1.0, -1.0], [0.0, -0.02, 0.02], symbol="B")
    ic = information_coefficients(pl.concat([a_signals, b_signals]), pl.concat([a_bars, b_bars]))
    assert ic["n_obs"][0] == 4 and ic["ic"][0] == pytest.approx(1.0)

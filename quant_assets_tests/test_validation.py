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


# --- the alphalens-convention core: cross-sectional IC, quantiles, autocorrelation, turnover ---

import pandas as pd  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scipy import stats  # noqa: E402

from quant_assets.quant.validation import (  # noqa: E402
    cross_sectional_ic,
    ic_by_regime,
    pooled_ic,
    quantile_bar_returns,
    quantile_summary,
    quantile_turnover,
    rank_autocorrelation,
    signal_summary,
)


def _long(rows: dict[str, list[float]], name: str = "s", hour: int = 0) -> pl.DataFrame:
    """``values`` at one bar: ``rows`` maps symbol -> value."""
    return pl.DataFrame({"symbol": list(rows), "ts": T0 + timedelta(hours=hour), "signal_name": name,
                         "value": [float(v) for v in rows.values()]})


def _fwd(rows: dict[str, float], horizon: int = 1, hour: int = 0) -> pl.DataFrame:
    return pl.DataFrame({"symbol": list(rows), "ts": T0 + timedelta(hours=hour), "horizon": horizon,
                         "forward_return": [float(v) for v in rows.values()]})


def test_cross_sectional_ic_by_hand_and_against_scipy():
    values = _long({"A": 1, "B": 2, "C": 3, "D": 4})
    returns = {"A": 0.01, "B": 0.03, "C": 0.02, "D": 0.04}
    ic = cross_sectional_ic(values, _fwd(returns))
    # dx = (-1.5, -.5, .5, 1.5), dy = (-.015, .005, -.005, .015): 0.04 / sqrt(5 * 0.0005) = 0.8;
    # ranks (1, 3, 2, 4): Spearman 1 - 6 * 2 / (4 * 15) = 0.8
    assert ic.row(0, named=True) == {"ts": T0, "signal_name": "s", "horizon": 1, "ic": pytest.approx(0.8),
                                     "rank_ic": pytest.approx(0.8), "n_assets": 4}
    tied = cross_sectional_ic(_long({"A": 1, "B": 1, "C": 2, "D": 5, "E": 5}),
                              _fwd({"A": 0.3, "B": 0.1, "C": 0.2, "D": 0.2, "E": 0.5}))
    x, y = [1, 1, 2, 5, 5], [0.3, 0.1, 0.2, 0.2, 0.5]
    assert tied["ic"][0] == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)
    assert tied["rank_ic"][0] == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_cross_sectional_ic_needs_three_assets_and_variation_per_horizon():
    values = _long({"A": 1, "B": 2, "C": 3})
    forward = pl.concat([_fwd({"A": 0.1, "B": 0.2, "C": 0.4}, 1), _fwd({"A": 0.1, "B": 0.2}, 4),
                         _fwd({"A": 0.1, "B": 0.1, "C": 0.1}, 24)])
    ic = cross_sectional_ic(values, forward)
    assert ic["horizon"].to_list() == [1]  # h=4 has 2 assets, h=24 constant returns
    assert cross_sectional_ic(_long({"A": 2, "B": 2, "C": 2}), _fwd({"A": 0.1, "B": 0.2, "C": 0.4})).is_empty()
    nan_value = _long({"A": 1, "B": 2, "C": 3, "D": float("nan")})
    assert cross_sectional_ic(nan_value, _fwd({"A": 0.1, "B": 0.2, "C": 0.4, "D": 9.0}))["n_assets"][0] == 3


def test_quantile_bar_returns_by_hand():
    values = _long({s: v for s, v in zip("ABCDEFGHIJ", [1, 1, 2, 3, 4, 5, 6, 7, 8, 9], strict=True)})
    returns = dict(zip("ABCDEFGHIJ", [0.0, 0.02, 0.01, 0.03, 0.02, 0.04, 0.05, 0.03, 0.06, 0.08], strict=True))
    out = quantile_bar_returns(values, _fwd(returns), 5)
    # edges (numpy linear quantiles of the 10 values) 1, 1.8, 3.6, 5.4, 7.2, 9: {A,B} {C,D} {E,F} {G,H} {I,J}
    mean = sum(returns.values()) / 10
    expected = [(0.0 + 0.02) / 2, (0.01 + 0.03) / 2, (0.02 + 0.04) / 2, (0.05 + 0.03) / 2, (0.06 + 0.08) / 2]
    assert out["quantile"].to_list() == [1, 2, 3, 4, 5]
    assert out["n_assets"].to_list() == [2] * 5
    assert out["mean_return"].to_list() == pytest.approx([e - mean for e in expected], abs=1e-15)
    assert out["mean_return"].sum() == pytest.approx(0.0, abs=1e-15)  # demeaned, equal-count buckets


def test_discrete_signals_with_non_distinct_edges_have_no_quantile_rows():
    positions = _long({s: v for s, v in zip("ABCDEFGH", [-1, -1, -1, 0, 0, 1, 1, 1], strict=True)})
    returns = _fwd({s: 0.01 * i for i, s in enumerate("ABCDEFGH")})
    assert quantile_bar_returns(positions, returns, 5).is_empty()  # pd.qcut raises: alphalens drops it
    assert quantile_bar_returns(positions, returns, 2)["n_assets"].to_list() == [5, 3]  # edges -1, 0, 1
    assert not cross_sectional_ic(positions, returns).is_empty()  # its IC is still given


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-3, 3) | st.floats(-5, 5, allow_nan=False), min_size=1, max_size=30),
       st.integers(1, 7))
def test_buckets_are_pandas_qcut_exactly(raw: list[float], q: int):
    values = _long({f"S{i:02d}": v for i, v in enumerate(raw)})
    returns = _fwd({f"S{i:02d}": 0.0 for i in range(len(raw))})
    out = quantile_bar_returns(values, returns, q)
    try:
        expected = pd.qcut(pd.Series(raw, dtype=float), q, labels=False) + 1
    except ValueError as error:
        assert "unique" in str(error)
        assert out.is_empty()
        return
    counts = expected.value_counts().sort_index()
    assert out["quantile"].to_list() == [int(k) for k in counts.index]
    assert out["n_assets"].to_list() == counts.to_list()


def test_rank_autocorrelation_by_hand():
    values = pl.concat([
        _long({"A": 1, "B": 2, "C": 3, "D": 4}, hour=0),
        _long({"A": 30, "B": 10, "C": 20}, hour=1),  # D gone; ranks among A, B, C: 3, 1, 2
        _long({"A": 5, "B": 6, "C": 7}, hour=3),  # hour 2 missing: no previous grid bar
        _long({"A": 1, "B": 2, "C": 3}, hour=4),
    ])
    out = rank_autocorrelation(values, 60)
    assert out["ts"].to_list() == [T0 + timedelta(hours=1), T0 + timedelta(hours=4)]
    # hour 1: ranks (3, 1, 2) against (1, 2, 3) at hour 0
    assert out["rank_autocorr"].to_list() == pytest.approx([stats.pearsonr([3, 1, 2], [1, 2, 3]).statistic, 1.0])


def test_quantile_turnover_by_hand():
    values = pl.concat([
        _long({"A": 1, "B": 2, "C": 3, "D": 4}, hour=0),  # bottom {A, B}, top {C, D}
        _long({"A": 4, "B": 1, "C": 2, "D": 3}, hour=1),  # bottom {B, C}, top {A, D}
        _long({"A": 4, "B": 1, "C": 2, "D": 3}, hour=2),  # unchanged
        _long({"A": 1, "B": 2, "C": 3, "D": 4}, hour=5),  # previous grid bar missing
    ])
    out = quantile_turnover(values, 2, 60)
    assert out["ts"].to_list() == [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert out["turnover_top"].to_list() == [0.5, 0.0] and out["turnover_bottom"].to_list() == [0.5, 0.0]


def test_signal_summary_against_scipy():
    rng = np.random.default_rng(5)
    n = 40
    ic_values, rank_values = rng.normal(0.03, 0.1, n), rng.normal(0.05, 0.2, n)
    ts = [T0 + timedelta(hours=i) for i in range(n)]
    ic = pl.DataFrame({"ts": ts, "signal_name": "s", "horizon": 1, "ic": ic_values, "rank_ic": rank_values})
    top, bottom = rng.normal(0.01, 0.02, n), rng.normal(-0.01, 0.02, n)
    bars = pl.DataFrame({"ts": ts * 3, "signal_name": "s", "horizon": 1, "quantile": [5] * n + [1] * n + [3] * n,
                         "mean_return": np.concatenate([top, bottom, np.zeros(n)]), "n_assets": 2})
    autocorr = pl.DataFrame({"ts": ts[:3], "signal_name": "s", "rank_autocorr": [0.5, 0.7, 0.9]})
    turnover = pl.DataFrame({"ts": ts[:2], "signal_name": "s", "turnover_top": [0.2, 0.4],
                             "turnover_bottom": [None, 0.6]})
    row = signal_summary(ic, bars, autocorr, turnover, 5).row(0, named=True)
    test = stats.ttest_1samp(ic_values, 0.0)
    assert row["n_periods"] == n
    assert row["ic_mean"] == pytest.approx(ic_values.mean()) and row["ic_std"] == pytest.approx(ic_values.std(ddof=1))
    assert row["icir"] == pytest.approx(ic_values.mean() / ic_values.std(ddof=1))
    assert row["t_stat"] == pytest.approx(test.statistic) and row["p_value"] == pytest.approx(test.pvalue)
    assert row["rank_icir"] == pytest.approx(rank_values.mean() / rank_values.std(ddof=1))
    spread = top - bottom
    assert row["spread_mean"] == pytest.approx(spread.mean())
    assert row["spread_se"] == pytest.approx(stats.sem(spread))
    assert (row["rank_autocorr"], row["turnover_top"], row["turnover_bottom"]) == pytest.approx((0.7, 0.3, 0.6))


def test_quantile_summary_is_mean_and_standard_error_over_bars():
    bars = pl.DataFrame({"ts": [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0], "signal_name": "s",
                         "horizon": 4, "quantile": [1, 1, 1, 2], "mean_return": [0.01, 0.03, 0.08, 0.5],
                         "n_assets": 3})
    out = quantile_summary(bars)
    assert out["mean_return"].to_list() == pytest.approx([0.04, 0.5])
    assert out["std_err"][0] == pytest.approx(stats.sem([0.01, 0.03, 0.08])) and out["std_err"][1] is None
    assert out["n_periods"].to_list() == [3, 1]


def test_ic_by_regime_splits_and_drops_unknown_labels():
    ts = [T0 + timedelta(hours=i) for i in range(6)]
    ic_values = [0.1, 0.2, 0.4, -0.1, -0.3, 0.5]
    ic = pl.DataFrame({"ts": ts, "signal_name": "s", "horizon": 1, "ic": ic_values, "rank_ic": ic_values})
    regimes = pl.DataFrame({"ts": ts, "vol_regime": ["high", "high", "high", "low", "low", None],
                            "dispersion_regime": [None] * 6, "beta_state": ["x"] * 6})
    out = ic_by_regime(ic, regimes)
    assert set(zip(out["regime_kind"], out["regime"], strict=True)) == {
        ("vol_regime", "high"), ("vol_regime", "low"), ("beta_state", "x")}
    high = out.filter(pl.col("regime") == "high").row(0, named=True)
    assert high["n_periods"] == 3 and high["ic_mean"] == pytest.approx(np.mean([0.1, 0.2, 0.4]))
    assert high["t_stat"] == pytest.approx(stats.ttest_1samp([0.1, 0.2, 0.4], 0.0).statistic)
    assert out.filter(pl.col("regime") == "x")["n_periods"][0] == 6
    with pytest.raises(ValueError, match=r"regimes lacks column\(s\) \['beta_state'\]"):
        ic_by_regime(ic, regimes.drop("beta_state"))


def test_pooled_ic_is_one_symbols_day_against_scipy():
    rng = np.random.default_rng(2)
    ts = [T0 + timedelta(hours=i) for i in range(48)]
    v, r = rng.normal(size=48), rng.normal(size=48)
    values = pl.DataFrame({"symbol": "A", "ts": ts, "signal_name": "s", "value": v})
    forward = pl.DataFrame({"symbol": "A", "ts": ts, "horizon": 1, "forward_return": r})
    out = pooled_ic(values, forward, [T0 + timedelta(days=1)])
    assert out["day"].to_list() == [T0 + timedelta(days=1)] and out["n_obs"][0] == 24
    assert out["ic"][0] == pytest.approx(stats.pearsonr(v[24:], r[24:]).statistic)
    assert out["rank_ic"][0] == pytest.approx(stats.spearmanr(v[24:], r[24:]).statistic)
    with pytest.raises(ValueError, match="midnights"):
        pooled_ic(values, forward, [T0 + timedelta(hours=1)])


def test_bad_inputs_name_what_is_wrong():
    with pytest.raises(ValueError, match=r"values lacks column\(s\) \['value'\]"):
        cross_sectional_ic(_long({"A": 1}).drop("value"), _fwd({"A": 0.1}))
    with pytest.raises(ValueError, match="quantiles must be an integer >= 1, got 0"):
        quantile_bar_returns(_long({"A": 1}), _fwd({"A": 0.1}), 0)
    with pytest.raises(ValueError, match="interval_minutes"):
        rank_autocorrelation(_long({"A": 1}), 0)


# --- properties: no look-ahead, and bar-by-bar chunks equal the full history ---

SYMBOLS = ["A", "B", "C", "D", "E", "F"]


@st.composite
def panels(draw) -> tuple[pl.DataFrame, pl.DataFrame]:
    n_bars = draw(st.integers(3, 10))
    present = draw(st.lists(st.booleans(), min_size=n_bars * len(SYMBOLS), max_size=n_bars * len(SYMBOLS)))
    numbers = st.integers(-2, 2) | st.floats(-1, 1, allow_nan=False)
    cells = [(s, T0 + timedelta(hours=b)) for b in range(n_bars) for s in SYMBOLS]
    cells = [c for c, keep in zip(cells, present, strict=True) if keep]
    vals = draw(st.lists(numbers, min_size=len(cells), max_size=len(cells)))
    rets = draw(st.lists(numbers, min_size=len(cells), max_size=len(cells)))
    symbols, ts = [c[0] for c in cells], [c[1] for c in cells]
    values = pl.DataFrame({"symbol": symbols, "ts": ts, "signal_name": "s", "value": vals},
                          schema_overrides={"value": pl.Float64, "ts": pl.Datetime("us")})
    forward = pl.DataFrame({"symbol": symbols, "ts": ts, "horizon": 1, "forward_return": rets},
                           schema_overrides={"forward_return": pl.Float64, "ts": pl.Datetime("us")})
    return values, forward


def _all(values: pl.DataFrame, forward: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {"ic": cross_sectional_ic(values, forward), "quantile": quantile_bar_returns(values, forward, 3),
            "autocorr": rank_autocorrelation(values, 60), "turnover": quantile_turnover(values, 3, 60)}


@settings(max_examples=60, deadline=None)
@given(panels(), st.integers(1, 9))
def test_no_look_ahead_and_chunks_equal_full_history(panel, split_hour):
    values, forward = panel
    split = T0 + timedelta(hours=split_hour)
    full = _all(values, forward)
    before = _all(values.filter(pl.col("ts") < split), forward.filter(pl.col("ts") < split))
    # one previous bar of lookback is all autocorrelation and turnover need
    since = split - timedelta(hours=1)
    after = _all(values.filter(pl.col("ts") >= since), forward.filter(pl.col("ts") >= since))
    for name, frame in full.items():
        assert before[name].equals(frame.filter(pl.col("ts") < split)), name  # later bars change nothing
        assert after[name].filter(pl.col("ts") >= split).equals(frame.filter(pl.col("ts") >= split)), name

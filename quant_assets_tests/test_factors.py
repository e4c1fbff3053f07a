"""Cross-sectional factors, the pure core: hand-built raw values, the z-score and winsorising
against scipy, orthogonal residuals against numpy lstsq, a pandas peer for the rolling windows,
and the time properties (the past never changes; any history start gives the same values)."""

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant_assets.quant.factors import (
    FACTOR_SCHEMA,
    FAMILIES,
    FactorParams,
    Panel,
    compute_factors,
    cross_sectional_zscores,
    family_matrix,
    mean_cross_sectional_correlation,
    orthogonalise,
    raw_factors,
)

T0 = datetime(2024, 1, 1)
H = timedelta(hours=1)
SMALL = FactorParams(momentum_windows=(2,), size_window=2, liquidity_window=2, volatility_window=2,
                     beta_window=3, winsor_mads=0.0)


def bars_of(rows: dict[str, dict[int, tuple[float, float, float | None]]]) -> pl.DataFrame:
    """``{symbol: {hour: (close, volume, quote_volume)}}`` as a bars frame."""
    out = [{"symbol": s, "ts": T0 + h * H, "close": c, "volume": v, "quote_volume": q}
           for s, by_hour in rows.items() for h, (c, v, q) in by_hour.items()]
    return pl.DataFrame(out, schema={"symbol": pl.Utf8, "ts": pl.Datetime("us"), "close": pl.Float64,
                                     "volume": pl.Float64, "quote_volume": pl.Float64})


def value(frame: pl.DataFrame, symbol: str, hour: int, column: str) -> float | None:
    row = frame.filter((pl.col("symbol") == symbol) & (pl.col("ts") == T0 + hour * H))
    return row[column][0] if row.height else None


def random_bars(seed: int, n_symbols: int, n_bars: int, drop: float = 0.0) -> pl.DataFrame:
    """A random panel on the hourly grid; ``drop``: share of bars missing (gaps)."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0, 0.01, n_bars)
    frames = []
    for k in range(n_symbols):
        ret = (0.5 + rng.random()) * market + rng.normal(0, 0.01, n_bars)
        close = (10 + 100 * rng.random()) * np.exp(np.cumsum(ret))
        volume = rng.lognormal(3, 1, n_bars)
        quote = close * volume * (1 + 0.01 * rng.random(n_bars))
        keep = rng.random(n_bars) >= drop
        frames.append(pl.DataFrame({
            "symbol": f"S{k:02d}/USDT", "ts": [T0 + i * H for i in np.flatnonzero(keep)],
            "close": close[keep], "volume": volume[keep], "quote_volume": quote[keep],
        }, schema_overrides={"ts": pl.Datetime("us")}))
    return pl.concat(frames)


# --- raw factors, by hand ---------------------------------------------------------------------

A = {0: (100.0, 1.0, 1000.0), 1: (110.0, 2.0, 2000.0), 2: (99.0, 1.0, 1500.0), 3: (121.0, 3.0, None),
     4: (110.0, 2.0, 2500.0), 5: (132.0, 1.0, 4000.0)}


def test_momentum_reversal_size_amihud_low_vol_by_hand():
    raw = raw_factors(bars_of({"A": A}), SMALL, 60, "A")
    # mom_2 at t = close[t-1] / close[t-3] - 1
    assert value(raw, "A", 2, "mom_2") is None                       # needs hour -1
    assert value(raw, "A", 3, "mom_2") == pytest.approx(99 / 100 - 1)
    assert value(raw, "A", 5, "mom_2") == pytest.approx(110 / 99 - 1)
    assert value(raw, "A", 0, "reversal") is None
    assert value(raw, "A", 2, "reversal") == pytest.approx(-(99 / 110 - 1))
    # dollar volume: quote_volume, or close * volume where it is NULL (hour 3: 121 * 3)
    assert value(raw, "A", 1, "size") == pytest.approx(math.log(1000 + 2000))
    assert value(raw, "A", 4, "size") == pytest.approx(math.log(121 * 3 + 2500))
    assert value(raw, "A", 0, "size") is None
    # amihud at t = mean(|r_{t-1}| / dv_{t-1}, |r_t| / dv_t) * 1e6
    r = {1: 0.1, 2: 99 / 110 - 1, 3: 121 / 99 - 1, 4: 110 / 121 - 1}
    assert value(raw, "A", 1, "amihud") is None                      # needs the return at hour 0
    assert value(raw, "A", 2, "amihud") == pytest.approx((abs(r[1]) / 2000 + abs(r[2]) / 1500) / 2 * 1e6)
    assert value(raw, "A", 4, "amihud") == pytest.approx((abs(r[3]) / 363 + abs(r[4]) / 2500) / 2 * 1e6)
    # low_vol = - sample std of the two log returns
    lr = [math.log(121 / 99), math.log(110 / 121)]
    assert value(raw, "A", 4, "low_vol") == pytest.approx(-abs(lr[0] - lr[1]) / math.sqrt(2))


def test_a_missing_bar_gives_no_value_that_spans_it():
    gap = {h: v for h, v in A.items() if h != 3}
    raw = raw_factors(bars_of({"A": gap}), SMALL, 60, "A")
    assert value(raw, "A", 4, "mom_2") is None                       # needs hour 3
    assert value(raw, "A", 5, "mom_2") == pytest.approx(110 / 99 - 1)  # hours 4 and 2 both exist
    assert value(raw, "A", 4, "reversal") is None
    assert value(raw, "A", 4, "size") is None and value(raw, "A", 5, "size") == pytest.approx(math.log(6500))
    assert value(raw, "A", 5, "amihud") is None and value(raw, "A", 5, "low_vol") is None
    assert value(raw, "A", 3, "mom_2") is None                        # no bar, no row
    assert raw.filter(pl.col("ts") == T0 + 3 * H).is_empty()


def test_zero_dollar_volume_gives_no_size_and_no_amihud():
    zero = {**A, 1: (110.0, 0.0, 0.0), 2: (99.0, 0.0, 0.0)}
    raw = raw_factors(bars_of({"A": zero}), SMALL, 60, "A")
    assert value(raw, "A", 2, "size") is None and value(raw, "A", 3, "size") is not None
    assert value(raw, "A", 2, "amihud") is None and value(raw, "A", 3, "amihud") is None
    assert value(raw, "A", 4, "amihud") is not None


def _beta_by_numpy(r_i: np.ndarray, r_m: np.ndarray) -> float:
    return float(np.cov(r_i, r_m, ddof=1)[0, 1] / np.var(r_m, ddof=1))


def test_beta_against_the_market_symbol_and_the_equal_weighted_market():
    bars = random_bars(3, 4, 12)
    wide = bars.pivot(on="symbol", index="ts", values="close").sort("ts")
    closes = wide.drop("ts").to_numpy()
    returns = closes[1:] / closes[:-1] - 1                       # rows: hours 1..11
    params = FactorParams(momentum_windows=(2,), beta_window=5, size_window=2, liquidity_window=2,
                          volatility_window=2)
    symbols = wide.columns[1:]
    with_market = raw_factors(bars, params, 60, symbols[0])
    equal = raw_factors(bars, params, 60, None)
    hours = range(5, 12)                                          # returns at hours t-4..t
    for j, s in enumerate(symbols):
        for t in hours:
            window = slice(t - 5, t)
            assert value(with_market, s, t, "beta") == pytest.approx(
                _beta_by_numpy(returns[window, j], returns[window, 0]), rel=1e-12)
            assert value(equal, s, t, "beta") == pytest.approx(
                _beta_by_numpy(returns[window, j], returns[window].mean(axis=1)), rel=1e-12)
        assert value(equal, s, 4, "beta") is None                 # only 4 returns yet
    assert value(with_market, symbols[0], 8, "beta") == pytest.approx(1.0)


def test_the_equal_weighted_market_averages_the_symbols_that_have_a_return():
    bars = random_bars(4, 3, 10)
    missing = bars.filter(~((pl.col("symbol") == "S02/USDT") & (pl.col("ts") == T0 + 6 * H)))
    params = FactorParams(momentum_windows=(2,), beta_window=3, size_window=2, liquidity_window=2,
                          volatility_window=2)
    raw = raw_factors(missing, params, 60, None)
    wide = missing.pivot(on="symbol", index="ts", values="close").sort("ts")
    closes = wide.drop("ts").to_numpy()
    returns = closes[1:] / closes[:-1] - 1                       # NaN where a bar is missing
    market = np.nanmean(returns, axis=1)
    t = 8                                                         # window hours 6..8: S02 lacks 6 and 7
    expected = _beta_by_numpy(returns[t - 3:t, 0], market[t - 3:t])
    assert value(raw, "S00/USDT", t, "beta") == pytest.approx(expected, rel=1e-12)
    assert value(raw, "S02/USDT", t, "beta") is None


def test_raw_factors_equal_a_pandas_rolling_peer():
    """pandas on the frame reindexed to the full grid (a missing bar is NaN), ``min_periods`` = the
    window: what a user would write; every value must agree with ours."""
    bars = random_bars(11, 5, 200, drop=0.03)
    params = FactorParams(momentum_windows=(3, 10), size_window=6, liquidity_window=5, volatility_window=7,
                          beta_window=20)
    ours = raw_factors(bars, params, 60, "S00/USDT").to_pandas().set_index(["ts", "symbol"]).sort_index()
    grid = pd.date_range(T0, T0 + 199 * H, freq="h")
    frame = bars.to_pandas().pivot(index="ts", columns="symbol")
    close, dv = frame["close"].reindex(grid), frame["quote_volume"].reindex(grid)
    ret = close / close.shift(1) - 1
    peer = {
        "mom_3": close.shift(1) / close.shift(4) - 1, "mom_10": close.shift(1) / close.shift(11) - 1,
        "reversal": -ret, "size": np.log(dv.rolling(6, min_periods=6).sum()),
        "amihud": (ret.abs() / dv * 1e6).rolling(5, min_periods=5).mean(),
        "low_vol": -np.log(close / close.shift(1)).rolling(7, min_periods=7).std(ddof=1),
        "beta": ret.rolling(20, min_periods=20).cov(ret["S00/USDT"]).div(
            ret["S00/USDT"].rolling(20, min_periods=20).var(), axis=0),
    }
    checked = 0
    for name, table in peer.items():
        stacked = table.stack(future_stack=True).rename(name)
        stacked.index = stacked.index.set_names(["ts", "symbol"])
        joined = ours[[name]].join(stacked, rsuffix="_peer", how="left")
        mine, theirs = joined[name].to_numpy(dtype=float), joined[f"{name}_peer"].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(mine), np.isnan(theirs)), name
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name)
        checked += int(np.isfinite(mine).sum())
    assert checked > 5000


# --- cross-sectional step -------------------------------------------------------------------

def _expected_zscores(x: np.ndarray, mads: float) -> np.ndarray | None:
    med = np.median(x)
    mad = scipy.stats.median_abs_deviation(x, scale=1 / 1.4826)   # = 1.4826 * median |x - median|
    clipped = np.clip(x, med - mads * mad, med + mads * mad) if mads > 0 and mad > 0 else x
    if len(x) < 3 or clipped.std(ddof=1) <= 1e-12 * np.abs(clipped).max():
        return None
    return scipy.stats.zscore(clipped, ddof=1)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=12),
       mads=st.sampled_from([0.0, 1.0, 3.0]), ties=st.booleans())
def test_winsorised_zscores_equal_numpy_and_scipy(values, mads, ties):
    x = np.round(np.asarray(values), 0) if ties else np.asarray(values)
    long = pl.DataFrame({"symbol": [f"s{i}" for i in range(len(x))], "ts": [T0] * len(x),
                         "factor_name": ["f"] * len(x), "value": x}, schema=FACTOR_SCHEMA)
    got = cross_sectional_zscores(long, mads).sort("symbol")
    expected = _expected_zscores(x, mads)
    if expected is None:
        assert got.is_empty()
    else:
        order = np.argsort([f"s{i}" for i in range(len(x))])
        np.testing.assert_allclose(got["value"].to_numpy(), expected[order], rtol=1e-9, atol=1e-9)


def test_winsorising_clips_the_outlier_at_three_scaled_mads():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 100.0])
    long = pl.DataFrame({"symbol": list("abcdef"), "ts": [T0] * 6, "factor_name": ["f"] * 6, "value": x},
                        schema=FACTOR_SCHEMA)
    got = cross_sectional_zscores(long, 3.0)["value"].to_numpy()
    upper = 3.5 + 3 * 1.4826 * 1.5                                  # median 3.5, MAD 1.5
    np.testing.assert_allclose(got, scipy.stats.zscore(np.minimum(x, upper), ddof=1), rtol=1e-12)
    unclipped = cross_sectional_zscores(long, 0.0)["value"].to_numpy()
    np.testing.assert_allclose(unclipped, scipy.stats.zscore(x, ddof=1), rtol=1e-12)
    assert abs(got[0] - unclipped[0]) > 0.5                        # clipping moved every z-score


def test_groups_of_two_symbols_constant_groups_and_nulls_get_no_value():
    long = pl.DataFrame({
        "symbol": ["a", "b", "a", "b", "c", "a", "b", "c", "d"],
        "ts": [T0, T0, T0 + H, T0 + H, T0 + H, T0 + 2 * H, T0 + 2 * H, T0 + 2 * H, T0 + 2 * H],
        "factor_name": ["f"] * 9,
        "value": [1.0, 2.0, 5.0, 5.0, 5.0, 1.0, 2.0, None, float("nan")],
    }, schema=FACTOR_SCHEMA)
    assert cross_sectional_zscores(long, 3.0).is_empty()


# --- orthogonalisation ----------------------------------------------------------------------

PARAMS3 = FactorParams(momentum_windows=(2, 5))


def random_panel(seed: int, n_bars: int, n_symbols: int, hole: float = 0.05) -> Panel:
    rng = np.random.default_rng(seed)
    names = PARAMS3.base_names
    mixing = rng.normal(size=(len(names), len(names))) * 0.4 + np.eye(len(names))
    values = rng.normal(size=(n_bars, n_symbols, len(names))) @ mixing
    values = (values - values.mean(axis=1, keepdims=True)) / values.std(axis=1, ddof=1, keepdims=True)
    values[rng.random(values.shape) < hole] = np.nan
    return Panel([T0 + i * H for i in range(n_bars)], [f"s{i}" for i in range(n_symbols)], names, values)


def test_orthogonal_residuals_equal_numpy_lstsq_and_are_uncorrelated_with_their_regressors():
    panel = random_panel(5, 30, 12)
    orth = orthogonalise(panel, PARAMS3)
    families = family_matrix(panel, PARAMS3)
    compared = 0
    for t in range(30):
        for f, name in enumerate(panel.names):
            x = np.delete(families[t], FAMILIES.index(PARAMS3.family(name)), axis=1)
            y = panel.values[t, :, f]
            rows = np.isfinite(x).all(axis=1) & np.isfinite(y)
            got = orth.values[t, :, f]
            if rows.sum() < 8:
                assert np.isnan(got).all()
                continue
            design = np.column_stack([np.ones(rows.sum()), x[rows]])
            coef, *_ = np.linalg.lstsq(design, y[rows], rcond=None)
            resid = y[rows] - design @ coef
            np.testing.assert_allclose(got[rows], (resid - resid.mean()) / resid.std(ddof=1), atol=1e-9)
            assert np.isnan(got[~rows]).all()
            for j in range(x.shape[1]):
                assert abs(np.corrcoef(got[rows], x[rows, j])[0, 1]) < 1e-9
            assert abs(got[rows].mean()) < 1e-9 and got[rows].std(ddof=1) == pytest.approx(1.0, abs=1e-9)
            compared += 1
    assert compared > 100


def test_momentum_composite_needs_every_window_and_a_bar_needs_regressors_plus_three_symbols():
    panel = random_panel(6, 2, 9, hole=0.0)
    panel.values[0, 0, 1] = np.nan                      # s0 lacks mom_5 at bar 0: no momentum composite
    families = family_matrix(panel, PARAMS3)
    assert np.isnan(families[0, 0, 0]) and np.isfinite(families[0, 1:, 0]).all()
    assert families[1, 3, 0] == pytest.approx(panel.values[1, 3, :2].mean())
    orth = orthogonalise(panel, PARAMS3)
    # bar 0: 8 symbols have the momentum composite, enough for the others' regressions;
    # bar 1: 9 symbols; drop two more at bar 1 and only 7 remain for everyone
    assert np.isfinite(orth.values[0, 1:, 2]).all() and np.isnan(orth.values[0, 0, 2])
    assert np.isfinite(orth.values[0, :, 0]).all()      # s0's mom_2 has its regressors (not momentum)
    assert np.isnan(orth.values[0, 0, 1]) and np.isfinite(orth.values[0, 1:, 1]).all()
    panel.values[1, :2, 6] = np.nan                     # beta missing for two symbols
    orth = orthogonalise(panel, PARAMS3)
    assert np.isnan(orth.values[1]).all()


def test_a_factor_spanned_by_the_others_has_no_orthogonal_copy():
    panel = random_panel(7, 1, 10, hole=0.0)
    reversal = panel.values[0, :, 2]
    panel.values[0, :, 6] = (reversal - reversal.mean()) / reversal.std(ddof=1)   # beta = reversal
    orth = orthogonalise(panel, PARAMS3)
    assert np.isnan(orth.values[0, :, 6]).all() and np.isnan(orth.values[0, :, 2]).all()
    assert np.isfinite(orth.values[0, :, 3]).all()


# --- the whole pipeline ---------------------------------------------------------------------

PIPE = FactorParams(momentum_windows=(3, 6), size_window=4, liquidity_window=4, volatility_window=4,
                    beta_window=8)


def test_compute_factors_rows_are_zscores_with_the_fixed_names():
    out = compute_factors(random_bars(8, 10, 60, drop=0.02), PIPE, 60, "S00/USDT")
    assert out.schema == pl.Schema(FACTOR_SCHEMA)
    assert set(out["factor_name"].unique()) == set(PIPE.names)
    assert PIPE.names == ("mom_3", "mom_6", "reversal", "size", "amihud", "low_vol", "beta", "mom_3_orth",
                          "mom_6_orth", "reversal_orth", "size_orth", "amihud_orth", "low_vol_orth", "beta_orth")
    stats = out.group_by("ts", "factor_name").agg(pl.len().alias("n"), pl.col("value").mean().alias("m"),
                                                  pl.col("value").std().alias("s"))
    assert stats["n"].min() >= 3 and stats["m"].abs().max() < 1e-12 and (stats["s"] - 1).abs().max() < 1e-12
    assert out.filter(pl.col("factor_name").str.ends_with("_orth")).group_by("ts").len()["len"].min() >= 8
    assert out.select(pl.struct("symbol", "ts", "factor_name").is_unique().all()).item()
    no_orth = compute_factors(random_bars(8, 10, 60, drop=0.02), FactorParams(**{**PIPE.__dict__,
                                                                                 "orthogonalise": False}), 60, None)
    assert not no_orth["factor_name"].str.ends_with("_orth").any()


def _rows(frame: pl.DataFrame) -> set[tuple]:
    return set(frame.iter_rows())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut=st.integers(10, 70), drop=st.sampled_from([0.0, 0.05]),
       market=st.sampled_from(["S00/USDT", None]))
def test_appending_future_bars_changes_no_factor_before_them(seed, cut, drop, market):
    bars = random_bars(seed, 9, 80, drop=drop)
    past = bars.filter(pl.col("ts") < T0 + cut * H)
    full = compute_factors(bars, PIPE, 60, market)
    before = compute_factors(past, PIPE, 60, market)
    assert _rows(before) == _rows(full.filter(pl.col("ts") < T0 + cut * H))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), start=st.integers(PIPE.history_bars, 60), extra=st.integers(0, 15),
       drop=st.sampled_from([0.0, 0.05]))
def test_any_history_reaching_the_longest_window_gives_the_same_values(seed, start, extra, drop):
    """Day-by-day == full history in the core: a run that reads exactly ``history_bars`` bars
    before its window (or more) computes bit-identical values to one that reads everything."""
    bars = random_bars(seed, 9, 80, drop=drop)
    since = T0 + start * H
    first = since - (PIPE.history_bars + extra) * H
    full = compute_factors(bars, PIPE, 60, "S00/USDT").filter(pl.col("ts") >= since)
    short = compute_factors(bars.filter(pl.col("ts") >= first), PIPE, 60, "S00/USDT", since=since)
    assert not full.is_empty()
    assert short.equals(full)


def test_history_bars_is_what_the_longest_window_reads():
    assert FactorParams().history_bars == 169                        # mom_168 reads close[t - 169]
    assert FactorParams(momentum_windows=(2,), beta_window=30).history_bars == 30
    assert PIPE.history_bars == 8


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"momentum_windows": ()}, "momentum_windows must be distinct and non-empty"),
    ({"momentum_windows": (3, 3)}, "momentum_windows must be distinct"),
    ({"beta_window": 1}, "beta_window must be an integer >= 2 bars, got 1"),
    ({"size_window": 2.5}, "size_window must be an integer >= 1 bars, got 2.5"),
    ({"winsor_mads": -1.0}, "winsor_mads must be a finite number >= 0"),
])
def test_bad_parameters_raise_one_line_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message) as raised:
        FactorParams(**kwargs)
    assert "\n" not in str(raised.value)


def test_mean_correlation_matrix():
    out = compute_factors(random_bars(9, 10, 60), PIPE, 60, "S00/USDT")
    matrix = mean_cross_sectional_correlation(out, PIPE.names)
    assert matrix.shape == (14, 14) and np.allclose(np.diag(matrix), 1.0)
    assert np.allclose(matrix, matrix.T, equal_nan=True)
    rev, rev_orth = PIPE.names.index("reversal"), PIPE.names.index("size_orth")
    assert abs(matrix[rev, rev_orth]) < 1e-9                       # size_orth is orthogonal to reversal
    one_bar = out.filter(pl.col("ts") == out["ts"].max())
    wide = one_bar.pivot(on="factor_name", index="symbol", values="value")
    assert mean_cross_sectional_correlation(one_bar, ["mom_3", "beta"])[0, 1] == pytest.approx(
        np.corrcoef(wide["mom_3"], wide["beta"])[0, 1])

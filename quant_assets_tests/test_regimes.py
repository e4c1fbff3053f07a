"""The regimes core against a bar-by-bar numpy reference, and no look-ahead."""

from datetime import datetime, timedelta
from itertools import combinations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant_assets.quant.regimes import BETA_STATES, LEVELS, regimes

T0 = datetime(2024, 3, 1)
HOUR = timedelta(hours=1)
VOL, CORR, HISTORY = 5, 7, 20


def _bars(seed: int, n_bars: int, symbols: int, holes: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 0.01, n_bars) * np.repeat(rng.uniform(0.5, 2.0, n_bars // 10 + 1), 10)[:n_bars]
    rows = [
        (f"S{s}", T0 + i * HOUR, float(common[i] * (0.5 + s / symbols) + rng.normal(0, 0.006)))
        for s in range(symbols) for i in range(n_bars)
    ]
    frame = pl.DataFrame(rows, schema=["symbol", "ts", "log_return"], orient="row")
    if holes:
        drop = rng.choice(frame.height, holes, replace=False)
        frame = frame.with_row_index().filter(~pl.col("index").is_in(drop.tolist())).drop("index")
    return frame


def _level(value: float, past: np.ndarray) -> str | None:
    if np.isnan(value) or len(past) < HISTORY or np.isnan(past).any():
        return None
    low, high = np.quantile(past, [1 / 3, 2 / 3])
    return "low" if value < low else "high" if value > high else "normal"


def reference(bars: pl.DataFrame, market: str | None) -> dict[str, list]:
    """Each regime column computed bar by bar with numpy, straight from the definitions."""
    wide = bars.pivot(on="symbol", index="ts", values="log_return").sort("ts")
    grid = pl.DataFrame({"ts": pl.datetime_range(wide["ts"].min(), wide["ts"].max(), HOUR, eager=True,
                                                 time_unit="us")})
    wide = grid.join(wide.with_columns(pl.col("ts").cast(pl.Datetime("us"))), on="ts", how="left")
    logs = wide.drop("ts").fill_null(float("nan")).to_numpy()
    symbols = wide.columns[1:]
    simple = np.expm1(logs)
    if market is None:
        with np.errstate(all="ignore"):
            market_log = np.log1p(np.nanmean(simple, axis=1))
    else:
        market_log = logs[:, symbols.index(market)]
    n = len(logs)
    vol, disp, trend, corr = (np.full(n, np.nan) for _ in range(4))
    for t in range(n):
        if t >= VOL - 1:
            vol[t] = np.std(market_log[t - VOL + 1:t + 1], ddof=1)
        present = simple[t][~np.isnan(simple[t])]
        if len(present) >= 2:
            disp[t] = np.std(present, ddof=1)
        if t >= CORR - 1:
            trend[t] = np.expm1(np.sum(market_log[t - CORR + 1:t + 1]))
            block = simple[t - CORR + 1:t + 1]
            pairs = [np.corrcoef(block[:, a], block[:, b])[0, 1] for a, b in combinations(range(len(symbols)), 2)
                     if not np.isnan(block[:, [a, b]]).any()]
            pairs = [p for p in pairs if np.isfinite(p)]
            corr[t] = np.mean(pairs) if pairs else np.nan
    out: dict[str, list] = {"market_vol": vol.tolist(), "dispersion": disp.tolist(), "market_trend": trend.tolist(),
                            "avg_corr": corr.tolist(), "vol_regime": [], "dispersion_regime": [], "beta_state": []}
    for t in range(n):
        past = slice(max(0, t - HISTORY), t)
        out["vol_regime"].append(_level(vol[t], vol[past]))
        out["dispersion_regime"].append(_level(disp[t], disp[past]))
        state = None
        if t >= HISTORY and not np.isnan(corr[past]).any() and not np.isnan(corr[t]) and not np.isnan(trend[t]):
            state = ("up" if trend[t] > 0 else "down") + (
                "_high_corr" if corr[t] > np.median(corr[past]) else "_low_corr")
        out["beta_state"].append(state)
    return {"ts": wide["ts"].to_list(), **out}


@pytest.mark.parametrize(("market", "holes"), [(None, 0), ("S0", 0), (None, 12), ("S1", 9)])
def test_regimes_equal_the_bar_by_bar_numpy_reference(market, holes):
    bars = _bars(7, 120, 5, holes)
    got = regimes(bars, market, 60, VOL, CORR, HISTORY)
    want = reference(bars, market)
    assert got["ts"].to_list() == want["ts"]
    for column in ("market_vol", "dispersion", "market_trend", "avg_corr"):
        values = got[column].fill_null(float("nan")).to_numpy()
        np.testing.assert_allclose(values, np.array(want[column], dtype=float), rtol=1e-9, atol=1e-13,
                                   err_msg=column)
    for column in ("vol_regime", "dispersion_regime", "beta_state"):
        assert got[column].to_list() == want[column], column
    assert set(got["vol_regime"].drop_nulls()) == set(LEVELS)
    assert set(got["beta_state"].drop_nulls()) <= set(BETA_STATES) and got["beta_state"].drop_nulls().len() > 40
    # the first label needs HISTORY bars of a value that itself needs VOL returns
    assert got["vol_regime"][: VOL - 1 + HISTORY].null_count() == VOL - 1 + HISTORY or holes


def test_rising_volatility_reads_high_and_calm_reads_low():
    n, rows = 80, []
    scale = np.where(np.arange(n) < 60, 0.001, 0.05)
    rng = np.random.default_rng(0)
    for s in range(3):
        rows += [(f"S{s}", T0 + i * HOUR, float(rng.normal(0, 1) * scale[i])) for i in range(n)]
    got = regimes(pl.DataFrame(rows, schema=["symbol", "ts", "log_return"], orient="row"), None, 60, VOL, CORR, HISTORY)
    assert got["vol_regime"][62:70].to_list() == ["high"] * 8
    assert got["dispersion_regime"][65:70].to_list() == ["high"] * 5


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut=st.integers(30, 90), market=st.sampled_from([None, "S2"]),
       holes=st.integers(0, 10))
def test_appending_future_bars_changes_no_regime_before_them(seed, cut, market, holes):
    bars = _bars(seed, 100, 4, holes)
    t = T0 + cut * HOUR
    full = regimes(bars, market, 60, VOL, CORR, HISTORY).filter(pl.col("ts") <= t)
    short = regimes(bars.filter(pl.col("ts") <= t), market, 60, VOL, CORR, HISTORY)
    assert short.height > 0 and short.equals(full.filter(pl.col("ts") <= short["ts"].max()))


def test_an_unknown_market_symbol_is_named():
    with pytest.raises(ValueError, match="market symbol XRP/USDT has no bars among S0, S1"):
        regimes(_bars(1, 10, 2), "XRP/USDT", 60, VOL, CORR, HISTORY)


@pytest.mark.parametrize("market", [None, "S2"])
def test_the_order_rows_arrive_in_changes_no_bit(market):
    """A query without ORDER BY may return the symbols in any order: sums across them are taken
    in one fixed (alphabetical) order, so every value is bit-identical whatever the row order."""
    bars = _bars(7, 300, 5)
    reference = regimes(bars, market, 60, VOL, CORR, HISTORY)
    for seed in range(4):
        shuffled = bars.sample(fraction=1.0, shuffle=True, seed=seed)
        assert regimes(shuffled, market, 60, VOL, CORR, HISTORY).equals(reference)


def test_the_cross_sectional_means_are_bit_identical_run_after_run():
    """``pl.mean_horizontal`` reduces its columns in parallel (over 300 repeats on 21 columns,
    1,712 values changed their last bit); the regimes' means are summed in one order."""
    bars = _bars(7, 300, 5)
    reference = regimes(bars, None, 60, VOL, CORR, HISTORY)
    for _ in range(30):
        assert regimes(bars, None, 60, VOL, CORR, HISTORY).equals(reference)

"""The factor-model core: Fama-MacBeth against numpy and scipy, PCA against numpy, no look-ahead."""

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.decomposition import PCA

from quant_assets.quant.factor_model import (
    INTERCEPT,
    fama_macbeth,
    fama_macbeth_summary,
    pca_day,
)
from quant_assets.quant.forward_returns import forward_returns

T0 = datetime(2024, 3, 1)
HOUR = timedelta(hours=1)


def _cross_sections(seed: int, bars: int, symbols: int, factors: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Random exposures (long, like the ``factors`` table) and next-bar returns driven by them."""
    rng = np.random.default_rng(seed)
    exp_rows, fwd_rows = [], []
    for b in range(bars):
        ts = T0 + b * HOUR
        x = rng.standard_normal((symbols, len(factors)))
        y = 0.01 + x @ rng.normal(0, 0.01, len(factors)) + rng.normal(0, 0.02, symbols)
        for s in range(symbols):
            exp_rows += [(f"S{s}", ts, f, float(x[s, j])) for j, f in enumerate(factors)]
            fwd_rows.append((f"S{s}", ts, float(y[s])))
    exposures = pl.DataFrame(exp_rows, schema=["symbol", "ts", "factor_name", "value"], orient="row")
    forward = pl.DataFrame(fwd_rows, schema=["symbol", "ts", "forward_return"], orient="row")
    return exposures, forward


def test_fama_macbeth_equals_numpy_lstsq_per_bar():
    factors = ["mom_72", "size", "beta"]
    exposures, forward = _cross_sections(1, 30, 12, factors)
    out, counts = fama_macbeth(exposures, forward, factors)
    assert counts.regressed == 30 and out.height == 30 * 4
    for ts in out["ts"].unique().to_list():
        x = (exposures.filter(pl.col("ts") == ts).pivot(on="factor_name", index="symbol", values="value")
             .sort("symbol").select(factors).to_numpy())
        y = forward.filter(pl.col("ts") == ts).sort("symbol")["forward_return"].to_numpy()
        design = np.column_stack([np.ones(len(y)), x])
        beta, *_ = np.linalg.lstsq(design, y, rcond=None)
        resid = y - design @ beta
        r2 = 1 - resid @ resid / ((y - y.mean()) @ (y - y.mean()))
        bar = out.filter(pl.col("ts") == ts)
        assert bar["factor"].to_list() == [INTERCEPT, *factors]
        np.testing.assert_allclose(bar["return"].to_numpy(), beta, rtol=0, atol=1e-12)
        np.testing.assert_allclose(bar["r2"].to_numpy(), r2, rtol=0, atol=1e-12)
        assert set(bar["n_assets"].to_list()) == {12}


def test_exact_linear_returns_are_recovered_and_thin_or_collinear_bars_are_skipped():
    rows, fwd = [], []
    for s, (a, b) in enumerate([(1.0, 0.5), (-1.0, 2.0), (0.3, -1.0), (2.0, 0.1), (-0.5, -0.7)]):
        rows += [(f"S{s}", T0, "size", a), (f"S{s}", T0, "beta", b)]
        fwd.append((f"S{s}", T0, 0.01 + 0.02 * a - 0.03 * b))
    # bar 2: only 3 assets for k = 2 (needs 4); bar 3: beta = 2 * size (collinear)
    for s in range(3):
        rows += [(f"S{s}", T0 + HOUR, "size", float(s)), (f"S{s}", T0 + HOUR, "beta", float(s * s))]
        fwd.append((f"S{s}", T0 + HOUR, 0.01 * s))
    for s in range(5):
        rows += [(f"S{s}", T0 + 2 * HOUR, "size", float(s)), (f"S{s}", T0 + 2 * HOUR, "beta", 2.0 * s)]
        fwd.append((f"S{s}", T0 + 2 * HOUR, 0.01 * s * s))
    exposures = pl.DataFrame(rows, schema=["symbol", "ts", "factor_name", "value"], orient="row")
    forward = pl.DataFrame(fwd, schema=["symbol", "ts", "forward_return"], orient="row")
    out, counts = fama_macbeth(exposures, forward, ["size", "beta"])
    assert (counts.regressed, counts.too_few_assets, counts.rank_deficient) == (1, 1, 1)
    assert dict(zip(out["factor"], out["return"], strict=True)) == pytest.approx(
        {INTERCEPT: 0.01, "size": 0.02, "beta": -0.03}, abs=1e-14)
    assert out["r2"].to_list() == pytest.approx([1.0] * 3, abs=1e-12)


def test_a_missing_or_non_finite_exposure_drops_that_asset_only():
    factors = ["size", "beta"]
    exposures, forward = _cross_sections(2, 1, 8, factors)
    broken = exposures.with_columns(
        pl.when((pl.col("symbol") == "S0") & (pl.col("factor_name") == "beta")).then(float("nan"))
        .otherwise(pl.col("value")).alias("value")).filter(
        ~((pl.col("symbol") == "S1") & (pl.col("factor_name") == "size")))
    out, _ = fama_macbeth(broken, forward, factors)
    assert out["n_assets"].unique().to_list() == [6]
    clean, _ = fama_macbeth(exposures.filter(~pl.col("symbol").is_in(["S0", "S1"])), forward, factors)
    np.testing.assert_allclose(out["return"].to_numpy(), clean["return"].to_numpy(), rtol=0, atol=0)


def test_summary_is_the_one_sample_t_test_of_each_factor_return():
    factors = ["size", "beta"]
    exposures, forward = _cross_sections(3, 40, 10, factors)
    out, _ = fama_macbeth(exposures, forward, factors)
    summary = fama_macbeth_summary(out)
    assert summary["factor"].to_list() == ["beta", INTERCEPT, "size"]
    for row in summary.iter_rows(named=True):
        series = out.filter(pl.col("factor") == row["factor"])["return"].to_numpy()
        test = stats.ttest_1samp(series, 0.0)
        assert row["n_periods"] == 40
        assert row["mean"] == pytest.approx(series.mean(), abs=1e-15)
        assert row["std"] == pytest.approx(series.std(ddof=1), rel=1e-12)
        assert row["t_stat"] == pytest.approx(test.statistic, rel=1e-10)
        assert row["p_value"] == pytest.approx(test.pvalue, rel=1e-9)
    assert summary.filter(pl.col("factor") == INTERCEPT)["p_value"].item() < 0.05  # the 0.01 drift shows


def test_summary_of_one_bar_has_no_standard_error():
    one = pl.DataFrame({"ts": [T0], "factor": ["size"], "return": [0.01], "n_assets": [5], "r2": [0.2]})
    row = fama_macbeth_summary(one).row(0, named=True)
    assert (row["n_periods"], row["mean"], row["std"], row["t_stat"], row["p_value"]) == (1, 0.01, None, None, None)


def _bars(seed: int, n_bars: int, symbols: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(symbols):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n_bars)))
        rows += [(f"S{s}", T0 + i * HOUR, float(c), float(rng.uniform(1, 2))) for i, c in enumerate(close)]
    return pl.DataFrame(rows, schema=["symbol", "ts", "close", "size"], orient="row")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut=st.integers(2, 20))
def test_factor_returns_at_t_read_nothing_beyond_t_plus_one(seed, cut):
    """Appending bars beyond t + 1 changes no factor return at t (it reads exactly t + 1)."""
    bars = _bars(seed, 24, 7)
    exposures = bars.select("symbol", "ts", pl.lit("size").alias("factor_name"), pl.col("size").alias("value"))
    t = T0 + cut * HOUR

    def run(upto: datetime) -> pl.DataFrame:
        seen = bars.filter(pl.col("ts") <= upto)
        out, _ = fama_macbeth(exposures.filter(pl.col("ts") <= upto), forward_returns(seen, [1], 60), ["size"])
        return out.filter(pl.col("ts") <= t)

    short, full = run(t + HOUR), run(bars["ts"].max())
    assert short.height == (cut + 1) * 2
    assert short.equals(full)


def _log_returns(seed: int, n_bars: int, symbols: int, start: datetime = T0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 0.01, n_bars)
    rows = [
        (f"S{s}", start + i * HOUR, float(common[i] * (0.5 + s / symbols) + rng.normal(0, 0.005)))
        for s in range(symbols) for i in range(n_bars)
    ]
    return pl.DataFrame(rows, schema=["symbol", "ts", "log_return"], orient="row")


def test_pca_matches_numpy_eigendecomposition_and_residuals_are_orthogonal():
    window, k = 48, 2
    returns = _log_returns(5, 48 + 24, 6, T0 - 48 * HOUR)
    day = pca_day(returns, T0, 60, window, k)
    fit = (returns.filter(pl.col("ts") < T0).pivot(on="symbol", index="ts", values="log_return")
           .sort("ts").drop("ts").to_numpy())
    centred = fit - fit.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(centred, rowvar=False, ddof=1))
    values, vectors = values[::-1], vectors[:, ::-1]
    np.testing.assert_allclose(day.explained_variance_ratio, values[:k] / values.sum(), rtol=1e-10)
    _u, singular, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(singular[:k] ** 2 / (singular ** 2).sum(), values[:k] / values.sum(), rtol=1e-10)
    today = (returns.filter(pl.col("ts") >= T0).pivot(on="symbol", index="ts", values="log_return")
             .sort("ts").drop("ts").to_numpy())
    demeaned = today - fit.mean(axis=0)
    basis = vt[:k]
    expected_residual = demeaned - demeaned @ basis.T @ basis
    got = day.residuals.pivot(on="symbol", index="ts", values="residual_return").sort("ts").drop("ts").to_numpy()
    np.testing.assert_allclose(got, expected_residual, rtol=0, atol=1e-14)
    np.testing.assert_allclose(got @ basis.T, 0.0, atol=1e-14)
    scores = day.factors.pivot(on="component", index="ts", values="factor_return").sort("ts").drop("ts").to_numpy()
    np.testing.assert_allclose(np.abs(scores), np.abs(demeaned @ basis.T), rtol=0, atol=1e-14)  # up to sign
    np.testing.assert_allclose(scores @ basis + got, demeaned, rtol=0, atol=1e-14)
    peer = PCA(n_components=k, svd_solver="full").fit(fit)
    np.testing.assert_allclose(scores, peer.transform(today), rtol=0, atol=1e-15)
    np.testing.assert_allclose(got, today - peer.inverse_transform(peer.transform(today)), rtol=0, atol=1e-15)
    assert set(day.factors["n_assets"].to_list()) == {6} and set(day.factors["window_bars"].to_list()) == {48}
    assert day.factors.height == 24 * k and day.residuals.height == 24 * 6


def test_pca_keeps_only_symbols_with_the_whole_window_and_skips_bars_they_miss():
    returns = _log_returns(6, 24 + 24, 5, T0 - 24 * HOUR)
    gapped = returns.filter(~((pl.col("symbol") == "S4") & (pl.col("ts") == T0 - 3 * HOUR)))
    gapped = gapped.filter(~((pl.col("symbol") == "S0") & (pl.col("ts") == T0 + 5 * HOUR)))
    day = pca_day(gapped, T0, 60, 24, 2)
    assert day.n_assets == 4 and "S4" not in day.residuals["symbol"].to_list()
    assert day.bars_skipped == 1 and T0 + 5 * HOUR not in day.residuals["ts"].to_list()
    few = pca_day(returns.filter(pl.col("symbol").is_in(["S0", "S1"])), T0, 60, 24, 2)
    assert few.factors.is_empty() and "need more than 2" in few.reason


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), cut=st.integers(0, 22))
def test_appending_future_bars_changes_no_pca_value_before_them(seed, cut):
    returns = _log_returns(seed, 24 + 24, 5, T0 - 24 * HOUR)
    t = T0 + cut * HOUR
    short = pca_day(returns.filter(pl.col("ts") <= t), T0, 60, 24, 2)
    full = pca_day(returns, T0, 60, 24, 2)
    assert short.factors.height == (cut + 1) * 2
    assert short.factors.equals(full.factors.filter(pl.col("ts") <= t))
    assert short.residuals.equals(full.residuals.filter(pl.col("ts") <= t))

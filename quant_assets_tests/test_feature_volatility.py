"""Volatility estimators, returns and rolling moments against straightforward per-window references."""

import math

import numpy as np
import pytest

from quant_assets.quant import volatility as vol

BPY = 365 * 24


def _ohlc(n: int = 400, seed: int = 11):
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.concatenate([[100.0], c[:-1]]) * np.exp(rng.normal(0, 0.001, n))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    return o, h, lo, c


def _windows(x: np.ndarray, n: int):
    """(t, window) for every t with a full window ending at t."""
    return [(t, x[t - n + 1 : t + 1]) for t in range(n - 1, x.size)]


def test_returns() -> None:
    c = np.array([100.0, 110.0, 99.0, 120.0])
    np.testing.assert_allclose(vol.simple_return(c, 1)[1:], [0.1, -0.1, 120 / 99 - 1])
    np.testing.assert_allclose(vol.log_return(c, 2)[2:], [math.log(0.99), math.log(120 / 110)])
    assert np.isnan(vol.simple_return(c, 3)[:3]).all() and np.isnan(vol.log_return(c, 7)).all()


@pytest.mark.parametrize("n", [5, 24, 100])
def test_rolling_moments_match_numpy(n: int) -> None:
    x = np.random.default_rng(n).normal(0.001, 0.02, 600)
    x[0] = np.nan
    mean, var = vol.rolling_mean(x, n), vol.rolling_var(x, n)
    for t, w in _windows(x, n):
        if np.isnan(w).any():
            assert np.isnan(mean[t]) and np.isnan(var[t])
        else:
            assert mean[t] == pytest.approx(w.mean(), rel=1e-12, abs=1e-15)
            assert var[t] == pytest.approx(w.var(ddof=1), rel=1e-9)
    assert np.isnan(mean[: n - 1]).all()


def test_zscore() -> None:
    x = np.random.default_rng(1).normal(0, 1, 300)
    z = vol.rolling_zscore(x, 30)
    for t, w in _windows(x, 30):
        assert z[t] == pytest.approx((x[t] - w.mean()) / w.std(ddof=1), rel=1e-9)
    assert np.isnan(vol.rolling_zscore(np.ones(50), 10)).all()  # zero spread: undefined, not inf


def test_range_estimators_match_their_formulas() -> None:
    o, h, lo, c = _ohlc()
    n = 24
    park, gk = vol.vol_parkinson(h, lo, n, BPY), vol.vol_garman_klass(o, h, lo, c, n, BPY)
    rs, yz = vol.vol_rogers_satchell(o, h, lo, c, n, BPY), vol.vol_yang_zhang(o, h, lo, c, n, BPY)
    cc = vol.vol_close_to_close(c, n, BPY)
    r = np.log(c[1:] / c[:-1])
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    for t in range(n, c.size):
        s = slice(t - n + 1, t + 1)
        hl, co = np.log(h[s] / lo[s]), np.log(c[s] / o[s])
        assert park[t] == pytest.approx(math.sqrt(np.mean(hl**2) / (4 * math.log(2)) * BPY), rel=1e-10)
        g = np.maximum(0.5 * hl**2 - (2 * math.log(2) - 1) * co**2, 0)
        assert gk[t] == pytest.approx(math.sqrt(g.mean() * BPY), rel=1e-10)
        rsv = np.log(h[s] / c[s]) * np.log(h[s] / o[s]) + np.log(lo[s] / c[s]) * np.log(lo[s] / o[s])
        assert rs[t] == pytest.approx(math.sqrt(rsv.mean() * BPY), rel=1e-10)
        on = np.log(o[s] / c[t - n : t])
        expected = on.var(ddof=1) + k * co.var(ddof=1) + (1 - k) * rsv.mean()
        assert yz[t] == pytest.approx(math.sqrt(expected * BPY), rel=1e-9)
        assert cc[t] == pytest.approx(r[t - n : t].std(ddof=1) * math.sqrt(BPY), rel=1e-9)
    # warm-ups: range estimators need n bars, close-to-close and Yang-Zhang a previous close too
    assert np.isnan(park[: n - 1]).all() and not np.isnan(park[n - 1])
    assert np.isnan(gk[: n - 1]).all() and np.isnan(rs[: n - 1]).all()
    assert np.isnan(yz[:n]).all() and not np.isnan(yz[n])
    assert np.isnan(cc[:n]).all() and not np.isnan(cc[n])


def test_garman_klass_is_clamped_per_bar() -> None:
    """For a valid bar the term is >= 0; a bar whose body exceeds its range (bad data that got
    through) would make it negative: it counts as 0, so the estimate never goes imaginary."""
    o, c = np.full(10, 100.0), np.full(10, 110.0)
    h, lo = np.full(10, 105.0), np.full(10, 104.0)
    assert 0.5 * math.log(105 / 104) ** 2 - (2 * math.log(2) - 1) * math.log(1.1) ** 2 < 0
    assert np.all(vol.vol_garman_klass(o, h, lo, c, 5, BPY)[4:] == 0.0)


def test_beta_and_correlation() -> None:
    rng = np.random.default_rng(4)
    m = rng.normal(0, 0.01, 1000)
    r = 1.5 * m + rng.normal(0, 0.005, 1000)
    for n in (30, 200):
        beta, corr = vol.rolling_beta_corr(r, m, n)
        for t, _ in _windows(r, n)[::37]:
            rw, mw = r[t - n + 1 : t + 1], m[t - n + 1 : t + 1]
            assert beta[t] == pytest.approx(np.cov(rw, mw)[0, 1] / mw.var(ddof=1), rel=1e-8)
            assert corr[t] == pytest.approx(np.corrcoef(rw, mw)[0, 1], rel=1e-8)
    m_gap = m.copy()
    m_gap[500] = np.nan  # the market has no bar there: windows holding it are undefined
    beta, _ = vol.rolling_beta_corr(r, m_gap, 30)
    assert np.isnan(beta[500:530]).all() and not np.isnan(beta[499]) and not np.isnan(beta[530])


def test_amihud() -> None:
    c = np.array([10.0, 11.0, 9.9, 9.9, 10.89])
    dv = np.array([5.0, 1e6, 2e6, 0.0, 1e6])
    out = vol.amihud(c, dv, 2)
    assert np.isnan(out[:2]).all()
    assert out[2] == pytest.approx((0.1 / 1e6 + 0.1 / 2e6) / 2 * 1e6)
    assert np.isnan(out[3]) and np.isnan(out[4])  # a bar without volume has no ratio

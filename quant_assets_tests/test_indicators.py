"""Tests for quant_assets.quant.indicators: TA-Lib parity, warm-up pattern, no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from quant_assets.quant import indicators as ind
from quant_assets_tests.conftest import SHARED_DATA

talib = pytest.importorskip("talib", reason="TA-Lib (dev extra) is needed for parity tests")

FREQTRADE_DIR = SHARED_DATA / "freqtrade_testdata"
ETH_FILE = FREQTRADE_DIR / "ETH_BTC-5m.feather"

# Parity tolerances against TA-Lib. Measured worst cases are ~1e-14 relative (EMA/SMA)
# and ~6e-14 absolute on the 0-100 RSI scale, so these leave a wide margin.
MA_RTOL = 1e-9
RSI_ATOL = 1e-9


def _random_walk(n: int = 3000, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))


@pytest.fixture(scope="module", params=["random_walk", "eth_btc_5m"])
def close(request: pytest.FixtureRequest) -> np.ndarray:
    if request.param == "random_walk":
        return _random_walk()
    if not FREQTRADE_DIR.is_dir():
        pytest.skip(f"freqtrade test data folder {FREQTRADE_DIR} is absent")
    return pl.read_ipc(ETH_FILE)["close"].to_numpy().astype(np.float64)


def _first_valid(a: np.ndarray) -> int:
    valid = np.flatnonzero(~np.isnan(a))
    return int(valid[0]) if valid.size else a.size


def _assert_parity(ours: np.ndarray, ref: np.ndarray, *, rtol: float = 0.0, atol: float = 0.0):
    assert ours.dtype == np.float64 and ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    assert _first_valid(ours) == _first_valid(ref)
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("n", [9, 21, 50, 200])
def test_ema_matches_talib(close: np.ndarray, n: int) -> None:
    out = ind.ema(close, n)
    _assert_parity(out, talib.EMA(close, timeperiod=n), rtol=MA_RTOL)
    assert _first_valid(out) == n - 1
    assert out[n - 1] == pytest.approx(close[:n].mean(), rel=1e-12)


@pytest.mark.parametrize("n", [9, 21, 50, 200])
def test_sma_matches_talib(close: np.ndarray, n: int) -> None:
    out = ind.sma(close, n)
    _assert_parity(out, talib.SMA(close, timeperiod=n), rtol=MA_RTOL)
    assert _first_valid(out) == n - 1


@pytest.mark.parametrize("n", [7, 14, 21])
def test_rsi_matches_talib(close: np.ndarray, n: int) -> None:
    out = ind.rsi(close, n)
    _assert_parity(out, talib.RSI(close, timeperiod=n), atol=RSI_ATOL)
    assert _first_valid(out) == n
    valid = out[~np.isnan(out)]
    assert np.all((valid >= 0.0) & (valid <= 100.0))


def test_leading_nans_are_skipped_like_talib() -> None:
    x = np.concatenate([[np.nan] * 5, _random_walk(400)])
    for n in (3, 21):
        _assert_parity(ind.ema(x, n), talib.EMA(x, timeperiod=n), rtol=MA_RTOL)
        _assert_parity(ind.sma(x, n), talib.SMA(x, timeperiod=n), rtol=MA_RTOL)
        _assert_parity(ind.rsi(x, n), talib.RSI(x, timeperiod=n), atol=RSI_ATOL)
        assert _first_valid(ind.ema(x, n)) == 5 + n - 1
        assert _first_valid(ind.rsi(x, n)) == 5 + n


@pytest.mark.parametrize("func", [ind.sma, ind.ema, ind.rsi])
def test_interior_nan_is_rejected(func) -> None:
    x = _random_walk(50)
    x[20] = np.nan
    with pytest.raises(ValueError, match="NaN at index 20"):
        func(x, 5)


@pytest.mark.parametrize("func", [ind.sma, ind.ema, ind.rsi])
def test_too_short_or_all_nan_gives_all_nan(func) -> None:
    assert np.isnan(func(np.arange(1.0, 5.0), 14)).all()
    assert np.isnan(func(np.full(30, np.nan), 5)).all()
    assert func(np.empty(0), 5).shape == (0,)


def test_rsi_flat_series_is_zero_like_talib() -> None:
    x = np.full(40, 3.5)
    out = ind.rsi(x, 14)
    _assert_parity(out, talib.RSI(x, timeperiod=14), atol=0.0)
    assert np.all(out[14:] == 0.0)


def test_rsi_monotone_series() -> None:
    up = np.arange(1.0, 31.0)
    assert np.all(ind.rsi(up, 14)[14:] == 100.0)
    assert np.all(ind.rsi(up[::-1].copy(), 14)[14:] == 0.0)


def test_rsi_is_scale_invariant() -> None:
    x = _random_walk(300)
    np.testing.assert_allclose(ind.rsi(x * 1e-9, 14), ind.rsi(x, 14), rtol=1e-10, equal_nan=True)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="1-D"):
        ind.ema(np.ones((3, 3)), 2)
    with pytest.raises(ValueError, match="n must be >= 1"):
        ind.sma(np.ones(5), 0)
    with pytest.raises(TypeError):
        ind.sma(np.ones(5), 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="greater than ddof"):
        ind.rolling_std(np.ones(5), 1, ddof=1)
    with pytest.raises(ValueError, match="strictly positive"):
        ind.log_returns(np.array([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="bars_per_year"):
        ind.realized_vol(np.ones(5), 2, 0.0)


def test_log_returns() -> None:
    c = np.array([100.0, 110.0, 99.0, 99.0])
    out = ind.log_returns(c)
    assert np.isnan(out[0])
    np.testing.assert_allclose(out[1:], [math.log(1.1), math.log(0.9), 0.0], rtol=1e-15)
    assert ind.log_returns(np.array([5.0])).shape == (1,)


def test_rolling_std_matches_numpy() -> None:
    x = _random_walk(200)
    for n, ddof in [(2, 1), (10, 1), (10, 0), (37, 1)]:
        out = ind.rolling_std(x, n, ddof=ddof)
        assert np.isnan(out[: n - 1]).all()
        expected = np.lib.stride_tricks.sliding_window_view(x, n).std(axis=1, ddof=ddof)
        np.testing.assert_allclose(out[n - 1 :], expected, rtol=1e-12)


def test_rolling_std_nan_only_poisons_its_windows() -> None:
    x = _random_walk(30)
    x[10] = np.nan
    out = ind.rolling_std(x, 4)
    assert np.isnan(out[10:14]).all()
    assert not np.isnan(out[3:10]).any() and not np.isnan(out[14:]).any()


def test_realized_vol() -> None:
    close = _random_walk(100)
    n, bpy = 24, 365 * 24
    out = ind.realized_vol(close, n, bpy)
    assert _first_valid(out) == n  # needs n returns; return 0 is undefined
    r = np.diff(np.log(close))
    expected = np.array([r[t - n : t].std(ddof=1) for t in range(n, r.size + 1)]) * math.sqrt(bpy)
    np.testing.assert_allclose(out[n:], expected, rtol=1e-10)
    # constant growth: zero volatility
    assert np.allclose(ind.realized_vol(1.01 ** np.arange(50.0), 5, bpy)[5:], 0.0, atol=1e-12)


_prices = arrays(
    np.float64,
    st.integers(min_value=0, max_value=120),
    elements=st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(x=_prices, n=st.integers(min_value=2, max_value=30), data=st.data())
def test_no_look_ahead(x: np.ndarray, n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=0, max_value=x.size), label="k")
    funcs = {
        "sma": lambda a: ind.sma(a, n),
        "ema": lambda a: ind.ema(a, n),
        "rsi": lambda a: ind.rsi(a, n),
        "log_returns": ind.log_returns,
        "rolling_std": lambda a: ind.rolling_std(a, n),
        "realized_vol": lambda a: ind.realized_vol(a, n, 8760.0),
    }
    for name, f in funcs.items():
        full, cut = f(x), f(x[:k].copy())
        assert full.shape == x.shape and cut.shape == (k,), name
        # exact equality, NaN positions included
        np.testing.assert_array_equal(cut, full[:k], err_msg=name)


# ------------------------------------------------------------------------------------------
# OHLCV indicators: parity with TA-Lib on every real candle file and on simulator data.
# ------------------------------------------------------------------------------------------

# Measured worst cases (see benchmarks/README_features.md): ~7e-12 absolute on 0-100 scales
# (MFI's running sums in TA-Lib drift), ~1e-13 relative on price-scale outputs.
PRICE_RTOL = 1e-9
OSC_ATOL = 1e-9


def _real_ohlcv() -> dict[str, dict[str, np.ndarray]]:
    if not FREQTRADE_DIR.is_dir():
        return {}
    out = {}
    for path in sorted(FREQTRADE_DIR.glob("*-[15]m.feather")):
        frame = pl.read_ipc(path)
        out[path.stem] = {c: frame[c].to_numpy().astype(np.float64) for c in ("open", "high", "low", "close", "volume")}
    return out


def _simulated_ohlcv() -> dict[str, dict[str, np.ndarray]]:
    from datetime import date, timedelta

    from quant_assets.providers.simulator import simulate_day

    out = {}
    for symbol, interval, days in (("BTC/USDT", "1h", 40), ("DOGE/USDT", "5m", 4), ("ETH/USDT", "1m", 1)):
        frame = pl.concat(
            simulate_day(symbol, date(2024, 3, 1) + timedelta(days=d), interval) for d in range(days)
        ).sort("ts")
        out[f"sim_{symbol}_{interval}"] = {
            c: frame[c].to_numpy().astype(np.float64) for c in ("open", "high", "low", "close", "volume")
        }
    return out


_REAL = _real_ohlcv()
_SIM = _simulated_ohlcv()


@pytest.fixture(scope="module", params=[*_SIM, *(_REAL or ["real_candles_absent"])])
def ohlcv(request: pytest.FixtureRequest) -> dict[str, np.ndarray]:
    if request.param == "real_candles_absent":
        pytest.skip(f"freqtrade test data folder {FREQTRADE_DIR} is absent: no real-candle parity")
    return {**_SIM, **_REAL}[request.param]


def _parity_checks(d: dict[str, np.ndarray]):
    h, lo, c, v = d["high"], d["low"], d["close"], d["volume"]
    yield "TRANGE", ind.trange(h, lo, c), talib.TRANGE(h, lo, c), PRICE_RTOL, 0.0
    yield "ATR", ind.atr(h, lo, c, 14), talib.ATR(h, lo, c, 14), PRICE_RTOL, 0.0
    for fast, slow, sig in ((12, 26, 9), (8, 17, 9)):
        for name, ours, ref in zip(("MACD", "MACD_SIGNAL", "MACD_HIST"), ind.macd(c, fast, slow, sig),
                                   talib.MACD(c, fast, slow, sig), strict=True):
            # the histogram is a small difference of two price-scale numbers: compare on price scale
            yield f"{name}_{fast}_{slow}_{sig}", ours, ref, 0.0, PRICE_RTOL * float(np.abs(c).max())
    for name, ours, ref in zip(("BB_UPPER", "BB_MIDDLE", "BB_LOWER"), ind.bbands(c, 20, 2.0, 2.0),
                               talib.BBANDS(c, 20, 2.0, 2.0, 0), strict=True):
        yield name, ours, ref, PRICE_RTOL, 0.0
    for name, ours, ref in zip(("STOCH_K", "STOCH_D"), ind.stoch(h, lo, c, 14, 3, 3),
                               talib.STOCH(h, lo, c, 14, 3, 0, 3, 0), strict=True):
        yield name, ours, ref, 0.0, OSC_ATOL
    adx, pdi, mdi = ind.dmi(h, lo, c, 14)
    yield "ADX", adx, talib.ADX(h, lo, c, 14), 0.0, OSC_ATOL
    yield "PLUS_DI", pdi, talib.PLUS_DI(h, lo, c, 14), 0.0, OSC_ATOL
    yield "MINUS_DI", mdi, talib.MINUS_DI(h, lo, c, 14), 0.0, OSC_ATOL
    yield "OBV", ind.obv(c, v), talib.OBV(c, v), PRICE_RTOL, PRICE_RTOL * float(v.sum())
    yield "MFI", ind.mfi(h, lo, c, v, 14), talib.MFI(h, lo, c, v, 14), 0.0, OSC_ATOL
    for n in (7, 14, 21):
        yield f"RSI_{n}", ind.rsi(c, n), talib.RSI(c, n), 0.0, RSI_ATOL
    for n in (9, 10, 21, 50, 200):
        yield f"EMA_{n}", ind.ema(c, n), talib.EMA(c, n), MA_RTOL, 0.0


def test_ohlcv_indicators_match_talib(ohlcv: dict[str, np.ndarray]) -> None:
    """Same NaN pattern (so the same first valid index) and values within the tolerances."""
    for name, ours, ref, rtol, atol in _parity_checks(ohlcv):
        assert ours.dtype == np.float64 and ours.shape == ref.shape, name
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg=f"{name}: warm-up differs")
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol, equal_nan=True, err_msg=name)


def test_first_valid_indices_follow_talib_lookbacks() -> None:
    d = _SIM["sim_BTC/USDT_1h"]
    h, lo, c, v = d["high"], d["low"], d["close"], d["volume"]
    assert _first_valid(ind.atr(h, lo, c, 14)) == 14
    assert _first_valid(ind.macd(c)[0]) == 33
    assert _first_valid(ind.macd(c, 8, 17, 9)[2]) == 24
    assert _first_valid(ind.stoch(h, lo, c)[0]) == 17
    assert _first_valid(ind.dmi(h, lo, c)[0]) == 27 and _first_valid(ind.dmi(h, lo, c)[1]) == 14
    assert _first_valid(ind.bbands(c)[0]) == 19
    assert _first_valid(ind.mfi(h, lo, c, v)) == 14
    assert _first_valid(ind.obv(c, v)) == 0


def test_flat_series_conventions_match_talib() -> None:
    """Flat prices: RSI, stochastic, ADX/DI and MFI are 0 as in TA-Lib; bands collapse."""
    n = 60
    flat = np.full(n, 2.5)
    vol = np.full(n, 10.0)
    for name, ours, ref, rtol, atol in _parity_checks(
        {"open": flat, "high": flat, "low": flat, "close": flat, "volume": vol}
    ):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg=name)
        np.testing.assert_allclose(ours, ref, rtol=rtol, atol=max(atol, 1e-12), equal_nan=True, err_msg=name)
    assert np.all(ind.stoch(flat, flat, flat)[0][17:] == 0.0)
    assert np.all(ind.dmi(flat, flat, flat)[0][27:] == 0.0)


def test_adx_holds_through_a_flat_stretch_like_talib() -> None:
    """Bars with zero true range (a flat stretch after movement) leave ADX unchanged, as TA-Lib does."""
    rng = np.random.default_rng(5)
    c = np.concatenate([[1.0], np.full(40, 1.0), 1.0 + np.cumsum(rng.normal(0, 0.01, 60)), np.full(700, 2.0)])
    h, lo = c.copy(), c.copy()
    adx = ind.dmi(h, lo, c, 14)[0]
    assert adx[-1] == adx[-100] > 0  # the smoothed TR fell below TA-Lib's epsilon: ADX holds
    for ours, ref in zip(ind.dmi(h, lo, c, 14), (talib.ADX(h, lo, c, 14), talib.PLUS_DI(h, lo, c, 14),
                                                 talib.MINUS_DI(h, lo, c, 14)), strict=True):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        np.testing.assert_allclose(ours, ref, atol=OSC_ATOL, equal_nan=True)


def test_ohlcv_indicators_reject_nan() -> None:
    d = _SIM["sim_BTC/USDT_1h"]
    h = d["high"].copy()
    h[50] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ind.atr(h, d["low"], d["close"])
    with pytest.raises(ValueError, match="same length"):
        ind.obv(d["close"], d["volume"][:-1])


_bars_strategy = st.integers(min_value=0, max_value=90).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=st.floats(min_value=0.5, max_value=2.0)),
        arrays(np.float64, n, elements=st.floats(min_value=0.0, max_value=0.2)),
        arrays(np.float64, n, elements=st.floats(min_value=0.0, max_value=0.2)),
        arrays(np.float64, n, elements=st.floats(min_value=0.0, max_value=1.0)),
        arrays(np.float64, n, elements=st.floats(min_value=0.0, max_value=1e4)),
    )
)


@settings(max_examples=40, deadline=None)
@given(parts=_bars_strategy, data=st.data())
def test_ohlcv_indicators_no_look_ahead(parts, data: st.DataObject) -> None:
    mid, up, down, pos, v = parts
    h, lo = mid + up, mid - down
    c = lo + pos * (h - lo)
    k = data.draw(st.integers(min_value=0, max_value=mid.size), label="k")
    funcs = {
        "atr": lambda s: [ind.atr(h[s], lo[s], c[s], 5)],
        "macd": lambda s: list(ind.macd(c[s], 3, 7, 4)),
        "bbands": lambda s: list(ind.bbands(c[s], 6)),
        "stoch": lambda s: list(ind.stoch(h[s], lo[s], c[s], 5, 3, 2)),
        "dmi": lambda s: list(ind.dmi(h[s], lo[s], c[s], 4)),
        "obv": lambda s: [ind.obv(c[s], v[s])],
        "mfi": lambda s: [ind.mfi(h[s], lo[s], c[s], v[s], 5)],
    }
    for name, f in funcs.items():
        for full, cut in zip(f(slice(None)), f(slice(0, k)), strict=True):
            np.testing.assert_array_equal(cut, full[:k], err_msg=name)


@pytest.mark.parametrize("n", [1, 2, 3, 14, 15])
def test_rolling_max_min_match_windows_and_talib(n: int) -> None:
    x = _random_walk(300, seed=n)
    for size in (0, 1, n - 1, n, 300):
        a = x[:size]
        expected_max, expected_min = np.full(size, np.nan), np.full(size, np.nan)
        if size >= n:
            view = np.lib.stride_tricks.sliding_window_view(a, n)
            expected_max[n - 1 :], expected_min[n - 1 :] = view.max(axis=1), view.min(axis=1)
        np.testing.assert_array_equal(ind.rolling_max(a, n), expected_max)
        np.testing.assert_array_equal(ind.rolling_min(a, n), expected_min)
    if n > 1:
        np.testing.assert_array_equal(ind.rolling_max(x, n), talib.MAX(x, n))
        np.testing.assert_array_equal(ind.rolling_min(x, n), talib.MIN(x, n))


@settings(max_examples=200, deadline=None)
@given(
    x=arrays(np.float64, st.integers(0, 300),
             elements=st.floats(-1e6, 1e6) | st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan])),
    n=st.integers(1, 50),
    zi=st.floats(-1e6, 1e6),
)
def test_the_compiled_scan_is_lfilter_bit_for_bit(x, n, zi) -> None:
    from scipy.signal import lfilter

    decay = (n - 1.0) / n
    for b0 in (1.0 / n, 1.0, 2.0 / (n + 1.0)):
        want = lfilter([b0], [1.0, -decay], x, zi=[zi])[0] if x.size else np.empty(0)
        in_place = x.copy()
        for got in (ind._scan(x, b0, decay, zi), ind._scan(in_place, b0, decay, zi, out=in_place)):
            # NaN where lfilter has NaN (the sign bit of a NaN made from inf is the compiler's choice)
            assert np.array_equal(np.isnan(got), np.isnan(want))
            assert got[~np.isnan(got)].tobytes() == want[~np.isnan(want)].tobytes()


@settings(max_examples=200, deadline=None)
@given(
    close=arrays(np.float64, st.integers(0, 300), elements=st.floats(1e-3, 1e6)),
    flat=st.integers(0, 40),
    n=st.integers(1, 30),
)
def test_rsi_is_its_wilder_smoothed_gains_and_losses_bit_for_bit(close, flat, n) -> None:
    """The compiled RSI loop against the formula spelled out with lfilter, flat runs included."""
    from scipy.signal import lfilter

    close = close.copy()
    close[: min(flat, close.size)] = close[0] if close.size else 0.0
    got = ind.rsi(close, n)
    want = np.full(close.size, np.nan)
    if close.size > n:
        diff = np.diff(close)
        decay = (n - 1.0) / n

        def wilder(v):
            seed = math.fsum(v[:n].tolist()) / n
            return np.concatenate([[seed], lfilter([1.0 / n], [1.0, -decay], v[n:], zi=[decay * seed])[0]])

        gain, loss = wilder(np.maximum(diff, 0.0)), wilder(np.maximum(-diff, 0.0))
        total = gain + loss
        with np.errstate(divide="ignore", invalid="ignore"):
            want[n:] = np.where(total == 0.0, 0.0, (gain / total) * 100.0)
    assert got.tobytes() == want.tobytes()

"""Tests for quant_assets.quant.features.compute_features."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_assets.quant import indicators as ind
from quant_assets.quant.features import compute_features, feature_columns

T0 = datetime(2024, 1, 1)
BPY = 365 * 24


def _bars(seed: int = 3) -> pl.DataFrame:
    """Three hourly symbols with different start times and lengths, rows shuffled."""
    rng = np.random.default_rng(seed)
    frames = []
    for symbol, start, n in [("BTC-USD", 0, 140), ("ETH-USD", 25, 100), ("SOL-USD", 60, 30)]:
        close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        frames.append(
            pl.DataFrame(
                {
                    "symbol": [symbol] * n,
                    "ts": [T0 + timedelta(hours=start + i) for i in range(n)],
                    "close": close,
                    "volume": rng.uniform(1, 2, n),
                }
            )
        )
    return pl.concat(frames).sample(fraction=1.0, shuffle=True, seed=seed)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return _bars()


@pytest.fixture(scope="module")
def feats(bars: pl.DataFrame) -> pl.DataFrame:
    return compute_features(bars)


def test_schema_and_order(bars: pl.DataFrame, feats: pl.DataFrame) -> None:
    expected_cols = [
        "symbol", "ts", "close", "log_return",
        "ema_9", "ema_21", "ema_50", "rsi_14", "vol_cc_24",
    ]  # fmt: skip
    assert feats.columns == expected_cols == feature_columns()
    assert feats.height == bars.height
    assert feats.schema["symbol"] == pl.Utf8
    assert feats.schema["ts"] == bars.schema["ts"]
    for col in expected_cols[2:]:
        assert feats.schema[col] == pl.Float64
        assert not feats[col].is_nan().any(), f"{col} has NaN instead of null"
    assert feats.equals(feats.sort("symbol", "ts"))


def test_values_match_indicators_per_symbol(feats: pl.DataFrame) -> None:
    for (symbol,), g in feats.group_by("symbol"):
        c = g["close"].to_numpy()
        expected = {
            "log_return": ind.log_returns(c),
            "ema_9": ind.ema(c, 9),
            "ema_21": ind.ema(c, 21),
            "ema_50": ind.ema(c, 50),
            "rsi_14": ind.rsi(c, 14),
            "vol_cc_24": ind.realized_vol(c, 24, BPY),
        }
        for col, values in expected.items():
            got = g[col].fill_null(np.nan).to_numpy()
            np.testing.assert_array_equal(got, values, err_msg=f"{symbol} {col}")


def test_nulls_exactly_during_warm_up(feats: pl.DataFrame) -> None:
    warm_up = {"log_return": 1, "ema_9": 8, "ema_21": 20, "ema_50": 49, "rsi_14": 14,
               "vol_cc_24": 24}  # fmt: skip
    for (symbol,), g in feats.group_by("symbol"):
        for col, w in warm_up.items():
            is_null = g[col].is_null().to_numpy()
            expected = np.arange(g.height) < w
            np.testing.assert_array_equal(is_null, expected, err_msg=f"{symbol} {col}")
    # SOL has 30 bars: ema_50 never defined
    sol = feats.filter(pl.col("symbol") == "SOL-USD")
    assert sol["ema_50"].null_count() == sol.height


def test_unsorted_input_gives_same_result(bars: pl.DataFrame, feats: pl.DataFrame) -> None:
    for seed in (1, 2):
        shuffled = bars.sample(fraction=1.0, shuffle=True, seed=seed)
        assert compute_features(shuffled).equals(feats)
    assert compute_features(bars.sort("ts", "symbol", descending=True)).equals(feats)


@settings(max_examples=25, deadline=None)
@given(cut_hours=st.integers(min_value=0, max_value=140))
def test_no_look_ahead(cut_hours: int) -> None:
    bars = _bars()
    full = compute_features(bars)
    cutoff = T0 + timedelta(hours=cut_hours)
    truncated = compute_features(bars.filter(pl.col("ts") <= cutoff))
    assert truncated.equals(full.filter(pl.col("ts") <= cutoff))


def test_custom_parameters(bars: pl.DataFrame) -> None:
    out = compute_features(bars, ema_spans=(5,), rsi_periods=(7, 21), vol_window=10,
                           bars_per_year=365.0)  # fmt: skip
    assert out.columns == ["symbol", "ts", "close", "log_return", "ema_5", "rsi_7", "rsi_21",
                           "vol_cc_10"]  # fmt: skip
    btc = out.filter(pl.col("symbol") == "BTC-USD")
    expected = ind.realized_vol(btc["close"].to_numpy(), 10, 365.0)
    np.testing.assert_array_equal(btc["vol_cc_10"].fill_null(np.nan).to_numpy(), expected)


def test_empty_input() -> None:
    empty = pl.DataFrame(schema={"symbol": pl.Utf8, "ts": pl.Datetime("us"), "close": pl.Float64})
    out = compute_features(empty)
    assert out.height == 0 and out.columns == feature_columns()


def test_validation(bars: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="close"):
        compute_features(bars.drop("close"))
    with pytest.raises(ValueError, match="duplicate"):
        compute_features(pl.concat([bars, bars.head(1)]))
    with pytest.raises(ValueError, match="nulls"):
        compute_features(bars.with_columns(pl.when(pl.col("close") > 50).then(None)
                                           .otherwise(pl.col("close")).alias("close")))  # fmt: skip
    with pytest.raises(ValueError, match="duplicates"):
        compute_features(bars, ema_spans=(9, 9))
    with pytest.raises(ValueError, match="Datetime"):
        compute_features(bars.with_columns(pl.col("ts").cast(pl.Utf8)))


# ------------------------------------------------------------------------------------------
# The catalogue-driven feature table (compute_feature_table) and higher-interval joins.
# ------------------------------------------------------------------------------------------

from quant_assets.quant import volatility as vol  # noqa: E402
from quant_assets.quant.feature_catalogue import load_catalogue, parse_catalogue  # noqa: E402
from quant_assets.quant.features import compute_feature_table, join_higher_interval  # noqa: E402

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")


def _small_catalogue():
    """The packaged catalogue with windows short enough that every feature is defined in tests."""
    raw = load_catalogue().as_dict()
    for entry in raw["features"]:
        if entry["function"] in ("beta", "corr"):
            entry["params"]["window"] = 48
        if entry["function"] == "return_zscore":
            entry["params"]["window"] = 60
        if entry["function"] == "simple_return" and entry["params"]["periods"] == 1:
            entry["outlier"] = {"method": "zscore", "threshold": 4, "window": 30}
        if entry["function"] == "dollar_volume":
            entry["outlier"] = {"method": "iqr", "k": 1.5, "window": 30}
    raw["features"].append({"name": "ret_ff", "family": "returns", "function": "simple_return",
                            "params": {"periods": 2}, "null_policy": "forward_fill",
                            "outlier": {"method": "zscore", "threshold": 2, "window": 20, "winsorise": True}})
    return parse_catalogue(raw)


SMALL = _small_catalogue()


def _ohlcv_frame(n: int = 300, seed: int = 9, start: datetime = T0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for i, symbol in enumerate(SYMBOLS):
        c = (50.0 + 100 * i) * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        o = np.concatenate([[c[0]], c[:-1]])
        h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.003, n)))
        lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.003, n)))
        v = rng.uniform(1, 100, n)
        frames.append(pl.DataFrame({
            "symbol": symbol, "ts": [start + timedelta(hours=k) for k in range(n)],
            "open": o, "high": h, "low": lo, "close": c, "volume": v, "quote_volume": v * c,
        }))
    return pl.concat(frames)


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return compute_feature_table(_ohlcv_frame().sample(fraction=1.0, shuffle=True, seed=2), SMALL, BPY)


def test_table_schema_nulls_and_no_nan(table: pl.DataFrame) -> None:
    assert table.columns == ["symbol", "ts", "close", *SMALL.columns, *SMALL.flag_columns]
    assert table.equals(table.sort("symbol", "ts"))
    for col in SMALL.columns:
        assert table.schema[col] == pl.Float64
        assert not table[col].is_nan().any(), col
        assert table[col].drop_nulls().len() > 0, f"{col} never defined"
    for col in SMALL.flag_columns:
        assert table.schema[col] == pl.Boolean


def test_columns_equal_the_indicator_functions(table: pl.DataFrame) -> None:
    """Row t of each symbol is exactly the pure function on that symbol's arrays; warm-up is NULL."""
    btc = table.filter(pl.col("symbol") == "BTC/USDT")
    bars = _ohlcv_frame().filter(pl.col("symbol") == "ETH/USDT")
    eth = table.filter(pl.col("symbol") == "ETH/USDT")
    o, h, lo, c, v = (bars[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    expected = {
        "ema_200": ind.ema(c, 200), "rsi_14": ind.rsi(c, 14), "atr_14": ind.atr(h, lo, c, 14),
        "macd_hist_12_26_9": ind.macd(c)[2], "stoch_d_14_3_3": ind.stoch(h, lo, c)[1],
        "bb_lower_20_2": ind.bbands(c)[2], "adx_14": ind.dmi(h, lo, c)[0], "obv": ind.obv(c, v),
        "mfi_14": ind.mfi(h, lo, c, v), "vol_yz_24": vol.vol_yang_zhang(o, h, lo, c, 24, BPY),
        "ret_30": vol.simple_return(c, 30), "dollar_volume_24": vol.rolling_mean(v * c, 24),
        "beta_48": vol.rolling_beta_corr(
            vol.log_return(c), vol.log_return(btc["close"].to_numpy()), 48)[0],
    }
    for col, values in expected.items():
        got = eth[col].fill_null(np.nan).to_numpy()
        np.testing.assert_array_equal(got, values, err_msg=col)
    first = {"ema_200": 199, "rsi_14": 14, "atr_14": 14, "macd_hist_12_26_9": 33, "stoch_d_14_3_3": 17,
             "bb_lower_20_2": 19, "adx_14": 27, "obv": 0, "mfi_14": 14, "vol_yz_24": 24, "ret_30": 30,
             "dollar_volume_24": 23, "beta_48": 48}
    for col, k in first.items():
        nulls = eth[col].is_null().to_numpy()
        assert nulls[:k].all() and not nulls[k], col


def test_market_symbol_beta_is_one_and_missing_market_gives_null(table: pl.DataFrame) -> None:
    btc = table.filter(pl.col("symbol") == "BTC/USDT").drop_nulls("beta_48")
    np.testing.assert_allclose(btc["beta_48"].to_numpy(), 1.0, rtol=1e-9)
    np.testing.assert_allclose(btc["corr_48"].to_numpy(), 1.0, rtol=1e-9)
    no_market = compute_feature_table(_ohlcv_frame(80).filter(pl.col("symbol") != "BTC/USDT"), SMALL, BPY)
    assert no_market["beta_48"].null_count() == no_market.height


def test_outlier_flags_and_policies(table: pl.DataFrame) -> None:
    eth = table.filter(pl.col("symbol") == "ETH/USDT")
    x = eth["ret_1"].to_numpy()
    flags = eth["ret_1_outlier"]
    assert flags[:31].null_count() == 31 and flags[31:].null_count() == 0  # 1 warm-up + 30-bar window
    for t in range(31, eth.height):
        w = x[t - 30 : t]
        beyond = abs(x[t] - w.mean()) > 4 * w.std(ddof=1)
        assert flags[t] == beyond
    dv = eth["dollar_volume_24"].to_numpy()
    dv_flags = eth["dollar_volume_24_outlier"]
    assert dv_flags[:53].null_count() == 53 and dv_flags[53:].null_count() == 0  # 23 warm-up + 30
    for t in range(53, eth.height):
        q1, q3 = np.quantile(dv[t - 30 : t], [0.25, 0.75])
        assert dv_flags[t] == (dv[t] < q1 - 1.5 * (q3 - q1) or dv[t] > q3 + 1.5 * (q3 - q1))
    # winsorised + forward-filled companion entry: values stay inside the trailing bounds
    ff = eth["ret_ff_2"].to_numpy()
    raw = vol.simple_return(eth["close"].to_numpy(), 2)
    flagged = eth["ret_ff_2_outlier"].fill_null(False).to_numpy()
    assert flagged.any()
    assert np.all(ff[flagged] != raw[flagged]) and np.all(ff[~flagged][2:] == raw[~flagged][2:])


_future_bar = st.tuples(
    st.floats(min_value=0.5, max_value=2.0),     # close / previous close
    st.floats(min_value=0.0, max_value=0.05),    # extra high
    st.floats(min_value=0.0, max_value=0.05),    # extra low
    st.floats(min_value=0.0, max_value=1e5),     # volume
    st.sampled_from(SYMBOLS),
)


@settings(max_examples=25, deadline=None)
@given(future=st.lists(_future_bar, min_size=1, max_size=40), cut=st.integers(min_value=20, max_value=150))
def test_appending_arbitrary_future_bars_changes_no_earlier_value(future, cut) -> None:
    """Past rows are bit-identical whatever bars arrive later (every catalogue feature, flags too)."""
    base = _ohlcv_frame(150).filter(pl.col("ts") < T0 + timedelta(hours=cut))
    last = base.group_by("symbol").agg(pl.col("ts").max(), pl.col("close").last())
    state = {r["symbol"]: (r["ts"], r["close"]) for r in last.to_dicts()}
    rows = []
    for ratio, up, down, volume, symbol in future:
        ts, prev = state[symbol]
        ts, close = ts + timedelta(hours=1), prev * ratio
        rows.append({"symbol": symbol, "ts": ts, "open": prev, "high": max(prev, close) * (1 + up),
                     "low": min(prev, close) * (1 - down), "close": close, "volume": volume,
                     "quote_volume": volume * close})
        state[symbol] = (ts, close)
    extended = pl.concat([base, pl.DataFrame(rows, schema=base.schema)])
    before = compute_feature_table(base, SMALL, BPY)
    after = compute_feature_table(extended, SMALL, BPY)
    assert after.join(before.select("symbol", "ts"), on=["symbol", "ts"], how="semi").equals(before)


def test_higher_interval_features_only_after_the_higher_bar_closed() -> None:
    hourly = pl.DataFrame({"symbol": "A", "ts": [T0 + timedelta(hours=k) for k in range(72)]})
    daily = pl.DataFrame({"symbol": ["A", "A"], "ts": [T0, T0 + timedelta(days=2)], "ema_21": [1.0, 3.0]})
    out = join_higher_interval(hourly, daily, "1d", 1440, ["ema_21"])
    assert out.columns == ["symbol", "ts", "htf_1d_ema_21"]
    values = out["htf_1d_ema_21"].to_list()
    assert values[:24] == [None] * 24          # day 0's bar is still open during day 0
    assert values[24:48] == [1.0] * 24         # visible from day 1, 00:00 (its first hour)
    assert values[48:72] == [None] * 24        # day 1 has no daily bar: NULL, never a stale value
    shuffled = hourly.sample(fraction=1.0, shuffle=True, seed=1)
    again = join_higher_interval(shuffled, daily, "1d", 1440, ["ema_21"])
    assert again["ts"].to_list() == shuffled["ts"].to_list()  # row order kept


def test_feature_table_validation() -> None:
    bars = _ohlcv_frame(30)
    with pytest.raises(ValueError, match="high"):
        compute_feature_table(bars.drop("high"), SMALL, BPY)
    with pytest.raises(ValueError, match="duplicate"):
        compute_feature_table(pl.concat([bars, bars.head(1)]), SMALL, BPY)
    with pytest.raises(ValueError, match="nulls or NaN"):
        compute_feature_table(bars.with_columns(pl.lit(float("nan")).alias("low")), SMALL, BPY)
    empty = compute_feature_table(bars.head(0), SMALL, BPY)
    assert empty.height == 0 and empty.columns[3:] == [*SMALL.columns, *SMALL.flag_columns]
    without_qv = compute_feature_table(bars.drop("quote_volume"), SMALL, BPY)
    assert without_qv.equals(compute_feature_table(bars, SMALL, BPY))


def test_threads_do_not_change_the_result() -> None:
    bars = _ohlcv_frame(200)
    one = compute_feature_table(bars, SMALL, BPY, workers=1)
    assert compute_feature_table(bars, SMALL, BPY, workers=4).equals(one)

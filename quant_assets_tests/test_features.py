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

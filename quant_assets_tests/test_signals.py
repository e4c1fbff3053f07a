"""Tests for quant_assets.quant.signals."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quant_assets.quant.features import compute_features
from quant_assets.quant.signals import crossover_signals, ema_crossover, signal_name

T0 = datetime(2024, 1, 1)


def _toy() -> pl.DataFrame:
    """Hand-made feature rows: warm-up nulls, >, <, == and a NaN."""
    return pl.DataFrame(
        {
            "symbol": ["A"] * 6 + ["B"] * 2,
            "ts": [T0 + timedelta(hours=i) for i in range(6)] + [T0, T0 + timedelta(hours=1)],
            "ema_2": [None, 1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0],
            "ema_3": [None, None, 1.0, 4.0, 4.0, float("nan"), 1.0, 3.0],
            "ema_5": [None, None, None, None, 3.0, 6.0, None, 1.0],
        },
        schema_overrides={"ema_2": pl.Float64, "ema_3": pl.Float64, "ema_5": pl.Float64},
    )


def test_ema_crossover_values() -> None:
    s = ema_crossover(_toy(), 2, 3)
    assert s.name == "ema_cross_2_3" and s.dtype == pl.Float64
    assert s.to_list() == [None, None, 1.0, -1.0, 0.0, None, 0.0, -1.0]


def test_crossover_signals_long_format() -> None:
    out = crossover_signals(_toy(), [(2, 3), (2, 5)])
    assert out.columns == ["symbol", "ts", "signal_name", "value"]
    assert out.schema["value"] == pl.Float64 and out.schema["signal_name"] == pl.Utf8
    rows = [(r["symbol"], r["ts"].hour, r["signal_name"], r["value"]) for r in out.to_dicts()]
    assert rows == [
        ("A", 2, "ema_cross_2_3", 1.0),
        ("A", 3, "ema_cross_2_3", -1.0),
        ("A", 4, "ema_cross_2_3", 0.0),
        ("A", 4, "ema_cross_2_5", 1.0),
        ("A", 5, "ema_cross_2_5", -1.0),
        ("B", 0, "ema_cross_2_3", 0.0),
        ("B", 1, "ema_cross_2_3", -1.0),
        ("B", 1, "ema_cross_2_5", 1.0),
    ]
    assert out["value"].null_count() == 0


def test_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="ema_21"):
        ema_crossover(_toy(), 2, 21)
    with pytest.raises(ValueError, match="ema_9"):
        crossover_signals(_toy(), [(2, 3), (9, 21)])
    with pytest.raises(ValueError, match="symbol"):
        crossover_signals(_toy().drop("symbol"), [(2, 3)])


def test_bad_pairs() -> None:
    with pytest.raises(ValueError, match="smaller"):
        ema_crossover(_toy(), 3, 2)
    with pytest.raises(ValueError, match="duplicates"):
        crossover_signals(_toy(), [(2, 3), (2, 3)])
    assert signal_name(9, 21) == "ema_cross_9_21"


def test_empty_pairs() -> None:
    out = crossover_signals(_toy(), [])
    assert out.height == 0 and out.columns == ["symbol", "ts", "signal_name", "value"]


def _bars() -> pl.DataFrame:
    rng = np.random.default_rng(11)
    n = 120
    return pl.DataFrame(
        {
            "symbol": ["X"] * n + ["Y"] * n,
            "ts": [T0 + timedelta(hours=i) for i in range(n)] * 2,
            "close": np.exp(np.cumsum(rng.normal(0, 0.02, 2 * n))),
        }
    )


def test_on_real_features_warm_up_and_no_look_ahead() -> None:
    bars = _bars()
    feats = compute_features(bars, ema_spans=(9, 21, 50))
    sig = crossover_signals(feats, [(9, 21), (21, 50)])
    # no signal before the slow EMA exists: first ts per symbol is bar slow-1
    first = sig.group_by("signal_name", "symbol").agg(pl.col("ts").min())
    for row in first.to_dicts():
        slow = int(row["signal_name"].rsplit("_", 1)[1])
        assert row["ts"] == T0 + timedelta(hours=slow - 1)
    assert set(sig["value"].unique().to_list()) <= {-1.0, 0.0, 1.0}
    # value at ts depends only on data up to ts
    cutoff = T0 + timedelta(hours=70)
    sig_cut = crossover_signals(
        compute_features(bars.filter(pl.col("ts") <= cutoff)), [(9, 21), (21, 50)]
    )
    assert sig_cut.equals(sig.filter(pl.col("ts") <= cutoff))

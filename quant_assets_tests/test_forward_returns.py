"""Forward returns on the grid: exact values, no return across a missing bar, each horizon alone."""

from datetime import datetime, timedelta

import polars as pl
import pytest

from quant_assets.quant.forward_returns import forward_returns

T0 = datetime(2024, 1, 1)


def _bars(symbol: str, closes: dict[int, float]) -> pl.DataFrame:
    return pl.DataFrame({"symbol": [symbol] * len(closes), "ts": [T0 + timedelta(hours=i) for i in closes],
                         "close": list(closes.values())})


def test_values_and_gaps():
    bars = pl.concat([_bars("A", {0: 100.0, 1: 110.0, 2: 99.0, 4: 120.0, 5: 60.0}), _bars("B", {0: 10.0, 1: 20.0})])
    out = forward_returns(bars, [1, 2], 60)
    got = {(r["symbol"], r["ts"].hour, r["horizon"]): r["forward_return"] for r in out.iter_rows(named=True)}
    assert got == {
        ("A", 0, 1): pytest.approx(0.1), ("A", 1, 1): pytest.approx(-0.1), ("A", 4, 1): pytest.approx(-0.5),
        ("A", 0, 2): pytest.approx(-0.01),
        ("B", 0, 1): pytest.approx(1.0),
    }  # A at 2 (next bar 3 missing) and A at 2/3 for h=2 span the gap: absent


def test_bad_horizon():
    with pytest.raises(ValueError, match="horizons"):
        forward_returns(_bars("A", {0: 1.0}), [0], 60)

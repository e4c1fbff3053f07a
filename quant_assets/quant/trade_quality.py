"""The quality gate for trades: finite positive price and amount, one row per trade id."""

import polars as pl


def gate_trades(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Return the valid trades and the count of rejects by reason.

    A trade is kept when ``price`` and ``amount`` are finite and > 0. Exact duplicates collapse
    to one; trades sharing ``(symbol, trade_id)`` with different values are all rejected.
    """
    ok = (
        pl.col("price").is_finite() & (pl.col("price") > 0)
        & pl.col("amount").is_finite() & (pl.col("amount") > 0)
    ).fill_null(False)
    bad = frame.filter(~ok)
    good = frame.filter(ok).unique(maintain_order=True)
    conflicting = good.filter(pl.len().over("symbol", "trade_id") > 1)
    valid = good.filter(pl.len().over("symbol", "trade_id") == 1)
    counts = {
        "non_positive_or_non_finite": bad.height,
        "duplicates_dropped": frame.height - bad.height - good.height,
        "conflicting_duplicate": conflicting.height,
    }
    return valid, counts

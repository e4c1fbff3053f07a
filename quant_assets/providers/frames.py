"""Helpers shared by adapters: symbol parsing, timestamps, building canonical frames."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime

import polars as pl

from quant_assets.config import INTERVAL_MINUTES
from quant_assets.providers.base import CANDLE_SCHEMA, MalformedResponse
from quant_assets.quant.calendar import utc_naive
from quant_assets.secrets import scrub

INTERVAL_SECONDS = {name: minutes * 60 for name, minutes in INTERVAL_MINUTES.items()}


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    if not base or not quote:
        raise ValueError(f"symbol must be BASE/QUOTE, got {symbol!r}")
    return base.upper(), quote.upper()


def excerpt(value: object, limit: int = 80) -> str:
    """A piece of a response for an error message: scrubbed of secrets first, then cut."""
    return scrub(str(value))[:limit]


def epoch_us(moment: datetime) -> int:
    moment = utc_naive(moment)
    return int((moment - datetime(1970, 1, 1)).total_seconds() * 1_000_000)


def to_float(value: object, field: str) -> float:
    """A number that may come as a string (Binance, Kraken): malformed -> MalformedResponse."""
    if isinstance(value, bool) or value is None:
        raise MalformedResponse(f"field {field} is {value!r}, not a number")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MalformedResponse(f"field {field} is {value!r}, not a number") from None


def optional_float(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def candle_frame(symbol: str, rows: Iterable[Sequence[object]]) -> pl.DataFrame:
    """Rows ``(ts_us, open, high, low, close, volume, quote_volume|None)`` -> canonical frame.

    Pages are merged here: identical rows collapse, the result is ordered by ``ts``.
    Rows sharing a ``ts`` but differing are kept, for the quality gate to reject.
    """
    rows = list(rows)
    if not rows:
        return pl.DataFrame(schema=CANDLE_SCHEMA)
    cols = list(zip(*rows, strict=True))
    frame = pl.DataFrame(
        {
            "symbol": [symbol] * len(rows),
            "ts": pl.Series(cols[0], dtype=pl.Int64).cast(pl.Datetime("us")),
            "open": pl.Series(cols[1], dtype=pl.Float64),
            "high": pl.Series(cols[2], dtype=pl.Float64),
            "low": pl.Series(cols[3], dtype=pl.Float64),
            "close": pl.Series(cols[4], dtype=pl.Float64),
            "volume": pl.Series(cols[5], dtype=pl.Float64),
            "quote_volume": pl.Series(cols[6], dtype=pl.Float64),
        },
        schema=CANDLE_SCHEMA,
    )
    return frame.unique(maintain_order=True).sort("ts", maintain_order=True)


def in_window(frame: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    return frame.filter((pl.col("ts") >= utc_naive(start)) & (pl.col("ts") < utc_naive(end)))

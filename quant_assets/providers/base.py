"""Provider protocols and the canonical candle frame every provider returns.

Timestamps are naive ``datetime`` values in UTC (polars ``Datetime("us")``); a candle is
left-labelled: ``ts`` is the open time of ``[ts, ts + interval)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

import polars as pl

CANDLE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "ts": pl.Datetime("us"),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "quote_volume": pl.Float64(),
}


def empty_candles() -> pl.DataFrame:
    """A zero-row frame with the canonical candle schema."""
    return pl.DataFrame(schema=CANDLE_SCHEMA)


class ProviderError(RuntimeError):
    """A provider could not deliver; the chain moves on to the next provider."""


@runtime_checkable
class CandleProvider(Protocol):
    """OHLCV candle history for one symbol over ``[start, end)``.

    ``symbol`` is ccxt style (``BTC/USDT``); ``interval`` is ``1m``, ``5m``, ``1h`` ...
    The returned frame has exactly :data:`CANDLE_SCHEMA`, rows ascending by ``ts``;
    ``quote_volume`` is null where the source does not publish it.
    """

    name: str

    def fetch_candles(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pl.DataFrame: ...

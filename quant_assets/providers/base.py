"""Provider protocols and the canonical candle frame every provider returns.

Timestamps are naive ``datetime`` values in UTC (polars ``Datetime("us")``); a candle is
left-labelled: ``ts`` is the open time of ``[ts, ts + interval)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import polars as pl

from quant_assets.secrets import scrub

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


SPOT_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "quote_ts": pl.Datetime("us"),   # when the source says the price was current (UTC); null: unknown
    "price": pl.Float64(),
    "bid": pl.Float64(),
    "ask": pl.Float64(),
}

DEX_SCHEMA: dict[str, pl.DataType] = {
    "chain_id": pl.Utf8(),
    "pair_address": pl.Utf8(),
    "dex_id": pl.Utf8(),
    "base_symbol": pl.Utf8(),
    "quote_symbol": pl.Utf8(),
    "price_native": pl.Float64(),
    "price_usd": pl.Float64(),
    "liquidity_usd": pl.Float64(),
    "volume_h24": pl.Float64(),
    "fdv": pl.Float64(),
    "txns_h24_buys": pl.Int64(),
    "txns_h24_sells": pl.Int64(),
}


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


class ProviderError(RuntimeError):
    """A provider could not deliver; the chain moves on to the next provider.

    Its message is scrubbed of every configured secret as it is created (it is often built from
    a response body, which a misbehaving upstream or mirror may fill with our own API key).
    """

    counts_against_health = True

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(scrub(str(message)), *(scrub(a) for a in args))


class RetryableError(ProviderError):
    """A transient fault (429, 418, 5xx, timeout, dropped connection): retried with backoff."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class BannedError(ProviderError):
    """Rate-limited with a ``Retry-After`` too long to wait for: the breaker opens until then."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class ClientError(ProviderError):
    """A 4xx the provider meant (bad symbol, auth): never retried."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status
        # An unknown symbol (400/404) says nothing about the provider's health.
        self.counts_against_health = status not in (400, 404)


class MalformedResponse(ProviderError):
    """The body is not JSON, or its shape changed: never retried, counts against health."""


class CircuitOpenError(ProviderError):
    """The provider's circuit breaker is open: skipped without a request."""

    counts_against_health = False


@runtime_checkable
class SpotPriceProvider(Protocol):
    """Latest quote per symbol (:data:`SPOT_SCHEMA`); symbols it cannot quote are absent."""

    name: str

    def fetch_spot(self, symbols: Sequence[str]) -> pl.DataFrame: ...


@runtime_checkable
class DexSnapshotProvider(Protocol):
    """Snapshots of DEX pairs given as ``chainId/pairAddress`` (:data:`DEX_SCHEMA`)."""

    name: str

    def fetch_dex(self, pairs: Sequence[str]) -> pl.DataFrame: ...


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

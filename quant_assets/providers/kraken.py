"""Kraken: ``GET /0/public/OHLC`` and ``GET /0/public/Ticker``.

OHLC returns at most the 720 most recent rows whatever ``since`` says, keyed by Kraken's own
pair name (``XXBTZUSD`` for ``XBTUSD``); the last row is the still-open candle and is dropped.
Errors come inside the ``error`` array: rate limits and ``EService:*`` are retried, others not.
Public calls: about one per second.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import httpx
import polars as pl

from quant_assets.providers.base import (
    SPOT_SCHEMA,
    ClientError,
    MalformedResponse,
    ProviderError,
    RetryableError,
)
from quant_assets.providers.frames import (
    INTERVAL_SECONDS,
    candle_frame,
    epoch_us,
    excerpt,
    in_window,
    split_symbol,
    to_float,
)
from quant_assets.providers.http import HttpProvider

OHLC_LIMIT = 720
_ASSET = {"BTC": "XBT", "DOGE": "XDG"}
_RETRYABLE = ("EAPI:Rate limit", "EGeneral:Too many requests", "EService:Unavailable", "EService:Busy")


def kraken_pair(symbol: str) -> str:
    base, quote = split_symbol(symbol)
    return _ASSET.get(base, base) + _ASSET.get(quote, quote)


def result_of(body: object) -> dict:
    """The ``result`` object, or the right error for the ``error`` array."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), list):
        raise MalformedResponse("kraken body has no error array")
    errors = [str(e) for e in body["error"]]
    if errors:
        text = "kraken: " + "; ".join(errors)
        if any(e.startswith(_RETRYABLE) for e in errors):
            raise RetryableError(text)
        raise ClientError(text, status=400 if any(e.startswith("EQuery") for e in errors) else 403)
    result = body.get("result")
    if not isinstance(result, dict):
        raise MalformedResponse("kraken body has no result object")
    return result


def _pair_value(result: dict) -> object:
    keys = [k for k in result if k != "last"]
    if len(keys) != 1:
        raise MalformedResponse(f"kraken result has pair keys {keys}")
    return result[keys[0]]


def parse_ohlc(body: object) -> list[tuple]:
    rows = _pair_value(result_of(body))
    if not isinstance(rows, list):
        raise MalformedResponse("kraken OHLC rows are not a list")
    out = []
    for row in rows[:-1]:  # the last row is the open candle
        if not isinstance(row, list) or len(row) != 8 or not isinstance(row[0], int):
            raise MalformedResponse(f"kraken OHLC row has an unexpected shape: {excerpt(row)}")
        out.append((
            row[0] * 1_000_000, to_float(row[1], "open"), to_float(row[2], "high"), to_float(row[3], "low"),
            to_float(row[4], "close"), to_float(row[6], "volume"),
            to_float(row[6], "volume") * to_float(row[5], "vwap"),
        ))
    return out


class KrakenProvider(HttpProvider):
    name = "kraken"
    rate_per_s = 1.0
    burst = 2.0

    def fetch_candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> pl.DataFrame:
        minutes = INTERVAL_SECONDS[interval] // 60
        since = epoch_us(start) // 1_000_000 - 1
        rows = self.call(
            "/0/public/OHLC", {"pair": kraken_pair(symbol), "interval": minutes, "since": since},
            parse=lambda body, _r: parse_ohlc(body),
        )
        frame = candle_frame(symbol, rows)
        if frame.height and frame["ts"].min() > start:
            raise ProviderError(
                f"kraken serves only the {OHLC_LIMIT} most recent {interval} candles; "
                f"the oldest it returned is {frame['ts'].min()}, after the window start {start}"
            )
        return in_window(frame, start, end)

    def fetch_spot(self, symbols: Sequence[str]) -> pl.DataFrame:
        def one(symbol: str) -> dict:
            def parse(body: object, _r: httpx.Response) -> dict:
                tick = _pair_value(result_of(body))
                if not isinstance(tick, dict):
                    raise MalformedResponse("kraken ticker is not an object")
                return {"symbol": symbol, "quote_ts": None, "price": to_float(tick["c"][0], "c"),
                        "bid": to_float(tick["b"][0], "b"), "ask": to_float(tick["a"][0], "a")}

            return self.call("/0/public/Ticker", {"pair": kraken_pair(symbol)}, parse=parse)

        return pl.DataFrame(self.per_symbol(symbols, one), schema=SPOT_SCHEMA)

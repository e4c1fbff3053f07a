"""Binance spot: ``GET /api/v3/klines`` (candles) and ``GET /api/v3/ticker/bookTicker`` (spot).

Klines: at most 1000 rows per request, oldest first, 12-field rows with string prices and
millisecond open times; request weight 2 against 6,000 per minute per IP (the limiter counts
weight; ``X-MBX-USED-WEIGHT-1m`` is recorded). 429 and 418 carry ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import httpx
import polars as pl

from quant_assets.providers.base import CANDLE_SCHEMA, SPOT_SCHEMA, MalformedResponse, empty_candles
from quant_assets.providers.frames import (
    INTERVAL_SECONDS,
    epoch_us,
    excerpt,
    in_window,
    split_symbol,
    to_float,
)
from quant_assets.providers.http import HttpProvider

KLINES_LIMIT = 1000
KLINES_WEIGHT = 2


def binance_symbol(symbol: str) -> str:
    base, quote = split_symbol(symbol)
    return base + quote


def parse_kline_rows(body: object) -> pl.DataFrame:
    """A klines page as the canonical candle columns (no ``symbol``), parsed column-wise."""
    if not isinstance(body, list):
        raise MalformedResponse(f"klines body is {type(body).__name__}, not a list")
    for row in body:
        if not isinstance(row, list) or len(row) != 12 or not isinstance(row[0], int):
            raise MalformedResponse(f"kline row has an unexpected shape: {excerpt(row)}")
    if not body:
        return pl.DataFrame(schema={k: v for k, v in CANDLE_SCHEMA.items() if k != "symbol"})
    cols = list(zip(*body, strict=True))
    try:
        prices = {
            name: pl.Series(name, cols[i], dtype=pl.Utf8, strict=False).cast(pl.Float64, strict=True)
            for name, i in (("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5), ("quote_volume", 7))
        }
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise MalformedResponse(f"kline price is not a number: {excerpt(exc)}") from None
    for name, series in prices.items():
        if series.null_count():
            raise MalformedResponse(f"kline field {name} is not a number string")
    ts = (pl.Series("ts", cols[0], dtype=pl.Int64) * 1000).cast(pl.Datetime("us"))
    return pl.DataFrame([ts, *prices.values()])


class BinanceProvider(HttpProvider):
    name = "binance"
    rate_per_s = 6000 / 60  # request weight per second
    burst = 100.0
    api_key_header = "X-MBX-APIKEY"

    def fetch_candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> pl.DataFrame:
        step_ms = INTERVAL_SECONDS[interval] * 1000
        cursor = epoch_us(start) // 1000
        end_ms = epoch_us(end) // 1000
        pages: list[pl.DataFrame] = []
        while cursor < end_ms:
            page = self.call(
                "/api/v3/klines",
                {"symbol": binance_symbol(symbol), "interval": interval, "startTime": cursor,
                 "endTime": end_ms - 1, "limit": KLINES_LIMIT},
                parse=lambda body, _r: parse_kline_rows(body),
                cost=KLINES_WEIGHT,
            )
            if page.is_empty():
                break
            pages.append(page)
            last_ms = epoch_us(page["ts"].max()) // 1000
            if page.height < KLINES_LIMIT or last_ms + step_ms <= cursor:
                break
            cursor = last_ms + step_ms
        if not pages:
            return empty_candles()
        frame = pl.concat(pages).select(pl.lit(symbol, dtype=pl.Utf8).alias("symbol"), pl.all())
        # Pages merged: identical rows collapse, order by ts; conflicting rows stay for the gate.
        return in_window(frame.unique(maintain_order=True).sort("ts", maintain_order=True), start, end)

    def fetch_spot(self, symbols: Sequence[str]) -> pl.DataFrame:
        def one(symbol: str) -> dict:
            def parse(body: object, _r: httpx.Response) -> dict:
                if not isinstance(body, dict):
                    raise MalformedResponse("bookTicker body is not an object")
                bid, ask = to_float(body["bidPrice"], "bidPrice"), to_float(body["askPrice"], "askPrice")
                return {"symbol": symbol, "quote_ts": None, "price": (bid + ask) / 2, "bid": bid, "ask": ask}

            return self.call("/api/v3/ticker/bookTicker", {"symbol": binance_symbol(symbol)}, parse=parse, cost=2)

        return pl.DataFrame(self.per_symbol(symbols, one), schema=SPOT_SCHEMA)

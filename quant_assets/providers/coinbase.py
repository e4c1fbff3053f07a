"""Coinbase Exchange: ``GET /products/{id}/candles`` and ``GET /products/{id}/ticker``.

Candles: granularity 60/300/900/3600/21600/86400 seconds only; at most 300 candles per request
(a wider range is rejected, so pages are 300 buckets wide); rows newest first as
``[time_s, low, high, open, close, volume]``; buckets without trades are missing.
Public limit 10 requests/s, bursts to 15.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import httpx
import polars as pl

from quant_assets.providers.base import SPOT_SCHEMA, ClientError, MalformedResponse
from quant_assets.providers.frames import (
    INTERVAL_SECONDS,
    candle_frame,
    excerpt,
    in_window,
    split_symbol,
    to_float,
)
from quant_assets.providers.http import HttpProvider
from quant_assets.quant.calendar import utc_naive

GRANULARITIES = (60, 300, 900, 3600, 21600, 86400)
CANDLES_LIMIT = 300


def product_id(symbol: str) -> str:
    base, quote = split_symbol(symbol)
    return f"{base}-{quote}"


def parse_candle_rows(body: object) -> list[tuple]:
    if not isinstance(body, list):
        raise MalformedResponse(f"candles body is {type(body).__name__}, not a list")
    rows = []
    for row in body:
        if not isinstance(row, list) or len(row) != 6 or not isinstance(row[0], int):
            raise MalformedResponse(f"candle row has an unexpected shape: {excerpt(row)}")
        t, low, high, open_, close, volume = row
        rows.append((
            t * 1_000_000, to_float(open_, "open"), to_float(high, "high"), to_float(low, "low"),
            to_float(close, "close"), to_float(volume, "volume"), None,
        ))
    return rows


def _iso(moment: datetime) -> str:
    return utc_naive(moment).isoformat() + "Z"


class CoinbaseProvider(HttpProvider):
    name = "coinbase"
    rate_per_s = 10.0
    burst = 15.0

    def fetch_candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> pl.DataFrame:
        granularity = INTERVAL_SECONDS.get(interval)
        if granularity not in GRANULARITIES:
            raise ClientError(f"coinbase has no {interval} candles; granularities {GRANULARITIES}", status=400)
        step = timedelta(seconds=granularity)
        rows: list[tuple] = []
        page_start = utc_naive(start)
        end = utc_naive(end)
        while page_start < end:
            page_end = min(page_start + step * CANDLES_LIMIT, end)
            # start and end are both inclusive bucket times: 300 buckets at most.
            rows.extend(self.call(
                f"/products/{product_id(symbol)}/candles",
                {"granularity": granularity, "start": _iso(page_start), "end": _iso(page_end - step)},
                parse=lambda body, _r: parse_candle_rows(body),
            ))
            page_start = page_end
        return in_window(candle_frame(symbol, rows), start, end)

    def fetch_spot(self, symbols: Sequence[str]) -> pl.DataFrame:
        def one(symbol: str) -> dict:
            def parse(body: object, _r: httpx.Response) -> dict:
                if not isinstance(body, dict):
                    raise MalformedResponse("ticker body is not an object")
                when = datetime.fromisoformat(str(body["time"]).replace("Z", "+00:00"))
                return {"symbol": symbol, "quote_ts": utc_naive(when), "price": to_float(body["price"], "price"),
                        "bid": to_float(body["bid"], "bid"), "ask": to_float(body["ask"], "ask")}

            return self.call(f"/products/{product_id(symbol)}/ticker", parse=parse)

        return pl.DataFrame(self.per_symbol(symbols, one), schema=SPOT_SCHEMA)

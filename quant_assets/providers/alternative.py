"""Alternative data: the Fear & Greed index (alternative.me) and Binance futures funding rates.

* ``GET {alternative_me}/fng/?limit=N``: ``{"data":[{"value":"47","value_classification":
  "Neutral","timestamp":"1777248000"}], "metadata":{"error":null}}`` (strings; seconds).
* ``GET {binance_futures}/fapi/v1/fundingRate?symbol=&startTime=&endTime=&limit=1000``:
  ascending ``[{"symbol","fundingRate","fundingTime","markPrice"}]`` (strings; ms).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from quant_assets.providers.base import MalformedResponse
from quant_assets.providers.binance import binance_symbol
from quant_assets.providers.frames import epoch_us, excerpt, optional_float, to_float
from quant_assets.providers.http import HttpProvider
from quant_assets.quant.calendar import utc_naive

FEAR_GREED_SCHEMA = {"ts": pl.Datetime("us"), "value": pl.Int64(), "classification": pl.Utf8()}
FUNDING_SCHEMA = {"symbol": pl.Utf8(), "ts": pl.Datetime("us"), "funding_rate": pl.Float64(),
                  "mark_price": pl.Float64()}
FUNDING_LIMIT = 1000


def parse_fear_greed(body: object) -> list[dict]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise MalformedResponse("fear & greed body has no data list")
    error = (body.get("metadata") or {}).get("error")
    if error:
        raise MalformedResponse(f"fear & greed error: {excerpt(error)}")
    rows = []
    for item in body["data"]:
        value = int(str(item["value"]))
        if not 0 <= value <= 100:
            raise MalformedResponse(f"fear & greed value {value} outside 0..100")
        rows.append({"ts": int(str(item["timestamp"])) * 1_000_000, "value": value,
                     "classification": str(item.get("value_classification") or "")})
    return rows


class FearGreedProvider(HttpProvider):
    name = "alternative_me"
    rate_per_s = 1.0
    burst = 2.0

    def fetch(self, limit: int = 0) -> pl.DataFrame:
        rows = self.call("/fng/", {"limit": limit}, parse=lambda body, _r: parse_fear_greed(body))
        frame = pl.DataFrame(rows, schema={"ts": pl.Int64, "value": pl.Int64, "classification": pl.Utf8})
        return frame.with_columns(pl.col("ts").cast(pl.Datetime("us"))).unique("ts").sort("ts")


def parse_funding(body: object, symbol: str) -> list[tuple]:
    if not isinstance(body, list):
        raise MalformedResponse("funding body is not a list")
    rows = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("fundingTime"), int):
            raise MalformedResponse(f"funding row has an unexpected shape: {excerpt(item)}")
        rows.append((symbol, item["fundingTime"] * 1000, to_float(item["fundingRate"], "fundingRate"),
                     optional_float(item.get("markPrice"))))
    return rows


class BinanceFundingProvider(HttpProvider):
    name = "binance_futures"
    rate_per_s = 500 / 300  # fundingRate shares 500 requests / 5 min / IP
    burst = 5.0
    api_key_header = "X-MBX-APIKEY"

    def fetch(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        cursor, end_ms = epoch_us(start) // 1000, epoch_us(end) // 1000
        rows: list[tuple] = []
        while cursor < end_ms:
            page = self.call(
                "/fapi/v1/fundingRate",
                {"symbol": binance_symbol(symbol), "startTime": cursor, "endTime": end_ms - 1, "limit": FUNDING_LIMIT},
                parse=lambda body, _r: parse_funding(body, symbol),
            )
            rows.extend(page)
            if len(page) < FUNDING_LIMIT:
                break
            cursor = max(r[1] for r in page) // 1000 + 1
        frame = pl.DataFrame(rows, schema={"symbol": pl.Utf8, "ts": pl.Int64, "funding_rate": pl.Float64,
                                           "mark_price": pl.Float64}, orient="row")
        frame = frame.with_columns(pl.col("ts").cast(pl.Datetime("us"))).unique(maintain_order=True).sort("ts")
        return frame.filter((pl.col("ts") >= utc_naive(start)) & (pl.col("ts") < utc_naive(end)))

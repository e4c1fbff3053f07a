"""Spot quotes from the simulator: the offline default of the spot chain.

The quote for a symbol at time ``t`` is the close of the simulated 1-minute candle that ended
last before ``t`` (bid/ask one basis point either side), so it is deterministic and agrees
with the simulated candles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import polars as pl

from quant_assets.providers.base import SPOT_SCHEMA
from quant_assets.providers.files import local_state
from quant_assets.providers.resilience import utcnow
from quant_assets.providers.simulator import SimulatorCandleProvider


class SimulatorSpotProvider:
    name = "simulator"

    def __init__(self, seed: int = 42, now: Callable[[], datetime] = utcnow) -> None:
        self.candles = SimulatorCandleProvider(seed=seed)
        self.now = now
        self.state = local_state(self.name)

    def fetch_spot(self, symbols: Sequence[str]) -> pl.DataFrame:
        now = self.now().replace(second=0, microsecond=0)
        rows = []
        for symbol in symbols:
            frame = self.candles.fetch_candles(symbol, "1m", now - timedelta(minutes=30), now)
            if frame.is_empty():
                continue
            last = frame.row(-1, named=True)
            close = float(last["close"])
            rows.append({"symbol": symbol, "quote_ts": last["ts"] + timedelta(minutes=1), "price": close,
                         "bid": close * 0.9999, "ask": close * 1.0001})
        return pl.DataFrame(rows, schema=SPOT_SCHEMA)

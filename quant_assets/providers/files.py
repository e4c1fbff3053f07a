"""Local OHLCV files as ccxt/freqtrade write them: ``{BASE}_{QUOTE}-{timeframe}.{feather|parquet|json}``.

Feather/parquet hold columns ``date`` (UTC timestamp), ``open``, ``high``, ``low``, ``close``,
``volume``; JSON holds rows ``[ts_ms, o, h, l, c, v]``. A file is read once per process
(cached on path, size and mtime), then sliced by window.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import polars as pl

from quant_assets.providers.base import CANDLE_SCHEMA, ProviderError
from quant_assets.providers.frames import in_window, split_symbol
from quant_assets.providers.resilience import CircuitBreaker, ProviderMetrics, ProviderState

SUFFIXES = (".feather", ".parquet", ".json")


def local_state(name: str) -> ProviderState:
    # Local sources never "go down" in the network sense: a huge threshold keeps the breaker shut.
    return ProviderState(name, CircuitBreaker(threshold=10**9, cooldown_s=1.0), ProviderMetrics())


def read_ohlcv_file(path: Path, symbol: str) -> pl.DataFrame:
    """One freqtrade/ccxt file as the canonical candle frame (all rows, ascending)."""
    if path.suffix == ".json":
        rows = json.loads(path.read_text())
        if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) != 6 for r in rows):
            raise ProviderError(f"{path.name}: JSON must be a list of [ts_ms, o, h, l, c, v] rows")
        frame = pl.DataFrame(rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row")
        frame = frame.with_columns((pl.col("ts").cast(pl.Int64) * 1000).cast(pl.Datetime("us")))
    else:
        frame = pl.read_ipc(path) if path.suffix == ".feather" else pl.read_parquet(path)
        if "date" not in frame.columns:
            raise ProviderError(f"{path.name}: no 'date' column; columns {frame.columns}")
        date = frame["date"]
        if isinstance(date.dtype, pl.Datetime) and date.dtype.time_zone:
            date = date.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        frame = frame.with_columns(date.cast(pl.Datetime("us")).alias("ts"))
    return frame.select(
        pl.lit(symbol, dtype=pl.Utf8).alias("symbol"),
        pl.col("ts"),
        *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")),
        pl.lit(None, dtype=pl.Float64).alias("quote_volume"),
    ).cast(CANDLE_SCHEMA).sort("ts")


class FilesProvider:
    """:class:`CandleProvider` over a directory of freqtrade/ccxt OHLCV files."""

    name = "files"

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.state = local_state(self.name)
        self._cache: dict[tuple[str, int, int], pl.DataFrame] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FilesProvider({str(self.directory)!r})"

    def find(self, symbol: str, interval: str) -> Path:
        if self.directory is None:
            raise ProviderError("files: no directory configured (QUANT_FILES_DIR or providers.files_dir)")
        base, quote = split_symbol(symbol)
        for suffix in SUFFIXES:
            path = self.directory / f"{base}_{quote}-{interval}{suffix}"
            if path.is_file():
                return path
        raise ProviderError(f"files: no {base}_{quote}-{interval}.feather|.parquet|.json in {self.directory}")

    def load(self, symbol: str, interval: str) -> pl.DataFrame:
        path = self.find(symbol, interval)
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = read_ohlcv_file(path, symbol)
            return self._cache[key]

    def fetch_candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> pl.DataFrame:
        return in_window(self.load(symbol, interval), start, end)

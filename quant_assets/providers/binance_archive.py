"""Binance public-archive zips (data.binance.vision) from a local directory.

``{SYMBOL}-{interval}-{YYYY-MM-DD}.zip`` (daily) or ``{SYMBOL}-{interval}-{YYYY-MM}.zip``
(monthly), anywhere under the files directory. Each holds one CSV with the 12 kline columns:
no header for spot, a header for newer futures files. Open times are milliseconds, or
microseconds (spot, from 2025-01-01). A sibling ``.CHECKSUM`` (``sha256  name``), when present,
must match the zip or the file is rejected and nothing of it is used. Ingestion asks for one day
at a time (``defs/ingestion/raw_candles.py``), so a rejected daily zip fails its own day only.
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from quant_assets.providers.base import ProviderError
from quant_assets.providers.binance import binance_symbol
from quant_assets.providers.files import local_state
from quant_assets.providers.frames import candle_frame, excerpt, in_window
from quant_assets.quant.calendar import utc_naive

COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
           "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore"]
_MICROSECONDS_FROM = 10**14  # any open time above this is in microseconds (year 5138 in ms)


class ChecksumMismatch(ProviderError):
    pass


def verify_checksum(path: Path) -> None:
    sidecar = path.with_name(path.name + ".CHECKSUM")
    if not sidecar.exists():
        return
    fields = sidecar.read_text(errors="replace").split()
    if not fields:
        raise ChecksumMismatch(f"binance_archive: {sidecar.name} is empty; {path.name} rejected")
    expected = fields[0].strip().lower()
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise ChecksumMismatch(f"binance_archive: {path.name} sha256 {actual[:12]}... != CHECKSUM {expected[:12]}...; file rejected")


def read_archive(path: Path, symbol: str) -> pl.DataFrame:
    verify_checksum(path)
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".csv")]
        if len(names) != 1:
            raise ProviderError(f"binance_archive: {path.name} holds {len(names)} CSV files, expected 1")
        data = archive.read(names[0])
    first = data.split(b"\n", 1)[0].decode(errors="replace")
    header = not first.split(",")[0].strip().isdigit()
    frame = pl.read_csv(io.BytesIO(data), has_header=header, infer_schema=False)
    if frame.width != 12:
        raise ProviderError(f"binance_archive: {path.name} has {frame.width} columns, expected 12")
    frame = frame.rename(dict(zip(frame.columns, COLUMNS, strict=True)))
    try:
        frame = frame.with_columns(pl.col("open_time").cast(pl.Int64), *(
            pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume", "quote_volume")))
    except pl.exceptions.InvalidOperationError as exc:
        raise ProviderError(f"binance_archive: {path.name} has a non-numeric value: {excerpt(exc)}") from None
    times = pl.col("open_time")
    us = pl.when(times > _MICROSECONDS_FROM).then(times).otherwise(times * 1000)
    rows = frame.select(us.alias("t"), "open", "high", "low", "close", "volume", "quote_volume").rows()
    return candle_frame(symbol, rows)


class BinanceArchiveProvider:
    """:class:`CandleProvider` over Binance archive zips in a local directory."""

    name = "binance_archive"

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.state = local_state(self.name)
        self._cache: dict[tuple[str, int], pl.DataFrame | tuple[type[ProviderError], str]] = {}
        self._lock = threading.Lock()

    def _find(self, stem: str) -> Path | None:
        assert self.directory is not None
        direct = self.directory / f"{stem}.zip"
        if direct.is_file():
            return direct
        return next(iter(sorted(self.directory.rglob(f"{stem}.zip"))), None)

    def _load(self, path: Path, symbol: str) -> pl.DataFrame:
        """One zip, read (and its checksum verified) once per change; a rejected zip is
        remembered too, so the days of a bad monthly file do not re-hash it one by one."""
        key = (str(path), path.stat().st_mtime_ns)
        with self._lock:
            if key not in self._cache:
                try:
                    self._cache[key] = read_archive(path, symbol)
                except ProviderError as exc:
                    self._cache[key] = (type(exc), str(exc))
            found = self._cache[key]
        if isinstance(found, tuple):
            kind, message = found
            raise kind(message)
        return found

    def fetch_candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> pl.DataFrame:
        if self.directory is None:
            raise ProviderError("binance_archive: no directory configured (QUANT_FILES_DIR or providers.files_dir)")
        start, end = utc_naive(start), utc_naive(end)
        code = binance_symbol(symbol)
        frames, used = [], set()
        day = start.date()
        while datetime.combine(day, datetime.min.time()) < end:
            path = self._find(f"{code}-{interval}-{day.isoformat()}") or self._find(
                f"{code}-{interval}-{day.strftime('%Y-%m')}")
            if path is None:
                raise ProviderError(f"binance_archive: no {code}-{interval} zip covers {day}")
            if path not in used:
                used.add(path)
                frames.append(self._load(path, symbol))
            day += timedelta(days=1)
        return in_window(pl.concat(frames).unique(maintain_order=True).sort("ts"), start, end)

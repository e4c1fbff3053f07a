"""Trade files as ccxt and freqtrade write them: ``{BASE}_{QUOTE}-trades.parquet|.feather``.

Columns ``timestamp`` (epoch milliseconds, UTC), ``id``, ``side``, ``price`` (quote per base)
and ``amount`` (base units); ``type`` and ``cost`` are ignored (cost = price x amount).
"""

from datetime import datetime
from pathlib import Path

import polars as pl

TRADE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(), "ts": pl.Datetime("us"), "trade_id": pl.Utf8(), "side": pl.Utf8(),
    "price": pl.Float64(), "amount": pl.Float64(),
}
_SUFFIXES = {".parquet": pl.read_parquet, ".feather": pl.read_ipc}


def trade_files(directory: Path) -> dict[str, Path]:
    """``{symbol: path}`` for every trade file in ``directory`` (``XRP_ETH-trades.parquet`` -> ``XRP/ETH``)."""
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        stem, suffix = path.stem, path.suffix
        if suffix not in _SUFFIXES or not stem.endswith("-trades") or stem.count("_") != 1:
            continue
        base, quote = stem.removesuffix("-trades").split("_")
        found[f"{base}/{quote}".upper()] = path
    return found


def read_trades(path: Path, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
    """Trades of one file with ``start <= ts < end``, in :data:`TRADE_SCHEMA`, sorted by (ts, trade_id)."""
    raw = _SUFFIXES[path.suffix](path)
    missing = {"timestamp", "id", "price", "amount"} - set(raw.columns)
    if missing:
        raise ValueError(f"trade file {path.name} lacks column(s) {', '.join(sorted(missing))}")
    frame = raw.select(
        pl.lit(symbol).alias("symbol"),
        pl.from_epoch(pl.col("timestamp").cast(pl.Int64), time_unit="ms").cast(pl.Datetime("us")).alias("ts"),
        pl.col("id").cast(pl.Utf8).alias("trade_id"),
        (pl.col("side") if "side" in raw.columns else pl.lit(None)).cast(pl.Utf8).alias("side"),
        pl.col("price").cast(pl.Float64),
        pl.col("amount").cast(pl.Float64),
    )
    return frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end)).sort("ts", "trade_id")

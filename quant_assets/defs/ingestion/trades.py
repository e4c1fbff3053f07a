"""Ingestion of tick data: ``raw_trades`` from trade files, for bars built from trades."""

import dagster as dg
import polars as pl

from quant_assets.config import Settings
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.providers.resilience import utcnow
from quant_assets.providers.trade_files import TRADE_SCHEMA, read_trades, trade_files
from quant_assets.quant.trade_quality import gate_trades


def build_raw_trades(settings: Settings) -> dg.AssetsDefinition:
    directory = settings.trades_dir
    assert directory is not None

    @daily_asset(
        settings,
        name="raw_trades",
        group="ingestion",
        description=(
            f"Individual trades per symbol from the trade files in {directory} "
            "({BASE}_{QUOTE}-trades.parquet|.feather, as ccxt and freqtrade write them): time (UTC, "
            "microseconds), trade id, side, price, amount, with provenance. Gated: finite positive "
            "price and amount, one row per trade id."
        ),
        kinds=("python", "duckdb", "parquet"),
        metadata={"directory": dg.MetadataValue.path(str(directory))},
    )
    def raw_trades(step: WindowStep) -> AssetOutput:
        start, end = step.window
        frames = [read_trades(path, symbol, start, end) for symbol, path in trade_files(directory).items()]
        trades = pl.concat(frames) if frames else pl.DataFrame(schema=TRADE_SCHEMA)
        valid, rejected = gate_trades(trades)
        frame = valid.with_columns(
            provider=pl.lit("files"),
            fetched_at=pl.lit(utcnow(), dtype=pl.Datetime("us")),
            fetch_status=pl.lit("OK"),
            error=pl.lit(None, dtype=pl.Utf8),
        )
        return AssetOutput(
            [TableWrite("raw_trades", frame, merge_key=("symbol", "trade_id"), volatile=("fetched_at",),
                        params={"directory": str(directory)})],
            extra={"symbols": ", ".join(sorted(set(frame["symbol"].to_list()))) or "none in the window",
                   "rejected": dg.MetadataValue.json(rejected)},
        )

    return raw_trades

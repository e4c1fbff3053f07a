"""Ingestion of tick data: ``raw_trades`` from trade files, for bars built from trades."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from quant_assets.config import Settings
from quant_assets.partitions import daily_partitions, window_of
from quant_assets.providers.trade_files import TRADE_SCHEMA, read_trades, trade_files
from quant_assets.quant.trade_quality import gate_trades
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import merge_window, preview_markdown, record_partition_hashes


def build_raw_trades(settings: Settings) -> dg.AssetsDefinition:
    directory = settings.trades_dir
    assert directory is not None

    @dg.asset(
        name="raw_trades",
        group_name="ingestion",
        description=(
            f"Individual trades per symbol from the trade files in {directory} "
            "({BASE}_{QUOTE}-trades.parquet|.feather, as ccxt and freqtrade write them): time (UTC, "
            "microseconds), trade id, side, price, amount, with provenance. Gated: finite positive "
            "price and amount, one row per trade id."
        ),
        partitions_def=daily_partitions(settings),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "duckdb", "parquet"},
        pool="duckdb",
        metadata={"table": "raw_trades", "directory": dg.MetadataValue.path(str(directory))},
    )
    def raw_trades(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        start, end = window_of(context)
        frames = [read_trades(path, symbol, start, end) for symbol, path in trade_files(directory).items()]
        trades = pl.concat(frames) if frames else pl.DataFrame(schema=TRADE_SCHEMA)
        valid, rejected = gate_trades(trades)
        frame = valid.with_columns(
            provider=pl.lit("files"),
            fetched_at=pl.lit(datetime.now(UTC).replace(tzinfo=None), dtype=pl.Datetime("us")),
            fetch_status=pl.lit("OK"),
            error=pl.lit(None, dtype=pl.Utf8),
        )
        with duckdb.connect() as conn:
            inserted, deleted = merge_window(
                conn, "raw_trades", frame, start, end, key=("symbol", "trade_id"), volatile=("fetched_at",)
            )
            hashes = record_partition_hashes(conn, "raw_trades", "raw_trades", start, end, {"directory": str(directory)})
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": frame.height,
                "partitions": len(hashes),
                "symbols": ", ".join(sorted(set(frame["symbol"].to_list()))) or "none in the window",
                "rows_inserted_or_changed": inserted,
                "rows_removed_or_replaced": deleted,
                "rejected": dg.MetadataValue.json(rejected),
                "preview": dg.MetadataValue.md(preview_markdown(frame.tail(10))),
            }
        )

    return raw_trades

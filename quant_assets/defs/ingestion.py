"""Ingestion: ``raw_candles`` from the configured provider chain, gated before any write."""


from datetime import UTC, datetime

import dagster as dg
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings
from quant_assets.partitions import daily_partitions, window_of
from quant_assets.providers.chain import fetch_candles
from quant_assets.providers.registry import candle_chain
from quant_assets.quant.candle_quality import gate_candles
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import merge_window, preview_markdown, record_partition_hashes

RAW_COLUMNS = (
    "symbol", "ts", "interval", "open", "high", "low", "close", "volume", "quote_volume",
    "provider", "fetched_at", "fetch_status", "error",
)


def build_raw_candles(settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(
        name="raw_candles",
        group_name="ingestion",
        description=(
            f"Base {settings.base_interval} OHLCV candles per symbol, UTC, left-labelled, from the "
            f"provider chain {list(settings.candle_providers)}. Every row passed the quality gate and "
            "carries its provenance: provider, fetched_at, fetch_status, error."
        ),
        partitions_def=daily_partitions(settings),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "duckdb"},
        pool="duckdb",
        metadata={"table": "raw_candles", "providers": ", ".join(settings.candle_providers)},
    )
    def raw_candles(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        start, end = window_of(context)
        chain = candle_chain(settings)
        minutes = INTERVAL_MINUTES[settings.base_interval]
        kept: list[pl.DataFrame] = []
        rejected: dict[str, int] = {}
        by_provider: dict[str, int] = {}
        for symbol in settings.symbols:
            result = fetch_candles(chain, symbol, settings.base_interval, start, end)
            for provider, error in result.failures:
                context.log.warning(f"{provider} failed for {symbol}: {error}")
            gate = gate_candles(result.candles, minutes, start, end)
            for reason, n in gate.reject_counts().items():
                rejected[reason] = rejected.get(reason, 0) + n
            if gate.rejected.height:
                context.log.warning(f"{symbol}: rejected {gate.rejected.height} candles: {gate.reject_counts()}")
            by_provider[result.provider] = by_provider.get(result.provider, 0) + gate.valid.height
            kept.append(gate.valid.with_columns(provider=pl.lit(result.provider)))
        fetched_at = datetime.now(UTC).replace(tzinfo=None)
        frame = pl.concat(kept).with_columns(
            interval=pl.lit(settings.base_interval),
            fetched_at=pl.lit(fetched_at, dtype=pl.Datetime("us")),
            fetch_status=pl.lit("OK"),
            error=pl.lit(None, dtype=pl.Utf8),
        ).select(RAW_COLUMNS)
        with duckdb.connect() as conn:
            inserted, deleted = merge_window(
                conn, "raw_candles", frame, start, end, key=("symbol", "ts"), volatile=("fetched_at",)
            )
            hashes = record_partition_hashes(
                conn, "raw_candles", "raw_candles", start, end, ("symbol", "ts"),
                {"providers": settings.candle_providers, "interval": settings.base_interval,
                 "symbols": settings.symbols, "seed": settings.simulator_seed},
            )
        expected = len(settings.symbols) * len(hashes) * (1440 // minutes)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": frame.height,
                "window": f"[{start.isoformat()}, {end.isoformat()})",
                "partitions": len(hashes),
                "rows_inserted_or_changed": inserted,
                "rows_removed_or_replaced": deleted,
                "completeness": round(frame.height / expected, 6) if expected else 0.0,
                "rows_by_provider": dg.MetadataValue.json(by_provider),
                "rejected_rows": sum(rejected.values()),
                "rejected_by_reason": dg.MetadataValue.json(rejected),
                "preview": dg.MetadataValue.md(preview_markdown(frame.tail(10))),
            }
        )

    return raw_candles

"""Alternative data as small daily-partitioned assets: Fear & Greed index, Binance funding rates.

Both are off unless named in ``providers.alternative`` (env ``QUANT_ALTERNATIVE_PROVIDERS``,
``alternative_me`` and/or ``binance_futures``), so the offline demo never reaches the network;
a disabled asset materializes with no rows and says so. Base URLs:
``QUANT_ALTERNATIVE_ME_BASE_URL``, ``QUANT_BINANCE_FUTURES_BASE_URL``. A provider failure fails
the partition with nothing written; writes are idempotent (``merge_window``).
"""

from datetime import datetime

import dagster as dg
import polars as pl

from quant_assets.config import Settings
from quant_assets.partitions import daily_partitions, window_of
from quant_assets.providers.health import health_report, persist_health, restore_health
from quant_assets.providers.registry import ProviderSet
from quant_assets.providers.resilience import one_line, utcnow
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import ident, merge_window, record_partition_hashes

FEAR_GREED_COLUMNS = ("ts", "value", "classification", "provider", "fetched_at")
FUNDING_COLUMNS = ("symbol", "ts", "funding_rate", "mark_price", "provider", "fetched_at")


def _fetch(settings: Settings, duckdb: QuantDuckDB, provider_name: str, fetch) -> tuple[pl.DataFrame, dict]:
    providers = ProviderSet(settings)
    provider = providers.alternative(provider_name)
    with duckdb.connect() as conn:
        restore_health(conn, providers.states())
    try:
        frame = fetch(provider)
        error = None
    except Exception as exc:
        frame, error = None, exc
    finally:
        providers.close()
    with duckdb.connect() as conn:
        persist_health(conn, providers.states())
        health = health_report(conn, [provider_name])
    if error is not None:
        raise dg.Failure(description=f"{provider_name} failed; nothing written: {one_line(error)}",
                         metadata={"provider_health": dg.MetadataValue.json(health)})
    return frame, health


def _write(duckdb: QuantDuckDB, table: str, frame: pl.DataFrame, start: datetime, end: datetime,
           key: tuple[str, ...], params: dict) -> tuple[int, int]:
    with duckdb.connect() as conn:
        inserted, deleted = merge_window(conn, table, frame, start, end, key=key, volatile=("fetched_at",))
        record_partition_hashes(conn, table, table, start, end, params)
    return inserted, deleted


def build_fear_greed(settings: Settings) -> dg.AssetsDefinition:
    enabled = "alternative_me" in settings.ingestion.alternative_providers

    @dg.asset(
        name="fear_greed",
        group_name="ingestion",
        description="The Crypto Fear & Greed index (0 extreme fear .. 100 extreme greed), one value per UTC "
        "day, from alternative.me. Off unless providers.alternative names alternative_me.",
        partitions_def=daily_partitions(settings),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "duckdb"},
        pool="duckdb",
        metadata={"table": "fear_greed", "enabled": enabled},
    )
    def fear_greed(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        start, end = window_of(context)
        if not enabled:
            return dg.MaterializeResult(metadata={"dagster/row_count": 0, "enabled": False,
                                                  "note": "alternative_me is not in providers.alternative"})
        days_back = (utcnow() - start).days + 2
        frame, health = _fetch(settings, duckdb, "alternative_me", lambda p: p.fetch(limit=days_back))
        in_window = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        on_grid = in_window.filter(pl.col("ts").dt.epoch("s") % 86400 == 0)
        rows = on_grid.with_columns(provider=pl.lit("alternative_me"),
                                    fetched_at=pl.lit(utcnow(), dtype=pl.Datetime("us"))).select(FEAR_GREED_COLUMNS)
        inserted, deleted = _write(duckdb, "fear_greed", rows, start, end, ("ts",), {"source": "alternative_me"})
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows.height, "rows_inserted_or_changed": inserted,
            "rows_removed_or_replaced": deleted, "rejected_rows": in_window.height - on_grid.height,
            "provider_health": dg.MetadataValue.json(health),
        })

    return fear_greed


def build_funding_rates(settings: Settings) -> dg.AssetsDefinition:
    enabled = "binance_futures" in settings.ingestion.alternative_providers
    symbols = settings.ingestion.funding_symbols

    @dg.asset(
        name="funding_rates",
        group_name="ingestion",
        description=f"Binance USD-M perpetual funding rates (fraction per funding interval, usually 8h) and "
        f"mark price at funding time for {list(symbols)}. Off unless providers.alternative names binance_futures.",
        partitions_def=daily_partitions(settings),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "duckdb"},
        pool="duckdb",
        metadata={"table": "funding_rates", "enabled": enabled},
    )
    def funding_rates(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        start, end = window_of(context)
        if not enabled:
            return dg.MaterializeResult(metadata={"dagster/row_count": 0, "enabled": False,
                                                  "note": "binance_futures is not in providers.alternative"})
        frame, health = _fetch(
            settings, duckdb, "binance_futures",
            lambda p: pl.concat([p.fetch(s, start, end) for s in symbols], how="vertical_relaxed"),
        )
        ok = frame.filter(
            pl.col("funding_rate").is_finite() & (pl.col("funding_rate").abs() < 1)
            & (pl.col("mark_price").is_null() | (pl.col("mark_price").is_finite() & (pl.col("mark_price") > 0)))
        ).unique(["symbol", "ts"], keep="none")
        rows = ok.with_columns(provider=pl.lit("binance_futures"),
                               fetched_at=pl.lit(utcnow(), dtype=pl.Datetime("us"))).select(FUNDING_COLUMNS)
        inserted, deleted = _write(duckdb, "funding_rates", rows, start, end, ("symbol", "ts"), {"symbols": symbols})
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows.height, "rows_inserted_or_changed": inserted,
            "rows_removed_or_replaced": deleted, "rejected_rows": frame.height - rows.height,
            "provider_health": dg.MetadataValue.json(health),
        })

    return funding_rates


def _check(settings: Settings, table: str, condition: str, description: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=table, name=f"{table}_valid", blocking=True, partitions_def=daily_partitions(settings),
                    pool="duckdb", description=description)
    def _valid(context: dg.AssetCheckExecutionContext, duckdb: QuantDuckDB) -> dg.AssetCheckResult:
        start, end = window_of(context)
        with duckdb.connect() as conn:
            bad = conn.execute(
                f"SELECT count(*) FROM {ident(table)} WHERE ts >= ? AND ts < ? AND NOT ({condition})", [start, end]
            ).fetchone()[0]
        return dg.AssetCheckResult(passed=bad == 0, severity=dg.AssetCheckSeverity.ERROR,
                                   metadata={"failing_rows": bad})

    return _valid


def build_alternative_data(settings: Settings) -> tuple[list, list]:
    """(assets, asset checks) of alternative data."""
    checks = [
        _check(settings, "fear_greed", "value BETWEEN 0 AND 100 AND epoch(ts)::BIGINT % 86400 = 0 "
               "AND provider IS NOT NULL",
               "Every stored Fear & Greed value lies in 0..100, sits on a UTC day boundary and names its provider."),
        _check(settings, "funding_rates", "isfinite(funding_rate) AND abs(funding_rate) < 1 "
               "AND (mark_price IS NULL OR mark_price > 0) AND provider IS NOT NULL",
               "Every stored funding rate is finite and below 100% per interval, with a positive mark price "
               "where given, and names its provider."),
    ]
    return [build_fear_greed(settings), build_funding_rates(settings)], checks

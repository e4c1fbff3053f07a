"""Ingestion: ``raw_candles`` from the configured provider chain, gated before any write.

Per partition window and symbol (symbols fetched in parallel, bounded by
``resilience.max_workers``): the chain asks each provider in order (each call rate-limited,
retried, circuit-broken; see ``providers/http.py``), pages through the window, and keeps the
first answer with valid candles after the quality gate. When every provider fails for a symbol,
rows already stored for the window and fetched within ``resilience.lkg_ttl_s`` are kept as
last-known-good, marked ``DEGRADED`` with the error; otherwise the gap is recorded in
``ingestion_gaps`` and the partition fails with nothing written (the next run completes it).
"""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings
from quant_assets.partitions import daily_partitions, window_of
from quant_assets.providers.chain import ChainResult, fetch_candles
from quant_assets.providers.health import health_report, persist_health, restore_health
from quant_assets.providers.registry import ProviderSet
from quant_assets.providers.resilience import one_line, utcnow
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import (
    merge_window,
    preview_markdown,
    query_frame,
    record_partition_hashes,
)

RAW_COLUMNS = (
    "symbol", "ts", "interval", "open", "high", "low", "close", "volume", "quote_volume",
    "provider", "fetched_at", "fetch_status", "error",
)


def record_gaps(conn, kind: str, keys: list[tuple[str, str]], start: datetime, end: datetime) -> None:
    """``keys``: (key, reason). Re-recording a gap updates its reason and time."""
    now = utcnow()
    for key, reason in keys:
        conn.execute(
            "INSERT OR REPLACE INTO ingestion_gaps VALUES (?, ?, ?, ?, ?, ?)",
            [kind, key, start, end, reason[:500], now],
        ).fetchall()


def last_known_good(conn, symbol: str, start: datetime, end: datetime, ttl_s: float) -> pl.DataFrame:
    """Stored rows of ``symbol`` in the window fetched within the TTL (else empty)."""
    return query_frame(
        conn,
        f"SELECT {', '.join(RAW_COLUMNS)} FROM raw_candles WHERE symbol = ? AND ts >= ? AND ts < ? "
        "AND fetched_at >= ? ORDER BY ts",
        [symbol, start, end, utcnow() - timedelta(seconds=ttl_s)],
    )


def fetch_window(settings: Settings, providers: ProviderSet, start: datetime, end: datetime,
                 log=None) -> dict[str, ChainResult | Exception]:
    """Every symbol through the chain, in parallel; an exception per symbol that failed."""
    chain = providers.candles()
    minutes = INTERVAL_MINUTES[settings.base_interval]

    def one(symbol: str) -> ChainResult | Exception:
        try:
            return fetch_candles(chain, symbol, settings.base_interval, start, end, interval_minutes=minutes)
        except Exception as exc:  # reported per symbol by the caller
            return exc

    workers = max(1, min(settings.ingestion.resilience.max_workers, len(settings.symbols)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        return dict(zip(settings.symbols, pool.map(one, settings.symbols), strict=True))


def build_raw_candles(settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(
        name="raw_candles",
        group_name="ingestion",
        description=(
            f"Base {settings.base_interval} OHLCV candles per symbol, UTC, left-labelled, from the "
            f"provider chain {list(settings.candle_providers)}. Every row passed the quality gate and "
            "carries its provenance: provider, fetched_at, fetch_status (OK, or DEGRADED for "
            "last-known-good rows kept when every provider failed), error."
        ),
        partitions_def=daily_partitions(settings),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "duckdb"},
        pool="duckdb",
        metadata={"table": "raw_candles", "providers": ", ".join(settings.candle_providers)},
    )
    def raw_candles(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        start, end = window_of(context)
        minutes = INTERVAL_MINUTES[settings.base_interval]
        ttl = settings.ingestion.resilience.lkg_ttl_s
        providers = ProviderSet(settings)
        providers.candles()
        with duckdb.connect() as conn:
            restore_health(conn, providers.states())
        began = time.perf_counter()
        try:
            outcomes = fetch_window(settings, providers, start, end)
        finally:
            providers.close()
        fetch_s = time.perf_counter() - began
        fetched_at = utcnow()
        kept: list[pl.DataFrame] = []
        rejected: dict[str, int] = {}
        by_provider: dict[str, int] = {}
        fallbacks: dict[str, list[str]] = {}
        gaps: list[tuple[str, str]] = []
        degraded: dict[str, str] = {}
        with duckdb.connect() as conn:
            for symbol, outcome in outcomes.items():
                if isinstance(outcome, Exception):
                    error = one_line(outcome, 500)
                    context.log.warning(f"{symbol}: {error}")
                    lkg = last_known_good(conn, symbol, start, end, ttl)
                    if lkg.is_empty():
                        gaps.append((symbol, error))
                        continue
                    degraded[symbol] = error
                    kept.append(lkg.with_columns(fetch_status=pl.lit("DEGRADED"), error=pl.lit(error)))
                    by_provider["last_known_good"] = by_provider.get("last_known_good", 0) + lkg.height
                    continue
                for provider, error in outcome.failures:
                    context.log.warning(f"{provider} failed for {symbol}: {error}")
                if outcome.failures:
                    fallbacks[symbol] = [p for p, _ in outcome.failures]
                for reason, n in outcome.rejected.items():
                    rejected[reason] = rejected.get(reason, 0) + n
                if outcome.rejected:
                    context.log.warning(f"{symbol}: rejected candles from {outcome.provider}: {outcome.rejected}")
                by_provider[outcome.provider] = by_provider.get(outcome.provider, 0) + outcome.candles.height
                kept.append(
                    outcome.candles.with_columns(
                        provider=pl.lit(outcome.provider),
                        interval=pl.lit(settings.base_interval),
                        fetched_at=pl.lit(fetched_at, dtype=pl.Datetime("us")),
                        fetch_status=pl.lit("OK"),
                        error=pl.lit(None, dtype=pl.Utf8),
                    ).select(RAW_COLUMNS)
                )
            if gaps:
                record_gaps(conn, "candles", gaps, start, end)
                persist_health(conn, providers.states())
                raise dg.Failure(
                    description=(
                        f"no provider delivered {len(gaps)} symbol(s) for [{start}, {end}) and no "
                        f"last-known-good rows within {ttl:g}s; gap recorded, nothing written: "
                        + "; ".join(f"{s}: {e}" for s, e in gaps)
                    )[:2000],
                    metadata={"gaps": dg.MetadataValue.json(dict(gaps)), "rejected_rows": sum(rejected.values())},
                )
            began = time.perf_counter()
            frame = pl.concat([k.select(RAW_COLUMNS) for k in kept]).sort("symbol", "ts")
            inserted, deleted = merge_window(
                conn, "raw_candles", frame, start, end, key=("symbol", "ts"), volatile=("fetched_at",)
            )
            hashes = record_partition_hashes(conn, "raw_candles", "raw_candles", start, end, {"providers": settings.candle_providers, "interval": settings.base_interval, "symbols": settings.symbols, "seed": settings.simulator_seed})
            persist_health(conn, providers.states())
            health = health_report(conn, [s.name for s in providers.states()])
        write_s = time.perf_counter() - began
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
                "fallbacks": dg.MetadataValue.json(fallbacks),
                "degraded_symbols": dg.MetadataValue.json(degraded),
                "rejected_rows": sum(rejected.values()),
                "rejected_by_reason": dg.MetadataValue.json(rejected),
                "provider_health": dg.MetadataValue.json(health),
                "fetch_seconds": round(fetch_s, 3),
                "write_seconds": round(write_s, 3),
                "rate_limit_wait_seconds": round(sum(s.metrics.rate_limit_wait_s for s in providers.states()), 3),
                "preview": dg.MetadataValue.md(preview_markdown(frame.tail(10))),
            }
        )

    return raw_candles


def build_raw_candles_provenance_check(settings: Settings) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="raw_candles",
        name="raw_candles_provenance",
        blocking=True,
        partitions_def=daily_partitions(settings),
        pool="duckdb",
        description="Every stored candle names its provider and fetch time; fetch_status is OK or "
        "DEGRADED, and DEGRADED rows say why (error is set).",
    )
    def raw_candles_provenance(context: dg.AssetCheckExecutionContext, duckdb: QuantDuckDB) -> dg.AssetCheckResult:
        start, end = window_of(context)
        with duckdb.connect() as conn:
            bad, degraded, by_status = conn.execute(
                """
                SELECT count(*) FILTER (provider IS NULL OR provider = '' OR fetched_at IS NULL
                           OR fetch_status NOT IN ('OK', 'DEGRADED')
                           OR (fetch_status = 'DEGRADED' AND error IS NULL)),
                       count(*) FILTER (fetch_status = 'DEGRADED'),
                       count(*)
                FROM raw_candles WHERE ts >= ? AND ts < ?
                """,
                [start, end],
            ).fetchone()
        return dg.AssetCheckResult(
            passed=bad == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"failing_rows": bad, "degraded_rows": degraded, "rows": by_status},
        )

    return raw_candles_provenance


def build_ingestion_extras(settings: Settings) -> tuple[list, list, list]:
    """Everything of ingestion besides ``raw_candles``: (assets, asset checks, sensors)."""
    from quant_assets.defs.alternative_data import build_alternative_data
    from quant_assets.defs.polling import build_polling

    poll_assets, poll_checks, sensors = build_polling(settings)
    alt_assets, alt_checks = build_alternative_data(settings)
    return [*poll_assets, *alt_assets], [build_raw_candles_provenance_check(settings), *poll_checks, *alt_checks], sensors

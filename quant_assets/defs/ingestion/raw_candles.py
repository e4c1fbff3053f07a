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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings
from quant_assets.defs.ingestion.gaps import record_gaps
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.providers.chain import ChainResult, fetch_candles
from quant_assets.providers.registry import ProviderSet
from quant_assets.providers.resilience import one_line, utcnow
from quant_assets.quant.calendar import Window
from quant_assets.resources.tables import query_frame

RAW_COLUMNS = (
    "symbol", "ts", "interval", "open", "high", "low", "close", "volume", "quote_volume",
    "provider", "fetched_at", "fetch_status", "error",
)


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
    minutes = INTERVAL_MINUTES[settings.base_interval]
    ttl = settings.ingestion.resilience.lkg_ttl_s
    per_day = len(settings.symbols) * (1440 // minutes)

    def fetch(context: dg.AssetExecutionContext, window: Window) -> tuple[dict, float]:
        began = time.perf_counter()
        outcomes = fetch_window(settings, context.resources.providers, window.start, window.end)
        return outcomes, time.perf_counter() - began

    @daily_asset(
        settings,
        name="raw_candles",
        group="ingestion",
        description=(
            f"Base {settings.base_interval} OHLCV candles per symbol, UTC, left-labelled, from the "
            f"provider chain {list(settings.candle_providers)}. Every row passed the quality gate and "
            "carries its provenance: provider, fetched_at, fetch_status (OK, or DEGRADED for "
            "last-known-good rows kept when every provider failed), error."
        ),
        kinds=("python", "duckdb"),
        metadata={"providers": ", ".join(settings.candle_providers)},
        resources=("providers",),
        fetch=fetch,
    )
    def raw_candles(step: WindowStep) -> AssetOutput:
        outcomes, fetch_s = step.fetched
        start, end = step.window
        kept = _gate_outcomes(step, outcomes, settings.base_interval, ttl)
        if kept.gaps:
            record_gaps(step.conn, "candles", kept.gaps, start, end)
            raise _gap_failure(kept, step.window, ttl)
        frame = pl.concat([k.select(RAW_COLUMNS) for k in kept.frames]).sort("symbol", "ts")
        counts = frame.group_by(pl.col("ts").dt.date().alias("day")).len()
        daily = {str(day): {"completeness": round(n / per_day, 6)} for day, n in counts.iter_rows()}
        providers = step.context.resources.providers
        return AssetOutput(
            [TableWrite("raw_candles", frame, merge_key=("symbol", "ts"), volatile=("fetched_at",),
                        params={"providers": settings.candle_providers, "interval": settings.base_interval,
                                "symbols": settings.symbols, "seed": settings.simulator_seed})],
            daily=daily,
            summary={
                "rejected_rows": sum(kept.rejected.values()),
                "fetch_seconds": round(fetch_s, 3),
                "rate_limit_wait_seconds": round(sum(s.metrics.rate_limit_wait_s for s in providers.states()), 3),
            },
            extra={
                "rows_by_provider": dg.MetadataValue.json(kept.by_provider),
                "fallbacks": dg.MetadataValue.json(kept.fallbacks),
                "degraded_symbols": dg.MetadataValue.json(kept.degraded),
                "rejected_by_reason": dg.MetadataValue.json(kept.rejected),
                "provider_health": dg.MetadataValue.json(providers.health()),
            },
        )

    return raw_candles


def _gap_failure(kept: "GatedCandles", window: Window, ttl: float) -> dg.Failure:
    return dg.Failure(
        description=(
            f"no provider delivered {len(kept.gaps)} symbol(s) for [{window.start}, {window.end}) and no "
            f"last-known-good rows within {ttl:g}s; gap recorded, nothing written: "
            + "; ".join(f"{s}: {e}" for s, e in kept.gaps)
        )[:2000],
        metadata={"gaps": dg.MetadataValue.json(dict(kept.gaps)), "rejected_rows": sum(kept.rejected.values())},
    )


@dataclass
class GatedCandles:
    """The chain's outcome per symbol, sorted into rows to keep, gaps and counts."""

    frames: list[pl.DataFrame] = field(default_factory=list)
    gaps: list[tuple[str, str]] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    by_provider: dict[str, int] = field(default_factory=dict)
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    degraded: dict[str, str] = field(default_factory=dict)


def _gate_outcomes(step: WindowStep, outcomes: dict[str, ChainResult | Exception], interval: str,
                   ttl: float) -> GatedCandles:
    """Fresh rows with their provenance; last-known-good rows for failed symbols; else a gap."""
    out = GatedCandles()
    fetched_at = utcnow()
    start, end = step.window
    for symbol, outcome in outcomes.items():
        if isinstance(outcome, Exception):
            error = one_line(outcome, 500)
            step.log.warning(f"{symbol}: {error}")
            lkg = last_known_good(step.conn, symbol, start, end, ttl)
            if lkg.is_empty():
                out.gaps.append((symbol, error))
                continue
            out.degraded[symbol] = error
            out.frames.append(lkg.with_columns(fetch_status=pl.lit("DEGRADED"), error=pl.lit(error)))
            out.by_provider["last_known_good"] = out.by_provider.get("last_known_good", 0) + lkg.height
            continue
        for provider, error in outcome.failures:
            step.log.warning(f"{provider} failed for {symbol}: {error}")
        if outcome.failures:
            out.fallbacks[symbol] = [p for p, _ in outcome.failures]
        for reason, n in outcome.rejected.items():
            out.rejected[reason] = out.rejected.get(reason, 0) + n
        if outcome.rejected:
            step.log.warning(f"{symbol}: rejected candles from {outcome.provider}: {outcome.rejected}")
        out.by_provider[outcome.provider] = out.by_provider.get(outcome.provider, 0) + outcome.candles.height
        out.frames.append(
            outcome.candles.with_columns(
                provider=pl.lit(outcome.provider),
                interval=pl.lit(interval),
                fetched_at=pl.lit(fetched_at, dtype=pl.Datetime("us")),
                fetch_status=pl.lit("OK"),
                error=pl.lit(None, dtype=pl.Utf8),
            ).select(RAW_COLUMNS)
        )
    return out


def build_raw_candles_provenance_check(settings: Settings) -> dg.AssetChecksDefinition:
    @daily_check(
        settings,
        asset="raw_candles",
        name="raw_candles_provenance",
        description="Every stored candle names its provider and fetch time; fetch_status is OK or "
        "DEGRADED, and DEGRADED rows say why (error is set).",
    )
    def raw_candles_provenance(conn, day: Window | None) -> Verdict:
        bad, degraded, rows = conn.execute(
            """
            SELECT count(*) FILTER (provider IS NULL OR provider = '' OR fetched_at IS NULL
                       OR fetch_status NOT IN ('OK', 'DEGRADED')
                       OR (fetch_status = 'DEGRADED' AND error IS NULL)),
                   count(*) FILTER (fetch_status = 'DEGRADED'),
                   count(*)
            FROM raw_candles WHERE ts >= ? AND ts < ?
            """,
            list(day),
        ).fetchone()
        return Verdict(bad == 0, {"failing_rows": bad, "degraded_rows": degraded, "rows": rows})

    return raw_candles_provenance

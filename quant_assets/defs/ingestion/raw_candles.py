"""Ingestion: ``raw_candles`` from the configured provider chain, gated before any write.

The unit of fetching and of failure is one symbol on one UTC day: per (symbol, day) of the
run's window (fetched in parallel, bounded by ``resilience.max_workers``) the chain asks each
provider in order (each call rate-limited, retried, circuit-broken; see ``providers/http.py``)
and keeps the first answer with valid candles after the quality gate. So a day is fetched the
same way whether it runs alone or inside a range, and one bad day (say a Binance archive zip
whose CHECKSUM does not match) cannot take its neighbours down with it.

When every provider fails for a symbol on a day, rows already stored for that day and fetched
within ``resilience.lkg_ttl_s`` are kept as last-known-good, marked ``DEGRADED`` with the error;
otherwise the gap is recorded in ``ingestion_gaps`` for that symbol and day, and the day is not
written (a day is written whole, every symbol, or not at all). The other days of the window are
written and materialized, each with its own hash and figures, and then the run fails with one
line naming each failed day and its cause: those partitions show as failed in Dagster and are
retried by the next run, not shown as materialized with rows missing.

Every error text (gaps, ``DEGRADED`` rows, logs, metadata, the failure) is scrubbed of secrets
(``quant_assets.secrets``).
"""

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings
from quant_assets.defs.ingestion.gaps import record_gaps
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.lib.partitioned import (
    AssetOutput,
    TableWrite,
    WindowStep,
    daily_asset,
    write_window,
)
from quant_assets.providers.base import CandleProvider
from quant_assets.providers.chain import ChainResult, fetch_candles
from quant_assets.providers.resilience import one_line, utcnow
from quant_assets.quant.calendar import Window
from quant_assets.resources.tables import query_frame, transaction
from quant_assets.secrets import scrub_data, scrubbing_errors

RAW_COLUMNS = (
    "symbol", "ts", "interval", "open", "high", "low", "close", "volume", "quote_volume",
    "provider", "fetched_at", "fetch_status", "error",
)
Outcomes = dict[tuple[str, Window], ChainResult | Exception]
MAX_DAYS_NAMED, MAX_SYMBOLS_NAMED = 5, 2  # in the failure's one line; every gap is in ingestion_gaps


def last_known_good(conn, symbol: str, start: datetime, end: datetime, ttl_s: float) -> pl.DataFrame:
    """Stored rows of ``symbol`` in the window fetched within the TTL (else empty)."""
    return query_frame(
        conn,
        f"SELECT {', '.join(RAW_COLUMNS)} FROM raw_candles WHERE symbol = ? AND ts >= ? AND ts < ? "
        "AND fetched_at >= ? ORDER BY ts",
        [symbol, start, end, utcnow() - timedelta(seconds=ttl_s)],
    )


def fetch_window(settings: Settings, chain: Sequence[CandleProvider], start: datetime, end: datetime) -> Outcomes:
    """Every (symbol, day) of the window through ``chain``, in parallel; an exception for each
    one that failed."""
    minutes = INTERVAL_MINUTES[settings.base_interval]
    jobs = [(symbol, day) for symbol in settings.symbols for day in Window(start, end).days()]

    def one(job: tuple[str, Window]) -> ChainResult | Exception:
        symbol, day = job
        try:
            return fetch_candles(chain, symbol, settings.base_interval, day.start, day.end,
                                 interval_minutes=minutes)
        except Exception as exc:  # reported per symbol and day by the caller
            return exc

    workers = max(1, min(settings.ingestion.resilience.max_workers, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        return dict(zip(jobs, pool.map(one, jobs), strict=True))


def build_raw_candles(settings: Settings) -> dg.AssetsDefinition:
    minutes = INTERVAL_MINUTES[settings.base_interval]
    ttl = settings.ingestion.resilience.lkg_ttl_s
    per_day = len(settings.symbols) * (1440 // minutes)
    params = {"providers": settings.candle_providers, "interval": settings.base_interval,
              "symbols": settings.symbols, "seed": settings.simulator_seed}

    @scrubbing_errors
    def fetch(context: dg.AssetExecutionContext, window: Window) -> tuple[Outcomes, float]:
        chain = context.resources.providers.candles()  # built, health restored: not part of the fetch time
        began = time.perf_counter()
        outcomes = fetch_window(settings, chain, window.start, window.end)
        return outcomes, time.perf_counter() - began

    @daily_asset(
        settings,
        name="raw_candles",
        group="ingestion",
        description=(
            f"Base {settings.base_interval} OHLCV candles per symbol, UTC, left-labelled, from the "
            f"provider chain {list(settings.candle_providers)}. Every row passed the quality gate and "
            "carries its provenance: provider, fetched_at, fetch_status (OK, or DEGRADED for "
            "last-known-good rows kept when every provider failed), error. A day on which a symbol "
            "could not be had is not written: its gap is in ingestion_gaps and its partition fails."
        ),
        kinds=("python", "duckdb"),
        metadata={"providers": ", ".join(settings.candle_providers)},
        resources=("providers",),
        fetch=fetch,
    )
    @scrubbing_errors
    def raw_candles(step: WindowStep) -> AssetOutput:
        outcomes, fetch_s = step.fetched
        kept = _gate_outcomes(step, outcomes, settings.base_interval, ttl)
        providers = step.context.resources.providers
        summary = {
            "rejected_rows": sum(kept.rejected.values()),
            "fetch_seconds": round(fetch_s, 3),
            "rate_limit_wait_seconds": round(sum(s.metrics.rate_limit_wait_s for s in providers.states()), 3),
        }
        extra = {
            "rows_by_provider": dg.MetadataValue.json(kept.by_provider),
            "fallbacks": dg.MetadataValue.json(scrub_data(kept.fallbacks)),
            "degraded_symbols": dg.MetadataValue.json(scrub_data(kept.degraded)),
            "rejected_by_reason": dg.MetadataValue.json(kept.rejected),
            "provider_health": dg.MetadataValue.json(scrub_data(providers.health())),
        }
        if kept.gaps:
            _write_good_days_then_fail(step, kept, params, per_day, ttl, extra)
        frame = _frame(kept)
        return AssetOutput(
            [TableWrite("raw_candles", frame, merge_key=("symbol", "ts"), volatile=("fetched_at",), params=params)],
            daily=_completeness(frame, per_day), summary=summary, extra=extra,
        )

    return raw_candles


def _frame(kept: "GatedCandles") -> pl.DataFrame:
    frames = [k.select(RAW_COLUMNS) for k in kept.frames]
    return pl.concat(frames).sort("symbol", "ts") if frames else pl.DataFrame()


def _completeness(frame: pl.DataFrame, per_day: int) -> dict[str, dict[str, float]]:
    if frame.is_empty():
        return {}
    counts = frame.group_by(pl.col("ts").dt.date().alias("day")).len()
    return {str(day): {"completeness": round(n / per_day, 6)} for day, n in counts.iter_rows()}


def _write_good_days_then_fail(step: WindowStep, kept: "GatedCandles", params: Mapping, per_day: int,
                               ttl: float, extra: Mapping) -> None:
    """Some days could not be had: record their gaps, write every other day whole (each
    contiguous stretch through ``write_window``, all in one transaction), materialize those
    partitions one by one, then fail naming each failed day and its cause."""
    failed = sorted({day for _symbol, day, _error in kept.gaps})
    good = [day for day in step.window.days() if day not in failed]
    frame = _frame(kept)
    hashes: dict[str, tuple[int, str]] = {}
    with transaction(step.conn):
        for day in failed:
            record_gaps(step.conn, "candles", [(s, e) for s, d, e in kept.gaps if d == day], day.start, day.end)
        for stretch in _stretches(good):
            rows = frame.filter((pl.col("ts") >= stretch.start) & (pl.col("ts") < stretch.end))
            output = AssetOutput([TableWrite("raw_candles", rows, merge_key=("symbol", "ts"),
                                             volatile=("fetched_at",), params=params)])
            hashes.update(write_window(step.conn, stretch, output)["raw_candles"])
    completeness = _completeness(frame, per_day)
    for day in good:
        rows, digest = hashes[day.key]
        step.context.log_event(dg.AssetMaterialization(
            asset_key="raw_candles", partition=day.key,
            metadata={"dagster/row_count": rows, "content_hash": digest,
                      **completeness.get(day.key, {"completeness": 0.0}), "run_window": step.window.label()},
        ))
    raise _gap_failure(kept, step.window, failed, good, ttl, extra)


def _stretches(days: list[Window]) -> list[Window]:
    """Consecutive days joined into windows."""
    out: list[Window] = []
    for day in days:
        if out and out[-1].end == day.start:
            out[-1] = Window(out[-1].start, day.end)
        else:
            out.append(day)
    return out


def _gap_failure(kept: "GatedCandles", window: Window, failed: list[Window], good: list[Window], ttl: float,
                 extra: Mapping) -> dg.Failure:
    """One line: which days failed and why, which were written; the details as metadata."""
    causes = []
    for day in failed[:MAX_DAYS_NAMED]:
        errors = [f"{symbol}: {cause}" for symbol, d, cause in kept.causes if d == day]
        more = f"; and {len(errors) - MAX_SYMBOLS_NAMED} more symbol(s)" if len(errors) > MAX_SYMBOLS_NAMED else ""
        causes.append(f"{day.key} ({'; '.join(errors[:MAX_SYMBOLS_NAMED])}{more})")
    if len(failed) > MAX_DAYS_NAMED:
        causes.append(f"and {len(failed) - MAX_DAYS_NAMED} more day(s): {', '.join(d.key for d in failed[MAX_DAYS_NAMED:])}")
    written = f"; written: {', '.join(d.key for d in good)}" if good else "; nothing written"
    description = one_line(
        f"raw_candles: {len(failed)} of {window.n_days} day(s) not written, gap recorded (no provider delivered "
        f"and no last-known-good rows within {ttl:g}s): " + "; ".join(causes) + written, 2000)
    if len(description) == 2000 and good:  # the written days must survive the cut
        description = description[: 2000 - len(written) - 1] + "…" + written
    return dg.Failure(
        description=description,
        metadata={
            "failed_days": dg.MetadataValue.json([d.key for d in failed]),
            "written_days": dg.MetadataValue.json([d.key for d in good]),
            "gaps": dg.MetadataValue.json(scrub_data({f"{s} {d.key}": e for s, d, e in kept.gaps})),
            "rejected_rows": sum(kept.rejected.values()),
            **{k: v for k, v in extra.items() if k in ("provider_health", "fallbacks")},
        },
    )


@dataclass
class GatedCandles:
    """The chain's outcome per symbol and day, sorted into rows to keep, gaps and counts."""

    frames: list[pl.DataFrame] = field(default_factory=list)
    gaps: list[tuple[str, Window, str]] = field(default_factory=list)   # (symbol, day, one-line error)
    causes: list[tuple[str, Window, str]] = field(default_factory=list)  # the same, each provider's error only
    rejected: dict[str, int] = field(default_factory=dict)
    by_provider: dict[str, int] = field(default_factory=dict)
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    degraded: dict[str, str] = field(default_factory=dict)


def _gate_outcomes(step: WindowStep, outcomes: Outcomes, interval: str, ttl: float) -> GatedCandles:
    """Fresh rows with their provenance; last-known-good rows for a failed (symbol, day); else a gap."""
    out = GatedCandles()
    fetched_at = utcnow()
    for (symbol, day), outcome in outcomes.items():
        if isinstance(outcome, Exception):
            error = one_line(outcome, 500)
            step.log.warning(f"{symbol} {day.key}: {error}")
            lkg = last_known_good(step.conn, symbol, day.start, day.end, ttl)
            if lkg.is_empty():
                out.gaps.append((symbol, day, error))
                failures = getattr(outcome, "failures", ())
                out.causes.append((symbol, day, "; ".join(f"{p}: {e}" for p, e in failures) if failures else error))
                continue
            out.degraded.setdefault(symbol, error)
            out.frames.append(lkg.with_columns(fetch_status=pl.lit("DEGRADED"), error=pl.lit(error)))
            out.by_provider["last_known_good"] = out.by_provider.get("last_known_good", 0) + lkg.height
            continue
        for provider, error in outcome.failures:
            step.log.warning(f"{provider} failed for {symbol} {day.key}: {error}")
        if outcome.failures:
            names = out.fallbacks.setdefault(symbol, [])
            names += [p for p, _ in outcome.failures if p not in names]
        for reason, n in outcome.rejected.items():
            out.rejected[reason] = out.rejected.get(reason, 0) + n
        if outcome.rejected:
            step.log.warning(f"{symbol} {day.key}: rejected candles from {outcome.provider}: {outcome.rejected}")
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

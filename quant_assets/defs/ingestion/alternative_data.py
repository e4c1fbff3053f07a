"""Alternative data as small daily-partitioned assets: Fear & Greed index, Binance funding rates.

Both are off unless named in ``providers.alternative`` (env ``QUANT_ALTERNATIVE_PROVIDERS``,
``alternative_me`` and/or ``binance_futures``), so the offline demo never reaches the network;
a disabled asset materializes with no rows and says so. Base URLs:
``QUANT_ALTERNATIVE_ME_BASE_URL``, ``QUANT_BINANCE_FUTURES_BASE_URL``. A provider failure fails
the partition with nothing written; writes are idempotent (merged on their key).
"""

from collections.abc import Callable
from typing import Any

import dagster as dg
import polars as pl

from quant_assets.config import Settings
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.providers.resilience import one_line, utcnow
from quant_assets.quant.calendar import Window
from quant_assets.resources.tables import ident

FEAR_GREED_COLUMNS = ("ts", "value", "classification", "provider", "fetched_at")
FUNDING_COLUMNS = ("symbol", "ts", "funding_rate", "mark_price", "provider", "fetched_at")


def _fetcher(provider_name: str, enabled: bool,
             fetch: Callable[[Any, Window], pl.DataFrame]) -> Callable[[dg.AssetExecutionContext, Window], Any]:
    """Fetch through the run's providers resource (health restored and persisted by it)."""

    def run(context: dg.AssetExecutionContext, window: Window) -> pl.DataFrame | None:
        if not enabled:
            return None
        providers = context.resources.providers
        try:
            return fetch(providers.alternative(provider_name), window)
        except Exception as exc:
            raise dg.Failure(
                description=f"{provider_name} failed; nothing written: {one_line(exc)}",
                metadata={"provider_health": dg.MetadataValue.json(providers.health([provider_name]))},
            ) from None

    return run


def _disabled(provider_name: str) -> AssetOutput:
    """Nothing fetched and nothing written: rows stored while it was enabled stay."""
    return AssetOutput([], extra={"enabled": False, "note": f"{provider_name} is not in providers.alternative"})


def build_fear_greed(settings: Settings) -> dg.AssetsDefinition:
    enabled = "alternative_me" in settings.ingestion.alternative_providers

    @daily_asset(
        settings,
        name="fear_greed",
        group="ingestion",
        description="The Crypto Fear & Greed index (0 extreme fear .. 100 extreme greed), one value per UTC "
        "day, from alternative.me. Off unless providers.alternative names alternative_me.",
        kinds=("python", "duckdb"),
        metadata={"enabled": enabled},
        resources=("providers",),
        fetch=_fetcher("alternative_me", enabled,
                       lambda p, window: p.fetch(limit=(utcnow() - window.start).days + 2)),
    )
    def fear_greed(step: WindowStep) -> AssetOutput:
        start, end = step.window
        if step.fetched is None:
            return _disabled("alternative_me")
        in_window = step.fetched.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        on_grid = in_window.filter(pl.col("ts").dt.epoch("s") % 86400 == 0)
        rows = on_grid.with_columns(provider=pl.lit("alternative_me"),
                                    fetched_at=pl.lit(utcnow(), dtype=pl.Datetime("us"))).select(FEAR_GREED_COLUMNS)
        daily = {str(ts.date()): {"value": v} for ts, v in rows.select("ts", "value").iter_rows()}
        return AssetOutput(
            [TableWrite("fear_greed", rows, merge_key=("ts",), volatile=("fetched_at",),
                        params={"source": "alternative_me"})],
            daily=daily,
            summary={"rejected_rows": in_window.height - on_grid.height},
            extra={"provider_health": dg.MetadataValue.json(step.context.resources.providers.health(["alternative_me"]))},
        )

    return fear_greed


def build_funding_rates(settings: Settings) -> dg.AssetsDefinition:
    enabled = "binance_futures" in settings.ingestion.alternative_providers
    symbols = settings.ingestion.funding_symbols

    @daily_asset(
        settings,
        name="funding_rates",
        group="ingestion",
        description=f"Binance USD-M perpetual funding rates (fraction per funding interval, usually 8h) and "
        f"mark price at funding time for {list(symbols)}. Off unless providers.alternative names binance_futures.",
        kinds=("python", "duckdb"),
        metadata={"enabled": enabled},
        resources=("providers",),
        fetch=_fetcher("binance_futures", enabled, lambda p, window: pl.concat(
            [p.fetch(s, window.start, window.end) for s in symbols], how="vertical_relaxed")),
    )
    def funding_rates(step: WindowStep) -> AssetOutput:
        if step.fetched is None:
            return _disabled("binance_futures")
        frame = step.fetched
        ok = frame.filter(
            pl.col("funding_rate").is_finite() & (pl.col("funding_rate").abs() < 1)
            & (pl.col("mark_price").is_null() | (pl.col("mark_price").is_finite() & (pl.col("mark_price") > 0)))
        ).unique(["symbol", "ts"], keep="none")
        rows = ok.with_columns(provider=pl.lit("binance_futures"),
                               fetched_at=pl.lit(utcnow(), dtype=pl.Datetime("us"))).select(FUNDING_COLUMNS)
        return AssetOutput(
            [TableWrite("funding_rates", rows, merge_key=("symbol", "ts"), volatile=("fetched_at",),
                        params={"symbols": symbols})],
            summary={"rejected_rows": frame.height - rows.height},
            extra={"provider_health": dg.MetadataValue.json(step.context.resources.providers.health(["binance_futures"]))},
        )

    return funding_rates


def _check(settings: Settings, table: str, condition: str, description: str) -> dg.AssetChecksDefinition:
    @daily_check(settings, asset=table, name=f"{table}_valid", description=description)
    def _valid(conn, day: Window | None) -> Verdict:
        bad = conn.execute(
            f"SELECT count(*) FROM {ident(table)} WHERE ts >= ? AND ts < ? AND NOT ({condition})", list(day)
        ).fetchone()[0]
        return Verdict(bad == 0, {"failing_rows": bad})

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

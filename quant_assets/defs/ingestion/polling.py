"""Polling: spot quotes and DEX snapshots cannot be backfilled, so a sensor records them live.

The sensor ``poll_spot_and_dex`` (STOPPED on a fresh install; start it in the UI or with
``dagster sensor start poll_spot_and_dex``) runs every ``polling.interval_s`` seconds (default
60). Each evaluation polls the current *tick* (``now`` floored to the interval) into
``spot_quotes`` and ``dex_snapshots`` (rows keyed by symbol or pair and tick). Its cursor is the
last tick written, so a restart never repeats a tick (and rows are inserted-or-ignored on their
key anyway); ticks missed while it was stopped cannot be fetched afterwards and are recorded as
one row in ``ingestion_gaps`` instead of being skipped silently.

When every provider fails for a symbol, its last-known-good quote (``fetch_status = 'OK'``,
newer than ``resilience.lkg_ttl_s``) is written for the tick marked ``DEGRADED`` with the
error; past the TTL the gap is recorded and nothing is written.

The daily-partitioned assets ``spot_quotes`` and ``dex_snapshots`` do not fetch: materializing a
day reports what the poller stored for it (and hashes it); their checks validate those rows.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from quant_assets.config import Settings
from quant_assets.defs.ingestion.gaps import record_gaps
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.lib.providers import ProvidersResource
from quant_assets.providers.chain import fetch_snapshots
from quant_assets.providers.resilience import one_line, utcnow
from quant_assets.quant.calendar import Window
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import ident, query_frame, registered, transaction
from quant_assets.secrets import scrubbing_errors

SPOT_COLUMNS = ("symbol", "ts", "quote_ts", "price", "bid", "ask", "provider", "fetched_at", "fetch_status", "error")
DEX_COLUMNS = (
    "pair", "ts", "chain_id", "pair_address", "dex_id", "base_symbol", "quote_symbol", "price_native",
    "price_usd", "liquidity_usd", "volume_h24", "fdv", "txns_h24_buys", "txns_h24_sells",
    "provider", "fetched_at", "fetch_status", "error",
)
SENSOR_NAME = "poll_spot_and_dex"


def floor_tick(moment: datetime, interval_s: int) -> datetime:
    epoch = datetime(1970, 1, 1)
    seconds = int((moment - epoch).total_seconds())
    return epoch + timedelta(seconds=seconds - seconds % interval_s)


def _insert(conn, table: str, frame: pl.DataFrame, columns: tuple[str, ...]) -> int:
    if frame.is_empty():
        return 0
    with registered(conn, "_poll_rows", frame.select(columns)):
        before = conn.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()[0][0]
        conn.execute(f"INSERT OR IGNORE INTO {ident(table)} BY NAME SELECT * FROM _poll_rows").fetchall()
        return conn.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()[0][0] - before


def _lkg(conn, table: str, key_col: str, keys: list[str], tick: datetime, ttl_s: float, columns) -> pl.DataFrame:
    """Newest OK row per key not older than the TTL (by its source time)."""
    if not keys:
        return pl.DataFrame()
    age_col = "quote_ts" if table == "spot_quotes" else "ts"
    return query_frame(
        conn,
        f"SELECT {', '.join(ident(c) for c in columns)} FROM {ident(table)} WHERE fetch_status = 'OK' "
        f"AND {ident(key_col)} IN (SELECT unnest(?::VARCHAR[])) AND {ident(age_col)} >= ? AND ts < ? "
        f"QUALIFY row_number() OVER (PARTITION BY {ident(key_col)} ORDER BY ts DESC) = 1",
        [keys, tick - timedelta(seconds=ttl_s), tick],
    )


@scrubbing_errors
def poll_once(settings: Settings, duckdb: QuantDuckDB, tick: datetime, last_tick: datetime | None,
              providers: ProvidersResource) -> dict:
    """Poll one tick into the tables; return a summary. Does nothing for a tick already done.

    ``providers`` is the set-up providers resource: it restored health before and persists it after.
    Error texts (gaps, ``DEGRADED`` rows, the summary) are scrubbed of secrets, and so is any
    exception leaving it (the sensor tick's error).
    """
    interval = settings.ingestion.poll_interval_s
    ttl = settings.ingestion.resilience.lkg_ttl_s
    if last_tick is not None and tick <= last_tick:
        return {"tick": tick.isoformat(), "skipped": "tick already polled"}
    spot_chain, dex_chain = providers.spot(), providers.dex()
    summary: dict = {"tick": tick.isoformat(), "spot_rows": 0, "dex_rows": 0, "degraded": [], "gaps": [],
                     "rejected": 0, "failures": []}
    spot = fetch_snapshots(spot_chain, settings.symbols, "fetch_spot", pl.col("symbol"),
                           required=("price",), optional=("bid", "ask"))
    dex = None
    if dex_chain and settings.ingestion.dex_pairs:
        dex = fetch_snapshots(dex_chain, settings.ingestion.dex_pairs, "fetch_dex",
                              pl.concat_str("chain_id", pl.lit("/"), "pair_address"),
                              required=("price_native",), optional=("price_usd",))
    fetched_at = utcnow()
    with duckdb.connect() as conn, transaction(conn):  # a tick's rows and gaps land together
        if last_tick is not None and tick - last_tick > timedelta(seconds=interval):
            missed = int((tick - last_tick).total_seconds() // interval) - 1
            record_gaps(conn, "poll", [("*", f"sensor did not poll {missed} tick(s)")],
                        last_tick + timedelta(seconds=interval), tick)
            summary["missed_ticks"] = missed
        for kind, result, table, key_col, columns in (
            ("spot", spot, "spot_quotes", "symbol", SPOT_COLUMNS),
            ("dex", dex, "dex_snapshots", "pair", DEX_COLUMNS),
        ):
            if result is None:
                continue
            summary["rejected"] += result.rejected
            summary["failures"] += [f"{p}: {e}" for p, e in result.failures]
            error = one_line("; ".join(f"{p}: {e}" for p, e in result.failures), 500) or "no provider delivered"
            frames = []
            if result.rows.height:
                rows = result.rows
                if kind == "dex":
                    rows = rows.with_columns(pair=pl.concat_str("chain_id", pl.lit("/"), "pair_address"))
                if kind == "spot":  # a source without a quote time: the poll tick is its time
                    rows = rows.with_columns(pl.col("quote_ts").fill_null(pl.lit(tick, dtype=pl.Datetime("us"))))
                frames.append(rows.with_columns(
                    ts=pl.lit(tick, dtype=pl.Datetime("us")),
                    fetched_at=pl.lit(fetched_at, dtype=pl.Datetime("us")),
                    fetch_status=pl.lit("OK"), error=pl.lit(None, dtype=pl.Utf8),
                ).select(columns))
            lkg = _lkg(conn, table, key_col, list(result.missing), tick, ttl, columns)
            if lkg.height:
                frames.append(lkg.with_columns(
                    ts=pl.lit(tick, dtype=pl.Datetime("us")),
                    fetched_at=pl.lit(fetched_at, dtype=pl.Datetime("us")),
                    fetch_status=pl.lit("DEGRADED"), error=pl.lit(error),
                ).select(columns))
                summary["degraded"] += lkg[key_col].to_list()
            covered = set(lkg[key_col].to_list()) if lkg.height else set()
            gaps = [(k, error) for k in result.missing if k not in covered]
            if gaps:
                record_gaps(conn, kind, gaps, tick, tick + timedelta(seconds=interval))
                summary["gaps"] += [k for k, _ in gaps]
            if frames:
                summary[f"{kind}_rows"] = _insert(conn, table, pl.concat(frames, how="vertical_relaxed"), columns)
    return summary


def build_polling_sensor(settings: Settings, clock: Callable[[], datetime] = utcnow) -> dg.SensorDefinition:
    interval = settings.ingestion.poll_interval_s

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            f"Every {interval}s: spot quotes of the universe from {list(settings.ingestion.spot_providers)} "
            f"and DEX snapshots from {list(settings.ingestion.dex_providers)} into spot_quotes and "
            "dex_snapshots, one row per key and tick; the cursor is the last tick written."
        ),
    )
    def poll_spot_and_dex(context: dg.SensorEvaluationContext, duckdb: QuantDuckDB,
                          providers: ProvidersResource) -> dg.SensorResult:
        tick = floor_tick(clock(), interval)
        last = datetime.fromisoformat(context.cursor) if context.cursor else None
        summary = poll_once(settings, duckdb, tick, last, providers)
        if "skipped" in summary:
            return dg.SensorResult(cursor=context.cursor, skip_reason=dg.SkipReason(summary["skipped"]))
        context.log.info(f"polled {summary}")
        observations = [
            dg.AssetObservation(asset_key=table, metadata={
                "tick": tick.isoformat(), "rows": summary[f"{kind}_rows"],
                "degraded": len(summary["degraded"]), "gaps": len(summary["gaps"]),
            })
            for kind, table in (("spot", "spot_quotes"), ("dex", "dex_snapshots"))
        ]
        return dg.SensorResult(cursor=tick.isoformat(), asset_events=observations)

    return poll_spot_and_dex


def _report_asset(settings: Settings, table: str, key_col: str, description: str) -> dg.AssetsDefinition:
    kind = "spot" if table == "spot_quotes" else "dex"
    ticks_per_day = 86400 // settings.ingestion.poll_interval_s

    @daily_asset(
        settings,
        name=table,
        group="ingestion",
        description=description,
        kinds=("python", "duckdb"),
        metadata={"written_by": f"sensor {SENSOR_NAME}"},
    )
    def _asset(step: WindowStep) -> AssetOutput:
        counts = query_frame(step.conn,
            f"SELECT strftime(CAST(ts AS DATE), '%Y-%m-%d') AS day, count(DISTINCT {ident(key_col)}) AS keys, "
            f"count(DISTINCT ts) AS ticks, count(*) FILTER (fetch_status = 'DEGRADED') AS degraded_rows "
            f"FROM {ident(table)} WHERE ts >= ? AND ts < ? GROUP BY ALL",
            list(step.window),
        )
        daily = {row.pop("day"): {**row, "tick_coverage": round(row["ticks"] / ticks_per_day, 6)}
                 for row in counts.iter_rows(named=True)}
        for day in step.window.days():
            gaps = step.conn.execute(
                "SELECT count(*) FROM ingestion_gaps WHERE kind IN (?, 'poll') AND window_start < ? AND window_end > ?",
                [kind, day.end, day.start],
            ).fetchone()[0]
            daily.setdefault(day.key, {"tick_coverage": 0.0})["gaps_recorded"] = gaps
        return AssetOutput(
            [TableWrite(table, None, params={"interval_s": settings.ingestion.poll_interval_s})],
            daily=daily,
            extra={"note": "polled live by the sensor; a past day cannot be backfilled, this reports what was stored"},
        )

    return _asset


def _valid_check(settings: Settings, table: str, price_col: str) -> dg.AssetChecksDefinition:
    @daily_check(
        settings,
        asset=table,
        name=f"{table}_valid",
        description=f"Every stored row of {table} has a finite {price_col} > 0, a tick on the polling grid, "
        "provenance (provider, fetched_at), fetch_status OK or DEGRADED, and DEGRADED rows carry their error.",
    )
    def _check(conn, day: Window | None) -> Verdict:
        bad = conn.execute(
            f"SELECT count(*) FROM {ident(table)} WHERE ts >= ? AND ts < ? AND NOT ("
            f"isfinite({ident(price_col)}) AND {ident(price_col)} > 0 AND epoch(ts)::BIGINT % ? = 0 "
            "AND provider IS NOT NULL AND fetched_at IS NOT NULL "
            "AND fetch_status IN ('OK', 'DEGRADED') AND (fetch_status = 'OK' OR error IS NOT NULL))",
            [*day, settings.ingestion.poll_interval_s],
        ).fetchone()[0]
        return Verdict(bad == 0, {"failing_rows": bad})

    return _check


def build_polling(settings: Settings) -> tuple[list, list, list]:
    """(assets, asset checks, sensors) of polling."""
    assets = [
        _report_asset(settings, "spot_quotes", "symbol",
                      "Spot quotes (price, bid, ask) of the universe, one row per symbol and poll tick, written "
                      "live by the polling sensor from the spot chain; last-known-good rows are DEGRADED."),
        _report_asset(settings, "dex_snapshots", "pair",
                      "DEX pair snapshots (native and USD price, liquidity, 24h volume, FDV, 24h txns) per "
                      "chainId/pairAddress and poll tick, written live by the polling sensor from Dexscreener."),
    ]
    checks = [_valid_check(settings, "spot_quotes", "price"), _valid_check(settings, "dex_snapshots", "price_native")]
    return assets, checks, [build_polling_sensor(settings)]

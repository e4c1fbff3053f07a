"""Features: one ``features_<interval>`` table per configured bar interval (core in ``quant.features``).

Every column comes from the feature catalogue (``quant_assets/feature_catalogue.yaml`` or the
file ``features.catalogue`` names), plus the EMAs/RSIs/volatility the ``features`` settings
ask for (signals need ``ema_<n>`` for every ``features.ema_spans``). Higher-interval features are
joined once their bar has closed.

Every feature is computed from a **fixed origin**: the symbol's bars from ``partitions.start_date``
00:00 UTC (the first partition) up to the bar, so a value is TA-Lib's (or the catalogue
function's) on the whole history and never depends on which earlier partitions happened to
exist. Why not a warm-up window: recursive indicators forget their seed only geometrically
(EMA-200 needs 2,763 bars for the seed's weight to fall below 1e-12: 116 days of 1h bars, 7.6
years of 1d bars), OBV never forgets it, and windows longer than 8 bars use running sums anchored
at the series' first value, so a warm-up start would still show in the last bits; one pass from
the origin is also what a single-run backfill computes anyway. The lookback is therefore every
``bars_<interval>`` partition since the origin (``lib.lookback``); a day whose lookback is not all
there holds NULL features (symbol, ts and close stay), records itself incomplete and is refreshed
when the missing days land.
"""



from datetime import timedelta

import dagster as dg
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings, bars_per_year
from quant_assets.lib.lookback import (
    Lookback,
    complete_days,
    lookback_status,
    record_status,
    status_figures,
)
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.partitions import days_spanning
from quant_assets.quant.calendar import day_start
from quant_assets.quant.feature_catalogue import Catalogue, load_catalogue
from quant_assets.quant.features import compute_feature_table, join_higher_interval
from quant_assets.resources.tables import ident, query_frame, table_columns, table_exists

_DUCK_TYPES = {pl.Float64: "DOUBLE", pl.Boolean: "BOOLEAN"}


def feature_catalogue(settings: Settings) -> Catalogue:
    """The catalogue the settings select, with the settings' EMAs, RSIs and volatility ensured."""
    cfg = settings.features
    return load_catalogue(cfg.catalogue or None).ensure(cfg.ema_spans, cfg.rsi_periods, cfg.vol_window)


def higher_intervals(settings: Settings, interval: str) -> list[str]:
    """Configured bar intervals longer than ``interval`` whose bars align with it."""
    minutes = INTERVAL_MINUTES[interval]
    return [
        i for i in settings.bar_intervals
        if INTERVAL_MINUTES[i] > minutes and INTERVAL_MINUTES[i] % minutes == 0
    ]


HASH_CHUNK_ROWS = 100_000


def feature_hashes(conn, table: str, start, end, catalogue_hash: str) -> int:
    """Store SHA-256 per (symbol, day) over the symbol's rows of that day (ts order, every column).

    The row text of a whole year of 5m features is gigabytes, so the days are hashed in chunks
    of about ``HASH_CHUNK_ROWS`` rows; each (symbol, day) hash is the same whatever the chunk.
    """
    conn.execute(
        "DELETE FROM feature_hashes WHERE table_name = ? AND partition_key >= ? AND partition_key < ?",
        [table, start.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d")],
    ).fetchall()
    rows = conn.execute(f"SELECT count(*) FROM {ident(table)} WHERE ts >= ? AND ts < ?", [start, end]).fetchone()[0]
    days = max(1, (end - start).days)
    step = timedelta(days=min(days, max(1, HASH_CHUNK_ROWS * days // max(rows, 1))))
    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + step, end)
        conn.execute(
            f"""
            INSERT INTO feature_hashes
            SELECT ?, symbol, strftime(CAST(ts AS DATE), '%Y-%m-%d'), count(*),
                   sha256(string_agg(CAST(t AS VARCHAR), chr(10) ORDER BY ts)), ?
            FROM {ident(table)} AS t WHERE ts >= ? AND ts < ?
            GROUP BY ALL
            """,
            [table, catalogue_hash, chunk_start, chunk_end],
        ).fetchall()
        chunk_start = chunk_end
    return conn.execute(
        "SELECT count(*) FROM feature_hashes WHERE table_name = ? AND partition_key >= ? AND partition_key < ?",
        [table, start.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d")],
    ).fetchall()[0][0]


def _evolve_schema(conn, table: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Add columns the catalogue gained (NULL in earlier partitions) and order ``frame`` like the table.

    A column the catalogue dropped is an error: the stored partitions would mean something else.
    """
    if not table_exists(conn, table):
        return frame
    existing = table_columns(conn, table)
    gone = [c for c in existing if c not in frame.columns]
    if gone:
        raise RuntimeError(
            f"table {table} has column(s) {gone} the feature catalogue no longer produces; "
            f"drop {table} and re-materialize"
        )
    for col in frame.columns:
        if col not in existing:
            conn.execute(f"ALTER TABLE {ident(table)} ADD COLUMN {ident(col)} {_DUCK_TYPES[frame.schema[col]]}").fetchall()
            existing.append(col)
    return frame.select(existing)


def feature_lookbacks(settings: Settings, interval: str) -> list[Lookback]:
    """What a features partition reads: every bar partition since the origin, and for each higher
    interval ``h`` the features of the ``h`` bars that close during the day (the previous day's
    last ones included), which must be complete themselves."""
    return [
        Lookback(f"bars_{interval}", None),
        *(Lookback(f"features_{h}", days_spanning(1, h), complete=True)
          for h in higher_intervals(settings, interval)),
    ]


def null_incomplete_days(frame: pl.DataFrame, keep_days: set[str], columns: list[str]) -> pl.DataFrame:
    """``columns`` set to NULL on rows of days not in ``keep_days`` (their lookback was not all there)."""
    if not columns or frame.is_empty():
        return frame
    keep = frame.select(pl.col("ts").dt.date().cast(pl.Utf8).is_in(sorted(keep_days))).to_series()
    if keep.all():
        return frame
    return frame.with_columns(pl.when(keep).then(pl.col(c)).otherwise(None).alias(c) for c in columns)


def build_feature_asset(settings: Settings, interval: str, catalogue: Catalogue) -> dg.AssetsDefinition:
    table, bars = f"features_{interval}", f"bars_{interval}"
    higher = higher_intervals(settings, interval)
    lookbacks = feature_lookbacks(settings, interval)
    origin = settings.start_date
    per_year = bars_per_year(interval)
    symbols = list(settings.symbols)
    read_symbols = [*symbols, *([catalogue.market_symbol] if catalogue.market_symbol not in symbols else [])]
    catalogue_hash = catalogue.fingerprint()
    joined = [f"htf_{h}_{c}" for h in higher for c in catalogue.higher_interval_features]
    families = sorted({s.family for s in catalogue.features})

    @daily_asset(
        settings,
        name=table,
        group="features",
        description=(
            f"Feature store on {interval} bars, keyed by (symbol, ts): {len(catalogue.columns)} catalogue "
            f"features ({', '.join(families)}; TA-Lib definitions and warm-ups, NULL before warm-up), "
            f"{len(catalogue.flag_columns)} outlier flags"
            + (f", and {', '.join(catalogue.higher_interval_features)} of {', '.join(higher)} bars "
               "joined once those bars have closed" if joined else "")
            + f". Beta/correlation against {catalogue.market_symbol}. Volatilities annualised with 365 "
            f"days. Every feature is computed from the fixed origin {origin.isoformat()} (partitions.start_date): "
            "the symbol's bars from that day to the bar, the value a single computation over the whole "
            "history gives, whatever order the days were built in. A day built while an earlier bar day "
            "(or a higher interval's previous day) is missing holds NULL features, is recorded incomplete "
            "(lookback_status, metadata, a WARN check) and is refreshed when the day lands. "
            "A SHA-256 per (symbol, day) goes to feature_hashes."
        ),
        deps=[lb.dep() for lb in lookbacks],
        code_version=catalogue_hash[:16],
        metadata={
            "catalogue": catalogue.source,
            "catalogue_hash": catalogue_hash,
            "columns": dg.MetadataValue.json([*catalogue.columns, *catalogue.flag_columns, *joined]),
        },
    )
    def features(step: WindowStep) -> AssetOutput:
        conn, (start, end) = step.conn, step.window
        status = lookback_status(conn, lookbacks, step.window, origin)
        history = query_frame(conn,
            "SELECT symbol, ts, open, high, low, close, volume, quote_volume "
            f"FROM {ident(bars)} WHERE ts >= ? AND ts < ? AND list_contains(?, symbol) ORDER BY symbol, ts",
            [day_start(origin), end, read_symbols],
        )
        frame = compute_feature_table(history, catalogue, per_year).filter(
            (pl.col("ts") >= start) & (pl.col("ts") < end) & pl.col("symbol").is_in(symbols)
        )
        # A day without every bar day since the origin gets NULL features; a higher interval's
        # missing or incomplete features are NULL by the join already.
        bars_complete = {key for key, s in status.items() if not s.lacks(bars)}
        frame = null_incomplete_days(frame, bars_complete, [*catalogue.columns, *catalogue.flag_columns])
        for h in higher:
            frame = join_higher_interval(frame, _higher_rows(conn, h, catalogue, frame, start, end), h,
                                         INTERVAL_MINUTES[h], list(catalogue.higher_interval_features))
        by_day = frame.group_by(pl.col("ts").dt.date().alias("day")).agg(
            *[pl.col(c).sum().alias(c) for c in catalogue.flag_columns if c in frame.columns])
        daily = {str(row.pop("day")): {f"flagged_{k}": v for k, v in row.items()} for row in by_day.iter_rows(named=True)}
        for key, figures in status_figures(status).items():
            daily[key] = {**daily.get(key, {}), **figures}
        nulls = {c: n for c, n in zip(frame.columns, frame.null_count().row(0), strict=True) if n}
        return AssetOutput(
            [TableWrite(table, frame, params={"catalogue": catalogue_hash, "interval": interval},
                        prepare=lambda c, f: _evolve_schema(c, table, f))],
            daily=daily,
            summary={"history_rows_read": history.height,
                     "days_lookback_incomplete": len(status) - len(complete_days(status))},
            extra={"null_counts": dg.MetadataValue.json(nulls)},
            also=[lambda c: feature_hashes(c, table, start, end, catalogue_hash),
                  lambda c: record_status(c, table, lookbacks, status)],
        )

    return features


def _higher_rows(conn, h: str, catalogue: Catalogue, frame: pl.DataFrame, start, end) -> pl.DataFrame:
    """The higher interval's features from two of its bars before the window to its end."""
    cols = list(catalogue.higher_interval_features)
    upper = f"features_{h}"
    if not table_exists(conn, upper):
        return pl.DataFrame(schema={"symbol": pl.Utf8, "ts": frame.schema["ts"], **dict.fromkeys(cols, pl.Float64)})
    return query_frame(conn,
        f"SELECT symbol, ts, {', '.join(ident(c) for c in cols)} FROM {ident(upper)} "
        "WHERE ts >= ? - to_minutes(CAST(? AS BIGINT)) AND ts < ?",
        [start, 2 * INTERVAL_MINUTES[h], end],
    )


def build_features(settings: Settings) -> list[dg.AssetsDefinition]:
    """One features asset per configured bar interval, sharing one catalogue."""
    catalogue = feature_catalogue(settings)
    return [build_feature_asset(settings, interval, catalogue) for interval in settings.bar_intervals]

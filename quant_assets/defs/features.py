"""Features: per-symbol indicators on the configured bar interval (core in ``quant.features``)."""


import dagster as dg
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings
from quant_assets.partitions import daily_partitions, window_of
from quant_assets.quant.features import compute_features
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import (
    ident,
    preview_markdown,
    query_frame,
    record_partition_hashes,
    replace_window,
)


def bars_per_year(interval: str) -> float:
    """Bars in a 365-day year of 24/7 trading."""
    return 365 * 1440 / INTERVAL_MINUTES[interval]


def build_features(settings: Settings) -> dg.AssetsDefinition:
    cfg = settings.features
    table, bars = f"features_{cfg.interval}", f"bars_{cfg.interval}"
    params = {
        "ema_spans": cfg.ema_spans, "rsi_periods": cfg.rsi_periods, "vol_window": cfg.vol_window,
        "bars_per_year": bars_per_year(cfg.interval),
    }

    @dg.asset(
        name=table,
        group_name="features",
        description=(
            f"Per-symbol features on {cfg.interval} bars, keyed by (symbol, ts): log return, EMAs "
            f"{list(cfg.ema_spans)} (TA-Lib convention, SMA seed), RSI {list(cfg.rsi_periods)} (Wilder), "
            f"close-to-close volatility over {cfg.vol_window} bars annualised with 365 days. NULL "
            "before warm-up. Each partition is computed from the symbol's full history up to the "
            "window's end, so day-by-day builds equal a full-history build."
        ),
        deps=[bars],
        partitions_def=daily_partitions(settings),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "polars", "duckdb"},
        pool="duckdb",
        metadata={"table": table, "parameters": dg.MetadataValue.json(
            {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()})},
    )
    def features(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        start, end = window_of(context)
        with duckdb.connect() as conn:
            history = query_frame(conn,
                f"SELECT symbol, ts, close FROM {ident(bars)} WHERE ts < ? AND list_contains(?, symbol)",
                [end, list(settings.symbols)],
            )
            frame = compute_features(
                history, cfg.ema_spans, cfg.rsi_periods, cfg.vol_window, params["bars_per_year"]
            ).filter((pl.col("ts") >= start) & (pl.col("ts") < end))
            replace_window(conn, table, frame, start, end)
            hashes = record_partition_hashes(conn, table, table, start, end, ("symbol", "ts"), params)
        nulls = {c: n for c, n in zip(frame.columns, frame.null_count().row(0), strict=True) if n}
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": frame.height,
                "window": f"[{start.isoformat()}, {end.isoformat()})",
                "partitions": len(hashes),
                "history_rows_read": history.height,
                "null_counts": dg.MetadataValue.json(nulls),
                "preview": dg.MetadataValue.md(preview_markdown(frame.tail(10))),
            }
        )

    return features

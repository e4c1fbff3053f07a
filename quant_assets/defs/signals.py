"""Signals: EMA-crossover candidates, long format, one row per (signal, symbol, bar)."""


import dagster as dg

from quant_assets.config import Settings
from quant_assets.partitions import daily_partitions, window_of
from quant_assets.quant.signals import crossover_signals
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import (
    ident,
    preview_markdown,
    query_frame,
    record_partition_hashes,
    replace_window,
)


def build_signals(settings: Settings) -> dg.AssetsDefinition:
    features = f"features_{settings.features.interval}"
    pairs = settings.signals.ema_pairs

    @dg.asset(
        name="signals",
        group_name="signals",
        description=(
            f"EMA-crossover signals for pairs {[list(p) for p in pairs]}: +1 when the fast EMA is above "
            "the slow one, -1 below, 0 equal; none before both EMAs exist. A value at bar ts is "
            "known at that bar's close and is traded from the next bar."
        ),
        deps=[features],
        partitions_def=daily_partitions(settings),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "polars", "duckdb"},
        pool="duckdb",
        metadata={"table": "signals"},
    )
    def signals(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        start, end = window_of(context)
        with duckdb.connect() as conn:
            rows = query_frame(conn,
                f"SELECT * FROM {ident(features)} WHERE ts >= ? AND ts < ?", [start, end]
            )
            frame = crossover_signals(rows, pairs).select("symbol", "ts", "signal_name", "value")
            replace_window(conn, "signals", frame, start, end)
            hashes = record_partition_hashes(conn, "signals", "signals", start, end, {"ema_pairs": pairs})
        counts = dict(frame.group_by("signal_name").len().sort("signal_name").iter_rows())
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": frame.height,
                "window": f"[{start.isoformat()}, {end.isoformat()})",
                "partitions": len(hashes),
                "rows_by_signal": dg.MetadataValue.json(counts),
                "preview": dg.MetadataValue.md(preview_markdown(frame.tail(10))),
            }
        )

    return signals

"""Research: daily information coefficients of every signal (core in ``quant.validation``)."""

from datetime import timedelta

import dagster as dg
import polars as pl

from quant_assets.config import Settings
from quant_assets.partitions import daily_partitions, window_of
from quant_assets.quant.validation import IC_SCHEMA, information_coefficients
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import (
    ident,
    preview_markdown,
    query_frame,
    record_partition_hashes,
    replace_window,
)


def build_signal_ic(settings: Settings) -> dg.AssetsDefinition:
    bars = f"bars_{settings.features.interval}"

    @dg.asset(
        name="signal_ic",
        group_name="research",
        description=(
            "Daily information coefficient of each signal: Pearson (IC) and Spearman (rank IC) "
            f"correlation of the signal at a {settings.features.interval} bar's close with the next "
            "bar's log return, pooled over symbols, using only the day's own bars (no look-ahead "
            "across partitions), with the number of pairs."
        ),
        deps=["signals", bars],
        partitions_def=daily_partitions(settings),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "polars", "duckdb"},
        pool="duckdb",
        metadata={"table": "signal_ic"},
    )
    def signal_ic(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        start, end = window_of(context)
        frames = []
        with duckdb.connect() as conn:
            signals = query_frame(conn, "SELECT signal_name, symbol, ts, value FROM signals WHERE ts >= ? AND ts < ?", [start, end])
            returns = query_frame(conn, f"SELECT symbol, ts, log_return FROM {ident(bars)} WHERE ts >= ? AND ts < ?", [start, end])
            day = start
            while day < end:
                following = day + timedelta(days=1)
                in_day = (pl.col("ts") >= day) & (pl.col("ts") < following)
                if signals.filter(in_day).height:
                    ic = information_coefficients(signals.filter(in_day), returns.filter(in_day))
                else:
                    ic = pl.DataFrame(schema=IC_SCHEMA)
                frames.append(ic.with_columns(day=pl.lit(day, dtype=pl.Datetime("us"))))
                day = following
            frame = pl.concat(frames).select("day", "signal_name", "ic", "rank_ic", "n_obs")
            replace_window(conn, "signal_ic", frame, start, end, time_column="day")
            record_partition_hashes(conn, "signal_ic", "signal_ic", start, end, {"bars": bars}, "day")
        summary = frame.group_by("signal_name").agg(pl.col("ic").mean().alias("mean_ic"),
                                                    pl.col("rank_ic").mean().alias("mean_rank_ic")).sort("signal_name")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": frame.height,
                "mean_ic_by_signal": dg.MetadataValue.md(preview_markdown(summary, 20)),
                "preview": dg.MetadataValue.md(preview_markdown(frame.tail(10))),
            }
        )

    return signal_ic

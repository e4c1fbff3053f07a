"""Research: every signal rule and factor validated against forward returns, per bar (core in
``quant.validation``, alphalens' conventions).

A day's validation reads the day's values (and the last bar before it, for rank autocorrelation
and turnover) and the bars up to ``max(research.horizons)`` bars after the day: the partition
mapping includes the days ahead, the day is recorded incomplete until they exist, and the
automation refreshes it when they land. Forward returns look ahead by definition: these tables
are labelled research outputs and nothing upstream of a backtest's training window reads them.
"""

from datetime import timedelta

import dagster as dg
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings
from quant_assets.lib.lookback import (
    Lookback,
    complete_days,
    lookback_status,
    record_status,
    status_figures,
)
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_multi_asset
from quant_assets.lib.tear_sheet import window_tear_sheet
from quant_assets.partitions import days_spanning
from quant_assets.quant import validation as v
from quant_assets.quant.forward_returns import forward_returns
from quant_assets.resources.tables import ident, query_frame, table_exists

RESEARCH_LABEL = {"research_output": "true", "look_ahead": "forward_returns"}
LEAK_NOTE = ("Forward returns look ahead by definition: a research output, never read by features, "
             "factors, signals or a backtest's training window.")


def validation_lookbacks(settings: Settings) -> list[Lookback]:
    """One bar back of values (autocorrelation, turnover) and the bars ``max(horizons)`` ahead."""
    interval = settings.features.interval
    ahead = days_spanning(max(settings.research.horizons), interval)
    return [Lookback("signals", 1, complete=True), Lookback("factors", 1, complete=True),
            Lookback(f"bars_{interval}", 0, ahead=ahead)]


def read_values(conn, start, end) -> pl.DataFrame:
    """``symbol, ts, signal_name, kind, value`` of every rule and factor in ``[start, end)``."""
    parts = []
    for table, name, kind in (("signals", "signal_name", "rule"), ("factors", "factor_name", "factor")):
        if table_exists(conn, table):
            parts.append(query_frame(conn,
                f"SELECT symbol, ts, {name} AS signal_name, ? AS kind, value FROM {ident(table)} "
                "WHERE ts >= ? AND ts < ? AND value IS NOT NULL AND isfinite(value)", [kind, start, end]))
    schema = {"symbol": pl.Utf8, "ts": pl.Datetime("us"), "signal_name": pl.Utf8, "kind": pl.Utf8, "value": pl.Float64}
    return pl.concat([p.cast(schema) for p in parts]) if parts else pl.DataFrame(schema=schema)


def build_validation(settings: Settings) -> dg.AssetsDefinition:
    interval = settings.features.interval
    minutes = INTERVAL_MINUTES[interval]
    cfg = settings.research
    lookbacks = validation_lookbacks(settings)
    ahead = timedelta(days=lookbacks[-1].ahead)
    params = {"horizons": cfg.horizons, "quantiles": cfg.quantiles, "interval": interval}
    deps = [lb.dep() for lb in lookbacks]
    horizons = ", ".join(str(h) for h in cfg.horizons)

    def spec(key: str, text: str) -> dg.AssetSpec:
        return dg.AssetSpec(key, group_name="research", description=f"{text} {LEAK_NOTE}", deps=deps,
                            kinds={"python", "polars", "duckdb"}, tags=RESEARCH_LABEL)

    @daily_multi_asset(
        settings,
        name="signal_validation",
        specs=[
            spec("signal_ic", f"Per {interval} bar, for every signal rule and factor and every horizon h in "
                 f"[{horizons}] bars: IC (Pearson) and rank IC (Spearman) across symbols of the value at the "
                 "bar's close with the forward simple return close[t+h]/close[t]-1 (alphalens "
                 "factor_information_coefficient), and the number of symbols; a bar with fewer than 3 has none."),
            spec("signal_ic_pooled", "Per UTC day, signal and horizon: the time-series IC pooled over the day's "
                 "(symbol, bar) pairs, the measure a single-symbol universe has."),
            spec("quantile_bar_returns", f"Per bar, signal, horizon and quantile (1..{cfg.quantiles}, equal-count "
                 "buckets of the bar's values, 1 = lowest; alphalens quantize_factor): the mean forward return "
                 "demeaned by the bar's cross-sectional mean (alphalens demeaned=True)."),
            spec("signal_turnover", "Per bar and signal: rank autocorrelation with the previous bar (alphalens "
                 "factor_rank_autocorrelation, period 1) and the share of the top and bottom quantiles new "
                 "since the previous bar (alphalens quantile_turnover)."),
        ],
    )
    def signal_validation(step: WindowStep) -> dict[str, AssetOutput]:
        conn, (start, end) = step.conn, step.window
        status = lookback_status(conn, lookbacks, step.window, settings.start_date)
        values = read_values(conn, start - timedelta(minutes=minutes), end)
        kinds = values.select("signal_name", "kind").unique()
        bars = query_frame(conn, f"SELECT symbol, ts, close FROM {ident('bars_' + interval)} "
                           "WHERE ts >= ? AND ts < ? AND list_contains(?, symbol)",
                           [start, end + ahead, list(settings.symbols)])
        forward = forward_returns(bars, cfg.horizons, minutes).filter(pl.col("ts") >= start, pl.col("ts") < end)
        own = values.filter(pl.col("ts") >= start).drop("kind")
        in_window = (pl.col("ts") >= start) & (pl.col("ts") < end)

        def with_kind(frame: pl.DataFrame, first: list[str]) -> pl.DataFrame:
            joined = frame.join(kinds, on="signal_name", how="left")
            return joined.select(*first, "kind", *[c for c in frame.columns if c not in first])

        ic = with_kind(v.cross_sectional_ic(own, forward), ["ts", "signal_name"])
        pooled = with_kind(v.pooled_ic(own, forward, [d.start for d in step.window.days()]), ["day", "signal_name"])
        quantiles = with_kind(v.quantile_bar_returns(own, forward, cfg.quantiles), ["ts", "signal_name"])
        plain = values.drop("kind")
        turnover = with_kind(
            v.rank_autocorrelation(plain, minutes).join(
                v.quantile_turnover(plain, cfg.quantiles, minutes), on=["ts", "signal_name"], how="full", coalesce=True,
            ).filter(in_window).select("ts", "signal_name", "rank_autocorr", "turnover_top", "turnover_bottom"),
            ["ts", "signal_name"],
        )
        figures = status_figures(status)
        daily = _daily_ic_figures(ic, cfg.horizons[0])
        for key, extra in figures.items():
            daily[key] = {**daily.get(key, {}), **extra}
        tear_sheet = window_tear_sheet(ic, quantiles, step.window.label(), cfg.rolling_ic_bars) if ic.height else {}
        return {
            "signal_ic": AssetOutput(
                [TableWrite("signal_ic", ic, params)], daily=daily, extra=tear_sheet,
                summary={"days_lookahead_incomplete": len(status) - len(complete_days(status)),
                         "signals_and_factors": kinds.height},
                also=[lambda c: record_status(c, "signal_ic", lookbacks, status)]),
            "signal_ic_pooled": AssetOutput([TableWrite("signal_ic_pooled", pooled, params, time_column="day")]),
            "quantile_bar_returns": AssetOutput([TableWrite("quantile_bar_returns", quantiles, params)]),
            "signal_turnover": AssetOutput([TableWrite("signal_turnover", turnover, params)]),
        }

    return signal_validation


def _daily_ic_figures(ic: pl.DataFrame, horizon: int) -> dict[str, dict[str, float]]:
    """Per day: the mean rank IC of each signal at the first horizon over that day's bars."""
    if ic.is_empty():
        return {}
    per_day = (ic.filter(pl.col("horizon") == horizon)
               .group_by(pl.col("ts").dt.date().alias("day"), "signal_name")
               .agg(pl.col("rank_ic").mean()))
    return {
        str(day): {f"mean_rank_ic_h{horizon}_{n}": r for n, r in zip(g["signal_name"], g["rank_ic"], strict=True)}
        for (day,), g in per_day.group_by("day")
    }

"""Research: market regimes per bar (core in ``quant.regimes``), the splits validation reads.

Each day is computed from a frame that starts exactly ``regime_lookback_days`` days before it,
whether the day runs alone or in a range: the rolling sums then start at the same bar every time,
so a day's rows are bit-identical however it was built.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.lib.lookback import (
    Lookback,
    complete_days,
    lookback_status,
    record_status,
    status_figures,
)
from quant_assets.lib.market import market_symbol
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.lib.plots import category_timeline_png
from quant_assets.partitions import days_spanning
from quant_assets.quant.calendar import Window
from quant_assets.quant.regimes import (
    BETA_STATES,
    LEVELS,
    REGIME_SCHEMA,
    history_bars,
    null_values,
    regimes,
)
from quant_assets.resources.tables import preview_markdown, query_frame

LABELS = ("vol_regime", "dispersion_regime", "beta_state")


def regime_lookback_days(settings: Settings) -> int:
    """``ceil((regime_history + the longer window) bars / 1 day) + 1``."""
    r = settings.research
    bars = history_bars(r.regime_vol_window, r.regime_corr_window, r.regime_history)
    return days_spanning(bars, settings.features.interval) + 1


def regime_lookbacks(settings: Settings) -> list[Lookback]:
    return [Lookback(f"bars_{settings.features.interval}", regime_lookback_days(settings))]


def build_regimes(settings: Settings) -> dg.AssetsDefinition:
    interval = settings.features.interval
    minutes = INTERVAL_MINUTES[interval]
    bars = f"bars_{interval}"
    r = settings.research
    lookbacks = regime_lookbacks(settings)
    back = timedelta(days=regime_lookback_days(settings))
    market = market_symbol(settings)
    market_text = market or "the equal-weighted mean simple return of the universe at each bar"
    symbols = list(settings.symbols)

    @daily_asset(
        settings,
        name="regimes",
        group="research",
        description=(
            f"Market regimes per {interval} bar from trailing data only. market_vol: sample std of the "
            f"market's log returns over {r.regime_vol_window} bars (market: {market_text}); dispersion: "
            "cross-sectional std of the symbols' simple returns at the bar; vol_regime and "
            "dispersion_regime: low below the 1/3 and high above the 2/3 quantile of that value over "
            f"the {r.regime_history} bars before the bar (the bar excluded), else normal; market_trend: "
            f"the market's simple return over {r.regime_corr_window} bars; avg_corr: mean pairwise "
            f"correlation of the symbols' simple returns over {r.regime_corr_window} bars; beta_state: "
            "up/down (trend > 0 or not) + _high_corr/_low_corr (avg_corr above its median over the "
            f"{r.regime_history} bars before, or not). NULL until the windows' bars all exist. "
            f"Lookback: {lookbacks[0].describe()}; a day whose lookback is not all there holds NULL "
            "values (recorded in lookback_status, a WARN check) and is refreshed when it lands. "
            "A research output: nothing upstream of backtest training may read it."
        ),
        deps=[lb.dep() for lb in lookbacks],
        metadata={"market": market_text},
    )
    def regimes_asset(step: WindowStep) -> AssetOutput:
        conn, (start, end) = step.conn, step.window
        status = lookback_status(conn, lookbacks, step.window, settings.start_date)
        history = query_frame(
            conn, f'SELECT symbol, ts, log_return FROM "{bars}" WHERE ts >= ? AND ts < ? AND list_contains(?, symbol)',
            [start - back, end, symbols])
        frames, daily = [], {}
        for day in step.window.days():
            bars_read = history.filter(pl.col("ts").is_between(day.start - back, day.end, closed="left"))
            present = bars_read.filter(pl.col("ts") >= day.start)["ts"].unique()
            frame = (regimes(bars_read, market, minutes, r.regime_vol_window, r.regime_corr_window, r.regime_history)
                     if present.len() else pl.DataFrame(schema=REGIME_SCHEMA))
            frame = frame.filter(pl.col("ts").is_in(present.implode()))
            frame = null_values(frame, pl.lit(status[day.key].complete))
            frames.append(frame)
            daily[day.key] = {
                "bars": frame.height,
                **{f"{label}_defined": frame.height - frame[label].null_count() for label in LABELS},
                "share_high_vol": frame.filter(pl.col("vol_regime") == "high").height / frame.height if frame.height else None,
            }
        for key, figures in status_figures(status).items():
            daily[key] = {**daily[key], **figures}
        out = pl.concat(frames).sort("ts") if frames else pl.DataFrame(schema=REGIME_SCHEMA)
        extra: dict[str, Any] = {"market": market_text}
        if out.height:
            extra["regime_timeline"] = dg.MetadataValue.md(category_timeline_png(
                out["ts"].to_list(), {label: out[label].to_list() for label in LABELS},
                {"vol_regime": LEVELS, "dispersion_regime": LEVELS, "beta_state": BETA_STATES},
                f"Regimes per bar, {step.window.label()}"))
        params = {"bars": bars, "market": market, "vol_window": r.regime_vol_window,
                  "corr_window": r.regime_corr_window, "history": r.regime_history}
        return AssetOutput(
            [TableWrite("regimes", out, params=params)],
            daily=daily,
            summary={"days_lookback_incomplete": len(status) - len(complete_days(status))},
            extra=extra,
            also=[lambda c: record_status(c, "regimes", lookbacks, status)],
        )

    return regimes_asset


HISTORY_SQL = """
WITH returns AS (
    SELECT ts, count(*) FILTER (log_return IS NOT NULL AND (CAST($market AS VARCHAR) IS NULL OR symbol = CAST($market AS VARCHAR))) AS n_market,
           count(*) FILTER (log_return IS NOT NULL) AS n_symbols
    FROM {bars} WHERE ts >= $start - $reach AND ts < $end AND list_contains($symbols, symbol)
    GROUP BY ts
), covered AS (
    SELECT g.ts, g.market_vol, g.vol_regime, g.dispersion, g.dispersion_regime, g.market_trend, g.avg_corr,
           g.beta_state,
           (SELECT count(*) FROM returns AS m WHERE m.n_market > 0
              AND m.ts BETWEEN g.ts - $step * ($vol - 1) AND g.ts) AS vol_bars,
           (SELECT count(*) FROM returns AS m WHERE m.n_market > 0
              AND m.ts BETWEEN g.ts - $step * ($history + $vol - 1) AND g.ts) AS vol_history_bars,
           (SELECT count(*) FROM returns AS m WHERE m.n_market > 0
              AND m.ts BETWEEN g.ts - $step * ($corr - 1) AND g.ts) AS corr_bars,
           (SELECT count(*) FROM returns AS m WHERE m.n_symbols >= 2
              AND m.ts BETWEEN g.ts - $step * ($corr - 1) AND g.ts) AS pair_bars,
           (SELECT count(*) FROM returns AS m WHERE m.n_symbols >= 2
              AND m.ts BETWEEN g.ts - $step * ($history + $corr - 1) AND g.ts) AS pair_history_bars,
           (SELECT count(*) FROM returns AS m WHERE m.n_symbols >= 2
              AND m.ts BETWEEN g.ts - $step * $history AND g.ts) AS dispersion_history_bars
    FROM regimes AS g WHERE g.ts >= $start AND g.ts < $end
)
SELECT * FROM covered
WHERE (market_vol IS NOT NULL AND vol_bars < $vol)
   OR (vol_regime IS NOT NULL AND vol_history_bars < $history + $vol)
   OR (market_trend IS NOT NULL AND corr_bars < $corr)
   OR (avg_corr IS NOT NULL AND pair_bars < $corr)
   OR (beta_state IS NOT NULL AND (corr_bars < $corr OR pair_history_bars < $history + $corr))
   OR (dispersion_regime IS NOT NULL AND dispersion_history_bars < $history + 1)
ORDER BY ts
"""


def build_history_check(settings: Settings) -> dg.AssetChecksDefinition:
    """The windows are settings, which SQL tests cannot bind: this check binds them itself."""
    r = settings.research
    interval = settings.features.interval
    sql = HISTORY_SQL.replace("{bars}", f'"bars_{interval}"')
    reach = timedelta(minutes=INTERVAL_MINUTES[interval] * (history_bars(r.regime_vol_window, r.regime_corr_window,
                                                                          r.regime_history) + 1))
    fixed = {"market": market_symbol(settings), "symbols": list(settings.symbols), "reach": reach,
             "step": timedelta(minutes=INTERVAL_MINUTES[interval]), "vol": r.regime_vol_window,
             "corr": r.regime_corr_window, "history": r.regime_history}

    @daily_check(
        settings, asset="regimes", name="regimes_history_exists",
        description=(
            f"No regime value at a bar whose trailing inputs do not exist in bars_{interval}: market_vol "
            f"needs the market's return at each of the {r.regime_vol_window} bars ending at the bar, "
            f"market_trend at each of {r.regime_corr_window}, avg_corr returns of two symbols at each of "
            f"{r.regime_corr_window}; a label also needs its value's inputs at each of the "
            f"{r.regime_history} bars before (dispersion_regime: two symbols' returns at each)."
        ),
    )
    def _history(conn: duckdb.DuckDBPyConnection, day: Window | None) -> Verdict:
        assert day is not None
        failing = query_frame(conn, sql, {**fixed, "start": day.start, "end": day.end})
        return Verdict(failing.is_empty(), {"failing_rows": failing.height,
                                            "sample": dg.MetadataValue.md(preview_markdown(failing, 5))})

    return _history

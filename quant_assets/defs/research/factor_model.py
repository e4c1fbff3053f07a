"""Research: the factor model (core in ``quant.factor_model``).

- ``factor_returns`` (daily): Fama-MacBeth stage one on ``features.interval`` bars, the per-bar
  cross-sectional OLS of the next bar's simple return on the ``factors`` exposures of
  ``research.fama_macbeth_factors``. It reads the next bar, so the last bar of day D needs day
  D+1's bars: its lookback reads one day ahead (``Lookback(..., ahead=1)``), the day is
  incomplete until D+1 lands, and the automation refreshes it then.
- ``factor_return_summary`` (unpartitioned): Fama-MacBeth stage two over all of
  ``factor_returns``.
- ``pca_factors`` and ``pca_residuals`` (daily, one computation): each day's PCA of the trailing
  ``research.pca_window`` bars of log returns, and each bar's component and residual returns.

All four are labelled research outputs: factor_returns looks ahead by construction, and nothing
upstream of backtest training may read any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from quant_assets.lib.partitioned import (
    AssetOutput,
    TableWrite,
    WindowStep,
    daily_asset,
    daily_multi_asset,
)
from quant_assets.lib.plots import bar_lines_png, explained_variance_png
from quant_assets.partitions import days_spanning
from quant_assets.quant.calendar import Window
from quant_assets.quant.factor_model import (
    FACTOR_RETURN_SCHEMA,
    INTERCEPT,
    PCA_FACTOR_SCHEMA,
    PCA_RESIDUAL_SCHEMA,
    SUMMARY_SCHEMA,
    fama_macbeth,
    fama_macbeth_summary,
    pca_day,
)
from quant_assets.quant.forward_returns import forward_returns
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import (
    preview_markdown,
    query_frame,
    registered,
    table_exists,
    transaction,
)

RESEARCH_ONLY = (
    "A labelled research output: nothing upstream of backtest training (no feature, factor, signal "
    "or training window) may read it."
)
BASE_FACTORS = ("reversal", "size", "amihud", "low_vol", "beta")


def regression_factors(settings: Settings) -> list[str]:
    """``research.fama_macbeth_factors`` (checked against the factor names when the config loads),
    or, when empty, the middle momentum window, reversal, size, low_vol and beta."""
    if settings.research.fama_macbeth_factors:
        return list(settings.research.fama_macbeth_factors)
    windows = settings.factors.momentum_windows
    return [f"mom_{windows[len(windows) // 2]}", "reversal", "size", "low_vol", "beta"]


def factor_returns_lookbacks(settings: Settings) -> list[Lookback]:
    """The day's bars and the next day's (the last bar's next-bar return)."""
    return [Lookback(f"bars_{settings.features.interval}", 0, ahead=1)]


def build_factor_returns(settings: Settings) -> dg.AssetsDefinition:
    interval = settings.features.interval
    minutes = INTERVAL_MINUTES[interval]
    bars = f"bars_{interval}"
    factors = regression_factors(settings)
    lookbacks = factor_returns_lookbacks(settings)
    symbols = list(settings.symbols)

    @daily_asset(
        settings,
        name="factor_returns",
        group="research",
        description=(
            f"Fama-MacBeth (1973) stage one on {interval} bars: per bar t, a cross-sectional OLS "
            "(scikit-learn LinearRegression, with intercept) of each symbol's next-bar simple return "
            "close[t+1]/close[t] - 1 (on the grid, never across a gap) on its factor exposures at t "
            f"(table factors: {', '.join(factors)}). Rows (ts, factor, return, n_assets, r2): one per "
            "factor and the intercept; return is the slope (a fraction per bar per unit of z-scored "
            "exposure), r2 the regression's in-sample R^2. A bar is regressed only with n_assets >= "
            "k + 2 and full-rank exposures. A factor absent from a day's factors table is left out "
            "of that day's regressions (named in the metadata). The last bar of a day reads the next "
            "day's first bar: the day is incomplete (lookback_status, a WARN check) until that day "
            "lands, and refreshed when it does. " + RESEARCH_ONLY
        ),
        deps=[*(lb.dep() for lb in lookbacks), "factors"],
        kinds=("python", "scikit-learn", "duckdb"),
        metadata={"factors": dg.MetadataValue.json(factors)},
    )
    def factor_returns(step: WindowStep) -> AssetOutput:
        conn, (start, end) = step.conn, step.window
        status = lookback_status(conn, lookbacks, step.window, settings.start_date)
        exposures = (
            query_frame(conn, "SELECT symbol, ts, factor_name, value FROM factors "
                              "WHERE ts >= ? AND ts < ? AND list_contains(?, factor_name)", [start, end, factors])
            if table_exists(conn, "factors")
            else pl.DataFrame(schema={"symbol": pl.Utf8, "ts": pl.Datetime("us"), "factor_name": pl.Utf8,
                                      "value": pl.Float64})
        )
        prices = query_frame(conn, f'SELECT symbol, ts, close FROM "{bars}" '
                                   "WHERE ts >= ? AND ts <= ? AND list_contains(?, symbol)", [start, end, symbols])
        forward = forward_returns(prices, [1], minutes).filter(pl.col("ts") < end)
        frames, daily = [], {}
        for day in step.window.days():
            in_day = pl.col("ts").is_between(day.start, day.end, closed="left")
            day_exposures = exposures.filter(in_day)
            present = set(day_exposures["factor_name"].unique().to_list())
            used = [f for f in factors if f in present]
            frame, counts = fama_macbeth(day_exposures, forward.filter(in_day), used) if used else (
                pl.DataFrame(schema=FACTOR_RETURN_SCHEMA), None)
            frames.append(frame)
            r2 = frame.filter(pl.col("factor") == INTERCEPT)["r2"]
            daily[day.key] = {
                "bars_regressed": counts.regressed if counts else 0,
                "bars_too_few_assets": counts.too_few_assets if counts else 0,
                "bars_rank_deficient": counts.rank_deficient if counts else 0,
                "mean_r2": float(r2.mean()) if r2.len() else None,  # type: ignore[arg-type]
                "factors_missing": ", ".join(f for f in factors if f not in present) or None,
            }
        for key, figures in status_figures(status).items():
            daily[key] = {**daily[key], **figures}
        out = pl.concat(frames) if frames else pl.DataFrame(schema=FACTOR_RETURN_SCHEMA)
        extra: dict[str, Any] = {}
        if out.height:
            wide = out.pivot(on="factor", index="ts", values="return").sort("ts")
            extra["cumulative_factor_returns"] = dg.MetadataValue.md(bar_lines_png(
                wide["ts"].to_list(), {c: wide[c].fill_null(0.0).cum_sum().to_list() for c in wide.columns[1:]},
                f"Cumulative sum of per-bar Fama-MacBeth factor returns, {step.window.label()}",
                "cumulative return"))
        return AssetOutput(
            [TableWrite("factor_returns", out, params={"bars": bars, "factors": factors})],
            daily=daily,
            summary={"bars_regressed": out["ts"].n_unique() if out.height else 0,
                     "days_lookback_incomplete": len(status) - len(complete_days(status))},
            extra=extra,
            also=[lambda c: record_status(c, "factor_returns", lookbacks, status)],
        )

    return factor_returns


def build_factor_return_summary(settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(
        name="factor_return_summary",
        group_name="research",
        description=(
            "Fama-MacBeth (1973) stage two over every bar of factor_returns: per factor, n_periods, "
            "mean and std (ddof 1) of its per-bar returns, t_stat = mean / (std / sqrt(n)) and the "
            "two-sided p_value of Student's t with n - 1 degrees of freedom (per-bar units, not "
            "annualised, no autocorrelation correction). Each run replaces the table. " + RESEARCH_ONLY
        ),
        deps=["factor_returns"],
        kinds={"python", "scipy", "duckdb"},
        pool="duckdb",
        metadata={"table": "factor_return_summary"},
    )
    def factor_return_summary(duckdb: QuantDuckDB) -> dg.MaterializeResult:
        with duckdb.connect() as conn:
            returns = (query_frame(conn, 'SELECT ts, factor, "return", n_assets, r2 FROM factor_returns')
                       if table_exists(conn, "factor_returns") else pl.DataFrame(schema=FACTOR_RETURN_SCHEMA))
            summary = fama_macbeth_summary(returns).cast(SUMMARY_SCHEMA)  # type: ignore[arg-type]
            with transaction(conn), registered(conn, "_summary_rows", summary):
                conn.execute("CREATE OR REPLACE TABLE factor_return_summary AS SELECT * FROM _summary_rows")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": summary.height,
            "bars": returns["ts"].n_unique() if returns.height else 0,
            "summary": dg.MetadataValue.md(preview_markdown(summary, 50)),
        })

    return factor_return_summary


def build_summary_check(settings: Settings) -> dg.AssetChecksDefinition:
    @daily_check(
        settings, asset="factor_return_summary", name="factor_return_summary_consistent", partitioned=False,
        description=(
            "One row per factor of factor_returns, n_periods equal to its bars there, finite mean, std >= 0, "
            "and p_value in [0, 1] (NULL std, t_stat and p_value only with fewer than two bars or a zero std)."
        ),
    )
    def _consistent(conn: duckdb.DuckDBPyConnection, _day: Window | None) -> Verdict:
        failing = query_frame(conn, """
            WITH counts AS (SELECT factor, count(*) AS n FROM factor_returns GROUP BY factor)
            SELECT coalesce(s.factor, c.factor) AS factor, s.n_periods, c.n
            FROM factor_return_summary AS s FULL JOIN counts AS c ON s.factor = c.factor
            WHERE s.factor IS NULL OR c.factor IS NULL OR s.n_periods <> c.n OR NOT isfinite(s.mean)
               OR s.std < 0 OR NOT coalesce(s.p_value BETWEEN 0 AND 1, true)
               OR (s.std IS NULL AND s.n_periods > 1)
               OR (SELECT count(*) FROM factor_return_summary AS d WHERE d.factor = s.factor) > 1
        """)
        return Verdict(failing.is_empty(), {"failing_rows": failing.height,
                                            "sample": dg.MetadataValue.md(preview_markdown(failing, 5))})

    return _consistent


def pca_lookback_days(settings: Settings) -> int:
    """``ceil(pca_window * interval / 1 day) + 1``: the days the trailing window can reach into."""
    return days_spanning(settings.research.pca_window, settings.features.interval) + 1


def pca_lookbacks(settings: Settings) -> list[Lookback]:
    return [Lookback(f"bars_{settings.features.interval}", pca_lookback_days(settings))]


def build_pca(settings: Settings) -> dg.AssetsDefinition:
    interval = settings.features.interval
    minutes = INTERVAL_MINUTES[interval]
    bars = f"bars_{interval}"
    window, k = settings.research.pca_window, settings.research.pca_components
    lookbacks = pca_lookbacks(settings)
    symbols = list(settings.symbols)
    params = {"bars": bars, "pca_window": window, "pca_components": k}
    fit = (
        f"Each UTC day D, scikit-learn PCA(n_components={k}, svd_solver='full') is fitted on the "
        f"{interval} log returns of the {window} bars ending at the last bar before D (trailing data "
        "only; the symbols with a return at every one of those bars; demeaned per symbol as "
        "scikit-learn does, unscaled), and every bar of D at which each fitted symbol has a return "
        "is projected on it. "
    )
    incomplete = (
        f"Lookback: {lookbacks[0].describe()}; a day whose lookback is not all there has no rows "
        "(recorded in lookback_status, a WARN check). " + RESEARCH_ONLY
    )
    specs = [
        dg.AssetSpec(
            "pca_factors", group_name="research", deps=[lb.dep() for lb in lookbacks],
            kinds={"python", "scikit-learn", "duckdb"},
            description=("Statistical factor model, component returns. " + fit + "Rows (ts, component, "
                         "factor_return, explained_variance_ratio, n_assets, window_bars): component "
                         "1..k; factor_return = the bar's demeaned log returns projected on the component "
                         "(signs as scikit-learn's svd_flip fixes them); the day's fitted explained-variance "
                         "ratio; the symbols fitted and the window's bars. " + incomplete),
        ),
        dg.AssetSpec(
            "pca_residuals", group_name="research", deps=[lb.dep() for lb in lookbacks],
            kinds={"python", "scikit-learn", "duckdb"},
            description=("Statistical factor model, residual returns. " + fit + "Rows (ts, symbol, "
                         "residual_return): the part of the symbol's demeaned log return at the bar that "
                         "the day's components do not explain (orthogonal to every component). "
                         + incomplete),
        ),
    ]

    @daily_multi_asset(settings, name="pca_model", specs=specs)
    def pca_model(step: WindowStep) -> Mapping[str, AssetOutput]:
        conn, (start, end) = step.conn, step.window
        status = lookback_status(conn, lookbacks, step.window, settings.start_date)
        returns = query_frame(
            conn, f'SELECT symbol, ts, log_return FROM "{bars}" WHERE ts >= ? AND ts < ? AND list_contains(?, symbol)',
            [start - timedelta(days=lookbacks[0].days or 0), end, symbols])
        factor_frames, residual_frames, daily, ratios = [], [], {}, {}
        for day in step.window.days():
            if not status[day.key].complete or returns.is_empty():
                daily[day.key] = {"pca_fitted": False}
                continue
            result = pca_day(returns, day.start, minutes, window, k)
            factor_frames.append(result.factors)
            residual_frames.append(result.residuals)
            if result.explained_variance_ratio:
                ratios[day.start.date()] = result.explained_variance_ratio
            daily[day.key] = {
                "pca_fitted": bool(result.explained_variance_ratio), "n_assets": result.n_assets,
                "bars_skipped": result.bars_skipped, "no_fit": result.reason or None,
                **{f"explained_variance_ratio_{i + 1}": r for i, r in enumerate(result.explained_variance_ratio)},
            }
        for key, figures in status_figures(status).items():
            daily[key] = {**daily[key], **figures}
        factors = pl.concat(factor_frames) if factor_frames else pl.DataFrame(schema=PCA_FACTOR_SCHEMA)
        residuals = pl.concat(residual_frames) if residual_frames else pl.DataFrame(schema=PCA_RESIDUAL_SCHEMA)
        extra: dict[str, Any] = {}
        if ratios:
            days = sorted(ratios)
            extra["explained_variance"] = dg.MetadataValue.md(explained_variance_png(
                days, {f"PC{i + 1}": [ratios[d][i] for d in days] for i in range(k)},
                f"Explained variance ratio per day, {step.window.label()}"))
        summary = {"days_lookback_incomplete": len(status) - len(complete_days(status))}
        return {
            "pca_factors": AssetOutput(
                [TableWrite("pca_factors", factors, params=params)], daily=daily, summary=summary, extra=extra,
                also=[lambda c: record_status(c, "pca_factors", lookbacks, status)]),
            "pca_residuals": AssetOutput(
                [TableWrite("pca_residuals", residuals, params=params)], daily=daily, summary=summary,
                also=[lambda c: record_status(c, "pca_residuals", lookbacks, status)]),
        }

    return pca_model

"""Calibration of the portfolio factors into P(next bar's return > 0), per out-of-sample day.

Per fold (``quant.folds``) and factor: a scikit-learn model (``portfolio.calibration``: logistic or
isotonic, ``quant.calibration``) is fitted on the training window's pairs (the factor's value at
the close of bar ``s``, the sign of bar ``s + 1``'s return, both inside the window) and judged on the
day's bars (the value at the close before each bar, that bar's return): a reliability table, the
Brier score, the log loss and the Brier score of always predicting the training base rate.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import numpy as np
import polars as pl

from quant_assets.config import Settings
from quant_assets.defs.backtests.setup import (
    backtest_lookbacks,
    fold_calendar,
    history_days,
    load_panel,
    params,
    portfolio_factors,
)
from quant_assets.lib.lookback import lookback_status, record_status, status_figures
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.quant.calibration import calibrate
from quant_assets.quant.strategies import Panel

CALIBRATION_SCHEMA = {
    "day": pl.Datetime("us"), "fold": pl.Utf8, "signal_name": pl.Utf8, "method": pl.Utf8, "bucket": pl.Int32,
    "lower": pl.Float64, "upper": pl.Float64, "n": pl.Int64, "predicted_mean": pl.Float64,
    "realised_rate": pl.Float64, "brier": pl.Float64, "log_loss": pl.Float64, "base_rate_brier": pl.Float64,
    "n_train": pl.Int64, "n_test": pl.Int64,
}
MIN_PAIRS = 10


def pairs(panel: Panel, factor: str, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """Values at the closes of bars ``[first, last)`` and whether the next bar's return is > 0
    (pairs with either missing dropped); flattened over symbols."""
    values = panel.factors[factor][first:last]
    nxt = panel.returns[first + 1:last + 1]
    ok = np.isfinite(values) & np.isfinite(nxt)
    return values[ok], nxt[ok] > 0


def build_calibration(settings: Settings) -> dg.AssetsDefinition:
    pf = settings.portfolio
    lookbacks = backtest_lookbacks(settings)
    calendar = fold_calendar(settings)
    factors = portfolio_factors(settings)

    @daily_asset(
        settings, name="signal_calibration", group="backtests",
        description=(
            f"Per out-of-sample day and factor ({', '.join(factors)}): a {pf.calibration} map from the factor to "
            "P(next bar's return > 0), fitted on the fold's training window only, and on the day's bars its "
            f"reliability table ({pf.calibration_buckets} equal-width buckets of predicted probability: predicted "
            "mean vs realised rate), Brier score, log loss and the base-rate Brier score for reference."),
        deps=[lb.dep() for lb in lookbacks], kinds=("python", "scikit-learn", "duckdb"),
    )
    def signal_calibration(step: WindowStep) -> AssetOutput:
        status = lookback_status(step.conn, lookbacks, step.window, settings.start_date)
        frames, daily = [], {}
        for day in step.window.days():
            fold = calendar.fold_of(day.start.date())
            if fold is None or not status[day.key].complete:
                continue
            origin = datetime.combine(settings.start_date, datetime.min.time())
            start = max(origin, fold.train_start - timedelta(days=history_days(settings)))
            panel = load_panel(step.conn, settings, start, day.end)
            ts = panel.ts
            lo, split, d0 = (int(np.searchsorted(ts, np.datetime64(t))) for t in (fold.train_start, fold.test_start,
                                                                                  day.start))
            d1 = len(ts)
            for factor in factors:
                x_train, y_train = pairs(panel, factor, lo, split - 1)
                x_test, y_test = pairs(panel, factor, max(d0 - 1, 0), d1 - 1)
                if len(x_train) < MIN_PAIRS or len(x_test) < 1 or y_train.all() or not y_train.any():
                    continue
                result = calibrate(x_train, y_train, x_test, y_test, method=pf.calibration,
                                   n_buckets=pf.calibration_buckets)
                frames.append(result.reliability.with_columns(
                    day=pl.lit(day.start), fold=pl.lit(fold.key), signal_name=pl.lit(factor),
                    method=pl.lit(result.method), brier=pl.lit(result.brier), log_loss=pl.lit(result.log_loss),
                    base_rate_brier=pl.lit(result.base_rate_brier), n_train=pl.lit(result.n_train),
                    n_test=pl.lit(result.n_test)))
                daily.setdefault(day.key, {})[f"brier_{factor}"] = result.brier
        frame = (pl.concat([f.select(list(CALIBRATION_SCHEMA)).cast(CALIBRATION_SCHEMA) for f in frames])
                 if frames else pl.DataFrame(schema=CALIBRATION_SCHEMA))
        figures = status_figures(status)
        return AssetOutput(
            [TableWrite("signal_calibration", frame, params=params(settings), time_column="day")],
            daily={k: {**figures[k], **daily.get(k, {})} for k in status},
            also=[lambda c: record_status(c, "signal_calibration", lookbacks, status)],
        )

    return signal_calibration

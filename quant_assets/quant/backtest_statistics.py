"""Statistics of a whole out-of-sample path and of the trials behind it.

Units: returns are per bar; ``sharpe`` and the bootstrap interval are annualised with the bars
of a 365-day year (``sqrt(A)``); PSR, DSR and MinTRL work in per-bar units (``sharpe_per_bar``,
``sr_variance``, ``expected_max_sharpe_per_bar``; MinTRL in bars), kurtosis raw (3 = normal),
as the papers state them (``quant.overfitting``).

``n_trials`` is every configuration ever evaluated on the universe and interval (the
``backtest_trials`` registry), not only this run's grid, and ``sr_variance`` is the variance of
the trials' per-bar Sharpe ratios over their own out-of-sample paths, so the deflation counts
every strategy that could have been picked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from quant_assets.quant import overfitting as of
from quant_assets.quant.walk_forward import COST_MODES, path_metrics

VERDICT_DSR, VERDICT_PBO = 0.95, 0.5
WALK_FORWARD = "walk_forward"
BENCHMARKS = ("benchmark_market", "benchmark_equal_weight")
SUMMARY_COLUMNS = (
    "cost_mode", "strategy", "role", "window_start", "window_end", "n_bars", "gross_total_return", "total_return",
    "cost_total", "sharpe", "sortino", "max_drawdown", "calmar", "cagr", "annual_volatility", "turnover",
    "hit_rate", "sharpe_per_bar", "skew", "kurtosis", "psr", "dsr", "n_trials", "sr_variance",
    "expected_max_sharpe_per_bar", "min_track_record_bars", "pbo", "prob_oos_loss", "sharpe_ci_low",
    "sharpe_ci_high", "null_reason",
)
PBO_SCHEMA = {"cost_mode": pl.Utf8, "split": pl.Int64, "logit": pl.Float64, "is_sharpe": pl.Float64,
              "oos_sharpe": pl.Float64}


@dataclass(frozen=True)
class StatisticsSetup:
    bars_per_year: float
    min_bars_for_sharpe: int
    bootstrap_samples: int
    bootstrap_block_bars: int
    bootstrap_seed: int
    pbo_splits: int


def _clean(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def trial_sharpe_variance(trial_nets: Mapping[str, np.ndarray]) -> float | None:
    """Variance (ddof 1) of the trials' per-bar Sharpe ratios; ``None`` with fewer than 2 finite."""
    sharpes = [of.sharpe_ratio(net) for net in trial_nets.values()]
    finite = [s for s in sharpes if math.isfinite(s)]
    return float(np.var(finite, ddof=1)) if len(finite) >= 2 else None


def path_statistics(net: np.ndarray, gross: np.ndarray | None, turnover: np.ndarray | None, *,
                    setup: StatisticsSetup, n_trials: int | None, sr_variance: float | None) -> dict[str, Any]:
    """Everything ``backtest_summary`` shows for one path; ``None`` with a ``null_reason`` for
    what cannot be computed."""
    turn = turnover if turnover is not None else np.zeros_like(net)
    out = path_metrics(net, turn, setup.bars_per_year, setup.min_bars_for_sharpe)
    out["turnover"] = out["turnover"] if turnover is not None else None
    reasons = [out.pop("null_reason")] if out.get("null_reason") else []
    out["gross_total_return"] = float(np.prod(1 + gross) - 1) if gross is not None and gross.size else None
    enough = net.size >= setup.min_bars_for_sharpe
    sr, skew, kurt = of.return_moments(net) if net.size >= 2 else (math.nan, math.nan, math.nan)
    out.update(sharpe_per_bar=_clean(sr), skew=_clean(skew), kurtosis=_clean(kurt), psr=None, dsr=None,
               expected_max_sharpe_per_bar=None, min_track_record_bars=None, sharpe_ci_low=None,
               sharpe_ci_high=None, n_trials=n_trials, sr_variance=sr_variance)
    if enough and all(math.isfinite(v) for v in (sr, skew, kurt)):
        out["psr"] = _clean(of.probabilistic_sharpe_ratio(sr, 0.0, net.size, skew, kurt))
        mintrl = of.min_track_record_length(sr, 0.0, skew, kurt, 0.95)
        out["min_track_record_bars"] = _clean(mintrl)
        if n_trials and sr_variance is not None:
            out["expected_max_sharpe_per_bar"] = _clean(of.expected_max_sharpe(sr_variance, n_trials))
            out["dsr"] = _clean(of.deflated_sharpe_ratio(sr, sr_variance, n_trials, net.size, skew, kurt))
        else:
            reasons.append("fewer than 2 trials with a Sharpe: no deflated Sharpe")
        low, high = of.stationary_bootstrap_sharpe_ci(
            net, mean_block=setup.bootstrap_block_bars, n_samples=setup.bootstrap_samples, seed=setup.bootstrap_seed)
        scale = math.sqrt(setup.bars_per_year)
        out["sharpe_ci_low"], out["sharpe_ci_high"] = _clean(low * scale), _clean(high * scale)
    elif enough:
        reasons.append("constant or degenerate returns: no PSR, DSR or interval")
    out["null_reason"] = "; ".join(reasons) or None
    return out


def pbo_of(trial_nets: Mapping[str, np.ndarray], setup: StatisticsSetup) -> tuple[of.PBOResult | None, str | None]:
    """CSCV PBO of the trials' aligned out-of-sample paths (columns in name order)."""
    if len(trial_nets) < 2:
        return None, "fewer than 2 strategies: no PBO"
    names = sorted(trial_nets)
    matrix = np.column_stack([trial_nets[n] for n in names])
    if matrix.shape[0] < 2 * setup.pbo_splits:
        return None, f"{matrix.shape[0]} bars < 2 x backtest.pbo_splits = {2 * setup.pbo_splits}: no PBO"
    return of.probability_of_backtest_overfitting(matrix, n_splits=setup.pbo_splits), None


def verdict_words(dsr: float | None, pbo: float | None) -> str:
    """What a reviewer should conclude, in words."""
    flags = []
    if dsr is not None and dsr < VERDICT_DSR:
        flags.append(f"DSR {dsr:.3f} < {VERDICT_DSR} (the Sharpe is not significant once the trials are counted)")
    if pbo is not None and pbo > VERDICT_PBO:
        flags.append(f"PBO {pbo:.2f} > {VERDICT_PBO}")
    if flags:
        return "likely overfit: " + "; ".join(flags)
    if dsr is None or pbo is None:
        return "not enough out-of-sample bars to judge overfitting"
    return f"no sign of overfitting (DSR {dsr:.3f} >= {VERDICT_DSR}, PBO {pbo:.2f} <= {VERDICT_PBO})"


@dataclass(frozen=True)
class _ModeContext:
    mode: str
    window: Mapping[str, Any]
    setup: StatisticsSetup
    n_trials: int | None
    sr_variance: float | None
    pbo: Mapping[str, float | None]
    pbo_reason: str | None


def _summary_row(ctx: _ModeContext, strategy: str, role: str, net: np.ndarray, gross: np.ndarray | None,
                 turnover: np.ndarray | None, cost: float | None) -> dict[str, Any]:
    stats = path_statistics(net, gross, turnover, setup=ctx.setup, n_trials=ctx.n_trials, sr_variance=ctx.sr_variance)
    reason = stats.pop("null_reason")
    with_pbo = role != "benchmark"
    if with_pbo and ctx.pbo_reason:
        reason = "; ".join(r for r in (reason, ctx.pbo_reason) if r)
    pbo = ctx.pbo if with_pbo else {"pbo": None, "prob_oos_loss": None}
    return {"cost_mode": ctx.mode, "strategy": strategy, "role": role, **ctx.window, "cost_total": cost, **stats,
            "n_bars": int(net.size), **pbo, "null_reason": reason}


def summarise(pnl: pl.DataFrame, trials: pl.DataFrame, n_trials: Mapping[str, int], setup: StatisticsSetup
              ) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Per cost mode: the walk-forward path (``backtest_pnl``), its benchmarks and every trial
    (``backtest_strategy_returns``), each a ``backtest_summary`` row, the DSR deflated by that mode's
    ``n_trials`` (the trial registry's count); the PBO's splits; and the
    equity curves (realistic costs, plus the gross path) keyed by name, with ``_ts`` their bars.
    Rows must come sorted by time within each mode and strategy."""
    rows: list[dict[str, Any]] = []
    pbo_rows: list[dict[str, Any]] = []
    curves: dict[str, Any] = {}
    for mode in COST_MODES:
        path = pnl.filter(pl.col("cost_mode") == mode)
        if path.is_empty():
            continue
        mode_trials = trials.filter(pl.col("cost_mode") == mode)
        wide = mode_trials.pivot(on="strategy", index="ts", values="net_return").sort("ts").drop_nulls()
        trial_nets = {c: wide[c].to_numpy() for c in wide.columns if c != "ts"}
        pbo, pbo_reason = pbo_of(trial_nets, setup)
        ctx = _ModeContext(
            mode, {"window_start": path["ts"].min(), "window_end": path["ts"].max()}, setup, n_trials.get(mode) or None,
            trial_sharpe_variance(trial_nets),
            {"pbo": pbo.pbo, "prob_oos_loss": pbo.prob_oos_loss} if pbo else {"pbo": None, "prob_oos_loss": None},
            pbo_reason)
        net = path["net_return"].to_numpy()
        rows.append(_summary_row(ctx, WALK_FORWARD, "selected", net, path["gross_return"].to_numpy(),
                                 path["turnover"].to_numpy(), float(path["cost"].sum())))
        if mode == "realistic" or "_ts" not in curves:
            curves["_ts"] = path["ts"].to_list()
        curves[f"walk-forward net ({mode})"] = np.cumprod(1 + net)
        if mode == "realistic":
            curves["walk-forward gross"] = np.cumprod(1 + path["gross_return"].to_numpy())
        for name in BENCHMARKS:
            series = path[name]
            if series.null_count() == series.len():
                continue
            bench = series.fill_null(0.0).to_numpy()
            rows.append(_summary_row(ctx, name, "benchmark", bench, bench, None, 0.0))
            if mode == "realistic":
                curves[name.replace("_", " ")] = np.cumprod(1 + bench)
        for name in sorted(trial_nets):
            own = mode_trials.filter(pl.col("strategy") == name)
            rows.append(_summary_row(ctx, name, "trial", own["net_return"].to_numpy(), own["gross_return"].to_numpy(),
                                     own["turnover"].to_numpy(), None))
        if pbo is not None:
            pbo_rows += [{"cost_mode": mode, "split": i, "logit": float(logit), "is_sharpe": float(is_),
                          "oos_sharpe": float(oos)}
                         for i, (logit, is_, oos) in enumerate(zip(pbo.logits, pbo.is_best_is, pbo.is_best_oos,
                                                                   strict=True))]
    summary = pl.DataFrame(rows, infer_schema_length=None).select(list(SUMMARY_COLUMNS)) if rows else pl.DataFrame()
    return summary, pl.DataFrame(pbo_rows, schema=PBO_SCHEMA), curves

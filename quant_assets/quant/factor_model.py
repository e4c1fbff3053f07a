"""Factor models of the returns panel: Fama-MacBeth cross-sectional regressions and a PCA
statistical model.

**Fama-MacBeth (1973).** Stage one, per bar ``t``: a cross-sectional OLS, with intercept, of each
symbol's next-bar simple return ``close[t+1] / close[t] - 1`` (``quant.forward_returns``) on its
exposures at ``t`` (the factor values known at ``t``'s close). The slopes are that bar's factor
returns (a return per unit of exposure, a fraction per bar), the intercept is the factor
``intercept`` (the return of a zero-exposure asset). Stage two (:func:`fama_macbeth_summary`):
the time series of each factor return is summarised by its mean, its sample standard deviation
(ddof 1) and ``t = mean / (std / sqrt(n))`` with ``n - 1`` degrees of freedom (two-sided
p-value): the Fama-MacBeth standard error, which treats the per-bar estimates as independent
draws (no Newey-West correction, per-bar units, not annualised).

**PCA.** For each UTC day, :func:`pca_day` fits scikit-learn's ``PCA`` on the trailing window of
the symbols' **log** returns (rows = bars, columns = symbols, demeaned per symbol as
scikit-learn does, no scaling) and projects each bar of the day on the components: the
component (factor) returns and each symbol's residual, the part of its demeaned return outside
the span of the components. Component signs are scikit-learn's (``svd_flip``), fixed by the
data alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

INTERCEPT = "intercept"
FACTOR_RETURN_SCHEMA = {
    "ts": pl.Datetime("us"), "factor": pl.Utf8, "return": pl.Float64, "n_assets": pl.Int64, "r2": pl.Float64,
}
SUMMARY_SCHEMA = {
    "factor": pl.Utf8, "n_periods": pl.Int64, "mean": pl.Float64, "std": pl.Float64,
    "t_stat": pl.Float64, "p_value": pl.Float64,
}
PCA_FACTOR_SCHEMA = {
    "ts": pl.Datetime("us"), "component": pl.Int64, "factor_return": pl.Float64,
    "explained_variance_ratio": pl.Float64, "n_assets": pl.Int64, "window_bars": pl.Int64,
}
PCA_RESIDUAL_SCHEMA = {"ts": pl.Datetime("us"), "symbol": pl.Utf8, "residual_return": pl.Float64}


@dataclass(frozen=True)
class CrossSection:
    """Why bars gave no regression: too few assets (``n < k + 2``) or collinear exposures."""

    regressed: int = 0
    too_few_assets: int = 0
    rank_deficient: int = 0


def regression_panel(exposures: pl.DataFrame, forward: pl.DataFrame, factors: Sequence[str]) -> pl.DataFrame:
    """One row per (symbol, ts) with every factor of ``factors`` and the forward return finite.

    ``exposures``: long ``symbol, ts, factor_name, value`` (the ``factors`` table);
    ``forward``: ``symbol, ts, forward_return`` (one horizon).
    """
    wanted = exposures.filter(pl.col("factor_name").is_in(list(factors)))
    wide = wanted.pivot(on="factor_name", index=["symbol", "ts"], values="value", aggregate_function="first")
    for name in factors:
        if name not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(name))
    columns = [*factors, "forward_return"]
    return (
        wide.join(forward.select("symbol", "ts", "forward_return"), on=["symbol", "ts"], how="inner")
        .filter(pl.all_horizontal(pl.col(c).cast(pl.Float64).is_finite() for c in columns))
        .select("symbol", "ts", *[pl.col(c).cast(pl.Float64) for c in columns])
        .sort("ts", "symbol")
    )


def fama_macbeth(
    exposures: pl.DataFrame, forward: pl.DataFrame, factors: Sequence[str]
) -> tuple[pl.DataFrame, CrossSection]:
    """Stage one of Fama-MacBeth: per bar, OLS (with intercept) of the next-bar simple return on
    the exposures at the bar.

    Returns ``ts, factor, return, n_assets, r2`` (``intercept`` first, then ``factors`` in
    order; ``r2`` is the regression's in-sample R^2, the same on every row of a bar) and the
    count of bars regressed or skipped. A bar is regressed only with ``n_assets >= k + 2``
    complete rows (``k`` factors: at least one residual degree of freedom beyond the
    intercept) and full-rank exposures with the intercept; a bar whose returns are all equal
    has R^2 undefined and is skipped as rank deficient too.
    """
    from sklearn.linear_model import LinearRegression  # deferred: see pca_day
    k = len(factors)
    panel = regression_panel(exposures, forward, factors)
    rows: list[tuple[datetime, str, float, int, float]] = []
    few = deficient = 0
    for (ts,), bar in panel.group_by("ts", maintain_order=True):
        n = bar.height
        if n < k + 2:
            few += 1
            continue
        x = bar.select(factors).to_numpy()
        y = bar["forward_return"].to_numpy()
        if np.linalg.matrix_rank(np.column_stack([np.ones(n), x])) < k + 1 or np.ptp(y) == 0:
            deficient += 1
            continue
        model = LinearRegression().fit(x, y)
        r2 = float(model.score(x, y))
        rows.append((ts, INTERCEPT, float(model.intercept_), n, r2))
        rows.extend((ts, name, float(beta), n, r2) for name, beta in zip(factors, model.coef_, strict=True))
    frame = pl.DataFrame(rows, schema=FACTOR_RETURN_SCHEMA, orient="row")
    return frame, CrossSection(frame["ts"].n_unique() if frame.height else 0, few, deficient)


def fama_macbeth_summary(factor_returns: pl.DataFrame) -> pl.DataFrame:
    """Stage two of Fama-MacBeth (1973): per factor, ``n_periods`` bars, ``mean`` and ``std``
    (ddof 1) of its per-bar returns, ``t_stat = mean / (std / sqrt(n))`` and the two-sided
    ``p_value`` of Student's t with ``n - 1`` degrees of freedom (``scipy.stats.ttest_1samp``
    against 0). ``std``, ``t_stat`` and ``p_value`` are NULL with fewer than two bars or a zero
    std. Sorted by factor."""
    from scipy import stats  # deferred: scipy.stats takes most of a second to import
    if factor_returns.is_empty():
        return pl.DataFrame(schema=SUMMARY_SCHEMA)
    grouped = factor_returns.sort("factor", "ts").group_by("factor", maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("n_periods"),
        pl.col("return").mean().alias("mean"),
        pl.col("return").std(ddof=1).alias("std"),
    ).sort("factor")
    n = grouped["n_periods"].to_numpy()
    std = grouped["std"].fill_null(0.0).to_numpy()
    defined = (n > 1) & (std > 0)
    t_stat = np.full(len(n), np.nan)
    t_stat[defined] = grouped["mean"].to_numpy()[defined] / (std[defined] / np.sqrt(n[defined]))
    p_value = np.full(len(n), np.nan)
    p_value[defined] = 2.0 * stats.t.sf(np.abs(t_stat[defined]), df=n[defined] - 1)
    return grouped.with_columns(
        pl.when(pl.col("n_periods") > 1).then(pl.col("std")).alias("std"),
        pl.Series("t_stat", t_stat).fill_nan(None),
        pl.Series("p_value", p_value).fill_nan(None),
    ).select(list(SUMMARY_SCHEMA))


@dataclass(frozen=True)
class PcaDay:
    """One day of the PCA model: its two tables and what happened (``reason`` when no fit)."""

    factors: pl.DataFrame
    residuals: pl.DataFrame
    n_assets: int = 0
    explained_variance_ratio: tuple[float, ...] = ()
    bars_skipped: int = 0
    reason: str = ""


def returns_matrix(returns: pl.DataFrame, times: Sequence[datetime]) -> pl.DataFrame:
    """``returns`` (``symbol, ts, log_return``) as a wide frame over exactly ``times``: one
    column per symbol (alphabetical), NULL where a bar or its return is missing."""
    grid = pl.DataFrame({"ts": list(times)}, schema={"ts": pl.Datetime("us")})
    present = returns.filter(pl.col("log_return").is_not_null()).with_columns(pl.col("ts").cast(pl.Datetime("us")))
    wide = present.pivot(on="symbol", index="ts", values="log_return", aggregate_function="first")
    symbols = sorted(c for c in wide.columns if c != "ts")
    return grid.join(wide, on="ts", how="left").select("ts", *symbols)


def pca_day(returns: pl.DataFrame, day_start: datetime, interval_minutes: int, window: int,
            n_components: int) -> PcaDay:
    """Fit on the ``window`` bars before ``day_start`` and project every bar of the day.

    ``returns``: ``symbol, ts, log_return`` (at least the window and the day; other rows are
    ignored). The fit uses the bars at ``day_start - window * interval .. day_start - interval``
    on the grid and the symbols with a log return at every one of them; it needs more such
    symbols than ``n_components``. A bar of the day is projected only when every fitted symbol
    has a log return at it (otherwise it is skipped and counted). Component ``c`` (1-based) has
    ``factor_return = (r_t - mean) . v_c`` (what ``pca.transform`` gives) and the day's fitted
    explained-variance ratio; the residual is ``(r_t - mean) - sum_c factor_return_c v_c``.
    """
    from sklearn.decomposition import PCA  # deferred: scikit-learn takes a second to import
    step = timedelta(minutes=interval_minutes)
    fit_times = [day_start - (window - i) * step for i in range(window)]
    day_times = [day_start + i * step for i in range(int(timedelta(days=1) / step))]
    empty = PcaDay(pl.DataFrame(schema=PCA_FACTOR_SCHEMA), pl.DataFrame(schema=PCA_RESIDUAL_SCHEMA))
    history = returns_matrix(returns, fit_times)
    symbols = [s for s in history.columns[1:] if history[s].null_count() == 0]
    if len(symbols) <= n_components:
        return PcaDay(empty.factors, empty.residuals, len(symbols),
                      reason=f"{len(symbols)} symbols with every bar of the window, need more than {n_components}")
    pca = PCA(n_components=n_components, svd_solver="full").fit(history.select(symbols).to_numpy())
    today = returns_matrix(returns, day_times)
    for s in symbols:
        if s not in today.columns:
            today = today.with_columns(pl.lit(None, dtype=pl.Float64).alias(s))
    today = today.select("ts", *symbols)
    complete = today.filter(pl.all_horizontal(pl.col(s).is_not_null() for s in symbols))
    skipped = today.filter(pl.any_horizontal(pl.col(s).is_not_null() for s in symbols)).height - complete.height
    ratios = tuple(float(r) for r in pca.explained_variance_ratio_)
    if complete.is_empty():
        return PcaDay(empty.factors, empty.residuals, len(symbols), ratios, skipped)
    # pca.transform's BLAS product would round a bar differently with a different number of
    # bars beside it; einsum's plain loop gives each bar the same bits however it is batched.
    demeaned = complete.select(symbols).to_numpy() - pca.mean_
    scores = np.einsum("tn,kn->tk", demeaned, pca.components_)
    residual = demeaned - np.einsum("tk,kn->tn", scores, pca.components_)
    ts = complete["ts"].to_list()
    k, n = n_components, len(symbols)
    factors = pl.DataFrame({
        "ts": np.repeat(np.array(ts, dtype="datetime64[us]"), k),
        "component": np.tile(np.arange(1, k + 1, dtype=np.int64), len(ts)),
        "factor_return": scores.reshape(-1),
        "explained_variance_ratio": np.tile(np.array(ratios), len(ts)),
        "n_assets": np.full(len(ts) * k, n, dtype=np.int64),
        "window_bars": np.full(len(ts) * k, window, dtype=np.int64),
    }, schema=PCA_FACTOR_SCHEMA)
    residuals = pl.DataFrame({
        "ts": np.repeat(np.array(ts, dtype="datetime64[us]"), n),
        "symbol": np.tile(np.array(symbols, dtype=object), len(ts)),
        "residual_return": residual.reshape(-1),
    }, schema=PCA_RESIDUAL_SCHEMA)
    return PcaDay(factors, residuals, n, ratios, skipped)

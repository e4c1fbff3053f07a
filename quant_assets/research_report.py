"""``quant research``: every signal rule and factor ranked by |rank ICIR|, from ``signal_summary``.

Read-only, like ``quant report`` (same exit codes). One line per signal: the headline horizon
(the one with the largest |t| of the rank IC), mean rank IC, rank ICIR (mean/std, ddof 1, not
annualised), t = ICIR * sqrt(n) and its two-sided p, a flag when |t| > 2 with the sign
(predictive or anti-predictive), the IC decay over every horizon and the best quantile spread.
"""

import math

import duckdb
import polars as pl

from quant_assets.config import Settings
from quant_assets.resources.tables import query_frame, table_exists

SIGNIFICANT_T = 2.0


def _f(value: float | None, spec: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def ranked_summary(summary: pl.DataFrame) -> pl.DataFrame:
    """One row per signal at its headline horizon, with the decay and the best spread, ranked."""
    rows = summary.with_columns(
        rank_t=pl.col("rank_icir") * pl.col("n_periods").cast(pl.Float64).sqrt(),
        spread_t=pl.col("spread_mean") / pl.col("spread_se"),
    )
    decay = rows.sort("horizon").group_by("signal_name", maintain_order=True).agg(
        pl.format("h{}: {}", "horizon", pl.col("rank_ic_mean").round(4)).str.join(" > ").alias("decay"))
    spread = (rows.filter(pl.col("spread_mean").is_not_null())
              .sort(pl.col("spread_mean").abs(), descending=True).group_by("signal_name", maintain_order=True).first()
              .select("signal_name", pl.col("horizon").alias("spread_h"), "spread_mean", "spread_t"))
    headline = (rows.sort(pl.col("rank_t").abs(), descending=True, nulls_last=True)
                .group_by("signal_name", maintain_order=True).first())
    return (headline.join(decay, on="signal_name", how="left").join(spread, on="signal_name", how="left")
            .sort(pl.col("rank_icir").abs(), descending=True, nulls_last=True))


def research_lines(conn: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    from scipy import stats  # deferred: scipy.stats takes most of a second to import
    if not table_exists(conn, "signal_summary"):
        return ["no research summary yet: materialize the research group (`quant materialize --select "
                "group:research ...`) or run `quant demo`"]
    summary = query_frame(conn, "SELECT * FROM signal_summary")
    if summary.is_empty():
        return ["the research summary is empty: no bar had 3 or more symbols with a value and a forward return"]
    ranked = ranked_summary(summary)
    n_sig = ranked.filter(pl.col("rank_t").abs() > SIGNIFICANT_T).height
    pooled = "pooled_daily" in set(summary["ic_source"].to_list()) if "ic_source" in summary.columns else False
    what = ("rank IC (Spearman) pooled over each day's bars (fewer than 3 symbols: no cross-section), one period a day"
            if pooled else "cross-sectional rank IC (Spearman) per bar")
    width = max(22, *(len(n) for n in ranked["signal_name"].to_list()))
    lines = [
        f"quant research: {ranked.height} signals and factors on {settings.features.interval} bars, horizons "
        f"{', '.join(str(h) for h in settings.research.horizons)} bars; {what}, "
        f"ranked by |ICIR| (mean/std, not annualised) at each one's strongest horizon; "
        f"{n_sig} with |t| > {SIGNIFICANT_T:g}",
        f"{'#':>3} {'signal':<{width}} {'kind':<6} {'h':>3} {'rank IC':>8} {'ICIR':>7} {'t':>7} {'p':>7}  "
        f"{'significance':<17} {'best spread (bps, t)':<22} IC decay",
    ]
    for i, r in enumerate(ranked.iter_rows(named=True), start=1):
        t = r["rank_t"]
        flag = ""
        if t is not None and math.isfinite(t) and abs(t) > SIGNIFICANT_T:
            flag = "* predictive" if t > 0 else "* anti-predictive"
        p = 2 * stats.t.sf(abs(t), r["n_periods"] - 1) if t is not None and math.isfinite(t) and r["n_periods"] > 1 else None
        spread = ("n/a" if r["spread_mean"] is None else
                  f"h{r['spread_h']} {_f(r['spread_mean'] * 1e4, '+.1f')} ({_f(r['spread_t'], '+.1f')})")
        lines.append(
            f"{i:>3} {r['signal_name']:<{width}} {r['kind']:<6} {r['horizon']:>3} {_f(r['rank_ic_mean'], '+.4f'):>8} "
            f"{_f(r['rank_icir'], '+.3f'):>7} {_f(t, '+.2f'):>7} {_f(p, '.4f'):>7}  {flag:<17} {spread:<22} {r['decay']}"
        )
    lines += [f"    {name:<{width}} no IC: {why}" for name, why in _unranked(conn, set(ranked["signal_name"]))]
    lines.append(f"n = periods with an IC ({int(ranked['n_periods'].min())}..{int(ranked['n_periods'].max())}); "
                 "spread = top minus bottom quantile mean demeaned forward return per bar; "
                 "tables signal_summary, quantile_returns, signal_ic_by_regime")
    if max(settings.research.horizons) > 1:
        lines.append("horizons above 1 bar overlap from bar to bar: their t treats the overlapping periods as "
                     "independent (alphalens' convention) and can overstate significance up to sqrt(h) times")
    return lines


def _unranked(conn: duckdb.DuckDBPyConnection, ranked: set[str]) -> list[tuple[str, str]]:
    """Rules and factors with values but no IC, and why."""
    found = []
    for table, column in (("signals", "signal_name"), ("factors", "factor_name")):
        if table_exists(conn, table):
            found += conn.execute(
                f"SELECT {column}, count(DISTINCT value) FROM {table} WHERE value IS NOT NULL GROUP BY ALL ORDER BY 1"
            ).fetchall()
    return [(name, "its value never varies across symbols (e.g. a rule that never fired)" if distinct <= 1 else
             "no bar had 3 or more symbols with a value and a forward return")
            for name, distinct in found if name not in ranked]

"""Research summary over the whole history: each signal's and factor's statistics per horizon,
quantile returns, IC by regime and the tear sheet (core in ``quant.validation``).

Unpartitioned: a summary is over every bar validated so far, recomputed from the per-bar tables
whenever they change, so it never depends on which runs built them. ``quant research`` prints it.
"""

import dagster as dg
import duckdb
import polars as pl

from quant_assets.config import Settings
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.lib.tear_sheet import window_tear_sheet
from quant_assets.quant import validation as v
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import (
    preview_markdown,
    query_frame,
    registered,
    table_exists,
    transaction,
)

SUMMARY_TABLES = ("signal_summary", "quantile_returns", "signal_ic_by_regime")
REGIME_COLUMNS = ("vol_regime", "dispersion_regime", "beta_state")
VALIDATION_TABLES = ("signal_ic", "quantile_bar_returns", "signal_turnover")


def _read(conn: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    """The whole table in one fixed row order: a mean sums its rows in the order they come, so
    the summary must not depend on the order DuckDB happens to return them in."""
    return query_frame(conn, f"SELECT * FROM {table} ORDER BY ALL") if table_exists(conn, table) else pl.DataFrame()


def summary_frames(conn: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, pl.DataFrame]:
    """The three summary tables computed from the per-bar validation tables (and ``regimes``)."""
    ic, quantiles, turnover = (_read(conn, t) for t in VALIDATION_TABLES)
    source = "cross_sectional"
    if ic.is_empty():  # fewer than 3 symbols: the day-pooled time-series IC is all there is
        pooled = _read(conn, "signal_ic_pooled")
        if pooled.is_empty() or pooled.drop_nulls("rank_ic").is_empty():
            return {}
        ic = pooled.drop_nulls(["ic", "rank_ic"]).rename({"day": "ts", "n_obs": "n_assets"})
        source = "pooled_daily"
    kinds = ic.select("signal_name", "kind").unique()
    plain_ic, plain_quantiles, plain_turnover = ic.drop("kind"), quantiles.drop("kind"), turnover.drop("kind")
    summary = v.signal_summary(
        plain_ic, plain_quantiles, plain_turnover.select("ts", "signal_name", "rank_autocorr"),
        plain_turnover.select("ts", "signal_name", "turnover_top", "turnover_bottom"), settings.research.quantiles,
    )
    by_quantile = v.quantile_summary(plain_quantiles)
    regimes = _read(conn, "regimes")
    if not set(REGIME_COLUMNS) <= set(regimes.columns):
        regimes = pl.DataFrame(schema={"ts": pl.Datetime("us"), **dict.fromkeys(REGIME_COLUMNS, pl.Utf8)})
    by_regime = v.ic_by_regime(plain_ic, regimes.select("ts", *REGIME_COLUMNS))

    def labelled(frame: pl.DataFrame) -> pl.DataFrame:
        joined = frame.join(kinds, on="signal_name", how="left").with_columns(ic_source=pl.lit(source))
        return joined.select("signal_name", "kind", "ic_source", *[c for c in frame.columns if c != "signal_name"])

    return {"signal_summary": labelled(summary), "quantile_returns": labelled(by_quantile),
            "signal_ic_by_regime": labelled(by_regime), "_ic": ic, "_quantiles": quantiles}


def _replace_table(conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    if not frame.columns:  # nothing validated yet
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        return
    with registered(conn, "_summary_rows", frame):
        conn.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _summary_rows")


def build_summary(settings: Settings) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec("signal_summary", group_name="research", deps=list(VALIDATION_TABLES), kinds={"python", "duckdb"},
                     description=(
                         "Per signal rule and factor and horizon, over every validated bar: n_periods, IC mean/std, "
                         "ICIR = mean/std (ddof 1, not annualised), t = ICIR*sqrt(n), two-sided p, the same for rank "
                         "IC, the mean top-minus-bottom quantile spread and its standard error, mean rank "
                         "autocorrelation and top/bottom quantile turnover (alphalens conventions). ic_source says "
                         "which IC: cross_sectional per bar, or pooled_daily (per day over the symbol's bars) when the "
                         "universe has fewer than 3 symbols. The tear sheet "
                         "over the whole history is in the metadata; `quant research` ranks it."),
                     tags={"research_output": "true"}),
        dg.AssetSpec("quantile_returns", group_name="research", deps=["quantile_bar_returns"], kinds={"python", "duckdb"},
                     description=("Per signal, horizon and quantile: the mean over bars of the per-bar mean demeaned "
                                  "forward return, its standard error and the number of bars."),
                     tags={"research_output": "true"}),
        dg.AssetSpec("signal_ic_by_regime", group_name="research", deps=["signal_ic", "regimes"],
                     kinds={"python", "duckdb"},
                     description=("The IC summary split by each regime label (volatility, dispersion, beta state) "
                                  "of the bar the value was known at."),
                     tags={"research_output": "true"}),
    ]

    @dg.multi_asset(name="research_summary", specs=specs, pool="duckdb")
    def research_summary(context: dg.AssetExecutionContext, duckdb: QuantDuckDB):
        with duckdb.connect() as conn:
            frames = summary_frames(conn, settings)
            with transaction(conn):
                for table in SUMMARY_TABLES:
                    _replace_table(conn, table, frames.get(table, pl.DataFrame()))
        summary = frames.get("signal_summary", pl.DataFrame())
        for table in SUMMARY_TABLES:
            frame = frames.get(table, pl.DataFrame())
            metadata = {"dagster/row_count": frame.height}
            if table == "signal_summary" and summary.height:
                ranked = summary.sort(pl.col("rank_icir").abs(), descending=True, nulls_last=True)
                metadata["ranked_by_abs_rank_icir"] = dg.MetadataValue.md(preview_markdown(
                    ranked.select("signal_name", "kind", "horizon", "n_periods", "rank_ic_mean", "rank_icir",
                                  "t_stat", "p_value", "spread_mean"), 40))
                ic = frames["_ic"]
                first, last = ic["ts"].min(), ic["ts"].max()
                metadata.update(window_tear_sheet(ic, frames["_quantiles"], f"all bars {first:%Y-%m-%d}..{last:%Y-%m-%d}",
                                                  settings.research.rolling_ic_bars))
            yield dg.MaterializeResult(asset_key=table, metadata=metadata)

    return research_summary


def summary_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    @daily_check(settings, asset="signal_summary", name="signal_summary_valid", partitioned=False,
                 description=("One row per signal and horizon; IC means in [-1, 1] and finite; n_periods >= 1; "
                              "t-statistics equal ICIR * sqrt(n_periods) within 1e-9."))
    def signal_summary_valid(conn: duckdb.DuckDBPyConnection, _window) -> Verdict:
        if not table_exists(conn, "signal_summary"):
            return Verdict(True, {"rows": 0})
        bad = conn.execute("""
            SELECT count(*) FROM signal_summary
            WHERE n_periods < 1 OR NOT isfinite(ic_mean) OR abs(ic_mean) > 1 + 1e-9 OR abs(rank_ic_mean) > 1 + 1e-9
               OR (icir IS NOT NULL AND abs(t_stat - icir * sqrt(n_periods)) > 1e-9 * greatest(1, abs(t_stat)))
        """).fetchone()[0]
        dupes = conn.execute("SELECT count(*) - count(DISTINCT (signal_name, horizon)) FROM signal_summary").fetchone()[0]
        return Verdict(bad == 0 and dupes == 0, {"invalid_rows": bad, "duplicate_keys": dupes})

    @daily_check(settings, asset="quantile_returns", name="quantile_returns_valid", partitioned=False,
                 description=("One row per signal, horizon and quantile (within 1..research.quantiles), a finite mean "
                              "return, a non-negative standard error and at least one bar behind each mean."))
    def quantile_returns_valid(conn: duckdb.DuckDBPyConnection, _window) -> Verdict:
        if not table_exists(conn, "quantile_returns"):
            return Verdict(True, {"rows": 0})
        bad = conn.execute("""
            SELECT count(*) FROM quantile_returns
            WHERE quantile < 1 OR quantile > ? OR n_periods < 1 OR NOT isfinite(mean_return)
               OR coalesce(std_err, 0) < 0
        """, [settings.research.quantiles]).fetchone()[0]
        dupes = conn.execute("SELECT count(*) - count(DISTINCT (signal_name, horizon, quantile)) FROM quantile_returns"
                             ).fetchone()[0]
        return Verdict(bad == 0 and dupes == 0, {"invalid_rows": bad, "duplicate_keys": dupes})

    @daily_check(settings, asset="signal_ic_by_regime", name="signal_ic_by_regime_valid", partitioned=False,
                 description=("One row per signal, horizon, regime kind and label; the kinds are vol_regime, "
                              "dispersion_regime and beta_state; IC means finite within [-1, 1]; per signal, horizon "
                              "and kind the periods add up to at most the signal's periods in signal_summary."))
    def signal_ic_by_regime_valid(conn: duckdb.DuckDBPyConnection, _window) -> Verdict:
        if not table_exists(conn, "signal_ic_by_regime") or not table_exists(conn, "signal_summary"):
            return Verdict(True, {"rows": 0})
        bad = conn.execute("""
            SELECT count(*) FROM signal_ic_by_regime
            WHERE regime_kind NOT IN ('vol_regime', 'dispersion_regime', 'beta_state') OR n_periods < 1
               OR NOT isfinite(ic_mean) OR abs(ic_mean) > 1 + 1e-9 OR abs(rank_ic_mean) > 1 + 1e-9
        """).fetchone()[0]
        over = conn.execute("""
            SELECT count(*) FROM (
                SELECT r.signal_name, r.horizon, r.regime_kind, sum(r.n_periods) AS n, any_value(s.n_periods) AS total
                FROM signal_ic_by_regime r JOIN signal_summary s USING (signal_name, horizon) GROUP BY ALL
            ) WHERE n > total
        """).fetchone()[0]
        return Verdict(bad == 0 and over == 0, {"invalid_rows": bad, "kinds_over_counted": over})

    return [signal_summary_valid, quantile_returns_valid, signal_ic_by_regime_valid]

"""Cross-sectional factors: per-symbol raw values on the bar grid, then per-bar winsorised z-scores
across the universe, and orthogonalised copies (per-bar OLS residuals).

Every value at bar ``t`` is computed from bars with ``ts <= t`` only. "On the grid" means the
bar ``k`` bars before ``t`` is the row with ``ts = t - k * interval``: a missing bar is never
replaced by an earlier one, so no value spans a gap. A rolling window of ``n`` bars needs every
one of its ``n`` bars (and, for returns, the bar before the first) present, else the value is
absent. Returns: simple ``r_t = close_t / close_{t-1} - 1``, log ``ln(close_t / close_{t-1})``.
Dollar volume is the bar's ``quote_volume`` (quote-currency volume), or ``close * volume`` where
the quote volume is NULL.

Raw factors (:func:`raw_factors`, one column each), each then z-scored across symbols per bar:

==============  ==========================================================================
``mom_<w>``     ``close[t-1] / close[t-1-w] - 1``: momentum over ``w`` bars skipping the latest
                bar; both bars must exist (bars in between need not)
``reversal``    ``-r_t``: short-term reversal, minus the latest bar's simple return
``size``        ``ln(sum of dollar volume over the last size_window bars)`` (natural log of
                quote currency); a zero sum gives no value
``amihud``      Amihud (2002) illiquidity: ``mean over liquidity_window bars of |r| / dollar
                volume * 1e6``, ``|simple return|`` per million units of quote currency traded
                (the feature store's unit); higher = less liquid; a bar with zero dollar
                volume gives no value for the windows it is in
``low_vol``     ``- std(log returns over volatility_window bars)``, sample std (ddof 1)
``beta``        ``cov(r_i, r_m) / var(r_m)`` of simple returns over beta_window bars (both with
                ddof 1), ``r_m`` the market's return at the same bar; no value when ``var = 0``
==============  ==========================================================================

The market return ``r_m`` is the market symbol's simple return, or (no market symbol) the
equal-weighted mean simple return of the universe's symbols that have a return at that bar.

Cross-sectional step, per (bar, factor) over the symbols with a raw value: winsorise at
``median +- winsor_mads * 1.4826 * MAD`` (``MAD = median |x - median|``; ``winsor_mads = 0``
or ``MAD = 0`` clips nothing, since a zero MAD gives no scale to clip at), then z-score
``(x - mean) / std`` with the sample std (ddof 1). Only bars with at least 3 symbols and a
non-zero std (above ``1e-12`` times the largest ``|x|``: a constant up to rounding is zero) get
values.

Orthogonalised copies ``<name>_orth``: the residual of a per-bar cross-sectional OLS with an
intercept (scikit-learn ``LinearRegression``) of the factor's z-score on the z-scores of the
*other* families (momentum = the mean of the ``mom_*`` z-scores, needing all of them; reversal,
size, amihud, low_vol, beta), then z-scored again (ddof 1). Every factor has five regressors; a
bar gets ``_orth`` values only when at least ``5 + 3 = 8`` symbols have the factor and all five
regressors (an intercept and five slopes leave at least 2 residual degrees of freedom), and only
for those symbols; a residual std below ``1e-9`` (the factor is spanned by the others) gives none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

FACTOR_SCHEMA = {"symbol": pl.Utf8, "ts": pl.Datetime("us"), "factor_name": pl.Utf8, "value": pl.Float64}
FAMILIES = ("momentum", "reversal", "size", "amihud", "low_vol", "beta")
MAD_SCALE = 1.4826        # MAD x 1.4826 estimates the std of a normal sample
AMIHUD_SCALE = 1e6        # |return| per million units of quote currency
MIN_SYMBOLS = 3           # symbols a bar needs for a z-score
EXTRA_DOF = 3             # _orth needs n >= regressors + EXTRA_DOF symbols
ZERO_STD_RELATIVE = 1e-12  # a cross-sectional std at or below this x max |x| counts as zero
ZERO_RESIDUAL_STD = 1e-9  # residual std (of a unit-std z-score) at or below this: spanned, no _orth


@dataclass(frozen=True)
class FactorParams:
    """Windows in bars (see the module); ``winsor_mads`` in MADs, 0 = no winsorising."""

    momentum_windows: tuple[int, ...] = (24, 72, 168)
    size_window: int = 24
    liquidity_window: int = 24
    volatility_window: int = 24
    beta_window: int = 168
    winsor_mads: float = 3.0
    orthogonalise: bool = True

    def __post_init__(self) -> None:
        if not self.momentum_windows or len(set(self.momentum_windows)) != len(self.momentum_windows):
            raise ValueError(f"momentum_windows must be distinct and non-empty, got {list(self.momentum_windows)}")
        windows = [*((f"momentum_windows {w}", w, 1) for w in self.momentum_windows), ("size_window", self.size_window, 1),
                   ("liquidity_window", self.liquidity_window, 1), ("volatility_window", self.volatility_window, 2),
                   ("beta_window", self.beta_window, 2)]
        for label, value, floor in windows:
            if isinstance(value, bool) or not isinstance(value, int) or value < floor:
                raise ValueError(f"{label} must be an integer >= {floor} bars, got {value!r}")
        if not np.isfinite(self.winsor_mads) or self.winsor_mads < 0:
            raise ValueError(f"winsor_mads must be a finite number >= 0, got {self.winsor_mads!r}")

    @property
    def momentum_names(self) -> tuple[str, ...]:
        return tuple(f"mom_{w}" for w in self.momentum_windows)

    @property
    def base_names(self) -> tuple[str, ...]:
        """The z-scored factors, in a fixed order: ``mom_<w>...``, then the other families."""
        return (*self.momentum_names, *FAMILIES[1:])

    @property
    def names(self) -> tuple[str, ...]:
        """Every factor name the table holds (``_orth`` copies when ``orthogonalise``)."""
        return (*self.base_names, *((f"{n}_orth" for n in self.base_names) if self.orthogonalise else ()))

    def family(self, name: str) -> str:
        return "momentum" if name in self.momentum_names else name

    @property
    def history_bars(self) -> int:
        """How many bars before ``t`` a value at ``t`` reads (returns need the bar before a window)."""
        return max(1 + max(self.momentum_windows), self.size_window - 1, self.liquidity_window,
                   self.volatility_window, self.beta_window)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=FACTOR_SCHEMA)


def _prepared(bars: pl.DataFrame, step: timedelta) -> pl.DataFrame:
    """``symbol, ts, close, dollar_volume, ret, log_ret`` sorted by symbol and ts; returns from the
    bar one interval earlier (NULL when it is missing)."""
    qv = pl.col("quote_volume").cast(pl.Float64) if "quote_volume" in bars.columns else pl.lit(None, pl.Float64)
    frame = bars.select(
        pl.col("symbol").cast(pl.Utf8), pl.col("ts").cast(pl.Datetime("us")), pl.col("close").cast(pl.Float64),
        pl.coalesce(qv, pl.col("close").cast(pl.Float64) * pl.col("volume").cast(pl.Float64)).alias("dollar_volume"),
    ).sort("symbol", "ts")
    frame = _lagged_close(frame, 1, step, "close_1")
    return frame.with_columns(
        (pl.col("close") / pl.col("close_1") - 1.0).alias("ret"),
        (pl.col("close") / pl.col("close_1")).log().alias("log_ret"),
    ).drop("close_1")


def _lagged_close(frame: pl.DataFrame, k: int, step: timedelta, alias: str) -> pl.DataFrame:
    """``frame`` with the close of the bar ``k`` intervals earlier on the grid (NULL when absent)."""
    earlier = frame.select("symbol", (pl.col("ts") + step * k).alias("ts"), pl.col("close").alias(alias))
    return frame.join(earlier, on=["symbol", "ts"], how="left", maintain_order="left")


def market_returns(prepared: pl.DataFrame, market: str | None) -> pl.DataFrame:
    """``ts, market_ret``: the market symbol's simple return at each bar, or (``market=None``) the
    equal-weighted mean simple return of the symbols that have one at that bar."""
    if market is not None:
        return prepared.filter(pl.col("symbol") == market).select("ts", pl.col("ret").alias("market_ret"))
    return prepared.group_by("ts").agg(pl.col("ret").mean().alias("market_ret"))


def _rolling(frame: pl.DataFrame, window: int, minutes: int, aggs: Sequence[pl.Expr]) -> pl.DataFrame:
    """Per symbol, each bar's trailing ``window`` bars ``(t - window * interval, t]``.

    Aggregations that are computed afresh per window (``implode().list.*`` and ``pl.cov``), not
    by polars' sliding sums, whose last bits depend on where the frame starts: a value must not
    depend on how much history a run happened to read.
    """
    return frame.rolling(index_column="ts", period=f"{window * minutes}m", group_by="symbol").agg(*aggs)


def raw_factors(bars: pl.DataFrame, params: FactorParams, interval_minutes: int,
                market: str | None) -> pl.DataFrame:
    """Wide frame ``symbol, ts, <base factor>...`` of raw (not z-scored) values for every bar of
    ``bars`` (``symbol, ts, close, volume[, quote_volume]``, one row per symbol and bar on the
    grid); NULL where a value is undefined (see the module). ``market``: the market symbol, or
    None for the equal-weighted market."""
    step = timedelta(minutes=interval_minutes)
    prepared = _prepared(bars, step)
    frame = prepared.join(market_returns(prepared, market), on="ts", how="left", maintain_order="left")
    both = pl.col("ret").is_not_null() & pl.col("market_ret").is_not_null()
    frame = frame.with_columns(
        pl.when(pl.col("dollar_volume") > 0).then(pl.col("ret").abs() / pl.col("dollar_volume") * AMIHUD_SCALE)
        .alias("illiquidity"),
        pl.when(both).then(pl.col("ret")).alias("pair_ret"),
        pl.when(both).then(pl.col("market_ret")).alias("pair_market"),
    )
    for w in params.momentum_windows:
        frame = _lagged_close(frame, 1 + w, step, f"close_{1 + w}")
    frame = _lagged_close(frame, 1, step, "close_1")
    out = frame.select(
        "symbol", "ts",
        *((pl.col("close_1") / pl.col(f"close_{1 + w}") - 1.0).alias(f"mom_{w}") for w in params.momentum_windows),
        (-pl.col("ret")).alias("reversal"),
    )
    windows: dict[int, list[pl.Expr]] = {}
    windows.setdefault(params.size_window, []).extend([
        pl.col("dollar_volume").count().alias("n_size"), pl.col("dollar_volume").implode().list.sum().alias("dv_sum")])
    windows.setdefault(params.liquidity_window, []).extend([
        pl.col("illiquidity").count().alias("n_amihud"), pl.col("illiquidity").implode().list.mean().alias("amihud_raw")])
    windows.setdefault(params.volatility_window, []).extend([
        pl.col("log_ret").count().alias("n_vol"), pl.col("log_ret").implode().list.std(ddof=1).alias("vol_raw")])
    windows.setdefault(params.beta_window, []).extend([
        pl.col("pair_ret").count().alias("n_beta"),
        pl.cov("pair_ret", "pair_market", ddof=1).alias("cov_rm"),
        pl.cov("pair_market", "pair_market", ddof=1).alias("var_m"),
    ])
    for window, aggs in windows.items():
        out = out.join(_rolling(frame, window, interval_minutes, aggs), on=["symbol", "ts"], how="left")
    full = {"size": params.size_window, "amihud": params.liquidity_window, "vol": params.volatility_window,
            "beta": params.beta_window}
    return out.select(
        "symbol", "ts", *params.momentum_names, "reversal",
        pl.when((pl.col("n_size") == full["size"]) & (pl.col("dv_sum") > 0)).then(pl.col("dv_sum").log()).alias("size"),
        pl.when(pl.col("n_amihud") == full["amihud"]).then(pl.col("amihud_raw")).alias("amihud"),
        pl.when(pl.col("n_vol") == full["vol"]).then(-pl.col("vol_raw")).alias("low_vol"),
        pl.when((pl.col("n_beta") == full["beta"]) & (pl.col("var_m") > 0))
        .then(pl.col("cov_rm") / pl.col("var_m")).alias("beta"),
    ).sort("symbol", "ts")


def cross_sectional_zscores(long: pl.DataFrame, winsor_mads: float) -> pl.DataFrame:
    """Per (ts, factor_name) over the rows of ``long`` (``symbol, ts, factor_name, value``; NULL
    and non-finite values dropped first): winsorise, then z-score (ddof 1), see the module.
    Groups with fewer than 3 symbols or a zero std are dropped."""
    group = ["ts", "factor_name"]
    x = pl.col("value")
    frame = long.filter(x.is_not_null() & x.is_finite()).sort("ts", "factor_name", "symbol")
    frame = frame.with_columns(x.median().over(group).alias("_median"))
    frame = frame.with_columns((x - pl.col("_median")).abs().median().over(group).alias("_mad"))
    half = pl.lit(winsor_mads * MAD_SCALE) * pl.col("_mad")
    if winsor_mads > 0:
        frame = frame.with_columns(pl.when(pl.col("_mad") > 0)
                                   .then(x.clip(pl.col("_median") - half, pl.col("_median") + half))
                                   .otherwise(x).alias("value"))
    frame = frame.with_columns(
        x.count().over(group).alias("_n"), x.mean().over(group).alias("_mean"),
        x.std(ddof=1).over(group).alias("_std"), x.abs().max().over(group).alias("_scale"),
    )
    return frame.filter(
        (pl.col("_n") >= MIN_SYMBOLS) & (pl.col("_std") > ZERO_STD_RELATIVE * pl.col("_scale"))
    ).select("symbol", "ts", "factor_name", ((x - pl.col("_mean")) / pl.col("_std")).alias("value"))


@dataclass(frozen=True)
class Panel:
    """Z-scores as a dense ``(bars, symbols, factors)`` array, NaN where absent."""

    ts: list[datetime]
    symbols: list[str]
    names: tuple[str, ...]
    values: np.ndarray

    @classmethod
    def of(cls, long: pl.DataFrame, names: Sequence[str]) -> Panel:
        ts = long.get_column("ts").unique().sort()
        symbols = long.get_column("symbol").unique().sort().to_list()
        grid = pl.DataFrame({"ts": ts}).join(pl.DataFrame({"symbol": symbols}, schema={"symbol": pl.Utf8}), how="cross")
        if long.is_empty():
            return cls(ts.to_list(), symbols, tuple(names), np.full((0, len(symbols), len(names)), np.nan))
        wide = long.pivot(on="factor_name", index=["ts", "symbol"], values="value")
        joined = grid.join(wide, on=["ts", "symbol"], how="left")
        columns = [joined[n].cast(pl.Float64).fill_null(np.nan).to_numpy() if n in joined.columns
                   else np.full(joined.height, np.nan) for n in names]
        values = np.stack(columns, axis=-1).reshape(len(ts), len(symbols), len(names))
        return cls(ts.to_list(), symbols, tuple(names), values)

    def to_long(self, suffix: str = "") -> pl.DataFrame:
        """The finite cells as :data:`FACTOR_SCHEMA` rows, ``suffix`` appended to the names."""
        t, s, f = np.nonzero(np.isfinite(self.values))
        return pl.DataFrame({
            "symbol": pl.Series(self.symbols, dtype=pl.Utf8).gather(s),
            "ts": pl.Series(self.ts, dtype=pl.Datetime("us")).gather(t),
            "factor_name": pl.Series([n + suffix for n in self.names], dtype=pl.Utf8).gather(f),
            "value": self.values[t, s, f],
        }, schema=FACTOR_SCHEMA)


def family_matrix(panel: Panel, params: FactorParams) -> np.ndarray:
    """``(bars, symbols, 6)``: each family's z-score in :data:`FAMILIES` order; momentum is the mean
    of the ``mom_*`` z-scores (NaN unless all are there)."""
    index = {n: i for i, n in enumerate(panel.names)}
    momentum = panel.values[..., [index[n] for n in params.momentum_names]].mean(axis=-1)
    return np.stack([momentum, *(panel.values[..., index[f]] for f in FAMILIES[1:])], axis=-1)


def zscore(values: np.ndarray) -> np.ndarray | None:
    """``(x - mean) / std`` (ddof 1) down axis 0, or None when a column's std is below
    :data:`ZERO_RESIDUAL_STD` (used on residuals of unit-std z-scores)."""
    std = values.std(axis=0, ddof=1)
    if np.any(~(std > ZERO_RESIDUAL_STD)):
        return None
    return (values - values.mean(axis=0)) / std


def _same_rows(present: np.ndarray) -> list[tuple[list[int], np.ndarray]]:
    """Columns of the ``(symbols, targets)`` mask grouped by identical rows: ``[(columns, rows)]``."""
    groups: dict[bytes, tuple[list[int], np.ndarray]] = {}
    for j in range(present.shape[1]):
        groups.setdefault(present[:, j].tobytes(), ([], present[:, j]))[0].append(j)
    return list(groups.values())


def orthogonalise(panel: Panel, params: FactorParams) -> Panel:
    """The ``_orth`` panel (same axes, names without the suffix): per bar and factor, the
    re-z-scored residual of an OLS with intercept on the other families (see the module).
    Factors of one family share their regressors and are fitted together (multi-output) when
    the same symbols have them."""
    families = family_matrix(panel, params)
    out = np.full(panel.values.shape, np.nan)
    members = {f: [i for i, n in enumerate(panel.names) if params.family(n) == f] for f in FAMILIES}
    needed = len(FAMILIES) - 1 + EXTRA_DOF
    import sklearn  # deferred: scikit-learn takes a second to import
    from sklearn.linear_model import LinearRegression

    model = LinearRegression(fit_intercept=True)
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        for t in range(panel.values.shape[0]):
            for k, family in enumerate(FAMILIES):
                regressors = np.delete(families[t], k, axis=1)
                targets = panel.values[t][:, members[family]]
                present = np.isfinite(regressors).all(axis=1)[:, None] & np.isfinite(targets)
                for columns, rows in _same_rows(present):
                    if rows.sum() < needed:
                        continue
                    x, y = regressors[rows], targets[rows][:, columns]
                    model.fit(x, y)
                    z = zscore(y - x @ model.coef_.T - model.intercept_)
                    if z is not None:
                        out[t, np.flatnonzero(rows)[:, None], np.asarray(members[family])[columns][None, :]] = z
    return Panel(panel.ts, panel.symbols, panel.names, out)


def compute_factors(bars: pl.DataFrame, params: FactorParams, interval_minutes: int, market: str | None,
                    since: datetime | None = None) -> pl.DataFrame:
    """The ``factors`` rows (:data:`FACTOR_SCHEMA`) of every bar of ``bars`` at or after ``since``,
    sorted by ``symbol, ts, factor_name``. ``bars`` must hold :attr:`FactorParams.history_bars`
    bars before ``since`` for the first bars to have every value."""
    if bars.is_empty():
        return _empty()
    raw = raw_factors(bars, params, interval_minutes, market)
    if since is not None:
        raw = raw.filter(pl.col("ts") >= since)
    long = raw.unpivot(index=["symbol", "ts"], on=list(params.base_names), variable_name="factor_name",
                       value_name="value")
    z = cross_sectional_zscores(long, params.winsor_mads)
    parts = [z]
    if params.orthogonalise and not z.is_empty():
        parts.append(orthogonalise(Panel.of(z, params.base_names), params).to_long("_orth"))
    return pl.concat(parts).sort("symbol", "ts", "factor_name")


def mean_cross_sectional_correlation(factors: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
    """``(F, F)`` mean over bars of the per-bar Pearson correlation across symbols of each pair of
    factors (symbols with both values; bars with at least 3 of them and non-zero variances);
    NaN for a pair that never has such a bar. The diagonal is 1 where a factor has values."""
    panel = Panel.of(factors.select(*FACTOR_SCHEMA), names)
    v = panel.values
    out = np.full((len(names), len(names)), np.nan)
    for a in range(len(names)):
        for b in range(a, len(names)):
            both = np.isfinite(v[..., a]) & np.isfinite(v[..., b])
            n = both.sum(axis=1)
            xa, xb = np.where(both, v[..., a], 0.0), np.where(both, v[..., b], 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                ma, mb = xa.sum(axis=1) / n, xb.sum(axis=1) / n
                da, db = np.where(both, xa - ma[:, None], 0.0), np.where(both, xb - mb[:, None], 0.0)
                corr = (da * db).sum(axis=1) / np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
            good = (n >= MIN_SYMBOLS) & np.isfinite(corr)
            if good.any():
                out[a, b] = out[b, a] = corr[good].mean()
    return out

"""Peer test: quant.validation against alphalens-reloaded on the same input, to 1e-9.

:func:`compare_with_alphalens` is reusable (``values``: ``symbol, ts, signal_name, value``;
``closes``: ``symbol, ts, close``). Both sides see the same (symbol, bar) support: alphalens keeps a
factor row only when every horizon's forward return exists (``get_clean_factor`` drops NaN across
all period columns) and it forward-fills prices over missing bars (so a return spanning a gap
would be a number there, absent on ours). The helper therefore keeps, on both sides, only the
value rows whose every horizon has a forward return on our side (``forward_returns``: no gap
inside the window) — alphalens is masked, not our side widened. alphalens gets the prices on the
full bar grid (NaN for missing bars) and a date level whose ``freq`` is the bar interval, so its
``pct_change`` over rows is over bars and its ``shift(1)`` is the previous grid bar.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from quant_assets.quant.forward_returns import forward_returns
from quant_assets.quant.validation import (
    cross_sectional_ic,
    quantile_bar_returns,
    quantile_summary,
    quantile_turnover,
    rank_autocorrelation,
)

TOLERANCE = 1e-9
PEER_METRICS = ("rank_ic", "quantile_bar", "quantile_mean", "quantile_std_err", "rank_autocorr", "turnover_top",
                "turnover_bottom")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "freqtrade_testdata"


def _alphalens_frames(values: pl.DataFrame, closes: pl.DataFrame, interval_minutes: int):
    """``(factor, prices)`` shaped as alphalens wants: a factor Series on a (date, asset) index
    whose date level is the full grid with ``freq`` = the interval, prices wide on that grid."""
    import pandas as pd

    freq = pd.Timedelta(minutes=interval_minutes)
    grid = pd.date_range(closes["ts"].min(), closes["ts"].max(), freq=freq)
    prices = closes.to_pandas().pivot(index="ts", columns="symbol", values="close").reindex(grid)
    assets = pd.Index(sorted(prices.columns))
    frame = values.sort("ts", "symbol").to_pandas()
    index = pd.MultiIndex(
        levels=[grid, assets],
        codes=[grid.get_indexer(frame["ts"]), assets.get_indexer(frame["symbol"])],
        names=["date", "asset"],
    )
    return pd.Series(frame["value"].to_numpy(), index=index, name="factor"), prices[assets]


def _alphalens_tables(factor, prices, horizons: Sequence[int], quantiles: int) -> dict[str, pl.DataFrame]:
    """alphalens' per-bar rank IC, quantile means (per bar and overall), rank autocorrelation and
    turnover, as long polars frames keyed like ours."""
    import alphalens

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        data = alphalens.utils.get_clean_factor_and_forward_returns(
            factor, prices, periods=tuple(horizons), quantiles=quantiles, filter_zscore=None, max_loss=1.0)
        if data.empty:  # every bar dropped in binning
            return {metric: pl.DataFrame() for metric in PEER_METRICS}
        labels = dict(zip(alphalens.utils.get_forward_returns_columns(data.columns), sorted(horizons), strict=True))
        ic = alphalens.performance.factor_information_coefficient(data)
        by_bar, _ = alphalens.performance.mean_return_by_quantile(data, by_date=True)
        overall, overall_se = alphalens.performance.mean_return_by_quantile(data, by_date=False)
        autocorr = alphalens.performance.factor_rank_autocorrelation(data, period=1)
        top = alphalens.performance.quantile_turnover(data["factor_quantile"], quantiles, period=1)
        bottom = alphalens.performance.quantile_turnover(data["factor_quantile"], 1, period=1)

    def long(frame, index: list[str], name: str) -> pl.DataFrame:
        out = frame.rename(columns=labels).reset_index()
        out.columns = [*index, *[int(c) for c in out.columns[len(index):]]]
        return pl.from_pandas(out).unpivot(index=index, variable_name="horizon", value_name=name).with_columns(
            pl.col("horizon").cast(pl.Int64)).drop_nulls(name).filter(pl.col(name).is_not_nan())

    def series(s, name: str) -> pl.DataFrame:
        out = pl.from_pandas(s.rename(name).rename_axis("ts").reset_index())
        return out.drop_nulls(name).filter(pl.col(name).is_not_nan())

    quantile = pl.col("quantile").cast(pl.Int64)
    return {
        "rank_ic": long(ic, ["ts"], "rank_ic"),
        "quantile_bar": long(by_bar, ["quantile", "ts"], "mean_return").with_columns(quantile),
        "quantile_mean": long(overall, ["quantile"], "mean_return").with_columns(quantile),
        "quantile_std_err": long(overall_se, ["quantile"], "std_err").with_columns(quantile),
        "rank_autocorr": series(autocorr, "rank_autocorr"),
        "turnover_top": series(top, "turnover_top"),
        "turnover_bottom": series(bottom, "turnover_bottom"),
    }


def _diff(ours: pl.DataFrame, peer: pl.DataFrame, on: list[str], columns: list[str]) -> dict[str, float]:
    if peer.is_empty():
        return {"n_compared": 0, "n_ours_only": ours.height, "n_peer_only": 0, "max_abs_diff": 0.0}
    ours = ours.with_columns(pl.col("ts").dt.cast_time_unit("us")) if "ts" in on else ours
    peer = peer.with_columns(pl.col("ts").dt.cast_time_unit("us")) if "ts" in on else peer
    both = ours.join(peer, on=on, how="inner", suffix="_peer")
    worst = max((float((both[c] - both[c + "_peer"]).abs().max() or 0.0) for c in columns), default=0.0)
    return {"n_compared": both.height, "n_ours_only": ours.join(peer, on=on, how="anti").height,
            "n_peer_only": peer.join(ours, on=on, how="anti").height, "max_abs_diff": worst}


def compare_with_alphalens(values: pl.DataFrame, closes: pl.DataFrame, horizons: Sequence[int],
                           interval_minutes: int, quantiles: int = 5) -> pl.DataFrame:
    """Per signal and metric: ``signal_name, metric, n_compared, n_ours_only, n_peer_only,
    max_abs_diff`` between quant.validation and alphalens-reloaded on the same values and closes.

    Metrics: ``rank_ic`` per bar and horizon, ``quantile_bar`` (per-bar demeaned quantile means),
    ``quantile_mean`` and ``quantile_std_err`` (over bars), ``rank_autocorr``, ``turnover_top``,
    ``turnover_bottom`` per bar. Rows present on one side only are counted, not compared: ours has
    rank IC and rank autocorrelation on bars alphalens drops in binning (non-distinct quantile
    edges); alphalens' rank IC on bars with 2 assets (always +-1) is left out before comparing."""
    closes = closes.select("symbol", pl.col("ts").dt.cast_time_unit("us"), pl.col("close").cast(pl.Float64))
    forward = forward_returns(closes, horizons, interval_minutes)
    complete = forward.group_by("symbol", "ts").len().filter(pl.col("len") == len(set(horizons))).drop("len")
    values = values.filter(pl.col("value").is_finite()).join(complete, on=["symbol", "ts"], how="semi")
    rows = []
    for (name,), vals in values.group_by("signal_name"):
        peer = _alphalens_tables(*_alphalens_frames(vals, closes, interval_minutes), horizons, quantiles)
        if not peer["rank_ic"].is_empty():  # alphalens' 2-asset ICs (always +-1) are not ours to have
            three = vals.group_by("ts").len().filter(pl.col("len") >= 3).select("ts")
            peer["rank_ic"] = peer["rank_ic"].with_columns(pl.col("ts").dt.cast_time_unit("us")).join(
                three, on="ts", how="semi")
        bars = quantile_bar_returns(vals, forward, quantiles)
        summary = quantile_summary(bars)
        turnover = quantile_turnover(vals, quantiles, interval_minutes)
        ours = {
            "rank_ic": (cross_sectional_ic(vals, forward), ["ts", "horizon"], ["rank_ic"]),
            "quantile_bar": (bars, ["quantile", "ts", "horizon"], ["mean_return"]),
            "quantile_mean": (summary, ["quantile", "horizon"], ["mean_return"]),
            "quantile_std_err": (summary.drop_nulls("std_err"), ["quantile", "horizon"], ["std_err"]),
            "rank_autocorr": (rank_autocorrelation(vals, interval_minutes), ["ts"], ["rank_autocorr"]),
            "turnover_top": (turnover.drop_nulls("turnover_top"), ["ts"], ["turnover_top"]),
            "turnover_bottom": (turnover.drop_nulls("turnover_bottom"), ["ts"], ["turnover_bottom"]),
        }
        for metric, (frame, on, columns) in ours.items():
            rows.append({"signal_name": name, "metric": metric, **_diff(frame, peer[metric], on, columns)})
    return pl.DataFrame(rows).sort("signal_name", "metric")


def _signals(closes: pl.DataFrame, lookbacks: Sequence[int]) -> pl.DataFrame:
    """Trailing momentum ``close[t] / close[t - k] - 1`` over rows (known at t's close), a rounded
    copy with many ties, and a 3-valued sign signal (most of its bars have non-distinct edges)."""
    ordered = closes.sort("symbol", "ts")
    frames = []
    for k in lookbacks:
        mom = (pl.col("close") / pl.col("close").shift(k).over("symbol") - 1)
        frames.append(ordered.select("symbol", "ts", pl.lit(f"mom_{k}").alias("signal_name"), mom.alias("value")))
        frames.append(ordered.select("symbol", "ts", pl.lit(f"mom_{k}_rounded").alias("signal_name"),
                                     (mom * 100).round(0).alias("value")))
    frames.append(ordered.select("symbol", "ts", pl.lit("sign_1").alias("signal_name"),
                                 (pl.col("close") / pl.col("close").shift(1).over("symbol") - 1).sign().alias("value")))
    return pl.concat(frames).drop_nulls("value")


def _check(result: pl.DataFrame) -> None:
    bad = result.filter(pl.col("max_abs_diff") > TOLERANCE)
    assert bad.is_empty(), bad
    assert (result["n_peer_only"] == 0).all(), result.filter(pl.col("n_peer_only") > 0)
    continuous = result.filter(~pl.col("signal_name").str.contains("rounded|sign"))
    per_bar = continuous.filter(~pl.col("metric").str.starts_with("quantile_"))
    assert per_bar["n_compared"].min() > 100, per_bar
    assert (continuous["n_ours_only"] == 0).all(), continuous.filter(pl.col("n_ours_only") > 0)
    # only IC and autocorrelation exist on bars alphalens drops in binning: everything built
    # from the buckets exists on exactly the same bars on both sides
    bucketed = result.filter(~pl.col("metric").is_in(["rank_ic", "rank_autocorr"]))
    assert (bucketed["n_ours_only"] == 0).all(), bucketed.filter(pl.col("n_ours_only") > 0)


@pytest.fixture(scope="module")
def simulator_closes() -> pl.DataFrame:
    from quant_assets.providers.simulator import simulate_day

    symbols = [f"S{i:02d}/USDT" for i in range(12)]
    return pl.concat([
        simulate_day(s, date(2024, 3, 1) + timedelta(days=d), "1h").select("symbol", "ts", "close")
        for s in symbols for d in range(20)
    ])


def test_simulator_panel_matches_alphalens(simulator_closes: pl.DataFrame) -> None:
    values = _signals(simulator_closes, [1, 6])
    result = compare_with_alphalens(values, simulator_closes, [1, 4, 24], 60)
    _check(result)
    # the discrete signal has bars with non-distinct edges: no quantile rows on either side
    sign_bars = result.filter((pl.col("signal_name") == "sign_1") & (pl.col("metric") == "quantile_bar"))
    total_bars = simulator_closes["ts"].n_unique() * 3 * 5
    assert sign_bars["n_compared"][0] < total_bars


def test_simulator_missing_bars_are_masked_alike(simulator_closes: pl.DataFrame) -> None:
    rng = np.random.default_rng(3)
    holed = simulator_closes.filter(pl.Series(rng.random(simulator_closes.height) > 0.03))
    result = compare_with_alphalens(_signals(holed, [3]), holed, [1, 4, 24], 60)
    _check(result)


def _freqtrade_closes(pairs: Sequence[str]) -> pl.DataFrame:
    frames = []
    for pair in pairs:
        raw = pl.read_ipc(DATA / f"{pair}_BTC-5m.feather")
        frames.append(raw.select(pl.lit(f"{pair}/BTC").alias("symbol"),
                                 pl.col("date").dt.replace_time_zone(None).dt.cast_time_unit("us").alias("ts"),
                                 pl.col("close").cast(pl.Float64)))
    return pl.concat(frames)


@pytest.mark.skipif(not DATA.is_dir(), reason="real candles ../shared/data/freqtrade_testdata not in this checkout")
def test_real_binance_5m_pairs_match_alphalens() -> None:
    closes = _freqtrade_closes(["ADA", "DASH", "ETC", "ETH", "LTC", "TRX", "XLM", "XMR", "ZEC"])
    closes = closes.filter(pl.col("ts").is_between(datetime(2018, 1, 22), datetime(2018, 1, 28), closed="left"))
    assert closes.group_by("symbol").len()["len"].min() < 6 * 288  # real missing candles are in the sample
    result = compare_with_alphalens(_signals(closes, [12]), closes, [1, 4, 24], 5)
    _check(result)

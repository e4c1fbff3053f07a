"""Validation benchmark: quant.validation against alphalens-reloaded on the same factors and prices.

Run from the repository root:

    .venv/bin/python benchmarks/validation_vs_alphalens.py                 # 10 factors, 20 symbols, 365 days
    .venv/bin/python benchmarks/validation_vs_alphalens.py --days 60 --factors 3 --repeat 1

The whole validation of ``--factors`` factors (trailing momentum over several lookbacks, a
reversal and a volatility factor) at horizons 1, 4 and 24 bars, ``--symbols`` symbols x ``--days``
days of 1h bars, 5 quantiles. Each side runs in its own fresh subprocess, so its peak memory
(``VmHWM``, the whole process: interpreter, libraries and input data included) is its own:

* ``ours``: ``forward_returns`` + ``cross_sectional_ic`` + ``quantile_bar_returns`` +
  ``quantile_summary`` + ``rank_autocorrelation`` + ``quantile_turnover`` + ``signal_summary``,
  all factors in one long frame;
* ``alphalens``: per factor ``get_clean_factor_and_forward_returns(periods=(1, 4, 24), quantiles=5,
  filter_zscore=None, max_loss=1.0)`` + ``factor_information_coefficient`` +
  ``mean_return_by_quantile`` (by bar and overall) + ``factor_rank_autocorrelation`` +
  ``quantile_turnover`` (top and bottom) + the IC mean/std/t-test in pandas/scipy.

Inputs are built before the clock starts, each side in its natural shape (long polars frames;
a (date, asset) factor Series and a wide price frame with the bar ``freq``). Times are
wall-clock seconds, best of ``--repeat``.
"""

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time
import warnings
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from peak_memory import peak_rss_kb

HORIZONS = (1, 4, 24)
QUANTILES = 5
INTERVAL = 60
START = datetime(2023, 1, 1)
LOOKBACKS = (1, 3, 6, 12, 24, 48, 72, 168)


def make_closes(n_symbols: int, days: int, seed: int = 11) -> pl.DataFrame:
    """``symbol, ts, close``: geometric random walks with a common market factor, 1h bars."""
    n = days * 24
    rng = np.random.default_rng(seed)
    ts = pl.datetime_range(START, START + timedelta(hours=n - 1), timedelta(hours=1), eager=True, time_unit="us")
    market = rng.standard_t(4, n) * 0.006
    frames = []
    for k in range(n_symbols):
        ret = (0.7 + 0.6 * rng.random()) * market + rng.standard_t(4, n) * 0.008
        close = (10 + 1000 * rng.random()) * np.exp(np.cumsum(ret))
        frames.append(pl.DataFrame({"symbol": f"S{k:02d}/USDT", "ts": ts, "close": close}))
    return pl.concat(frames)


def make_values(closes: pl.DataFrame, n_factors: int) -> pl.DataFrame:
    """``symbol, ts, signal_name, value`` for ``n_factors`` factors known at each bar's close:
    momentum ``close[t] / close[t - k] - 1`` for the lookbacks, then a 1-bar reversal and the
    24-bar volatility of 1-bar log returns."""
    ordered = closes.sort("symbol", "ts")
    exprs = {f"mom_{k}": pl.col("close") / pl.col("close").shift(k).over("symbol") - 1 for k in LOOKBACKS}
    exprs["reversal_1"] = 1 - pl.col("close") / pl.col("close").shift(1).over("symbol")
    exprs["vol_24"] = (pl.col("close").log().diff().over("symbol")).rolling_std(24).over("symbol")
    names = list(exprs)[:n_factors]
    if len(names) < n_factors:
        raise ValueError(f"--factors is at most {len(exprs)}, got {n_factors}")
    wide = ordered.select("symbol", "ts", *[exprs[name].alias(name) for name in names])
    return wide.unpivot(index=["symbol", "ts"], variable_name="signal_name", value_name="value").drop_nulls("value")


def run_ours(closes: pl.DataFrame, values: pl.DataFrame) -> dict:
    from quant_assets.quant.forward_returns import forward_returns
    from quant_assets.quant.validation import (
        cross_sectional_ic,
        quantile_bar_returns,
        quantile_summary,
        quantile_turnover,
        rank_autocorrelation,
        signal_summary,
    )

    forward = forward_returns(closes, HORIZONS, INTERVAL)
    ic = cross_sectional_ic(values, forward)
    bars = quantile_bar_returns(values, forward, QUANTILES)
    quantile_summary(bars)
    autocorr = rank_autocorrelation(values, INTERVAL)
    turnover = quantile_turnover(values, QUANTILES, INTERVAL)
    summary = signal_summary(ic, bars, autocorr, turnover, QUANTILES)
    return {f"{r['signal_name']}/{r['horizon']}": r["rank_ic_mean"] for r in summary.iter_rows(named=True)}


def alphalens_inputs(closes: pl.DataFrame, values: pl.DataFrame):
    """Per factor a (date, asset) Series whose date level has the 1h ``freq``, and wide prices."""
    import pandas as pd

    prices = closes.to_pandas().pivot(index="ts", columns="symbol", values="close").asfreq("1h")
    grid, assets = prices.index, prices.columns
    factors = {}
    for (name,), group in values.sort("ts", "symbol").group_by("signal_name", maintain_order=True):
        frame = group.to_pandas()
        index = pd.MultiIndex(levels=[grid, assets], names=["date", "asset"],
                              codes=[grid.get_indexer(frame["ts"]), assets.get_indexer(frame["symbol"])])
        factors[name] = pd.Series(frame["value"].to_numpy(), index=index, name="factor")
    return factors, prices


def run_alphalens(factors: dict, prices) -> dict:
    import alphalens
    from scipy import stats

    out = {}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for name, factor in factors.items():
            data = alphalens.utils.get_clean_factor_and_forward_returns(
                factor, prices, periods=HORIZONS, quantiles=QUANTILES, filter_zscore=None, max_loss=1.0)
            ic = alphalens.performance.factor_information_coefficient(data)
            alphalens.performance.mean_return_by_quantile(data, by_date=True)
            alphalens.performance.mean_return_by_quantile(data, by_date=False)
            alphalens.performance.factor_rank_autocorrelation(data, period=1)
            alphalens.performance.quantile_turnover(data["factor_quantile"], QUANTILES, period=1)
            alphalens.performance.quantile_turnover(data["factor_quantile"], 1, period=1)
            ic_clean = ic.dropna()
            stats.ttest_1samp(ic_clean, 0.0)
            ic_clean.std()
            for column, horizon in zip(ic.columns, HORIZONS, strict=True):
                out[f"{name}/{horizon}"] = float(ic_clean[column].mean())
    return out


def child(side: str, args: argparse.Namespace) -> None:
    closes = make_closes(args.symbols, args.days)
    values = make_values(closes, args.factors)
    inputs = (closes, values) if side == "ours" else alphalens_inputs(closes, values)
    __import__("quant_assets.quant.validation" if side == "ours" else "alphalens")  # imports are not timed
    base_rss = peak_rss_kb()
    run = run_ours if side == "ours" else run_alphalens
    best, result = float("inf"), {}
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = run(*inputs)
        best = min(best, time.perf_counter() - started)
    peak = peak_rss_kb()
    print(json.dumps({"side": side, "seconds": best, "peak_mb": peak / 1024, "inputs_mb": base_rss / 1024,
                      "rows": values.height, "rank_ic_mean": result}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--factors", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (each side)")
    parser.add_argument("--alphalens-repeat", type=int, default=1, help="runs of the (slow) alphalens side")
    parser.add_argument("--child", choices=["ours", "alphalens"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    print(f"machine: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB RAM, Python {sys.version.split()[0]}")
    print(f"{args.factors} factors x horizons {HORIZONS} x {args.symbols} symbols x {args.days} days of 1h bars, "
          f"{QUANTILES} quantiles")
    results = {}
    for side, repeat in (("ours", args.repeat), ("alphalens", args.alphalens_repeat)):
        command = [sys.executable, __file__, "--child", side, "--symbols", str(args.symbols), "--days",
                   str(args.days), "--factors", str(args.factors), "--repeat", str(repeat)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            print(f"{side} failed:\n{done.stderr[-2000:]}")
            return
        results[side] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"factor rows: {results['ours']['rows']:,}")
    print(f"  {'side':<10} {'seconds':>9} {'peak MB':>9} {'inputs MB':>10}")
    for side, r in results.items():
        print(f"  {side:<10} {r['seconds']:>9.3f} {r['peak_mb']:>9.0f} {r['inputs_mb']:>10.0f}")
    ratio = results["alphalens"]["seconds"] / results["ours"]["seconds"]
    print(f"  alphalens / ours: {ratio:.1f}x faster (target >= 10x)")
    print(f"  peak memory: ours {results['ours']['peak_mb']:.0f} MB, alphalens {results['alphalens']['peak_mb']:.0f} MB"
          " (target < 2048 for ours)")
    ours, peer = results["ours"]["rank_ic_mean"], results["alphalens"]["rank_ic_mean"]
    worst = max(abs(ours[k] - peer[k]) for k in peer)
    print(f"  mean rank IC, max |ours - alphalens| over factors x horizons: {worst:.2e} (alphalens keeps only "
          "bars with every horizon's return, so its last 24 bars are missing at horizons 1 and 4)")


if __name__ == "__main__":
    main()

"""Feature-store benchmark: every catalogue feature for 20 symbols x 1 year of 1h and of 5m bars.

Run from the repository root:

    .venv/bin/python benchmarks/features_benchmark.py            # 1h and 5m, every part
    .venv/bin/python benchmarks/features_benchmark.py --intervals 1h --repeat 1

Each part runs in its own fresh subprocess, so its peak memory (``VmHWM``, see ``peak_memory.py``) is its own:

* ``core``: :func:`quant_assets.quant.features.compute_feature_table` over the whole panel, every
  catalogue feature (what the ``features_<interval>`` asset calls);
* ``core_ta``: our implementations of only the indicators TA-Lib has (EMA x5, RSI x3, MACD x2,
  STOCH, BBANDS, ATR, ADX, +DI, -DI, OBV, MFI), per symbol on numpy arrays, like the floor;
* ``talib``: TA-Lib's C functions for the same indicators, per symbol on numpy arrays (the floor);
* ``pandas``: a straightforward pandas implementation of the same catalogue features
  (``groupby`` + ``rolling`` / ``ewm``), what a user would otherwise write;
* ``asset``: the ``features_<interval>`` Dagster asset itself, one single-run backfill over the
  year (read bars from DuckDB, compute, write ~60 columns, hash every partition);
* ``dagster``: the events floor (``dagster_floor.py``): a no-op asset of the same name over the
  same year, one event per day and nothing else, what any Dagster run of that shape costs.

``--scale`` instead runs ``core`` and ``asset`` at 1x, 3x and 10x the rows (a tenth, three
tenths and all of ``--symbols``) and prints how their time grows against the rows.

Data: a deterministic synthetic OHLCV panel (geometric random walk with GARCH-like volatility,
consistent high/low, lognormal volume; BTC/USDT first so beta/correlation have a market).
Times are wall-clock seconds (best of ``--repeat``), memory is peak RSS of the subprocess
(it includes the Python interpreter and imported libraries, ~150-300 MB of baseline).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from peak_memory import peak_rss_kb

MINUTES = {"1h": 60, "5m": 5}
N_SYMBOLS = 20
DAYS = 365
START = datetime(2023, 1, 1)


def make_panel(interval: str, n_symbols: int = N_SYMBOLS, days: int = DAYS, seed: int = 7) -> pl.DataFrame:
    minutes = MINUTES[interval]
    n = days * 1440 // minutes
    rng = np.random.default_rng(seed)
    ts = pl.datetime_range(START, START + timedelta(minutes=minutes * (n - 1)), timedelta(minutes=minutes),
                           eager=True, time_unit="us")
    frames = []
    bar_vol = 0.6 / np.sqrt(365 * 1440 / minutes)
    market = rng.standard_t(4, n) * bar_vol / np.sqrt(2)
    for k in range(n_symbols):
        symbol = "BTC/USDT" if k == 0 else f"S{k:02d}/USDT"
        regime = np.exp(np.convolve(rng.normal(0, 0.05, n), np.ones(50) / 50, mode="same") * 10)
        ret = (0.8 + 0.4 * rng.random()) * market + rng.standard_t(4, n) * bar_vol / np.sqrt(2) * regime
        close = (10 + 1000 * rng.random()) * np.exp(np.cumsum(ret))
        open_ = np.concatenate([[close[0]], close[:-1]])
        wick = np.abs(rng.normal(0, bar_vol, (2, n)))
        high = np.maximum(open_, close) * np.exp(wick[0])
        low = np.minimum(open_, close) * np.exp(-wick[1])
        volume = rng.lognormal(3, 1, n)
        frames.append(pl.DataFrame({
            "symbol": symbol, "ts": ts, "open": open_, "high": high, "low": low, "close": close,
            "volume": volume, "quote_volume": volume * (high + low + close) / 3,
        }))
    return pl.concat(frames)


def _per_symbol(panel: pl.DataFrame):
    for _, g in panel.group_by("symbol", maintain_order=True):
        yield {c: g[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}


def run_core(panel: pl.DataFrame, interval: str) -> int:
    from quant_assets.quant.feature_catalogue import load_catalogue
    from quant_assets.quant.features import compute_feature_table

    out = compute_feature_table(panel, load_catalogue(), 365 * 1440 / MINUTES[interval])
    return out.width


def run_core_ta(panel: pl.DataFrame, interval: str) -> int:
    from quant_assets.quant import indicators as ind

    n = 0
    for d in _per_symbol(panel):
        h, lo, c, v = d["high"], d["low"], d["close"], d["volume"]
        out = [ind.ema(c, s) for s in (9, 10, 21, 50, 200)] + [ind.rsi(c, p) for p in (7, 14, 21)]
        out += [*ind.macd(c, 12, 26, 9), *ind.macd(c, 8, 17, 9), *ind.stoch(h, lo, c, 14, 3, 3)]
        out += [*ind.bbands(c, 20, 2.0, 2.0), ind.atr(h, lo, c, 14), *ind.dmi(h, lo, c, 14)]
        out += [ind.obv(c, v), ind.mfi(h, lo, c, v, 14)]
        n = len(out)
    return n


def run_talib(panel: pl.DataFrame, interval: str) -> int:
    import talib

    n = 0
    for d in _per_symbol(panel):
        h, lo, c, v = d["high"], d["low"], d["close"], d["volume"]
        out = [talib.EMA(c, s) for s in (9, 10, 21, 50, 200)] + [talib.RSI(c, p) for p in (7, 14, 21)]
        out += [*talib.MACD(c, 12, 26, 9), *talib.MACD(c, 8, 17, 9), *talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)]
        out += [*talib.BBANDS(c, 20, 2.0, 2.0, 0), talib.ATR(h, lo, c, 14), talib.ADX(h, lo, c, 14)]
        out += [talib.PLUS_DI(h, lo, c, 14), talib.MINUS_DI(h, lo, c, 14), talib.OBV(c, v), talib.MFI(h, lo, c, v, 14)]
        n = len(out)
    return n


def _pandas_features(g, bpy: float, market_ret):
    """The catalogue's features for one symbol, written the way a pandas user would."""
    import pandas as pd

    o, h, lo, c, v, qv = (g[k] for k in ("open", "high", "low", "close", "volume", "quote_volume"))
    f = pd.DataFrame(index=g.index)
    for k in (1, 7, 30):
        f[f"ret_{k}"] = c.pct_change(k)
        f[f"logret_{k}"] = np.log(c / c.shift(k))
    r = f["logret_1"]
    f["ret_zscore_252"] = (r - r.rolling(252).mean()) / r.rolling(252).std()
    ln2 = np.log(2)
    hl, co = np.log(h / lo), np.log(c / o)
    f["vol_cc_24"] = r.rolling(24).std() * np.sqrt(bpy)
    f["vol_parkinson_24"] = np.sqrt((hl**2).rolling(24).mean() / (4 * ln2) * bpy)
    f["vol_gk_24"] = np.sqrt((0.5 * hl**2 - (2 * ln2 - 1) * co**2).clip(lower=0).rolling(24).mean() * bpy)
    rs = np.log(h / c) * np.log(h / o) + np.log(lo / c) * np.log(lo / o)
    f["vol_rs_24"] = np.sqrt(rs.rolling(24).mean() * bpy)
    k = 0.34 / (1.34 + 25 / 23)
    on = np.log(o / c.shift(1))
    f["vol_yz_24"] = np.sqrt((on.rolling(24).var() + k * co.rolling(24).var() + (1 - k) * rs.rolling(24).mean()) * bpy)
    tr = pd.concat([h - lo, (h - c.shift()).abs(), (lo - c.shift()).abs()], axis=1).max(axis=1)
    f["atr_14"] = tr.ewm(alpha=1 / 14, adjust=False).mean()
    d = c.diff()
    for p in (7, 14, 21):
        gain = d.clip(lower=0).ewm(alpha=1 / p, adjust=False).mean()
        loss = (-d).clip(lower=0).ewm(alpha=1 / p, adjust=False).mean()
        f[f"rsi_{p}"] = 100 * gain / (gain + loss)
    for fast, slow, sig in ((12, 26, 9), (8, 17, 9)):
        m = c.ewm(span=fast, adjust=False).mean() - c.ewm(span=slow, adjust=False).mean()
        s = m.ewm(span=sig, adjust=False).mean()
        f[f"macd_{fast}_{slow}_{sig}"], f[f"macd_signal_{fast}_{slow}_{sig}"] = m, s
        f[f"macd_hist_{fast}_{slow}_{sig}"] = m - s
    ll, hh = lo.rolling(14).min(), h.rolling(14).max()
    fk = 100 * (c - ll) / (hh - ll)
    f["stoch_k_14_3_3"] = fk.rolling(3).mean()
    f["stoch_d_14_3_3"] = f["stoch_k_14_3_3"].rolling(3).mean()
    mid, sd = c.rolling(20).mean(), c.rolling(20).std(ddof=0)
    f["bb_upper_20_2"], f["bb_middle_20_2"], f["bb_lower_20_2"] = mid + 2 * sd, mid, mid - 2 * sd
    f["bb_pctb_20_2"] = (c - f["bb_lower_20_2"]) / (4 * sd)
    f["bb_width_20_2"] = 4 * sd / mid
    up, down = h.diff(), -lo.diff()
    pdm = up.where((up > down) & (up > 0), 0.0)
    mdm = down.where((down > up) & (down > 0), 0.0)
    atr = tr.ewm(alpha=1 / 14, adjust=False).mean()
    pdi = 100 * pdm.ewm(alpha=1 / 14, adjust=False).mean() / atr
    mdi = 100 * mdm.ewm(alpha=1 / 14, adjust=False).mean() / atr
    f["plus_di_14"], f["minus_di_14"] = pdi, mdi
    f["adx_14"] = (100 * (pdi - mdi).abs() / (pdi + mdi)).ewm(alpha=1 / 14, adjust=False).mean()
    f["obv"] = (np.sign(d).fillna(0) * v).cumsum()
    tp = (h + lo + c) / 3
    mf = tp * v
    pos = mf.where(tp.diff() > 0, 0.0).rolling(14).sum()
    neg = mf.where(tp.diff() < 0, 0.0).rolling(14).sum()
    f["mfi_14"] = 100 * pos / (pos + neg)
    for s in (9, 10, 21, 50, 200):
        f[f"ema_{s}"] = c.ewm(span=s, adjust=False).mean()
    f["dollar_volume_24"] = qv.rolling(24).mean()
    f["amihud_24"] = (f["ret_1"].abs() / qv).rolling(24).mean() * 1e6
    mr = market_ret.reindex(g["ts"]).to_numpy()
    mr = pd.Series(mr, index=g.index)
    f["beta_720"] = r.rolling(720).cov(mr) / mr.rolling(720).var()
    f["corr_720"] = r.rolling(720).corr(mr)
    z = f["ret_1"]
    f["ret_1_outlier"] = (z - z.rolling(500).mean().shift()).abs() > 4 * z.rolling(500).std().shift()
    q1, q3 = f["dollar_volume_24"].rolling(500).quantile(0.25).shift(), f["dollar_volume_24"].rolling(500).quantile(0.75).shift()
    f["dollar_volume_24_outlier"] = (f["dollar_volume_24"] < q1 - 1.5 * (q3 - q1)) | (f["dollar_volume_24"] > q3 + 1.5 * (q3 - q1))
    return f


def run_pandas(panel: pl.DataFrame, interval: str) -> int:
    import pandas as pd

    df = panel.to_pandas().sort_values(["symbol", "ts"]).reset_index(drop=True)
    bpy = 365 * 1440 / MINUTES[interval]
    btc = df[df["symbol"] == "BTC/USDT"].set_index("ts")["close"]
    market_ret = np.log(btc / btc.shift())
    parts = [_pandas_features(g, bpy, market_ret) for _, g in df.groupby("symbol", sort=False)]
    out = pd.concat([df[["symbol", "ts", "close"]], pd.concat(parts)], axis=1)
    return out.shape[1]


def run_asset(panel: pl.DataFrame, interval: str) -> int:
    import warnings

    import dagster as dg
    import duckdb

    from quant_assets.config import load_settings
    from quant_assets.definitions import resources_for
    from quant_assets.defs.features.assets import build_feature_asset, feature_catalogue

    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        symbols = ",".join(panel["symbol"].unique(maintain_order=True).to_list())
        settings = load_settings(config_file=None, env={
            "QUANT_DATA_DIR": tmp, "QUANT_SYMBOLS": symbols, "QUANT_BASE_INTERVAL": "5m",
            "QUANT_BAR_INTERVALS": interval, "QUANT_START_DATE": START.date().isoformat(),
        }, overrides={"features": {"interval": interval}})
        with duckdb.connect(str(settings.duckdb_path)) as conn:
            conn.register("p", panel.to_arrow())
            conn.execute(f'CREATE TABLE "bars_{interval}" AS SELECT * FROM p')
        asset = build_feature_asset(settings, interval, feature_catalogue(settings))
        last = (START + timedelta(days=DAYS - 1)).date().isoformat()
        started = time.perf_counter()
        result = dg.materialize(
            [asset], resources=resources_for(settings),
            tags={"dagster/asset_partition_range_start": START.date().isoformat(),
                  "dagster/asset_partition_range_end": last},
        )
        os.environ["_BENCH_ASSET_SECONDS"] = str(time.perf_counter() - started)
        assert result.success
        with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
            return conn.execute(f'SELECT count(*) FROM "features_{interval}"').fetchone()[0]


def run_dagster(panel: pl.DataFrame, interval: str) -> int:
    """The events floor (``dagster_floor.py``): a no-op asset named like the features asset over
    the same year, one event per day, no read, compute, write or hash."""
    import warnings

    import dagster as dg
    from dagster_floor import floor_definitions

    from quant_assets.config import load_settings
    from quant_assets.definitions import resources_for

    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(config_file=None, env={
            "QUANT_DATA_DIR": tmp, "QUANT_START_DATE": START.date().isoformat()})
        last = (START + timedelta(days=DAYS - 1)).date().isoformat()
        started = time.perf_counter()
        result = dg.materialize(
            floor_definitions(settings, {f"features_{interval}": 0}),
            resources={"duckdb": resources_for(settings)["duckdb"]},
            tags={"dagster/asset_partition_range_start": START.date().isoformat(),
                  "dagster/asset_partition_range_end": last},
        )
        os.environ["_BENCH_ASSET_SECONDS"] = str(time.perf_counter() - started)
        assert result.success
        return DAYS


PARTS = {"core": run_core, "core_ta": run_core_ta, "talib": run_talib, "pandas": run_pandas, "asset": run_asset,
         "dagster": run_dagster}


def child(part: str, interval: str, repeat: int, n_symbols: int = N_SYMBOLS) -> None:
    panel = make_panel(interval, n_symbols)
    base_rss = peak_rss_kb()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        out = PARTS[part](panel, interval)
        best = min(best, float(os.environ.pop("_BENCH_ASSET_SECONDS", time.perf_counter() - started)))
    peak = peak_rss_kb()
    print(json.dumps({"part": part, "interval": interval, "rows": panel.height, "seconds": best,
                      "peak_mb": peak / 1024, "data_mb": base_rss / 1024, "out": out}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", default="1h,5m")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("PART", "INTERVAL"))
    parser.add_argument("--symbols", type=int, default=N_SYMBOLS)
    parser.add_argument("--scale", action="store_true", help="1x, 3x and 10x rows: core and asset")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.repeat, args.symbols)
        return
    if args.scale:
        scaling(args)
        return
    print(f"machine: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB RAM, Python {sys.version.split()[0]}")
    for interval in args.intervals.split(","):
        results = {}
        for part in args.parts.split(","):
            repeat = 1 if part in ("asset", "dagster") else args.repeat
            result = _run_child(part, interval, repeat, args.symbols)
            if result is not None:
                results[part] = result
        rows = next(iter(results.values()))["rows"] if results else 0
        print(f"\n{interval}: {args.symbols} symbols x {DAYS} days = {rows:,} rows")
        print(f"  {'part':<8} {'seconds':>9} {'peak MB':>9}  what")
        what = {"core": "all catalogue features (compute_feature_table)",
                "core_ta": "our TA-Lib-covered indicators, per symbol",
                "talib": "TA-Lib C, same indicators, per symbol (floor)",
                "pandas": "straightforward pandas, all catalogue features",
                "asset": "features asset: read DuckDB, compute, write, hash (1 run)",
                "dagster": "no-op asset, same 365 events (Dagster floor)"}
        for part, r in results.items():
            print(f"  {part:<8} {r['seconds']:>9.3f} {r['peak_mb']:>9.0f}  {what[part]}")
        if {"core_ta", "talib"} <= set(results):
            print(f"  ours / TA-Lib on the indicators TA-Lib has: "
                  f"{results['core_ta']['seconds'] / results['talib']['seconds']:.2f}x (target <= 2x)")
        if {"core", "pandas"} <= set(results):
            print(f"  pandas / ours on all catalogue features:     "
                  f"{results['pandas']['seconds'] / results['core']['seconds']:.1f}x faster (target >= 5x)")
        if {"core", "asset", "dagster"} <= set(results):
            core, asset, events = (results[p]["seconds"] for p in ("core", "asset", "dagster"))
            print(f"  asset / computation: {asset / core:.1f}x (target <= 3x); Dagster's events alone "
                  f"{events:.2f} s = {events / core:.1f}x the computation; asset less events "
                  f"{(asset - events) / core:.1f}x the computation")
        if results:
            print(f"  peak memory: {max(r['peak_mb'] for r in results.values()):.0f} MB (target < 4096)")


def _run_child(part: str, interval: str, repeat: int, n_symbols: int) -> dict | None:
    done = subprocess.run(
        [sys.executable, __file__, "--child", part, interval, "--repeat", str(repeat), "--symbols", str(n_symbols)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode:
        print(f"{part} {interval} ({n_symbols} symbols) failed:\n{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def scaling(args: argparse.Namespace) -> None:
    """``core`` and ``asset`` at a tenth, three tenths and all of the symbols, per interval."""
    sizes = sorted({max(1, args.symbols // 10), max(1, 3 * args.symbols // 10), args.symbols})
    for interval in args.intervals.split(","):
        runs = [(n, {part: _run_child(part, interval, 1 if part == "asset" else args.repeat, n)
                     for part in ("core", "asset")}) for n in sizes]
        print(f"\nscaling, {interval}, {DAYS} days")
        print(f"{'symbols':>8}{'rows':>11}{'rows x':>8}{'core s':>9}{'x':>7}{'asset s':>9}{'x':>7}{'peak MB':>9}")
        base = runs[0][1]
        for n, r in runs:
            if None in r.values() or None in base.values():
                continue
            print(f"{n:>8}{r['core']['rows']:>11,}{r['core']['rows'] / base['core']['rows']:>8.2f}"
                  f"{r['core']['seconds']:>9.3f}{r['core']['seconds'] / base['core']['seconds']:>7.2f}"
                  f"{r['asset']['seconds']:>9.2f}{r['asset']['seconds'] / base['asset']['seconds']:>7.2f}"
                  f"{r['asset']['peak_mb']:>9.0f}")


if __name__ == "__main__":
    main()

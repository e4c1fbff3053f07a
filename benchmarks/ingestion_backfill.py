"""Benchmark: backfill N symbols x D days of 1-minute candles from a loopback Binance.

    .venv/bin/python benchmarks/ingestion_backfill.py [--symbols 20] [--days 30] [--latency-ms 50]
                                                      [--workers 8] [--skip-serial]

The loopback server (quant_assets_tests/exchange_server.py, Binance's real klines shape,
1000 rows per request) runs in its own process and sleeps ``--latency-ms`` per request. Each
phase runs in a fresh subprocess (clean peak RSS): ``raw_candles`` materialized with
dg.materialize for the whole range as one run (the single-run backfill policy) into a temp
DuckDB, through the real provider stack (Binance rate limiter at its documented 6,000 weight
per minute, retries, breaker, quality gate, merge_window). Reported: requests, requests/s vs
the rate limit, total time vs the time the rate limit allows and vs the serial baseline
(``max_workers = 1``), peak RSS. Not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

from peak_memory import peak_rss_kb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASES = ["BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "AVAX", "LINK", "DOT", "LTC", "TRX", "ATOM",
         "UNI", "NEAR", "APT", "ARB", "OP", "FIL", "ETC", "XLM", "ALGO", "AAVE", "SUI"]
FIRST_DAY = date(2024, 2, 1)


def _serve(symbols: list[str], latency_s: float, days: int, queue: mp.Queue) -> None:
    from datetime import datetime

    from quant_assets_tests.exchange_server import start_server

    server = start_server(symbols, latency_s=0.0)
    start = datetime.combine(FIRST_DAY, datetime.min.time())
    for symbol in symbols:  # simulate and encode every row once up front: the benchmark times the client
        for row in server.candles(symbol, "1m", start, start + timedelta(days=days)):
            server.row_json(row, "1m")
    server.latency_s = latency_s
    queue.put(server.url)
    while True:
        time.sleep(3600)


def _phase(url: str, symbols: list[str], days: int, workers: int) -> dict:
    warnings.filterwarnings("ignore")
    import dagster as dg

    from quant_assets.config import load_settings
    from quant_assets.definitions import resources_for
    from quant_assets.defs.ingestion.raw_candles import build_raw_candles
    from quant_assets.providers.binance import KLINES_LIMIT, KLINES_WEIGHT, BinanceProvider

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(config_file=None, env={
            "QUANT_DATA_DIR": tmp, "QUANT_SYMBOLS": ",".join(symbols), "QUANT_START_DATE": FIRST_DAY.isoformat(),
            "QUANT_CANDLE_PROVIDERS": "binance", "QUANT_BINANCE_BASE_URL": url,
        }, overrides={"resilience": {"max_workers": workers}})
        last = FIRST_DAY + timedelta(days=days - 1)
        began = time.perf_counter()
        result = dg.materialize(
            [build_raw_candles(settings)],
            tags={"dagster/asset_partition_range_start": FIRST_DAY.isoformat(),
                  "dagster/asset_partition_range_end": last.isoformat()},
            resources=resources_for(settings),
        )
        total = time.perf_counter() - began
        materializations = result.asset_materializations_for_node("raw_candles")
        # A range run's views (run_summary among them) are on its last day.
        meta = materializations[-1].metadata
        health = meta["provider_health"].value["binance"]
        summary = _run_summary(meta)
        fetch_s = summary["fetch_seconds"]
        rows = sum(m.metadata["dagster/row_count"].value for m in materializations)
    rate = BinanceProvider.rate_per_s * settings.ingestion.resilience.rate_scale / KLINES_WEIGHT
    return {
        "workers": workers, "rows": rows, "requests": health["requests_this_run"], "total_s": round(total, 2),
        "fetch_s": fetch_s, "rest_s": round(total - fetch_s, 2),
        "rate_limit_wait_s": summary["rate_limit_wait_seconds"],
        "requests_per_s": round(health["requests_this_run"] / fetch_s, 2), "rate_limit_requests_per_s": rate,
        "burst_requests": BinanceProvider.burst / KLINES_WEIGHT, "rows_per_request": KLINES_LIMIT,
        "mean_latency_ms": health["mean_latency_ms"], "successes": health["successes_this_run"],
        "peak_rss_mb": round(peak_rss_kb() / 1024, 1),
    }


def _run_summary(meta) -> dict[str, float]:
    """The run-level figures: plain values in a one-day run, a markdown table in a range run."""
    if "fetch_seconds" in meta:
        return {k: meta[k].value for k in ("fetch_seconds", "rate_limit_wait_seconds")}
    out = {}
    for line in meta["run_summary"].value.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] in ("fetch_seconds", "rate_limit_wait_seconds"):
            out[cells[0]] = float(cells[1])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--skip-serial", action="store_true")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    symbols = [f"{b}/USDT" for b in BASES[: args.symbols]]
    if args.phase:
        print(json.dumps(_phase(args.url, symbols, args.days, int(args.phase))))
        return 0

    queue: mp.Queue = mp.Queue()
    server = mp.Process(target=_serve, args=(symbols, args.latency_ms / 1000, args.days, queue), daemon=True)
    server.start()
    url = queue.get(timeout=600)
    print(f"loopback Binance at {url}: {len(symbols)} symbols x {args.days} days of 1m candles, "
          f"{args.latency_ms:g} ms per request, {os.cpu_count()} CPUs")
    results = []
    try:
        for workers in ([args.workers] if args.skip_serial else [args.workers, 1]):
            done = subprocess.run(
                [sys.executable, __file__, "--phase", str(workers), "--url", url, "--symbols", str(args.symbols),
                 "--days", str(args.days)], capture_output=True, text=True, check=True, cwd=ROOT)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            r = results[-1]
            print(f"  max_workers={workers}: {r['rows']:,} rows in {r['requests']} requests; run {r['total_s']} s "
                  f"(fetch {r['fetch_s']} s, limiter waits {r['rate_limit_wait_s']} s summed over workers, "
                  f"gate+write+Dagster {r['rest_s']} s); "
                  f"{r['requests_per_s']} req/s while fetching (limit {r['rate_limit_requests_per_s']:g} req/s), "
                  f"mean latency {r['mean_latency_ms']} ms, peak RSS {r['peak_rss_mb']} MB")
    finally:
        server.terminate()
    par = results[0]
    allowed = max(par["requests"] - par["burst_requests"], 0) / par["rate_limit_requests_per_s"]
    floor = f"{par['fetch_s'] / allowed:.2f}x the floor" if allowed else "the whole run fits in the burst"
    print(f"rate-limit floor for {par['requests']} requests: {allowed:.2f} s; "
          f"fetch took {par['fetch_s']} s = {floor}; "
          + (f"throughput net of the burst {allowed / par['fetch_s']:.0%} of the limit (target >= 80%)" if allowed
             else "no rate claimed"))
    if len(results) > 1:
        serial = results[1]
        print(f"serial baseline: run {serial['total_s']} s, fetch {serial['fetch_s']} s; parallel is "
              f"{serial['total_s'] / par['total_s']:.2f}x faster end to end, "
              f"{serial['fetch_s'] / par['fetch_s']:.2f}x on the fetch")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Bars benchmark: the bar assets against the bare-DuckDB floor and a pandas resample.

    .venv/bin/python benchmarks/bars_benchmark.py [--symbols 20] [--days 365]

Builds ``symbols x days`` of 1-minute simulator candles into a DuckDB file (20 x 365 is about
10.5 million rows), then, each in its own subprocess so that peak memory (max RSS) is its own:

- ``assets``: the ``bars_<interval>`` assets for every configured interval (5m, 15m, 1h, 1d),
  materialized by Dagster as one single-run backfill over the whole range, checks excluded
  (they are timed separately as ``checks``);
- ``duckdb``: a bare ``GROUP BY symbol, time_bucket(interval, ts)`` per interval into a table,
  the practical floor (no returns, no volatility, no provenance, no hashes);
- ``pandas``: ``groupby(symbol).resample(rule).agg(...)`` per interval on a frame already in
  memory (loading it is not timed), what a user would otherwise write;
- ``dagster`` and ``dagster_checks``: the events floor (``dagster_floor.py``): no-op assets named
  like the bars over the same range, alone and with as many no-op checks as the bars have, so
  Dagster's own cost for the same events is measured, not guessed.

Prints seconds, peak memory and the ratios. ``--scale`` instead runs the floor and the assets at
1x, 3x and 10x the rows (a tenth, three tenths and all of ``--symbols``, same days) and prints
how their time grows against the rows (linear: 10x rows in at most 11x time).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date, datetime, timedelta
from pathlib import Path

from peak_memory import peak_rss_kb

INTERVALS = {"5m": "5min", "15m": "15min", "1h": "1h", "1d": "1D"}
START = date(2024, 1, 1)


def _symbols(n: int) -> list[str]:
    majors = ["BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "AVAX"]
    return ([f"{b}/USDT" for b in majors] + [f"ALT{i:02d}/USDT" for i in range(max(0, n - len(majors)))])[:n]


def _env(db: Path, symbols: list[str], days: int) -> dict[str, str]:
    return {
        "QUANT_DATA_DIR": str(db.parent), "QUANT_DUCKDB_PATH": str(db), "QUANT_SYMBOLS": ",".join(symbols),
        "QUANT_START_DATE": START.isoformat(), "QUANT_BAR_INTERVALS": ",".join(INTERVALS),
    }


def prepare(db: Path, symbols: list[str], days: int) -> float:
    import polars as pl

    from quant_assets.providers.simulator import SimulatorCandleProvider
    from quant_assets.resources.duckdb import QuantDuckDB

    began = time.perf_counter()
    provider = SimulatorCandleProvider(seed=42)
    start = datetime.combine(START, datetime.min.time())
    end = start + timedelta(days=days)
    with QuantDuckDB(database=str(db)).connect() as conn:
        for symbol in symbols:
            frame = provider.fetch_candles(symbol, "1m", start, end).with_columns(
                interval=pl.lit("1m"), provider=pl.lit("simulator"),
                fetched_at=pl.lit(datetime(2024, 1, 1), dtype=pl.Datetime("us")),
                fetch_status=pl.lit("OK"), error=pl.lit(None, dtype=pl.Utf8),
            )
            conn.register("frame", frame.to_arrow())
            conn.execute("INSERT INTO raw_candles BY NAME SELECT * FROM frame")
            conn.unregister("frame")
        conn.execute("CHECKPOINT")
    return time.perf_counter() - began


def part_assets(db: Path, symbols: list[str], days: int, with_checks: bool) -> float:
    import dagster as dg

    os.environ.update(_env(db, symbols, days))
    from quant_assets.config import load_settings
    from quant_assets.definitions import build_definitions

    defs = build_definitions(load_settings())
    bars = dg.AssetSelection.assets(*[f"bars_{i}" for i in INTERVALS])
    selection = bars if with_checks else bars.without_checks()
    last = START + timedelta(days=days - 1)
    began = time.perf_counter()
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks], resources=defs.resources, selection=selection,
        tags={"dagster/asset_partition_range_start": START.isoformat(),
              "dagster/asset_partition_range_end": last.isoformat()},
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )
    seconds = time.perf_counter() - began
    assert result.success
    return seconds


def part_dagster(db: Path, symbols: list[str], days: int, with_checks: bool) -> float:
    """The events floor (``dagster_floor.py``): no-op assets named like the bars, over the same
    range, and with ``with_checks`` as many no-op checks per asset as the bars have."""
    import dagster as dg

    os.environ.update(_env(db, symbols, days))
    from dagster_floor import checks_per_asset, floor_definitions

    from quant_assets.config import load_settings
    from quant_assets.definitions import build_definitions

    settings = load_settings()
    names = [f"bars_{i}" for i in INTERVALS]
    counts = checks_per_asset(build_definitions(settings), names)
    definitions = floor_definitions(settings, counts if with_checks else dict.fromkeys(names, 0))
    last = START + timedelta(days=days - 1)
    began = time.perf_counter()
    result = dg.materialize(
        definitions, resources=resources_for_floor(settings),
        tags={"dagster/asset_partition_range_start": START.isoformat(),
              "dagster/asset_partition_range_end": last.isoformat()},
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )
    seconds = time.perf_counter() - began
    assert result.success
    return seconds


def resources_for_floor(settings):
    from quant_assets.definitions import resources_for

    return {"duckdb": resources_for(settings)["duckdb"]}


def part_duckdb(db: Path) -> float:
    import duckdb

    minutes = {"5m": 5, "15m": 15, "1h": 60, "1d": 1440}
    began = time.perf_counter()
    # Timed through close: like each asset, the floor pays for writing its rows to the file.
    with duckdb.connect(str(db)) as conn:
        for name, m in minutes.items():
            conn.execute(
                f"CREATE OR REPLACE TABLE floor_{name} AS "
                "SELECT symbol, time_bucket(?, ts) AS ts, arg_min(open, ts) AS open, max(high) AS high, "
                "min(low) AS low, arg_max(close, ts) AS close, sum(volume) AS volume, count(*) AS n "
                "FROM raw_candles GROUP BY ALL",
                [timedelta(minutes=m)],
            )
    return time.perf_counter() - began


def part_pandas(db: Path) -> float:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as conn:
        frame = conn.execute("SELECT symbol, ts, open, high, low, close, volume FROM raw_candles").df()
    frame = frame.set_index("ts")
    began = time.perf_counter()
    for rule in INTERVALS.values():
        bars = frame.groupby("symbol").resample(rule, closed="left", label="left").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
        )
        bars = bars.dropna(subset=["open"])
    return time.perf_counter() - began


def _run_part(name: str, db: Path, args: argparse.Namespace) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--part", name, "--db", str(db), "--symbols", str(args.symbols),
         "--days", str(args.days)],
        capture_output=True, text=True, check=False,
    )
    if out.returncode:
        raise SystemExit(f"part {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--part", choices=["assets", "checks", "dagster", "dagster_checks", "duckdb", "pandas"])
    parser.add_argument("--db")
    parser.add_argument("--scale", action="store_true", help="1x, 3x and 10x rows: floor and assets")
    args = parser.parse_args()
    symbols = _symbols(args.symbols)
    if args.part:
        db = Path(args.db)
        seconds = {
            "assets": lambda: part_assets(db, symbols, args.days, with_checks=False),
            "checks": lambda: part_assets(db, symbols, args.days, with_checks=True),
            "dagster": lambda: part_dagster(db, symbols, args.days, with_checks=False),
            "dagster_checks": lambda: part_dagster(db, symbols, args.days, with_checks=True),
            "duckdb": lambda: part_duckdb(db),
            "pandas": lambda: part_pandas(db),
        }[args.part]()
        peak_mb = peak_rss_kb() / 1024
        print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))
        return

    if args.scale:
        scaling(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        prep = prepare(db, symbols, args.days)
        import duckdb

        with duckdb.connect(str(db), read_only=True) as conn:
            rows = conn.execute("SELECT count(*) FROM raw_candles").fetchone()[0]
        print(f"{len(symbols)} symbols x {args.days} days: {rows:,} 1m candles (simulated in {prep:.1f}s); "
              f"bars {', '.join(INTERVALS)}; {os.cpu_count()} cores")
        results = {name: _run_part(name, db, args)
                   for name in ("duckdb", "assets", "checks", "dagster", "dagster_checks", "pandas")}
    floor, assets, pandas = results["duckdb"], results["assets"], results["pandas"]
    print(f"{'contender':<44}{'seconds':>10}{'peak MB':>10}")
    labels = {
        "duckdb": "bare DuckDB GROUP BY time_bucket (floor)",
        "assets": "bar assets (Dagster single-run backfill)",
        "checks": "bar assets + all their checks",
        "dagster": "no-op assets, same events (Dagster floor)",
        "dagster_checks": "  + no-op checks, same evaluations",
        "pandas": "pandas groupby().resample()",
    }
    for name, label in labels.items():
        print(f"{label:<44}{results[name]['seconds']:>10.2f}{results[name]['peak_mb']:>10.0f}")
    print(f"bar assets / DuckDB floor: {assets['seconds'] / floor['seconds']:.2f}x (target <= 1.5x)")
    print(f"pandas / bar assets:       {pandas['seconds'] / assets['seconds']:.2f}x (target >= 3x)")
    checks = results["checks"]["seconds"] - assets["seconds"]
    print(f"checks / bar assets:       {checks / assets['seconds']:.2f}x ({checks:.1f} s for the checks; target <= 0.5x)")
    events, check_events = results["dagster"]["seconds"], results["dagster_checks"]["seconds"] - results["dagster"]["seconds"]
    print(f"Dagster's own floor:       {events:.1f} s for the assets' events alone = {events / floor['seconds']:.2f}x "
          f"the DuckDB floor; floor + events {floor['seconds'] + events:.1f} s, bar assets "
          f"{assets['seconds'] / (floor['seconds'] + events):.2f}x that")
    print(f"checks' own floor:         {check_events:.1f} s for the same evaluations without a query; the checks "
          f"{checks / check_events:.2f}x that, {check_events / assets['seconds']:.2f}x the bar assets")
    print(f"bar assets peak memory:    {assets['peak_mb']:.0f} MB (target < 3072 MB)")


def scaling(args: argparse.Namespace) -> None:
    """The floor and the bar assets at a tenth, three tenths and all of the symbols."""
    sizes = sorted({max(1, args.symbols // 10), max(1, 3 * args.symbols // 10), args.symbols})
    rows: list[tuple[int, int, dict[str, dict[str, float]]]] = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.duckdb"
            prepare(db, _symbols(n), args.days)
            import duckdb

            with duckdb.connect(str(db), read_only=True) as conn:
                candles = conn.execute("SELECT count(*) FROM raw_candles").fetchone()[0]
            sized = argparse.Namespace(**{**vars(args), "symbols": n})
            rows.append((n, candles, {name: _run_part(name, db, sized) for name in ("duckdb", "assets")}))
    print(f"scaling, {args.days} days of 1m, bars {', '.join(INTERVALS)}; {os.cpu_count()} cores")
    print(f"{'symbols':>8}{'candles':>12}{'rows x':>8}{'floor s':>9}{'x':>7}{'assets s':>10}{'x':>7}{'peak MB':>9}")
    _, base_rows, base = rows[0]
    for n, candles, r in rows:
        print(f"{n:>8}{candles:>12,}{candles / base_rows:>8.2f}"
              f"{r['duckdb']['seconds']:>9.2f}{r['duckdb']['seconds'] / base['duckdb']['seconds']:>7.2f}"
              f"{r['assets']['seconds']:>10.2f}{r['assets']['seconds'] / base['assets']['seconds']:>7.2f}"
              f"{r['assets']['peak_mb']:>9.0f}")


if __name__ == "__main__":
    main()

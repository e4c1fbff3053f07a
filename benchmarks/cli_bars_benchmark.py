"""CLI benchmark: ``quant materialize --select group:bars`` as a user runs it, against four bare GROUP BYs.

    .venv/bin/python benchmarks/cli_bars_benchmark.py [--symbols 12] [--days 60]

Builds ``symbols x days`` of 1-minute simulator candles (12 x 60 is about 1.04 million) into a
data directory, then times, each as its own process from the outside (wall time, start-up
included) on a fresh Dagster home:

- ``quant``: ``quant materialize --select group:bars --start <first day> --end <last day>``, every
  bar asset and every check of the group, one single-run backfill;
- ``group_by``: the floor: the same four ``GROUP BY symbol, time_bucket(interval, ts)`` into tables
  in bare DuckDB, timed inside its process (the queries and their writes) and from outside;
- ``floor``: what Dagster costs for the same command with no work in it: a process that loads the
  definitions and the instance as ``quant`` does and materializes no-op assets named like the
  group's daily assets, with as many no-op checks each (``dagster_floor.py``), over the same days;
- what no Dagster command can avoid: ``python -c pass``, ``python -c "import dagster"`` and
  ``quant --help`` (the CLI's own start: Python, its imports, no definitions loaded).

Prints seconds, peak memory (each process's own ``VmHWM``) and the ratios. Not a test: nothing
asserts on time.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bars_benchmark import INTERVALS, START, _env, _symbols, prepare

ROOT = Path(__file__).resolve().parents[1]
QUANT = Path(sys.executable).with_name("quant")
MEMORY = "import atexit, sys; atexit.register(lambda: print('peak_kb', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0], file=sys.stderr))"  # noqa: E501
GROUP_BY = """
import time, duckdb, sys
from datetime import timedelta
began = time.perf_counter()
with duckdb.connect(sys.argv[1]) as conn:
    for name, m in {"5m": 5, "15m": 15, "1h": 60, "1d": 1440}.items():
        conn.execute(
            f"CREATE OR REPLACE TABLE floor_{name} AS "
            "SELECT symbol, time_bucket(?, ts) AS ts, arg_min(open, ts) AS open, max(high) AS high, "
            "min(low) AS low, arg_max(close, ts) AS close, sum(volume) AS volume, count(*) AS n "
            "FROM raw_candles GROUP BY ALL", [timedelta(minutes=m)])
print("inside", time.perf_counter() - began, file=sys.stderr)
"""
EVENTS_FLOOR = """
import os, sys, warnings
from pathlib import Path
sys.path.insert(0, sys.argv[1])
warnings.filterwarnings("ignore")
import dagster as dg
from dagster_floor import daily_assets_of, materialize_floor
from quant_assets.config import load_settings
from quant_assets.definitions import build_definitions
from quant_assets.lib.instance import ensure_instance_config
settings = load_settings()
defs = build_definitions(settings)
ensure_instance_config(Path(os.environ["DAGSTER_HOME"]))
with dg.DagsterInstance.get() as instance:
    materialize_floor(settings, defs, daily_assets_of(defs, "bars"), sys.argv[2], sys.argv[3], instance)
"""


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Run ``argv`` (a Python script gets the memory hook), return its wall seconds and peak MB."""
    if argv[0] == sys.executable and argv[1] == "-c":
        argv = [sys.executable, "-c", MEMORY + "\n" + argv[2], *argv[3:]]
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    if done.returncode:
        raise SystemExit(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    out = {"seconds": wall}
    for line in done.stderr.splitlines():
        key, _, value = line.partition(" ")
        if key == "peak_kb":
            out["peak_mb"] = int(value) / 1024
        elif key == "inside":
            out["inside"] = float(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=12)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    symbols = _symbols(args.symbols)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "data" / "quant.duckdb"
        db.parent.mkdir()
        prepare(db, symbols, args.days)
        floor_db = Path(tmp) / "floor.duckdb"
        floor_db.write_bytes(db.read_bytes())  # the floor writes its tables into its own copy
        env = {**os.environ, **_env(db, symbols, args.days), "DAGSTER_HOME": str(Path(tmp) / "home")}
        last = (START + timedelta(days=args.days - 1)).isoformat()
        start_up = {
            "python": timed([sys.executable, "-c", "pass"], env, ROOT),
            "import_dagster": timed([sys.executable, "-c", "import dagster"], env, ROOT),
            "quant_help": timed([str(QUANT), "--help"], env, ROOT),
        }
        group_by = timed([sys.executable, "-c", GROUP_BY, str(floor_db)], env, ROOT)
        quant = timed([str(QUANT), "materialize", "--select", "group:bars", "--start", START.isoformat(),
                       "--end", last], env, ROOT)
        events = timed([sys.executable, "-c", EVENTS_FLOOR, str(Path(__file__).parent), START.isoformat(), last],
                       {**env, "DAGSTER_HOME": str(Path(tmp) / "floor_home")}, ROOT)
    print(f"{len(symbols)} symbols x {args.days} days of 1m candles, bars {', '.join(INTERVALS)}; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    rows = [
        ("quant materialize --select group:bars (checks included)", quant),
        ("no-op assets and checks of the group, same events (floor)", events),
        ("four bare GROUP BYs, process wall", group_by),
        ("python -c pass", start_up["python"]),
        ("python -c 'import dagster'", start_up["import_dagster"]),
        ("quant --help", start_up["quant_help"]),
    ]
    print(f"{'what':<58}{'seconds':>9}{'peak MB':>9}")
    for label, r in rows:
        peak = f"{r['peak_mb']:>9.0f}" if "peak_mb" in r else f"{'':>9}"
        print(f"{label:<58}{r['seconds']:>9.2f}{peak}")
    inside = group_by["inside"]
    print(f"four bare GROUP BYs, inside their process: {inside:.2f} s")
    print(f"quant / GROUP BYs: {quant['seconds'] / inside:.1f}x (target <= 3x, CLI start included); "
          f"3x is {3 * inside:.2f} s, 'import dagster' alone {start_up['import_dagster']['seconds']:.2f} s")
    print(f"Dagster's floor for the same command (process, definitions, instance, the same events, no work): "
          f"{events['seconds']:.2f} s = {events['seconds'] / inside:.1f}x the GROUP BYs; "
          f"quant is {quant['seconds'] / events['seconds']:.2f}x that floor")
    print(json.dumps({"quant": quant, "group_by": group_by, "events_floor": events, **start_up}))


if __name__ == "__main__":
    main()

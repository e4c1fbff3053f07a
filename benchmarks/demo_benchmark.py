"""Demo benchmark: `quant demo` as a newcomer runs it, timed stage by stage.

    .venv/bin/python benchmarks/demo_benchmark.py [--days 60] [--code DIR]

Runs ``quant demo --days N`` (8 symbols of 1m simulator candles, every check evaluated) in its
own process on a fresh data directory and Dagster home, so nothing cached helps it, and prints
each stage's time as the demo reports it, the process's wall time (Python start, imports and the
definitions included) and its peak memory. ``--code`` runs another checkout's package (its
``quant_assets`` first on ``PYTHONPATH``) with this environment, to compare two commits in one run.
``--floor`` also runs the demo's events floor (``dagster_floor.py``): each stage as one run of no-op
stand-ins for its daily assets, each with as many no-op checks, over the same days on a fresh home,
through the demo's own ``run_range``, so what Dagster alone costs for the demo's events is printed
beside each stage. The stand-ins leave out the unpartitioned assets (one event a run each).
"""

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGE = re.compile(r"^\[(\d+)/(\d+)\] (\w+):")
DONE = re.compile(r"^\s+done in ([0-9.]+)s; checks passed (\d+), warnings (\d+), failed (\d+)")


def run_demo(days: int, code: Path | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "QUANT_DATA_DIR": str(Path(tmp) / "data"), "DAGSTER_HOME": str(Path(tmp) / "home")}
        if code is not None:
            env["PYTHONPATH"] = str(code)
        began = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "quant_assets.cli", "demo", "--days", str(days)],
            capture_output=True, text=True, env=env, cwd=tmp, check=False,
        )
        wall = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if out.returncode:
        raise SystemExit(f"quant demo failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    stages, current = [], None
    for line in out.stdout.splitlines():
        if m := STAGE.match(line):
            current = m.group(3)
        elif (m := DONE.match(line)) and current:
            stages.append((current, float(m.group(1)), int(m.group(2)) + int(m.group(3)) + int(m.group(4))))
    return {"wall": wall, "peak_mb": peak_mb, "stages": stages}


FLOOR = """
import dataclasses, os, sys, time, warnings
from datetime import timedelta
from pathlib import Path
sys.path.insert(0, sys.argv[1])
warnings.filterwarnings("ignore")
began = time.perf_counter()
import dagster as dg
from dagster_floor import daily_assets_of, floor_range_definitions
from quant_assets.cli import last_partition_day, run_range
from quant_assets.config import load_settings
from quant_assets.definitions import STAGES, build_definitions
from quant_assets.lib.instance import ensure_instance_config
last = last_partition_day()
first = last - timedelta(days=int(sys.argv[2]) - 1)
settings = dataclasses.replace(load_settings(), start_date=first)
defs = build_definitions(settings)
ensure_instance_config(Path(os.environ["DAGSTER_HOME"]))
for stage in STAGES:
    names = daily_assets_of(defs, stage)
    if not names:
        print("stage", stage, 0.0, flush=True)
        continue
    outcome = run_range(floor_range_definitions(settings, defs, names), [dg.AssetKey.from_user_string(n) for n in names],
                        first, last)
    assert outcome.success, stage
    print("stage", stage, outcome.seconds, flush=True)
print("process", time.perf_counter() - began)
"""


def run_floor(days: int) -> dict:
    """The demo's shape with no work in it: per stage, one run of no-op stand-ins for its daily
    assets and their checks (``dagster_floor.py``) over the same days, on a fresh home."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "QUANT_DATA_DIR": str(Path(tmp) / "data"), "DAGSTER_HOME": str(Path(tmp) / "home")}
        began = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", FLOOR, str(Path(__file__).parent), str(days)],
                             capture_output=True, text=True, env=env, cwd=tmp, check=False)
        wall = time.perf_counter() - began
    if out.returncode:
        raise SystemExit(f"the floor failed ({out.returncode}):\n{out.stderr[-3000:]}")
    stages = [(line.split()[1], float(line.split()[2])) for line in out.stdout.splitlines() if line.startswith("stage ")]
    return {"wall": wall, "stages": stages}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--code", type=Path, help="another checkout whose quant_assets to run")
    parser.add_argument("--floor", action="store_true",
                        help="also run the demo's events floor: the same runs and events with no work")
    args = parser.parse_args()
    result = run_demo(args.days, args.code)
    floor = dict(run_floor(args.days)["stages"]) if args.floor else {}
    print(f"quant demo --days {args.days} ({'code ' + str(args.code) if args.code else 'this checkout'}), "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'stage':<14}{'seconds':>10}{'checks':>8}" + (f"{'floor s':>10}" if floor else ""))
    for name, seconds, checks in result["stages"]:
        print(f"{name:<14}{seconds:>10.1f}{checks:>8}" + (f"{floor.get(name, 0.0):>10.1f}" if floor else ""))
    in_runs = sum(s for _, s, _ in result["stages"])
    print(f"{'stages total':<14}{in_runs:>10.1f}" + (f"{'':>8}{sum(floor.values()):>10.1f}" if floor else ""))
    print(f"{'process':<14}{result['wall']:>10.1f}   (Python start, imports, definitions, report)")
    print(f"peak memory: {result['peak_mb']:.0f} MB; target: the whole demo <= 60 s")


if __name__ == "__main__":
    main()

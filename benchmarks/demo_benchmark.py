"""Demo benchmark: `quant demo` as a newcomer runs it, timed stage by stage.

    .venv/bin/python benchmarks/demo_benchmark.py [--days 60] [--code DIR]

Runs ``quant demo --days N`` (8 symbols of 1m simulator candles, every check evaluated) in its
own process on a fresh data directory and Dagster home, so nothing cached helps it, and prints
each stage's time as the demo reports it, the process's wall time (Python start, imports and the
definitions included) and its peak memory. ``--code`` runs another checkout's package (its
``quant_assets`` first on ``PYTHONPATH``) with this environment, to compare two commits in one run.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--code", type=Path, help="another checkout whose quant_assets to run")
    args = parser.parse_args()
    result = run_demo(args.days, args.code)
    print(f"quant demo --days {args.days} ({'code ' + str(args.code) if args.code else 'this checkout'}), "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'stage':<14}{'seconds':>10}{'checks':>8}")
    for name, seconds, checks in result["stages"]:
        print(f"{name:<14}{seconds:>10.1f}{checks:>8}")
    in_runs = sum(s for _, s, _ in result["stages"])
    print(f"{'stages total':<14}{in_runs:>10.1f}")
    print(f"{'process':<14}{result['wall']:>10.1f}   (Python start, imports, definitions, report)")
    print(f"peak memory: {result['peak_mb']:.0f} MB; target: the whole demo <= 60 s")


if __name__ == "__main__":
    main()

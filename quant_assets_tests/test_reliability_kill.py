"""kill -9 never wedges the instance: the next run reaps the dead one and its tables equal a clean run's.

Each case starts ``quant materialize`` over several stages in its own process group, waits until
a chosen step has started (read from the Dagster instance's event log, not a timer), kills the
whole group with SIGKILL, then runs the same command again on the same ``DAGSTER_HOME`` and
DuckDB file. The second run must finish without waiting on the dead run's pool slot, mark the dead
run FAILED, and leave every table equal to a run on a fresh instance.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from quant_assets_tests.conftest import table_digest

QUANT = str(Path(sys.executable).parent / "quant")
SELECT = "key:raw_candles or group:bars or group:features"
DAYS = ("2024-04-01", "2024-04-03")
DATA_TABLES = ("raw_candles", "bars_5m", "bars_1h", "bars_1d", "bar_gaps", "features_5m", "features_1h", "features_1d")
VOLATILE = {"raw_candles": "fetched_at"}


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_", "DAGSTER_"))}
    env.update(QUANT_DATA_DIR=str(root / "data"), DAGSTER_HOME=str(root / "dh"), QUANT_SYMBOLS="BTC/USDT,ETH/USDT",
               QUANT_BAR_INTERVALS="5m,1h,1d", QUANT_START_DATE="2024-01-01")
    return env


def _command() -> list[str]:
    return [QUANT, "materialize", "--select", SELECT, "--start", DAYS[0], "--end", DAYS[1]]


def _digests(root: Path) -> dict[str, tuple[int, str]]:
    with duckdb.connect(str(root / "data" / "quant.duckdb"), read_only=True) as conn:
        out = {}
        for table in DATA_TABLES:
            if table in VOLATILE:
                column = VOLATILE[table]
                conn.execute(f'CREATE TEMP TABLE t_{table} AS SELECT * EXCLUDE ({column}) FROM "{table}"')
                out[table] = table_digest(conn, f"t_{table}")
            else:
                out[table] = table_digest(conn, table)
        hashes = conn.execute("SELECT count(*) FROM partition_hashes WHERE list_contains(?, table_name)",
                              [list(DATA_TABLES)]).fetchone()[0]
    out["partition_hashes_rows"] = (hashes, "")
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, tuple[int, str]]:
    root = tmp_path_factory.mktemp("clean")
    done = subprocess.run(_command(), env=_env(root), cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return _digests(root)


def _step_started(home: Path, step: str) -> bool:
    """Whether a run's event log records ``step`` starting. Read-only SQLite: opening a second
    Dagster instance here would race the CLI creating its storage."""
    for shard in (home / "history" / "runs").glob("*.db"):
        if shard.name == "index.db":
            continue
        try:
            with sqlite3.connect(f"file:{shard}?mode=ro", uri=True, timeout=1) as conn:
                found = conn.execute(
                    "SELECT count(*) FROM event_logs WHERE step_key = ? AND dagster_event_type = 'STEP_START'", [step]
                ).fetchone()[0]
        except sqlite3.Error:  # the shard is being created or written
            continue
        if found:
            return True
    return False


@pytest.mark.slow
@pytest.mark.parametrize("step", ["raw_candles", "bars_5m", "features_5m", "features_1h"])
def test_a_kill_at_any_step_is_reaped_and_the_rerun_equals_a_clean_run(tmp_path, clean, step):
    env = _env(tmp_path)
    victim = subprocess.Popen(_command(), env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 300
    while not _step_started(tmp_path / "dh", step):
        assert victim.poll() is None, f"the run ended before step {step} started"
        assert time.monotonic() < deadline, f"step {step} never started"
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)

    began = time.monotonic()
    again = subprocess.run(_command(), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "FAILED" in again.stdout + again.stderr and "gone" in again.stdout + again.stderr, again.stdout
    with dg.DagsterInstance.from_config(str(tmp_path / "dh")) as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
    assert statuses == ["FAILURE", "SUCCESS"], statuses
    assert _digests(tmp_path) == clean
    assert time.monotonic() - began < 300

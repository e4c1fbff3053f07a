"""Readers and held locks against real second processes: `quant report` is read-only, never
migrates, answers within seconds next to a writer and calls a damaged file damaged; a run next
to a notebook fails in one line naming it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from quant_assets.definitions import build_definitions
from quant_assets.lib.providers import ProvidersResource
from quant_assets.lib.run_failures import failure_lines
from quant_assets.report import EXIT_BUSY, EXIT_DAMAGED
from quant_assets.resources.duckdb import WRITE_LOCK_TIMEOUT_S, QuantDuckDB
from quant_assets.resources.errors import DuckDBBusy, DuckDBDamaged, DuckDBUnwritable
from quant_assets_tests.conftest import all_defs
from quant_assets_tests.duckdb_files import (
    CANDLE_ROWS,
    candle_count,
    crash_after_commit,
    held,
    read_only_directory,
    write_real_file,
)

QUANT = Path(sys.executable).parent / "quant"
ROW_LINE = f"{'raw_candles':<22} {CANDLE_ROWS:>12,}"
REPORT_SECONDS = 15  # generous for a loaded CI machine; about 2.5 s here, most of it imports


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "quant.duckdb"
    write_real_file(path)
    return path


@pytest.fixture
def db(tmp_path, template) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(template, data / "quant.duckdb")
    return data / "quant.duckdb"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report(data_dir: Path, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_", "DAGSTER_"))}
    env.update(QUANT_DATA_DIR=str(data_dir), QUANT_SYMBOLS="BTC/USDT", DAGSTER_HOME=str(cwd / "dagster_home"))
    began = time.perf_counter()
    done = subprocess.run([str(QUANT), "report"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return done, time.perf_counter() - began


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.stdout == "", done.stdout  # nothing partial
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("quant: error: the DuckDB file "), lines[0]
    return lines[0]


# --- quant report ------------------------------------------------------------------------------

def test_report_while_a_writer_holds_the_file_says_busy_in_one_line_within_seconds(tmp_path, db):
    with held(db, "write") as writer:
        done, seconds = report(db.parent, tmp_path)
    line = _one_error_line(done)
    assert done.returncode == EXIT_BUSY
    assert f"is busy: another process (pid {writer.pid}, " in line and line.endswith("try again when it ends")
    assert seconds < REPORT_SECONDS, seconds


def test_report_next_to_a_notebook_holding_the_file_read_only_prints_the_report(tmp_path, db):
    before = _digest(db)
    with held(db, "read"):
        done, seconds = report(db.parent, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("DuckDB file:") and ROW_LINE in done.stdout
    assert done.stderr == "" and seconds < REPORT_SECONDS, (done.stderr, seconds)
    assert _digest(db) == before


def test_report_never_migrates_nor_writes(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with duckdb.connect(str(data / "quant.duckdb")) as conn:  # an old file: no migrations, one table
        conn.execute("CREATE TABLE signals (symbol VARCHAR, ts TIMESTAMP, signal_name VARCHAR, value DOUBLE)")
        conn.execute("INSERT INTO signals VALUES ('BTC/USDT', TIMESTAMP '2024-01-01', 'x', 1)")
    before = _digest(data / "quant.duckdb")
    done, _ = report(data, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "partitions with candles: 0" in done.stdout and f"{'signals':<22} {1:>12,}" in done.stdout
    assert _digest(data / "quant.duckdb") == before and sorted(p.name for p in data.iterdir()) == ["quant.duckdb"]
    with duckdb.connect(str(data / "quant.duckdb"), read_only=True) as conn:
        tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert tables == {"signals"}


def test_report_on_a_read_only_filesystem_with_a_leftover_wal(tmp_path, template):
    def populate(directory: Path) -> None:
        shutil.copy(template, directory / "quant.duckdb")
        crash_after_commit(directory / "quant.duckdb")

    with read_only_directory(tmp_path / "ro", populate) as directory:
        done, _ = report(directory, tmp_path)
        assert done.returncode == 0, done.stderr
        assert ROW_LINE in done.stdout
        with QuantDuckDB(database=str(directory / "quant.duckdb")).connect(read_only=True) as conn:
            assert conn.execute("SELECT answer FROM after_crash").fetchone() == (42,)  # the WAL, read in memory
        with pytest.raises(DuckDBUnwritable) as info, QuantDuckDB(database=str(directory / "quant.duckdb")).connect():
            pass
        assert str(info.value).startswith(f"the DuckDB file {directory / 'quant.duckdb'} cannot be written: ")
        assert str(info.value).endswith(("read-only file system", "permission denied"))


@pytest.mark.parametrize("damage", ["half", "header only", "garbage"])
def test_report_on_a_damaged_file_says_damaged_and_writers_leave_it_alone(tmp_path, db, damage):
    size = db.stat().st_size
    if damage == "garbage":
        db.write_bytes(os.urandom(50_000))
    else:
        os.truncate(db, size // 2 if damage == "half" else 3 * 4096)
    before = _digest(db)
    done, _ = report(db.parent, tmp_path)
    line = _one_error_line(done)
    assert done.returncode == EXIT_DAMAGED and " is damaged: " in line, line
    if damage == "half":
        assert f"it is {size // 2:,} bytes but its blocks need {size:,} (truncated)" in line
    with pytest.raises(DuckDBDamaged), QuantDuckDB(database=str(db)).connect():
        pass  # a writer does not migrate (or otherwise touch) a damaged file either
    assert _digest(db) == before


# --- writers: the documented lock wait, and one line naming the holder --------------------------

def test_a_writer_waits_for_a_short_lived_holder(tmp_path, db):
    with held(db, "read") as reader:
        began = time.perf_counter()
        subprocess.Popen(["sh", "-c", f"sleep 1.5; kill -9 {reader.pid}"])  # -9: SIGTERM may be ignored (inherited)
        with QuantDuckDB(database=str(db), lock_timeout_s=20).connect() as conn:
            waited = time.perf_counter() - began
            assert conn.execute("SELECT count(*) FROM raw_candles").fetchone() == (CANDLE_ROWS,)
    assert 1.0 < waited < 15, waited


@pytest.mark.parametrize("mode", ["write", "read"])
def test_a_writer_gives_up_after_its_timeout_naming_the_holder(db, mode):
    with held(db, mode) as holder:
        began = time.perf_counter()
        with pytest.raises(DuckDBBusy) as info, QuantDuckDB(database=str(db), lock_timeout_s=1.5).connect():
            pass
        waited = time.perf_counter() - began
    message = str(info.value)
    assert "\n" not in message and f"(pid {holder.pid}, " in message and info.value.holder_pid == holder.pid
    assert info.value.holder_reads is (mode == "read")
    expected = "is held read-only by another process" if mode == "read" else "is busy: another process"
    assert expected in message, message
    assert waited < 6, waited
    assert WRITE_LOCK_TIMEOUT_S == 30  # what the README and resources/duckdb.py say


def test_a_run_next_to_a_notebook_fails_in_one_line_naming_it_and_writes_nothing(make_settings, tmp_path):
    settings = make_settings(env={"QUANT_SYMBOLS": "BTC/USDT"})
    with QuantDuckDB(database=str(settings.duckdb_path)).connect():
        pass
    defs = build_definitions(settings)
    duck = QuantDuckDB(database=str(settings.duckdb_path), lock_timeout_s=1.5)
    resources = {**defs.resources, "duckdb": duck, "providers": ProvidersResource.for_settings(settings, duck)}
    with held(settings.duckdb_path, "read") as notebook:
        began = time.perf_counter()
        result = dg.materialize(all_defs(defs), partition_key="2024-01-02", resources=resources,
                                selection="raw_candles", raise_on_error=False)
        seconds = time.perf_counter() - began
    assert not result.success
    lines = failure_lines(defs, result)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"raw_candles: the DuckDB file {settings.duckdb_path} is held read-only "
                               f"by another process (pid {notebook.pid}, "), lines[0]
    assert lines[0].endswith("a run needs to write it: close that connection and run again"), lines[0]
    assert seconds < 30, seconds  # one wait, not one per connection (the providers' teardown is quick)
    assert candle_count(settings.duckdb_path) == 0


def test_failure_lines_name_a_failed_blocking_check_once_with_its_rows(make_settings):
    settings = make_settings(env={"QUANT_SYMBOLS": "BTC/USDT"})
    defs = build_definitions(settings)
    day = "2024-03-04"
    assert dg.materialize(all_defs(defs), partition_key=day, resources=defs.resources, selection="raw_candles").success
    with duckdb.connect(str(settings.duckdb_path)) as conn:
        conn.execute("UPDATE raw_candles SET low = 0 WHERE ts = ?::TIMESTAMP + INTERVAL 2 HOUR", [day])
    result = dg.materialize(all_defs(defs), partition_key=day, resources=defs.resources,
                            selection=dg.AssetSelection.assets("bars_1h").downstream(), raise_on_error=False)
    assert not result.success and failure_lines(defs, result) == [
        "bars_1h: check bars_1h_valid_ohlc failed (ERROR): 1 failing row"]

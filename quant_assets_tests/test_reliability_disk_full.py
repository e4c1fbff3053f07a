"""A full disk is one line naming the file and its filesystem, never a masked ROLLBACK error, and
nothing of the failed write lands. On a real small tmpfs when this machine allows mounting one
(root with CAP_SYS_ADMIN), and with a ROLLBACK made to fail deterministically everywhere."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from quant_assets.definitions import build_definitions
from quant_assets.lib.run_failures import failure_lines
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.errors import DiskFull
from quant_assets.resources.tables import replace_window, transaction
from quant_assets_tests.conftest import all_defs
from quant_assets_tests.duckdb_files import CANDLE_ROWS, candle_count, tmpfs, write_real_file

START = datetime(2030, 1, 1)


def _fill(directory: Path, leave: int = 0) -> Path:
    """A filler file taking all but ``leave`` bytes of the filesystem holding ``directory``."""
    filler = directory / "filler"
    with filler.open("wb") as out:
        chunk = b"\0" * (1 << 20)
        try:
            while shutil.disk_usage(directory).free > leave + len(chunk):
                out.write(chunk)
                out.flush()
            out.write(b"\0" * max(shutil.disk_usage(directory).free - leave, 0))
            out.flush()
        except OSError:
            pass
    return filler


def _big_frame(rows: int = 3_000_000) -> pl.DataFrame:
    ts = pl.datetime_range(START, START + timedelta(seconds=rows - 1), "1s", eager=True)
    return pl.DataFrame({"ts": ts, "v": np.random.default_rng(1).random(rows)})


def test_disk_full_in_a_transaction_is_one_line_naming_the_disk_and_rolls_back(tmp_path):
    with tmpfs(tmp_path / "small", "24m") as disk:
        db = disk / "quant.duckdb"
        write_real_file(db)
        filler = _fill(disk, leave=512 * 1024)
        with pytest.raises(DiskFull) as info, QuantDuckDB(database=str(db)).connect() as conn, transaction(conn):
            conn.execute("DELETE FROM raw_candles")
            replace_window(conn, "big_table", _big_frame(), START, START + timedelta(days=60))
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"disk full: no space left on device writing {db}"), message
        assert f"(filesystem {disk}: " in message and "rolled back and nothing of it was written" in message
        assert "No space left on device" in str(info.value.__cause__)
        filler.unlink()
        assert candle_count(db) == CANDLE_ROWS  # the DELETE did not land either
        with QuantDuckDB(database=str(db)).connect(read_only=True) as conn:  # and the file is not damaged
            tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert "big_table" not in tables


def test_a_run_on_a_full_disk_fails_in_one_line_and_keeps_earlier_days(make_settings, tmp_path):
    with tmpfs(tmp_path / "small", "32m") as disk:
        settings = make_settings(env={"QUANT_SYMBOLS": "BTC/USDT", "QUANT_DATA_DIR": str(disk)})
        defs = build_definitions(settings)
        first = dg.materialize(all_defs(defs), partition_key="2024-01-02", resources=defs.resources,
                               selection="raw_candles")
        assert first.success
        day_one = candle_count(settings.duckdb_path)
        assert day_one > 1400  # a day of one-minute candles, less the simulator's missing bars
        filler = _fill(disk)
        result = dg.materialize(all_defs(defs), partition_key="2024-01-03", resources=defs.resources,
                                selection="raw_candles", raise_on_error=False)
        assert not result.success
        lines = failure_lines(defs, result)
        assert lines and all("\n" not in line for line in lines), lines
        assert lines[0].startswith("raw_candles: disk full: no space left on device writing "), lines
        assert str(disk) in lines[0] and "free space and run again" in lines[0], lines
        filler.unlink()
        assert candle_count(settings.duckdb_path) == day_one
        rerun = dg.materialize(all_defs(defs), partition_key="2024-01-03", resources=defs.resources,
                               selection="raw_candles")
        assert rerun.success and candle_count(settings.duckdb_path) > day_one + 1400


# --- no mount needed: the masking itself ------------------------------------------------------

class _RollbackFails:
    """A connection whose ROLLBACK raises ``error``; everything else goes to DuckDB."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, error: Exception) -> None:
        self.conn, self.error = conn, error

    def execute(self, sql: str, *args):  # noqa: ANN202
        if sql == "ROLLBACK":
            raise self.error
        return self.conn.execute(sql, *args)


NO_SPACE = duckdb.IOException('IO Error: Could not write file "/data/quant.duckdb": No space left on device')


def test_a_failed_rollback_does_not_mask_a_full_disk():
    conn = _RollbackFails(duckdb.connect(), duckdb.TransactionException(
        "TransactionContext Error: cannot rollback - no transaction is active"))
    with pytest.raises(DiskFull) as info, transaction(conn):
        raise NO_SPACE
    message = str(info.value)
    assert message.startswith("disk full: no space left on device writing /data/quant.duckdb")
    assert message.endswith("free space and run again") and "\n" not in message
    assert info.value.__cause__ is NO_SPACE and not getattr(NO_SPACE, "__notes__", None)


def test_a_failed_rollback_is_a_note_on_the_original_error():
    conn = _RollbackFails(duckdb.connect(), duckdb.IOException("IO Error: the disk went away"))
    with pytest.raises(ValueError) as info, transaction(conn):
        raise ValueError("the real problem")
    assert str(info.value) == "the real problem"
    assert info.value.__notes__ == ["ROLLBACK failed too: IO Error: the disk went away"]


def test_a_block_whose_transaction_duckdb_already_ended_raises_its_own_error():
    conn = duckdb.connect()
    with pytest.raises(ValueError, match="^boom$"), transaction(conn):
        conn.execute("COMMIT")  # as DuckDB does itself after some I/O errors
        raise ValueError("boom")


def test_an_aborted_transaction_raises_the_error_that_aborted_it_and_changes_nothing():
    conn = duckdb.connect()
    conn.execute("CREATE TABLE t (ts TIMESTAMP PRIMARY KEY, v INTEGER)")
    conn.execute("INSERT INTO t VALUES (TIMESTAMP '2030-01-05', 1)")
    twice = pl.DataFrame({"ts": [START, START], "v": [1, 2]})
    with pytest.raises(duckdb.ConstraintException), transaction(conn):
        conn.execute("DELETE FROM t")
        replace_window(conn, "t", twice, START, START + timedelta(days=1))  # its view's cleanup fails too
    assert conn.execute("SELECT * FROM t").fetchall() == [(datetime(2030, 1, 5), 1)]

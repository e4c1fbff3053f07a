"""Helpers for the DuckDB reliability tests: a real file, a second process holding it, read-only
and full filesystems."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from quant_assets.resources.duckdb import QuantDuckDB

CANDLE_ROWS = 200_000

_HOLD = """
import os, sys, duckdb
conn = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
print("holding", os.getpid(), flush=True)
sys.stdin.read()  # until the test closes our stdin
conn.close()
"""

_CRASH_AFTER_COMMIT = """
import os, sys, duckdb
conn = duckdb.connect(sys.argv[1])
conn.execute("CREATE TABLE after_crash AS SELECT 42 AS answer")
os._exit(0)  # no checkpoint: the committed table is only in the write-ahead log
"""


def write_real_file(path: Path, rows: int = CANDLE_ROWS) -> None:
    """A migrated platform file with ``rows`` one-minute BTC/USDT candles from 2024-01-01."""
    with QuantDuckDB(database=str(path)).connect() as conn:
        conn.execute(
            """
            INSERT INTO raw_candles
            SELECT 'BTC/USDT', TIMESTAMP '2024-01-01' + to_minutes(i), '1m',
                   100 + i % 7, 108 + i % 7, 95 + i % 7, 101 + i % 7, 1 + i % 13, NULL,
                   'simulator', TIMESTAMP '2024-06-01', 'OK', NULL
            FROM range(?) AS t(i)
            """,
            [rows],
        )


def candle_count(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute("SELECT count(*) FROM raw_candles").fetchone()[0]


@contextmanager
def held(path: Path, mode: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``path`` open, ``mode`` "write" (read-write) or "read" (read-only)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(path), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("holding"), (line, proc.stderr.read() if proc.stderr else "")
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def crash_after_commit(path: Path) -> None:
    """A writer that commits a table and dies before its checkpoint, leaving a WAL beside the file."""
    subprocess.run([sys.executable, "-c", _CRASH_AFTER_COMMIT, str(path)], check=True, timeout=60)
    assert Path(f"{path}.wal").exists()


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, timeout=30).returncode == 0


@contextmanager
def tmpfs(target: Path, size: str) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` on ``target``; skips when this process may not mount."""
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None or not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)):
        pytest.skip("mounting a small tmpfs needs root with CAP_SYS_ADMIN, which this run lacks")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


@contextmanager
def read_only_directory(target: Path, populate: Callable[[Path], None]) -> Iterator[Path]:
    """``target`` filled by ``populate``, then made read-only for this process.

    As root, chmod binds nobody, so the directory becomes a tmpfs remounted read-only (a real
    read-only filesystem: EROFS); without root, the directory and its files lose their write bits.
    """
    if os.geteuid() == 0:
        with tmpfs(target, "64m"):
            populate(target)
            if not _mount("-o", "remount,ro", str(target)):
                pytest.skip("running as root, chmod is ineffective and remounting read-only is refused")
            yield target
        return
    target.mkdir(parents=True, exist_ok=True)
    populate(target)
    modes = {p: p.stat().st_mode for p in [target, *target.iterdir()]}
    for p in modes:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield target
    finally:
        for p, mode in modes.items():
            p.chmod(mode)

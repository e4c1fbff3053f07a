"""A failed run, as a person reads it: the cause on one line per failed step, the run's address
in the UI and a log file with the stack traces; under 10 lines on the terminal in all.

Real failures only: ``quant materialize`` as the console script, against Binance at a loopback
server that answers 500 or refuses connections, and a blocking check that finds bad rows.
"""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from quant_assets_tests.exchange_server import FAST_RESILIENCE, Fault, start_server

DAY = "2024-03-04"
QUANT = Path(sys.executable).parent / "quant"
RUN_LINE = re.compile(r"^  run ([0-9a-f-]{36}): http://127\.0\.0\.1:3000/runs/\1\b")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_", "DAGSTER_"))}
    config = tmp_path / "quant.yaml"
    config.write_text(yaml.safe_dump({"resilience": FAST_RESILIENCE}))
    env.update(QUANT_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "home"),
               QUANT_SYMBOLS="BTC/USDT", QUANT_CONFIG=str(config), **extra)
    return env


def _quant(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(QUANT), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _terminal(done: subprocess.CompletedProcess) -> list[str]:
    return done.stdout.splitlines() + done.stderr.splitlines()


def _assert_short_failure_with_log(done: subprocess.CompletedProcess, home: Path) -> tuple[list[str], str]:
    """Exit 1, under 10 lines, no trace or Dagster log line, the run's address and its log."""
    lines = _terminal(done)
    assert done.returncode == 1, "\n".join(lines)
    assert len(lines) < 10, "\n".join(lines)
    text = "\n".join(lines)
    assert "Traceback" not in text and "Stack Trace" not in text and " - dagster - " not in text, text
    (run_line,) = [line for line in lines if RUN_LINE.match(line)]
    run_id = RUN_LINE.match(run_line).group(1)
    log = home / "logs" / f"{run_id}.log"
    assert f"  log with stack traces: {log}" in lines
    return lines, log.read_text()


@pytest.fixture
def refused_url():
    with socket.socket() as sock:  # a port nobody listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["http_500", "refused"])
def test_a_provider_failure_is_one_line_naming_the_asset_and_the_cause(tmp_path, mode, refused_url):
    server = start_server(["BTC/USDT"])
    try:
        server.fault("/api/v3/klines", Fault.http(500), repeat=True)
        url = server.url if mode == "http_500" else refused_url
        env = _env(tmp_path, QUANT_CANDLE_PROVIDERS="binance", QUANT_BINANCE_BASE_URL=url)
        done = _quant(env, tmp_path, "materialize", "--select", "raw_candles", "--start", DAY, "--end", DAY)
    finally:
        server.stop()
    lines, log = _assert_short_failure_with_log(done, tmp_path / "home")
    (cause,) = [line for line in lines if line.startswith("    raw_candles: ")]
    expected = "500" if mode == "http_500" else "connection error"
    assert "binance: RetryableError" in cause and expected in cause, cause
    assert "not written, gap recorded" in cause and cause.count("raw_candles:") == 1
    assert "Execution of step" not in cause and "dagster._core" not in cause  # Dagster's wrapper text
    # The log holds the event log with the full stack trace down to the asset's code.
    assert "STEP_FAILURE" in log and "Stack Trace:" in log and "raw_candles" in log
    assert re.search(r'File ".*quant_assets/.*\.py", line \d+, in raw_candles', log), log[-3000:]
    if mode == "http_500":
        assert server.count("/api/v3/klines") >= 1  # the request really reached the server


@pytest.mark.slow
def test_a_failing_blocking_check_is_one_line_with_its_failing_row_count(tmp_path):
    env = _env(tmp_path)
    done = _quant(env, tmp_path, "materialize", "--select", "raw_candles", "--start", DAY, "--end", DAY)
    assert done.returncode == 0, done.stdout + done.stderr
    with duckdb.connect(str(tmp_path / "data" / "quant.duckdb")) as conn:  # three bad minutes in the first hour
        conn.execute(f"UPDATE raw_candles SET volume = -1e12 WHERE ts < TIMESTAMP '{DAY} 00:03:00'")
    done = _quant(env, tmp_path, "materialize", "--select", "bars_1h", "--start", DAY, "--end", DAY)
    lines, log = _assert_short_failure_with_log(done, tmp_path / "home")
    assert "  FAILED in" in done.stdout and "failed 1" in done.stdout
    assert "    bars_1h: check bars_1h_valid_ohlc failed (ERROR): 1 failing row" in lines
    assert "ASSET_CHECK_EVALUATION" in log and "failing_rows: 1" in log and "DagsterAssetCheckFailedError" in log

"""The quant command: bad arguments fail in one line and write nothing; a range run works."""

import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from quant_assets import cli
from quant_assets.lib.run_failures import cause_line

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dh"))
    monkeypatch.setenv("QUANT_SYMBOLS", "BTC/USDT")
    monkeypatch.delenv("QUANT_CONFIG", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["materialize", "--select", "no_such_asset", "--start", "2024-03-01", "--end", "2024-03-02"], "unknown asset"),
        (["materialize", "--select", "group:nothing", "--start", "2024-03-01", "--end", "2024-03-02"], "matches no asset"),
        (["materialize", "--select", "group:", "--start", "2024-03-01", "--end", "2024-03-02"], "not a valid asset selection"),
        (["materialize", "--select", "raw_candles", "--start", "2024-03-05", "--end", "2024-03-01"], "is before --start"),
        (["materialize", "--select", "raw_candles", "--start", "2023-12-30", "--end", "2024-01-02"], "falls outside"),
        (["materialize", "--select", "raw_candles", "--start", "2024-03-01", "--end", "2999-01-01"], "falls outside"),
        (["materialize", "--select", "raw_candles", "--start", "March", "--end", "2024-03-02"], "is not a date"),
        (["materialize", "--start", "2024-03-01"], "required"),
        (["frobnicate"], "invalid choice"),
        (["demo", "--days", "0"], "--days must be at least 1"),
        (["demo", "--days", "400"], "--days 400 is more than 366"),
        (["demo", "--days", "5000", "--yes"], "before the first partition 2024-01-01 (partitions.start_date, QUANT_START_DATE)"),
        (["ui", "--port", "99999"], "99999 is outside 1..65535"),
        (["ui", "--port", "0"], "0 is outside 1..65535"),
        (["ui", "--port", "http"], "'http' is not a port number"),
    ],
)
def test_bad_arguments_get_one_line_and_write_nothing(isolated, capsys, argv, needle):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("quant: error:") and needle in err
    assert len(err.splitlines()) == 1
    assert not (isolated / "data").exists()
    assert not (isolated / "dh").exists()


def test_a_long_demo_says_how_many_candles_and_how_long(isolated, capsys, monkeypatch):
    monkeypatch.setenv("QUANT_START_DATE", "2020-01-01")
    monkeypatch.setenv("QUANT_SYMBOLS", ",".join(f"{c}/USDT" for c in ("BTC", "ETH", "SOL", "BNB", "XRP", "ADA", "DOGE", "AVAX")))
    assert cli.main(["demo", "--days", "1065"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    # 1065 days x 8 symbols x 1440 one-minute candles; time from the measured per-day cost
    assert "1065 days x 8 symbols is about 12.3M 1m candles" in err and "add --yes" in err
    assert f"and {round(1065 * cli.DEMO_SECONDS_PER_DAY / 60)} min;" in err  # 2.7 s per day: 48 min
    assert not (isolated / "data").exists() and not (isolated / "dh").exists()
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    assert f"more than {cli.MAX_DEMO_DAYS} needs --yes" in " ".join(capsys.readouterr().out.split())


def test_quant_ui_on_a_busy_port_is_one_line_and_starts_nothing(isolated, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["ui", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"quant: error: port {port} on 127.0.0.1 is in use (another `quant ui`?); stop it or pick another --port"
    assert not (isolated / "dh").exists()


def test_one_code_location_name_in_pyproject_workspace_and_quant_ui(tmp_path):
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    assert tool == {"module_name": "quant_assets.definitions", "code_location_name": cli.CODE_LOCATION}
    (project,) = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    assert project["python_module"] == {"module_name": "quant_assets.definitions", "location_name": cli.CODE_LOCATION}
    (served,) = yaml.safe_load(cli.ui_workspace(tmp_path, tmp_path / "elsewhere").read_text())["load_from"]
    assert served["python_module"] == {**project["python_module"], "working_directory": str(tmp_path / "elsewhere")}


def _error(message: str, cls_name: str, cause=None):
    from dagster._utils.error import SerializableErrorInfo

    return SerializableErrorInfo(message=message, stack=["  File x, line 1\n"], cls_name=cls_name, cause=cause)


def test_the_cause_is_the_first_line_of_the_users_exception_not_dagsters_wrapper():
    user = _error("quant_assets.providers.errors.ProviderError: binance: RetryableError: 503\nmore\n", "ProviderError")
    wrapped = _error('dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op "raw_candles":\n',
                     "DagsterExecutionStepExecutionError", cause=user)
    assert cause_line(wrapped) == "ProviderError: binance: RetryableError: 503"
    failure = _error("dagster._core.definitions.events.Failure: gap recorded, nothing written\n", "Failure")
    assert cause_line(failure) == "gap recorded, nothing written"
    assert cause_line(_error("ValueError: bad\n", "ValueError")) == "ValueError: bad"
    assert cause_line(_error("", "KeyError")) == "KeyError"


def test_bad_config_is_a_one_line_error(isolated, capsys, monkeypatch):
    monkeypatch.setenv("QUANT_BASE_INTERVAL", "2m")
    assert cli.main(["report"]) == 2
    assert "'intervals.base'" in capsys.readouterr().err


@pytest.mark.slow
def test_materialize_a_range_on_a_new_dagster_home_as_the_console_script(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANT_")}
    env.update(QUANT_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "new_home"),
               QUANT_SYMBOLS="BTC/USDT,ETH/USDT")
    quant = Path(sys.executable).parent / "quant"
    done = subprocess.run(
        [str(quant), "materialize", "--select", "key:raw_candles or group:bars",
         "--start", "2024-03-01", "--end", "2024-03-03"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 partitions" in done.stdout and "failed 0" in done.stdout
    assert (tmp_path / "new_home" / "dagster.yaml").exists()
    import dagster as dg

    with dg.DagsterInstance.from_config(str(tmp_path / "new_home")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].tags["dagster/asset_partition_range_end"] == "2024-03-03"
        record = instance.get_latest_materialization_event(dg.AssetKey("bars_1h"))
        assert record is not None


@pytest.mark.slow
def test_quant_ui_serves_on_loopback_with_a_running_daemon(tmp_path):
    """`quant ui` is `dagster dev` on 127.0.0.1: the webserver answers and the daemon is healthy."""
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANT_")}
    env.update(QUANT_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "home"))
    quant = Path(sys.executable).parent / "quant"
    server = subprocess.Popen(
        [str(quant), "ui", "--port", str(port)], cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    query = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"
    try:
        statuses: list = []
        for _ in range(90):  # bounded: up to ~3 minutes on a loaded 2-core machine
            time.sleep(2)
            assert server.poll() is None, "quant ui exited"
            try:
                body = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=10).json()
            except httpx.HTTPError:
                continue
            statuses = body["data"]["instance"]["daemonHealth"]["allDaemonStatuses"]
            if any(s["daemonType"] == "SENSOR" and s["healthy"] for s in statuses):
                break
        running = {s["daemonType"] for s in statuses if s["healthy"]}
        assert {"SENSOR", "SCHEDULER"} <= running, statuses
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://[::1]:{port}/server_info", timeout=5)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def test_report_piped_into_a_closed_reader_ends_quietly(isolated):
    data = isolated / "data"
    data.mkdir()
    from quant_assets.resources.duckdb import QuantDuckDB

    with QuantDuckDB(database=str(data / "quant.duckdb")).connect():
        pass
    quant = Path(sys.executable).parent / "quant"
    done = subprocess.run(f"'{quant}' report | head -1", shell=True, cwd=isolated, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("DuckDB file:")
    assert "Traceback" not in done.stderr

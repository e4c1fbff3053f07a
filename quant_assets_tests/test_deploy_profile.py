"""deploy/ as files: the instance profile validates, holds no secret, queues runs behind a duckdb
pool of one, monitors and retries runs; the workspace and the service definitions name the one code
location; and `quant` on a deployment home without its code server says so in one line."""

import re
import tomllib
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from quant_assets import cli
from quant_assets.cli import CODE_LOCATION
from quant_assets_tests.postgres_server import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PG_ENV = {"DAGSTER_PG_USERNAME": "u", "DAGSTER_PG_PASSWORD": "p", "DAGSTER_PG_HOST": "h",
          "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_DB": "d"}


def _profile() -> dict:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


def test_instance_profile_validates_against_dagsters_schema(tmp_path, monkeypatch):
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert set(config["storage"]) == {"postgres"}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_launcher"] == {"module": "quant_assets.lib.run_launcher", "class": "MonitoredRunLauncher"}


def test_postgres_connection_comes_only_from_the_environment():
    db = _profile()["storage"]["postgres"]["postgres_db"]
    fields = {k: v for k, v in db.items() if k != "scheme"}
    assert fields == {key: {"env": f"DAGSTER_PG_{name}"} for key, name in
                      [("username", "USERNAME"), ("password", "PASSWORD"), ("hostname", "HOST"),
                       ("db_name", "DB"), ("port", "PORT")]}
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.name != "env.example":
            literal = re.search(r"(?i)password[ \t]*[:=][ \t]*['\"]?\w", path.read_text())
            assert literal is None, f"{path} holds a password: {literal.group(0)}"


def test_runs_queue_behind_one_duckdb_writer_and_dead_runs_are_failed_and_retried():
    profile = _profile()
    assert profile["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    monitoring = profile["run_monitoring"]
    assert monitoring["enabled"] and monitoring["start_timeout_seconds"] > 0 and monitoring["cancel_timeout_seconds"] > 0
    retries = profile["run_retries"]
    assert retries["enabled"] and retries["max_retries"] >= 1 and retries["retry_on_asset_or_op_failure"] is False
    from quant_assets.lib.instance import POOL

    assert POOL == "duckdb"
    units = (DEPLOY / "systemd" / "quant-daemon.service").read_text()
    assert f"concurrency set {POOL} 1" in units
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert compose["services"]["init"]["command"][-2:] == [POOL, "1"]


def test_workspace_and_services_name_the_one_code_location():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["code_location_name"] == CODE_LOCATION
    for workspace in (DEPLOY / "workspace.yaml", DEPLOY / "compose" / "workspace.yaml"):
        (server,) = yaml.safe_load(workspace.read_text())["load_from"]
        assert server["grpc_server"]["location_name"] == CODE_LOCATION and server["grpc_server"]["port"] == 4266
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert {"postgres", "code-server", "webserver", "daemon"} <= set(compose["services"])
    code_server = " ".join(compose["services"]["code-server"]["command"])
    unit = (DEPLOY / "systemd" / "quant-code-server.service").read_text()
    for command in (code_server, unit):
        assert "code-server start" in command and f"--location-name {CODE_LOCATION}" in command and "-p 4266" in command
    for name in ("quant-webserver", "quant-daemon"):
        assert "workspace.yaml" in (DEPLOY / "systemd" / f"{name}.service").read_text()


@pytest.fixture
def queued_home(tmp_path, monkeypatch):
    """A home whose dagster.yaml queues runs (SQLite storage: the coordinator is what matters)."""
    home = tmp_path / "dh"
    home.mkdir()
    profile = _profile()
    (home / "dagster.yaml").write_text(yaml.safe_dump({"run_coordinator": profile["run_coordinator"]}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("QUANT_SYMBOLS", "BTC/USDT")
    monkeypatch.delenv("QUANT_CONFIG", raising=False)
    return home


ARGV = ["materialize", "--select", "raw_candles", "--start", "2024-03-01", "--end", "2024-03-01"]


def _runs(home: Path) -> list:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs())


def test_unreachable_code_server_is_one_line_and_exit_69(queued_home, capsys):
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=free_port())
    (queued_home / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    assert cli.main(ARGV) == cli.EXIT_UNAVAILABLE == 69
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("quant: error:") and f"code location {CODE_LOCATION!r}" in err and "not available" in err
    assert _runs(queued_home) == []
    assert not (queued_home.parent / "data").exists()


def test_demo_on_a_deployment_does_not_pretend_to_move_the_code_servers_origin(queued_home, capsys):
    (queued_home / "workspace.yaml").write_text((DEPLOY / "workspace.yaml").read_text())
    assert cli.main(["demo", "--days", "3", "--yes"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the code server's origin applies" in err
    assert _runs(queued_home) == []
    assert not (queued_home.parent / "data").exists()

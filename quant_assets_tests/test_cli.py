"""The quant command: bad arguments fail in one line and write nothing; a range run works."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from quant_assets import cli

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
    ],
)
def test_bad_arguments_get_one_line_and_write_nothing(isolated, capsys, argv, needle):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("quant: error:") and needle in err
    assert len(err.splitlines()) == 1
    assert not (isolated / "data").exists()
    assert not (isolated / "dh").exists()


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

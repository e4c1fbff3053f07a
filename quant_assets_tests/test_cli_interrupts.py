"""An interrupted CLI run is CANCELED in the instance, not left STARTED, and the next run works.

A real ``quant materialize`` subprocess on the simulator; once its run is STARTED in the
instance, it gets SIGINT (what Ctrl-C sends) or SIGTERM.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from quant_assets.lib.instance import PID_TAG, instance_yaml

QUANT = Path(sys.executable).parent / "quant"
STARTUP_LIMIT_S = 300


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_", "DAGSTER_"))}
    env.update(QUANT_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(tmp_path / "home"),
               QUANT_SYMBOLS="BTC/USDT,ETH/USDT")
    return env


def _wait_for_started_run(home: Path, process: subprocess.Popen) -> str:
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs(dg.RunsFilter(tags={PID_TAG: str(process.pid)}))
            if runs and runs[0].status == dg.DagsterRunStatus.STARTED:
                return runs[0].run_id
        time.sleep(0.2)
    pytest.fail(f"no STARTED run within {STARTUP_LIMIT_S}s")


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_is_canceled_and_the_next_run_works(tmp_path, signum, code):
    env, home = _env(tmp_path), tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml(home))
    with dg.DagsterInstance.from_config(str(home)):  # its storage exists before two processes poll it
        pass
    process = subprocess.Popen(
        [str(QUANT), "materialize", "--select", "key:raw_candles or group:bars",
         "--start", "2024-03-01", "--end", "2024-03-05"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        run_id = _wait_for_started_run(home, process)
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == code, out + err
    name = signal.Signals(signum).name
    assert err.splitlines() == [f"quant: interrupted by {name}; run {run_id} marked CANCELED"], err
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.CANCELED
        assert not instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED,
                                                             dg.DagsterRunStatus.NOT_STARTED,
                                                             dg.DagsterRunStatus.CANCELING]))

    done = subprocess.run(
        [str(QUANT), "materialize", "--select", "raw_candles", "--start", "2024-03-01", "--end", "2024-03-01"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done in" in done.stdout

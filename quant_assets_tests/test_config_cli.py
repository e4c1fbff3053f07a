"""The real ``quant`` console script on a bad config file: exit 2, one stderr line, nothing written."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUANT = Path(sys.executable).parent / "quant"

CASES = [
    ("backtest: {fee_bps: abc}", "backtest.fee_bps"),
    ("backtest: {fee_bps: [1]}", "backtest.fee_bps"),
    ("backtest: {fee_bps: nan}", "backtest.fee_bps"),
    ("backtest: {fee_bps: .nan}", "backtest.fee_bps"),
    ("backtest: {fee_bps: inf}", "backtest.fee_bps"),
    ("backtest: {fee_bps: .inf}", "backtest.fee_bps"),
    ("backtest: {fee_bps: -1}", "backtest.fee_bps"),
    ("backtest: {fee_bps: true}", "backtest.fee_bps"),
    ("backtest: {fee_bps: {a: 1}}", "backtest.fee_bps"),
    ("backtest: {half_spread_bps: [1]}", "backtest.half_spread_bps"),
    ("simulator: {seed: 2.5}", "simulator.seed"),
    ("intervals: {base: 3m}", "intervals.base"),
    ("universe: {symbols: [btc]}", "universe.symbols"),
    ("partitions: {start_date: 2024-02-30}", "partitions.start_date"),
    ("signals: {catalogue: /nonexistent/signals.yaml}", "signals.catalogue"),
    ("features: {interval: 4h}", "features.interval"),
    ("resilience: {timeout_s: 0}", "resilience.timeout_s"),
    ("alerts: {ui_url: 'not a url'}", "alerts.ui_url"),
    ("automation: {daily_at: '25:00'}", "automation.daily_at"),
    ("providers: {candles: [nasdaq]}", "providers.candles"),
    ("bars: {roll_vol_window: 1}", "bars.roll_vol_window"),
    ("backtest: {fees: 1}", "backtest.fees"),
]


def _run(tmp_path: Path, text: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "quant.yaml"
    config.write_text(text + "\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_", "DAGSTER_"))}
    return subprocess.run(
        [str(QUANT), *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**base, "QUANT_CONFIG": str(config), "QUANT_DATA_DIR": str(tmp_path / "data"),
             "DAGSTER_HOME": str(tmp_path / "dagster_home"), **env},
    )


def _assert_one_line_and_nothing_written(tmp_path: Path, result: subprocess.CompletedProcess[str], key: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and result.stderr.endswith("\n"), result.stderr
    assert lines[0].startswith(f"quant: error: config key '{key}'"), lines[0]
    assert "Traceback" not in result.stderr and "pydantic" not in result.stderr.lower()
    assert not (tmp_path / "data").exists() and not (tmp_path / "dagster_home").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quant.yaml"]


@pytest.mark.parametrize(("text", "key"), CASES, ids=[text for text, _ in CASES])
def test_quant_report_rejects_a_bad_config_in_one_line(tmp_path, text, key):
    _assert_one_line_and_nothing_written(tmp_path, _run(tmp_path, text, "report"), key)


@pytest.mark.parametrize(("text", "key"), CASES[:3] + CASES[9:10], ids=[t for t, _ in CASES[:3] + CASES[9:10]])
def test_quant_demo_rejects_a_bad_config_before_writing_anything(tmp_path, text, key):
    _assert_one_line_and_nothing_written(tmp_path, _run(tmp_path, text, "demo", "--days", "1"), key)


def test_a_bad_environment_value_is_rejected_the_same_way(tmp_path):
    result = _run(tmp_path, "{}", "demo", "--days", "1", QUANT_SIMULATOR_SEED="abc")
    _assert_one_line_and_nothing_written(tmp_path, result, "simulator.seed")
    assert "(QUANT_SIMULATOR_SEED)" in result.stderr


def test_the_exact_line_on_the_terminal(tmp_path):
    result = _run(tmp_path, "backtest: {fee_bps: abc}", "report")
    assert result.stderr == (
        "quant: error: config key 'backtest.fee_bps' = 'abc' must be a number >= 0 and <= 1000 (basis points)\n"
    )


@pytest.mark.parametrize("command", [["report"], ["demo", "--days", "1"]])
def test_an_empty_symbol_list_is_one_line_not_the_default_universe(tmp_path, command):
    result = _run(tmp_path, "{}", *command, QUANT_SYMBOLS="")
    _assert_one_line_and_nothing_written(tmp_path, result, "universe.symbols")
    assert result.stderr == (
        "quant: error: config key 'universe.symbols' = [] (QUANT_SYMBOLS) must be a non-empty list of distinct "
        "ccxt symbols BASE/QUOTE such as BTC/USDT; QUANT_SYMBOLS is set but empty (unset it for the default)\n"
    )


def test_a_5000_character_symbol_is_echoed_cut_short(tmp_path):
    result = _run(tmp_path, "{}", "demo", "--days", "1", QUANT_SYMBOLS="BTC/USDT," + "A" * 5000)
    _assert_one_line_and_nothing_written(tmp_path, result, "universe.symbols")
    assert len(result.stderr) < 400 and "A" * 81 not in result.stderr and "...' is not" not in result.stderr
    assert result.stderr.rstrip().endswith("AAA... is not")

"""The signal catalogue: the packaged file, its hash, and one-line errors naming file and line
(from the loader, from load_settings and from the ``quant`` command)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from quant_assets.config import ConfigError, load_settings
from quant_assets.quant.signal_catalogue import (
    DEFAULT_SIGNAL_CATALOGUE,
    SignalCatalogueError,
    load_signal_catalogue,
)

QUANT = Path(sys.executable).parent / "quant"
HEADER = "version: 1\n# a comment line\nsignals:\n"
GOOD = "  - {rule: ema_crossover, params: {fast: 9, slow: 21}}\n"


@pytest.fixture(autouse=True)
def _no_local_quant_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_packaged_catalogue_keeps_the_backtests_names_and_adds_the_stateful_rules() -> None:
    catalogue = load_signal_catalogue()
    assert catalogue.names[:3] == ["ema_cross_9_21", "ema_cross_21_50", "ema_cross_9_50"]
    assert {"rsi_mean_reversion_14_30_70", "atr_breakout_20_14_1p5"} <= set(catalogue.names)
    by_name = {s.name: s for s in catalogue.signals}
    assert by_name["rsi_mean_reversion_14_30_70"].kwargs == {"period": 14, "lower": 30.0, "upper": 70.0}
    assert by_name["atr_breakout_20_14_1p5"].features == ("atr_14",)
    assert by_name["atr_breakout_20_14_1p5"].columns == ("close", "high", "low", "atr_14")
    assert catalogue.source == str(DEFAULT_SIGNAL_CATALOGUE)


def test_the_hash_is_of_the_content_not_the_formatting_or_order(tmp_path) -> None:
    base = load_signal_catalogue()
    lines = [line for line in DEFAULT_SIGNAL_CATALOGUE.read_text().splitlines() if line.startswith("  - ")]
    shuffled = tmp_path / "shuffled.yaml"
    shuffled.write_text("signals:\n" + "\n".join(reversed([line.split("#")[0].rstrip() for line in lines])) + "\n")
    assert load_signal_catalogue(shuffled).fingerprint() == base.fingerprint()
    changed = tmp_path / "changed.yaml"
    changed.write_text(shuffled.read_text().replace("upper: 70", "upper: 75"))
    assert load_signal_catalogue(changed).fingerprint() != base.fingerprint()
    assert len(base.fingerprint()) == 64


BAD_LINES = [
    ("  - {rule: macd_cross, params: {}}", "signal #2: rule 'macd_cross' is unknown; accepted: atr_breakout, "
                                           "ema_crossover, rsi_mean_reversion"),
    ("  - {rule: ema_crossover, params: {fast: 21, slow: 9}}", "signal #2: ema_crossover fast (21) must be smaller than slow (9)"),
    ("  - {rule: rsi_mean_reversion, params: {period: 14, lower: 30}}",
     "signal #2: rsi_mean_reversion takes params ['period', 'lower', 'upper'], got ['lower', 'period']"),
    ("  - {rule: rsi_mean_reversion, params: {period: 14, lower: 55, upper: 70}}",
     "signal #2: rsi_mean_reversion need 0 < lower (55) < 50 < upper (70) < 100"),
    ("  - {rule: atr_breakout, params: {channel: 0, atr_period: 14, factor: 1.5}}",
     "signal #2: atr_breakout channel must be an int >= 1, got 0"),
    ("  - {rule: ema_crossover, params: {fast: 9, slow: 50}, name: Bad-Name}",
     "signal #2: name 'Bad-Name' must be a lower-case identifier"),
    ("  - {rule: ema_crossover, params: {fast: 9, slow: 50}, colour: red}",
     "signal #2: unknown key(s) ['colour']; accepted: description, name, params, rule"),
    ("  - {rule: ema_crossover, params: {fast: 5, slow: 8}, name: ema_cross_9_21}",
     "signal name ema_cross_9_21 is already used on line 4"),
]


@pytest.mark.parametrize(("line", "problem"), BAD_LINES, ids=[p[:40] for _, p in BAD_LINES])
def test_a_bad_line_is_one_error_naming_the_file_and_its_line(tmp_path, line, problem) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(HEADER + GOOD + line + "\n")
    with pytest.raises(SignalCatalogueError) as info:
        load_signal_catalogue(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:5: ") and problem in message, message


def test_broken_yaml_and_a_missing_file_are_one_line_too(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(HEADER + GOOD + "  - {rule: [unclosed\n")
    with pytest.raises(SignalCatalogueError, match=rf"^{path}:\d+: not valid YAML: ") as info:
        load_signal_catalogue(path)
    assert "\n" not in str(info.value)
    with pytest.raises(SignalCatalogueError, match="does not exist"):
        load_signal_catalogue(tmp_path / "missing.yaml")
    path.write_text("signals: []\n")
    with pytest.raises(SignalCatalogueError, match="'signals' must be a non-empty list"):
        load_signal_catalogue(path)


def test_settings_read_the_catalogue_at_load(tmp_path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text(HEADER + GOOD + "  - {rule: nope}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, overrides={"signals": {"catalogue": "s.yaml"}})
    message = str(info.value)
    assert message.startswith("config key 'signals.catalogue' = 's.yaml' must be the path of a signal catalogue "
                              "YAML file, or empty for the packaged one; s.yaml:5: signal #2: rule 'nope' is unknown")
    good = tmp_path / "good.yaml"
    good.write_text(HEADER + GOOD)
    assert load_settings(env={}, overrides={"signals": {"catalogue": "good.yaml"}}).signals.catalogue == "good.yaml"


def test_a_rule_needing_a_feature_the_feature_catalogue_lacks_names_the_signal_line(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(HEADER + GOOD + "  - {rule: rsi_mean_reversion, params: {period: 28, lower: 30, upper: 70}}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, overrides={"signals": {"catalogue": "s.yaml"}})
    assert str(info.value).endswith(
        "; s.yaml:5: signal rsi_mean_reversion_28_30_70 needs feature column(s) rsi_28, which the feature catalogue "
        "does not produce (add them to it or to features.ema_spans / features.rsi_periods)")
    # asking the features for RSI-28 makes the same catalogue valid
    s = load_settings(env={}, overrides={"signals": {"catalogue": "s.yaml"}, "features": {"rsi_periods": [14, 28]}})
    assert s.features.rsi_periods == (14, 28)


def test_the_quant_command_exits_2_with_the_one_line(tmp_path) -> None:
    (tmp_path / "s.yaml").write_text(HEADER + GOOD + "  - {rule: ema_crossover, params: {fast: 9}}\n")
    config = tmp_path / "quant.yaml"
    config.write_text("signals: {catalogue: s.yaml}\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_", "DAGSTER_"))}
    result = subprocess.run(
        [str(QUANT), "report"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**base, "QUANT_CONFIG": str(config), "QUANT_DATA_DIR": str(tmp_path / "data"),
             "DAGSTER_HOME": str(tmp_path / "dagster_home")},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("quant: error: config key 'signals.catalogue' = 's.yaml'")
    assert lines[0].endswith("s.yaml:5: signal #2: ema_crossover takes params ['fast', 'slow'], got ['fast']")
    assert not (tmp_path / "data").exists()

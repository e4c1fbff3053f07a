"""Experiment ids and diffs: one changed key, one different id and one line; folds share an id."""

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from quant_assets.config import load_settings
from quant_assets.quant.alerting import DayResult, check_observations
from quant_assets.quant.experiments import (
    DEFAULT_HYPOTHESIS,
    MISMATCH,
    REPRODUCED,
    STALE,
    UNVERIFIED,
    experiment_config,
    experiment_diff,
    experiment_id,
    experiment_ids,
    experiment_status,
    flatten,
    trial_config,
)
from quant_assets.quant.reproducibility import MISMATCH as VERDICT_MISMATCH
from quant_assets.quant.reproducibility import verify


def _settings(**overrides):
    return load_settings(config_file=None, env={}, overrides=overrides)


def _side(settings, mode="realistic", **parts):
    return {"config": experiment_config(settings, mode), **parts}


@pytest.mark.parametrize(("section", "key", "value", "flat"), [
    ("backtest", "train_days", 21, "strategy.backtest.train_days"),
    ("backtest", "fee_bps", 5.0, "strategy.backtest.fee_bps"),
    ("portfolio", "cap", 0.3, "strategy.portfolio.cap"),
    ("backtest", "bootstrap_seed", 11, "seeds.bootstrap"),
    ("governance", "hypothesis", "Momentum persists.", "hypothesis"),
])
def test_one_changed_parameter_is_another_experiment_and_the_diff_names_it_alone(section, key, value, flat):
    base, changed = _settings(), _settings(**{section: {key: value}})
    assert experiment_ids(base)["realistic"] != experiment_ids(changed)["realistic"]
    lines = experiment_diff(_side(base), _side(changed))
    assert len(lines) == 1 and lines[0].startswith(f"config {flat}: ")
    assert lines[0].endswith(f" -> {json.dumps(value)}")


def test_the_id_is_stable_and_separates_universe_interval_and_cost_mode():
    base = _settings()
    assert experiment_ids(base) == experiment_ids(_settings())  # every fold of the run computes the same
    ids = experiment_ids(base)
    assert ids["clean"] != ids["realistic"] and all(len(i) == 16 for i in ids.values())
    fewer = dataclasses.replace(base, symbols=base.symbols[:2])
    assert experiment_ids(fewer)["realistic"] != ids["realistic"]
    other = _settings(features={"interval": "15m"})
    assert experiment_ids(other)["realistic"] != ids["realistic"]
    assert experiment_config(base, "realistic")["hypothesis"] == DEFAULT_HYPOTHESIS
    assert experiment_id(json.loads(json.dumps(experiment_config(base, "clean")))) == ids["clean"]  # JSON round trip


def test_clean_costs_are_not_part_of_the_clean_experiment():
    base, cheaper = _settings(), _settings(backtest={"fee_bps": 1.0})
    assert experiment_ids(base)["clean"] == experiment_ids(cheaper)["clean"]
    assert experiment_ids(base)["realistic"] != experiment_ids(cheaper)["realistic"]
    assert "fee_bps" not in experiment_config(base, "clean")["strategy"]["backtest"]


def test_a_trial_is_its_strategy_and_evaluation_not_the_grid_around_it():
    spec = json.dumps({"kind": "portfolio", "objective": "min_variance"})
    base = _settings()
    wider = _settings(portfolio={"risk_aversions": [1.0, 3.0, 10.0]}, backtest={"pbo_splits": 8})
    assert trial_config(base, "realistic", spec) == trial_config(wider, "realistic", spec)
    assert trial_config(base, "realistic", spec) != trial_config(_settings(backtest={"train_days": 7}), "realistic", spec)
    assert trial_config(base, "realistic", spec) != trial_config(base, "realistic", spec.replace("min", "max"))


def test_the_diff_names_code_packages_and_input_partitions():
    base = _settings()
    a = _side(base, git={"commit": "a" * 40, "dirty": False}, packages={"polars": "2.1.0", "duckdb": "1.4.0"},
              inputs={"features_1h": {"2024-03-01": "1" * 64, "2024-03-02": "2" * 64}})
    b = _side(base, git={"commit": "b" * 40, "dirty": True}, packages={"polars": "2.2.0", "duckdb": "1.4.0"},
              inputs={"features_1h": {"2024-03-01": "1" * 64, "2024-03-02": "3" * 64, "2024-03-03": "4" * 64}})
    assert experiment_diff(a, b) == [
        f"code: commit {'a' * 12} (clean) -> {'b' * 12} (dirty)",
        "package polars: 2.1.0 -> 2.2.0",
        f"input features_1h 2024-03-02: sha256 {'2' * 12} -> {'3' * 12}",
        "inputs read only by B: features_1h 2024-03-03",
    ]
    assert experiment_diff(a, a) == []


def test_flatten_and_status():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1, 2], "e": {}}
    assert experiment_status(5, 5, 0, 0) == REPRODUCED
    assert experiment_status(5, 4, 1, 2) == MISMATCH
    assert experiment_status(5, 5, 0, 1) == STALE
    assert experiment_status(5, 0, 0, 0) == UNVERIFIED


def test_a_failed_reproducibility_check_alerts_with_the_fold_partition_and_metric():
    verdict = verify("features_1h 2024-03-02 (sha256 aaa -> bbb)", 2e-9, "net_return at ts=2024-03-04 03:00:00")
    assert verdict.status == VERDICT_MISMATCH
    reason = f"fold 2024-03-04 does not reproduce: {verdict.first_mismatch}"
    day = DayResult("reproducibility_runs", "reproducibility_verified", "run1", "2024-03-04", False, True, None,
                    datetime(2024, 3, 5, tzinfo=UTC), 7, reason)
    [obs] = check_observations([day], "http://127.0.0.1:3000")
    assert obs.failing and obs.severity == "ERROR"
    assert obs.message == ("blocking check reproducibility_verified on reproducibility_runs failed for 2024-03-04: "
                           "fold 2024-03-04 does not reproduce: input changed: features_1h 2024-03-02 "
                           "(sha256 aaa -> bbb); net_return at ts=2024-03-04 03:00:00")

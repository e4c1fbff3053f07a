"""The single Definitions: loads, validates, and every asset is described and checked."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from quant_assets.definitions import STAGES

ROOT = Path(__file__).resolve().parents[1]


# Summaries over the whole history (recomputed from the per-bar tables) and a static dimension.
UNPARTITIONED = {"dim_timeframe", "signal_summary", "quantile_returns", "signal_ic_by_regime", "factor_return_summary",
                 "backtest_summary", "backtest_pbo", "experiment_registry", "open_alerts"}


def test_every_asset_has_a_stage_group_a_description_kinds_and_a_check(settings, defs_for):
    defs = defs_for(settings)
    specs = list(defs.resolve_all_asset_specs())
    checked = {key.asset_key for key in defs.resolve_asset_graph().asset_check_keys}
    assert {s.group_name for s in specs} == set(STAGES)
    for spec in specs:
        name = spec.key.to_user_string()
        assert spec.description and len(spec.description) > 40, name
        assert spec.kinds, name
        assert spec.key in checked, f"{name} has no asset check"
        if name not in UNPARTITIONED:
            assert spec.partitions_def is not None, name
    blocking = [
        c for c in defs.resolve_asset_graph().asset_check_keys
        if defs.resolve_asset_graph().get_check_spec(c).blocking
    ]
    assert {c.asset_key for c in blocking} == {s.key for s in specs}, "each asset has a blocking check"


def test_configured_bar_intervals_become_assets(make_settings, defs_for):
    defs = defs_for(make_settings(env={"QUANT_BAR_INTERVALS": "5m,1h,4h"}, features={"interval": "4h"}))
    names = {s.key.to_user_string() for s in defs.resolve_all_asset_specs()}
    assert {"bars_5m", "bars_1h", "bars_4h", "features_4h"} <= names
    assert "bars_15m" not in names


@pytest.mark.slow
def test_dagster_definitions_validate_accepts_the_workspace(tmp_path):
    env = {"PATH": str(Path(sys.executable).parent), "DAGSTER_HOME": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "quant_assets" in done.stdout + done.stderr


def test_dagster_code_location_is_loadable_by_module():
    from quant_assets import definitions

    assert isinstance(definitions.defs, dg.Definitions)

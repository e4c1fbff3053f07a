"""Manifests: what produced a walk-forward day's numbers, as one canonical JSON document.

A fold-day manifest names the git commit and dirty flag, the package versions, the hash of the
data-shaping settings, the SHA-256 of the signal and feature catalogues in force, each cost
mode's experiment (id and full configuration: walk-forward, portfolio and cost settings, seeds),
the content hash of every input partition the day's fold read (its covariance history, training
window and test days up to the day; the fold's own tables for the day only), the parameter hashes
and the day's metrics per cost mode. Its hash is SHA-256 of its canonical JSON. Nothing secret is
in a manifest: settings hold none (secrets come from the environment and stay there).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from quant_assets.config import Settings
from quant_assets.quant.experiments import (
    COST_MODES,
    catalogue_hashes,
    experiment_config,
    experiment_id,
    hypothesis,
)

OWN_TABLES = ("backtest_folds", "backtest_pnl")


def input_tables(settings: Settings) -> list[str]:
    """The tables whose partition hashes a fold's manifest lists."""
    interval = settings.features.interval
    return ["raw_candles", f"bars_{interval}", f"features_{interval}", "signals", "factors", *OWN_TABLES]


def recorded_inputs(hashes: pl.DataFrame, first: str, key: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``{table: {partition: {rows, sha256}}}`` and ``{table: params_hash}`` of the ``partition_hashes``
    rows (table_name, partition_key, row_count, content_hash, params_hash) from ``first`` to ``key``;
    the fold's own tables count for ``key`` only."""
    inputs: dict[str, dict[str, Any]] = {}
    params: dict[str, str] = {}
    for table, part, n, digest, p_hash in hashes.filter(
        (pl.col("partition_key") >= first) & (pl.col("partition_key") <= key)
    ).sort("table_name", "partition_key").iter_rows():
        if table in OWN_TABLES and part != key:
            continue
        inputs.setdefault(table, {})[part] = {"rows": n, "sha256": digest}
        params[table] = p_hash
    return inputs, params


def fold_manifest(
    settings: Settings, key: str, first_input: str, hashes: pl.DataFrame, folds: pl.DataFrame,
    git: tuple[str, bool | None], versions: dict[str, str],
) -> dict[str, Any]:
    """The manifest document of out-of-sample day ``key`` (without its own hash); ``first_input``:
    the first day the day's fold read."""
    inputs, params = recorded_inputs(hashes, first_input, key)
    fold = folds.filter(pl.col("day").dt.strftime("%Y-%m-%d") == key).sort("cost_mode")
    dropped = ["day", "cost_mode", "train_start", "train_end", "test_start", "test_end"]
    metrics = {row["cost_mode"]: {k: v for k, v in row.items() if k not in dropped}
               for row in fold.iter_rows(named=True)}
    configs = {mode: experiment_config(settings, mode) for mode in COST_MODES}
    return {
        "kind": "walk_forward_day",
        "partition_key": key,
        "hypothesis": hypothesis(settings),
        "experiments": {mode: {"id": experiment_id(c), "config": c} for mode, c in configs.items()},
        "git": {"commit": git[0], "dirty": git[1]},
        "packages": versions,
        "config_hash": settings.fingerprint(),
        "catalogue_hashes": catalogue_hashes(settings),
        "parameter_hashes": params,
        "inputs": inputs,
        "metrics": metrics,
    }


"""Governance: a manifest per backtest fold, and the experiment registry (core in ``quant.manifest``)."""

import json

import dagster as dg
import polars as pl

from quant_assets.config import Settings
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.partitions import training_window_mapping
from quant_assets.quant.calendar import Window
from quant_assets.quant.manifest import (
    canonical_hash,
    experiment_id,
    fold_manifest,
    input_tables,
)
from quant_assets.resources.provenance import git_state, package_versions, write_manifest_file
from quant_assets.resources.tables import query_frame

MANIFEST_SCHEMA = {"partition_key": pl.Utf8, "fold_start": pl.Datetime("us"), "manifest_hash": pl.Utf8,
                   "git_commit": pl.Utf8, "git_dirty": pl.Boolean, "config_hash": pl.Utf8,
                   "experiment_id": pl.Utf8, "manifest_json": pl.Utf8}


def build_manifest(settings: Settings) -> dg.AssetsDefinition:
    mapping = training_window_mapping(settings)

    @daily_asset(
        settings,
        name="backtest_manifest",
        group="governance",
        description=(
            "One manifest per walk-forward fold (table backtest_manifest and a JSON file under "
            "$QUANT_DATA_DIR/manifests/): git commit and dirty flag, package versions, config hash, "
            "the content hash of every input partition read, parameters, metrics; and the fold's "
            "entry in experiment_registry with its hypothesis."
        ),
        deps=["backtest_folds", "backtest_pnl", dg.AssetDep("signals", partition_mapping=mapping)],
        kinds=("python", "duckdb", "json"),
        metadata={"registry_table": "experiment_registry"},
    )
    def backtest_manifest(step: WindowStep) -> AssetOutput:
        start, end = step.window
        commit, dirty = git_state()
        versions = package_versions()
        exp_id = experiment_id(settings)
        first = step.window.shifted(-settings.backtest.train_days).start.date().isoformat()
        hashes = query_frame(step.conn,
            "SELECT table_name, partition_key, row_count, content_hash, params_hash FROM partition_hashes "
            "WHERE list_contains(?, table_name) AND partition_key >= ? AND partition_key < ?",
            [input_tables(settings), first, end.date().isoformat()],
        )
        folds = query_frame(step.conn, "SELECT * FROM backtest_folds WHERE day >= ? AND day < ?", [start, end])
        rows, registry = [], []
        for day in step.window.days():
            document = fold_manifest(settings, day.key, day.start, hashes, folds, commit, dirty, versions, exp_id)
            row, entry = _write_manifest(settings, day, document, folds)
            rows.append(row)
            registry.append(entry)
        frame = pl.DataFrame(rows, orient="row", schema=MANIFEST_SCHEMA)
        return AssetOutput(
            [TableWrite("backtest_manifest", frame, params={"experiment_id": exp_id}, time_column="fold_start")],
            daily={key: {"manifest_hash": digest} for key, _, digest, *_ in rows},
            extra={"git_commit": commit, "git_dirty": str(dirty), "config_hash": settings.fingerprint(),
                   "experiment_id": exp_id, "manifest_dir": dg.MetadataValue.path(str(settings.manifest_dir))},
            also=[lambda conn: conn.executemany(
                "INSERT OR REPLACE INTO experiment_registry VALUES (?, ?, ?, ?, ?, ?, ?)", registry)],
            preview_rows=0,
        )

    return backtest_manifest


def _write_manifest(settings: Settings, day: Window, document: dict, folds: pl.DataFrame) -> tuple[tuple, tuple]:
    """Write the fold's manifest file; its ``backtest_manifest`` row and registry entry."""
    digest = canonical_hash(document)
    path = write_manifest_file(settings.manifest_dir, f"backtest_{day.key}", {**document, "manifest_hash": digest})
    fold = folds.filter((pl.col("day") == day.start) & (pl.col("cost_mode") == "realistic"))
    selected = fold["selected_strategy"][0] if fold.height else None
    sharpe = fold["sharpe"][0] if fold.height else None
    git, exp_id = document["git"], document["experiment_id"]
    row = (day.key, day.start, digest, git["commit"], git["dirty"], document["config_hash"], exp_id,
           json.dumps(document, sort_keys=True, default=str))
    return row, (exp_id, day.key, document["hypothesis"], selected, sharpe, digest, str(path))

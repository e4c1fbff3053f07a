"""Governance: a manifest per out-of-sample day (core in ``quant.manifest``), the input partitions it
recorded (``manifest_inputs``, which ``manifest_staleness`` compares with the current content
hashes) and the day's place in each experiment (``experiment_folds``)."""

import json
from datetime import timedelta
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from quant_assets.config import Settings
from quant_assets.defs.backtests.setup import fold_calendar, history_days
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_asset
from quant_assets.partitions import training_window_mapping
from quant_assets.quant.calendar import Window
from quant_assets.quant.experiments import COST_MODES, canonical_hash, canonical_json
from quant_assets.quant.manifest import fold_manifest, input_tables
from quant_assets.resources import provenance
from quant_assets.resources.provenance import package_versions, write_manifest_file
from quant_assets.resources.tables import query_frame

MANIFEST_SCHEMA = {"partition_key": pl.Utf8, "fold_start": pl.Datetime("us"), "manifest_hash": pl.Utf8,
                   "git_commit": pl.Utf8, "git_dirty": pl.Boolean, "config_hash": pl.Utf8,
                   "experiment_id": pl.Utf8, "manifest_json": pl.Utf8, "experiment_ids": pl.Utf8}
INPUT_SCHEMA = {"day": pl.Datetime("us"), "table_name": pl.Utf8, "input_partition": pl.Utf8,
                "row_count": pl.Int64, "content_hash": pl.Utf8}


def first_input_day(settings: Settings, day: Window) -> str:
    """The first day the fold of ``day`` read: its training start less the covariance history."""
    fold = fold_calendar(settings).fold_of(day.start.date())
    start = fold.train_start if fold is not None else day.start
    return (start - timedelta(days=history_days(settings))).date().isoformat()


def build_manifest(settings: Settings) -> dg.AssetsDefinition:
    mapping = training_window_mapping(settings)

    @daily_asset(
        settings,
        name="backtest_manifest",
        group="governance",
        description=(
            "One manifest per out-of-sample day (table backtest_manifest and an immutable JSON file "
            "$QUANT_DATA_DIR/manifests/backtest_<day>_<hash>.json, written atomically): git commit and dirty flag, "
            "package versions, config hash, catalogue hashes, each cost mode's experiment id and configuration "
            "(walk-forward, portfolio and cost settings, seeds), the content hash of every input partition the "
            "day's fold read (also in manifest_inputs), parameter hashes and the day's metrics; and the day's row "
            "in experiment_folds."
        ),
        deps=["backtest_folds", "backtest_pnl", dg.AssetDep("signals", partition_mapping=mapping)],
        kinds=("python", "duckdb", "json"),
        metadata={"inputs_table": "manifest_inputs", "folds_table": "experiment_folds"},
    )
    def backtest_manifest(step: WindowStep) -> AssetOutput:
        start, end = step.window
        git = provenance.git_state()
        versions = package_versions()
        days = list(step.window.days())
        firsts = {day.key: first_input_day(settings, day) for day in days}
        hashes = query_frame(step.conn,
            "SELECT table_name, partition_key, row_count, content_hash, params_hash FROM partition_hashes "
            "WHERE list_contains(?, table_name) AND partition_key >= ? AND partition_key < ?",
            [input_tables(settings), min(firsts.values()), end.date().isoformat()],
        )
        folds = query_frame(step.conn, "SELECT * FROM backtest_folds WHERE day >= ? AND day < ?", [start, end])
        rows, inputs, experiment_days = [], [], []
        for day in days:
            document = fold_manifest(settings, day.key, firsts[day.key], hashes, folds, git, versions)
            row, day_inputs, entries = _write_manifest(settings, day, document, folds)
            rows.append(row)
            inputs += day_inputs
            experiment_days += entries
        frame = pl.DataFrame(rows, orient="row", schema=MANIFEST_SCHEMA)
        ids = json.loads(rows[0][-1]) if rows else {}
        return AssetOutput(
            [TableWrite("backtest_manifest", frame, params={"experiments": ids}, time_column="fold_start"),
             TableWrite("manifest_inputs", pl.DataFrame(inputs, orient="row", schema=INPUT_SCHEMA),
                        params={}, time_column="day")],
            daily={key: {"manifest_hash": digest} for key, _, digest, *_ in rows},
            extra={"git_commit": git[0], "git_dirty": str(git[1]), "config_hash": settings.fingerprint(),
                   **{f"experiment_id_{mode}": i for mode, i in ids.items()},
                   "manifest_dir": dg.MetadataValue.path(str(settings.manifest_dir))},
            also=[lambda conn: _record_experiment_days(conn, experiment_days)],
            preview_rows=0,
        )

    return backtest_manifest


def _write_manifest(settings: Settings, day: Window, document: dict, folds: pl.DataFrame
                    ) -> tuple[tuple, list[tuple], list[tuple]]:
    """Write the day's manifest file; its ``backtest_manifest`` row, ``manifest_inputs`` rows and
    ``experiment_folds`` rows (one per cost mode the day was traded in)."""
    digest = canonical_hash(document)
    path = write_manifest_file(settings.manifest_dir, f"backtest_{day.key}_{digest[:12]}",
                               {**document, "manifest_hash": digest})
    ids = {mode: document["experiments"][mode]["id"] for mode in COST_MODES}
    git = document["git"]
    row = (day.key, day.start, digest, git["commit"], git["dirty"], document["config_hash"], ids["realistic"],
           canonical_json(document), canonical_json(ids))
    inputs = [(day.start, table, part, v["rows"], v["sha256"])
              for table, parts in document["inputs"].items() for part, v in parts.items()]
    entries = []
    for fold in folds.filter((pl.col("day") == day.start) & (pl.col("status") == "OK")).iter_rows(named=True):
        mode = fold["cost_mode"]
        entries.append((ids[mode], day.start, mode, digest, str(path), fold["selected_strategy"], fold["total_return"]))
    return row, inputs, entries


def _record_experiment_days(conn: duckdb.DuckDBPyConnection, entries: list[tuple[Any, ...]]) -> None:
    if entries:
        conn.executemany("INSERT OR REPLACE INTO experiment_folds VALUES (?, ?, ?, ?, ?, ?, ?)", entries)


def manifest_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    mode = settings.governance.reproducibility

    @daily_check(settings, asset="backtest_manifest", name="manifest_code_clean", severity="WARN",
                 description=("Strict mode: every manifest of the day was written from a clean git tree at a known "
                              "commit (a dirty or unknown tree warns: its results cannot be rebuilt from a commit). "
                              "Other modes record the state and pass."))
    def manifest_code_clean(conn: duckdb.DuckDBPyConnection, day: Window) -> Verdict:
        rows = conn.execute("SELECT partition_key, git_commit, git_dirty FROM backtest_manifest "
                            "WHERE fold_start >= ? AND fold_start < ?", list(day)).fetchall()
        unclean = [r for r in rows if r[2] is not False]
        figures: dict[str, Any] = {"manifests": len(rows), "dirty_or_unknown": len(unclean), "mode": mode}
        if unclean:
            key, commit, dirty = unclean[0]
            state = "dirty" if dirty else "of unknown state"
            figures["reason"] = f"manifest {key} was written from a git tree {state} at commit {commit[:12]}"
        return Verdict(not unclean or mode != "strict", figures)

    return [manifest_code_clean]

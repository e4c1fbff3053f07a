"""Governance: a manifest per backtest fold, and the experiment registry.

A manifest says what produced a fold's numbers: git commit and dirty flag, package versions,
the hash of the data-shaping settings, the content hash of every input partition the fold read
(the training window and the fold's day), the parameter hashes, and the fold's metrics. Its own
hash (``manifest_hash``) is SHA-256 of its canonical JSON, so two manifests with the same hash
describe reproducible-identical results. Nothing secret is in a manifest: settings hold none.
"""


import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from functools import cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from quant_assets.config import Settings
from quant_assets.partitions import daily_partitions, training_window_mapping, window_of
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import (
    preview_markdown,
    query_frame,
    record_partition_hashes,
    replace_window,
)

PACKAGES = ("quant-assets", "dagster", "dagster-duckdb", "duckdb", "polars", "numpy", "scikit-learn", "cvxpy")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@cache
def git_state(root: Path = PROJECT_ROOT) -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the checkout holding the code; ``("unknown", None)`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True, timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit, bool(status.strip())


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def experiment_id(settings: Settings) -> str:
    """Identifies the experiment: the data-shaping settings (universe, signals, costs, windows)."""
    return settings.fingerprint()[:16]


def hypothesis(settings: Settings) -> str:
    bt = settings.backtest
    return (
        f"Trend following on {settings.features.interval} bars of {len(settings.symbols)} symbols: "
        f"EMA-crossover rules {[list(p) for p in settings.signals.ema_pairs]} re-selected each day by "
        f"Sharpe over the previous {bt.train_days} days earn a positive out-of-sample return after "
        f"{bt.fee_bps} bps fees and {bt.slippage_bps} bps slippage."
    )


def canonical_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def write_manifest_file(directory: Path, name: str, document: dict[str, Any]) -> Path:
    """Write JSON atomically (temp file + rename), so a reader never sees half a manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, sort_keys=True, indent=2, default=str))
    os.replace(tmp, path)
    return path


def _input_tables(settings: Settings) -> list[str]:
    interval = settings.features.interval
    return ["raw_candles", f"bars_{interval}", f"features_{interval}", "signals", "backtest_folds", "backtest_pnl"]


def build_manifest(settings: Settings) -> dg.AssetsDefinition:
    mapping = training_window_mapping(settings)

    @dg.asset(
        name="backtest_manifest",
        group_name="governance",
        description=(
            "One manifest per walk-forward fold (table backtest_manifest and a JSON file under "
            "$QUANT_DATA_DIR/manifests/): git commit and dirty flag, package versions, config hash, "
            "the content hash of every input partition read, parameters, metrics; and the fold's "
            "entry in experiment_registry with its hypothesis."
        ),
        deps=["backtest_folds", "backtest_pnl", dg.AssetDep("signals", partition_mapping=mapping)],
        partitions_def=daily_partitions(settings),
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"python", "duckdb", "json"},
        pool="duckdb",
        metadata={"table": "backtest_manifest", "registry_table": "experiment_registry"},
    )
    def backtest_manifest(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        start, end = window_of(context)
        commit, dirty = git_state()
        versions = package_versions()
        exp_id = experiment_id(settings)
        rows, registry = [], []
        with duckdb.connect() as conn:
            hashes = query_frame(conn,
                "SELECT table_name, partition_key, row_count, content_hash, params_hash FROM partition_hashes "
                "WHERE list_contains(?, table_name) AND partition_key >= ? AND partition_key < ?",
                [_input_tables(settings), (start - timedelta(days=settings.backtest.train_days)).date().isoformat(),
                 end.date().isoformat()],
            )
            folds = query_frame(conn,
                "SELECT * FROM backtest_folds WHERE test_start >= ? AND test_start < ?", [start, end]
            )
            day = start
            while day < end:
                key = day.date().isoformat()
                document = _manifest(settings, key, day, hashes, folds, commit, dirty, versions, exp_id)
                digest = canonical_hash(document)
                path = write_manifest_file(settings.manifest_dir, f"backtest_{key}", {**document, "manifest_hash": digest})
                fold = folds.filter(pl.col("fold") == key)
                selected = fold["selected_signal"][0] if fold.height else None
                sharpe = fold["sharpe"][0] if fold.height else None
                rows.append((key, day, digest, commit, dirty, document["config_hash"], exp_id,
                             json.dumps(document, sort_keys=True, default=str)))
                registry.append((exp_id, key, hypothesis(settings), selected, sharpe, digest, str(path)))
                day += timedelta(days=1)
            frame = pl.DataFrame(
                rows, orient="row",
                schema={"partition_key": pl.Utf8, "fold_start": pl.Datetime("us"), "manifest_hash": pl.Utf8,
                        "git_commit": pl.Utf8, "git_dirty": pl.Boolean, "config_hash": pl.Utf8,
                        "experiment_id": pl.Utf8, "manifest_json": pl.Utf8},
            )
            replace_window(conn, "backtest_manifest", frame, start, end, time_column="fold_start")
            conn.executemany("INSERT OR REPLACE INTO experiment_registry VALUES (?, ?, ?, ?, ?, ?, ?)", registry)
            record_partition_hashes(conn, "backtest_manifest", "backtest_manifest", start, end, {"experiment_id": exp_id}, "fold_start")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": frame.height,
                "git_commit": commit,
                "git_dirty": str(dirty),
                "config_hash": settings.fingerprint(),
                "experiment_id": exp_id,
                "manifest_dir": dg.MetadataValue.path(str(settings.manifest_dir)),
                "preview": dg.MetadataValue.md(preview_markdown(frame.drop("manifest_json").tail(10))),
            }
        )

    return backtest_manifest


def _manifest(
    settings: Settings, key: str, day: datetime, hashes: pl.DataFrame, folds: pl.DataFrame,
    commit: str, dirty: bool | None, versions: dict[str, str], exp_id: str,
) -> dict[str, Any]:
    first = (day - timedelta(days=settings.backtest.train_days)).date().isoformat()
    inputs: dict[str, dict[str, dict[str, Any]]] = {}
    params: dict[str, str] = {}
    for table, part, n, digest, p_hash in hashes.filter(
        (pl.col("partition_key") >= first) & (pl.col("partition_key") <= key)
    ).sort("table_name", "partition_key").iter_rows():
        if table in ("backtest_folds", "backtest_pnl") and part != key:
            continue
        inputs.setdefault(table, {})[part] = {"rows": n, "sha256": digest}
        params[table] = p_hash
    fold = folds.filter(pl.col("fold") == key)
    metrics = {k: v for k, v in fold.drop("train_start", "train_end", "test_start", "test_end").row(0, named=True).items()} if fold.height else {}
    return {
        "kind": "walk_forward_fold",
        "partition_key": key,
        "experiment_id": exp_id,
        "hypothesis": hypothesis(settings),
        "git": {"commit": commit, "dirty": dirty},
        "packages": versions,
        "config_hash": settings.fingerprint(),
        "parameter_hashes": params,
        "inputs": inputs,
        "metrics": metrics,
    }

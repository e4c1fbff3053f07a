"""Governance: the experiment registry (one row per experiment, kept across runs) and each
experiment's manifest (core in ``quant.experiments``).

Unpartitioned, after the summary and the reproducibility verification: per cost mode, the current
settings' experiment is registered with the days it traded (``experiment_folds``), the
walk-forward's out-of-sample figures with DSR and PBO (``backtest_summary``), the trials the DSR
deflated by (``backtest_trials``), how many folds reproduced (``reproducibility_runs``) and how
many days' inputs changed since (``manifest_staleness``). Its manifest
(``$QUANT_DATA_DIR/manifests/experiment_<id>_<hash>.json``, immutable, written atomically) pins the
configuration, code, packages, seeds, every fold manifest and the union of their inputs.
"""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from quant_assets.config import Settings
from quant_assets.defs.backtests.setup import universe_hash
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.quant.backtest_statistics import WALK_FORWARD
from quant_assets.quant.experiments import (
    COST_MODES,
    canonical_hash,
    canonical_json,
    experiment_config,
    experiment_id,
    experiment_status,
    status_words,
)
from quant_assets.quant.manifest import OWN_TABLES
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.provenance import write_manifest_file
from quant_assets.resources.tables import preview_markdown, query_frame, table_exists, transaction

SUMMARY_FIGURES = {"gross_total_return": "gross_return", "total_return": "net_return", "sharpe": "sharpe",
                   "psr": "psr", "dsr": "dsr", "pbo": "pbo", "n_trials": "n_trials"}


def _fold_days(conn: duckdb.DuckDBPyConnection, exp_id: str) -> pl.DataFrame:
    """The experiment's days whose stored results are still its own (the current manifest names it),
    with their manifest, verification and staleness."""
    return query_frame(conn, """
        SELECT f.day, f.manifest_hash, f.manifest_path, m.git_commit, m.git_dirty, m.manifest_json,
               coalesce(r.status, 'UNCHECKED') AS verification,
               EXISTS (SELECT 1 FROM manifest_staleness AS s WHERE s.day = f.day) AS stale
        FROM experiment_folds AS f
        JOIN backtest_manifest AS m ON m.fold_start = f.day AND m.manifest_hash = f.manifest_hash
        LEFT JOIN reproducibility_runs AS r ON r.day = f.day
        WHERE f.experiment_id = ?
        ORDER BY f.day
    """, [exp_id])


def _summary_figures(conn: duckdb.DuckDBPyConnection, mode: str) -> dict[str, Any]:
    if not table_exists(conn, "backtest_summary"):
        return {}
    row = query_frame(conn, "SELECT * FROM backtest_summary WHERE strategy = ? AND cost_mode = ?", [WALK_FORWARD, mode])
    return {ours: row[theirs][0] for theirs, ours in SUMMARY_FIGURES.items()} if row.height else {}


def _trials(conn: duckdb.DuckDBPyConnection, settings: Settings, mode: str) -> int:
    return conn.execute("SELECT count(*) FROM backtest_trials WHERE universe = ? AND bar_interval = ? AND cost_mode = ?",
                        [universe_hash(settings), settings.features.interval, mode]).fetchone()[0]


def register_experiment(conn: duckdb.DuckDBPyConnection, settings: Settings, mode: str, now: datetime
                        ) -> dict[str, Any] | None:
    """Write the experiment's manifest and registry row; the row (``None`` when it traded no day)."""
    config = experiment_config(settings, mode)
    exp_id = experiment_id(config)
    days = _fold_days(conn, exp_id)
    if days.is_empty():
        return None
    manifests = [json.loads(text) for text in days["manifest_json"]]
    inputs: dict[str, dict[str, str]] = {}
    for manifest in manifests:
        for table, parts in manifest["inputs"].items():
            if table not in OWN_TABLES:  # the results themselves: compared by reproducibility, not inputs
                inputs.setdefault(table, {}).update({p: v["sha256"] for p, v in parts.items()})
    verification = days["verification"].to_list()
    folds, reproduced, mismatched = days.height, verification.count("MATCH"), verification.count("MISMATCH")
    stale_days = int(days["stale"].sum())
    status = experiment_status(folds, reproduced, mismatched, stale_days)
    figures = {**dict.fromkeys(SUMMARY_FIGURES.values()), **_summary_figures(conn, mode)}
    figures["n_trials"] = _trials(conn, settings, mode)
    latest = manifests[-1]
    document = {
        "kind": "experiment", "experiment_id": exp_id, "config": config, "hypothesis": config["hypothesis"],
        "git": latest["git"], "packages": latest["packages"], "seeds": config["seeds"],
        "fold_manifests": dict(zip([d.date().isoformat() for d in days["day"]], days["manifest_hash"], strict=True)),
        "inputs": inputs, "metrics": figures,
        "reproducibility": {"mode": settings.governance.reproducibility, "folds": folds, "reproduced": reproduced,
                            "mismatched": mismatched, "stale_days": stale_days, "status": status},
    }
    digest = canonical_hash(document)
    path = write_manifest_file(settings.manifest_dir, f"experiment_{exp_id}_{digest[:12]}",
                               {**document, "manifest_hash": digest})
    row = {
        "experiment_id": exp_id, "cost_mode": mode, "hypothesis": config["hypothesis"],
        "config_json": canonical_json(config), "universe": universe_hash(settings),
        "bar_interval": settings.features.interval, "first_run": now, "last_run": now, "folds": folds,
        "first_day": days["day"].min(), "last_day": days["day"].max(), **figures,
        "reproduced": reproduced, "mismatched": mismatched, "unverified": folds - reproduced - mismatched,
        "stale_days": stale_days, "status": status, "git_commit": latest["git"]["commit"],
        "git_dirty": latest["git"]["dirty"], "manifest_hash": digest, "manifest_path": str(path),
    }
    columns = list(row)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in ("experiment_id", "first_run"))
    conn.execute(f"INSERT INTO experiment_registry ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                 f"ON CONFLICT (experiment_id) DO UPDATE SET {updates}", list(row.values()))
    return row


def build_registry(settings: Settings) -> dg.AssetsDefinition:
    mode = settings.governance.reproducibility

    @dg.asset(
        name="experiment_registry", group_name="governance", kinds={"python", "duckdb", "json"}, pool="duckdb",
        deps=["backtest_summary", "backtest_manifest", "reproducibility_runs"],
        description=(
            "One row per experiment (hypothesis, strategy configuration, universe, interval, cost mode), kept across "
            "runs: configuration JSON, first and latest run, out-of-sample days traded, net and gross return, Sharpe, "
            "PSR, DSR, PBO, the trials behind the DSR, how many folds reproduced, stale days, status, commit and the "
            "experiment's manifest (pinning configuration, code, packages, seeds, fold manifests and inputs)."),
    )
    def experiment_registry(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        now = datetime.now().replace(microsecond=0)
        with duckdb.connect() as conn:
            with transaction(conn):
                rows = [r for m in COST_MODES if (r := register_experiment(conn, settings, m, now)) is not None]
            everything = query_frame(conn, "SELECT experiment_id, cost_mode, status, folds, reproduced, net_return, "
                                           "sharpe, dsr, pbo, n_trials, git_commit, last_run "
                                           "FROM experiment_registry ORDER BY last_run DESC, experiment_id")
        metadata: dict[str, Any] = {"dagster/row_count": everything.height,
                                    "experiments": dg.MetadataValue.md(preview_markdown(everything, 30))}
        for row in rows:
            m = row["cost_mode"]
            metadata[f"experiment_id_{m}"] = row["experiment_id"]
            metadata[f"reproducibility_{m}"] = status_words(row["status"], row["folds"], row["reproduced"],
                                                            row["mismatched"], mode)
            metadata[f"n_trials_{m}"] = row["n_trials"]
            metadata[f"commit_{m}"] = f"{(row['git_commit'] or 'unknown')[:12]}{' (dirty)' if row['git_dirty'] else ''}"
            metadata[f"manifest_{m}"] = dg.MetadataValue.path(row["manifest_path"])
        return dg.MaterializeResult(metadata=metadata)

    return experiment_registry


def registry_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    @daily_check(settings, asset="experiment_registry", name="experiment_manifests_intact", partitioned=False,
                 description=("Every experiment registered has traded folds, at least one trial, and a manifest file "
                              "whose SHA-256 over its canonical JSON equals the hash the registry recorded."))
    def experiment_manifests_intact(conn: duckdb.DuckDBPyConnection, _window) -> Verdict:
        rows = conn.execute("SELECT experiment_id, folds, n_trials, manifest_hash, manifest_path "
                            "FROM experiment_registry").fetchall()
        bad = []
        for exp_id, folds, trials, digest, path in rows:
            file = Path(path)
            document = json.loads(file.read_text()) if file.exists() else None
            if document is not None:
                recorded = document.pop("manifest_hash", None)
                intact = recorded == digest == canonical_hash(document)
            else:
                intact = False
            if folds < 1 or trials < 1 or not intact:
                bad.append(exp_id)
        figures: dict[str, Any] = {"experiments": len(rows), "invalid": len(bad)}
        if bad:
            figures["reason"] = f"experiment {bad[0]}: no folds, no trials, or its manifest is missing or altered"
        return Verdict(not bad, figures)

    return [experiment_manifests_intact]

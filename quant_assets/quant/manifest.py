"""Manifests: what produced a walk-forward fold's numbers, as one canonical JSON document.

A manifest names the git commit and dirty flag, package versions, the hash of the data-shaping
settings, the SHA-256 of the signal and feature catalogues in force, the content hash of every input partition the fold read (the training window and the
fold's day), the parameter hashes and the fold's metrics. Its own hash is SHA-256 of its
canonical JSON (sorted keys), so two manifests with the same hash describe reproducible-identical
results. Nothing secret is in a manifest: settings hold none.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from quant_assets.config import Settings
from quant_assets.quant.feature_catalogue import load_catalogue
from quant_assets.quant.signal_catalogue import load_signal_catalogue


def experiment_id(settings: Settings) -> str:
    """Identifies the experiment: the data-shaping settings (universe, costs, windows) and the
    content of the signal and feature catalogues (not their paths: editing a catalogue in place is
    another experiment)."""
    document = {"settings": settings.fingerprint(), **catalogue_hashes(settings)}
    return canonical_hash(document)[:16]


def hypothesis(settings: Settings) -> str:
    bt, pf = settings.backtest, settings.portfolio
    catalogue = load_signal_catalogue(settings.signals.catalogue or None)
    rules = ", ".join(f"{s.name} ({s.rule})" for s in catalogue.signals)
    portfolios = ", ".join(pf.objectives) or "none"
    return (
        f"On {settings.features.interval} bars of {len(settings.symbols)} symbols, the strategy with the best "
        f"in-sample Sharpe among the signal catalogue's rules [{rules}] and factor portfolios [{portfolios}; "
        f"{', '.join(pf.modes)}], re-selected each fold on the previous {bt.train_days} days ({bt.training}), "
        f"earns a positive out-of-sample return after {bt.fee_bps} bps fees, {bt.half_spread_bps} bps half-spread "
        f"and square-root impact (k = {bt.impact_k})."
    )


def catalogue_hashes(settings: Settings) -> dict[str, str]:
    """SHA-256 of the signal catalogue and of the feature catalogue (with the settings' EMAs, RSIs
    and volatility ensured, as the features asset builds it): what the fold's rules and inputs were."""
    cfg = settings.features
    features = load_catalogue(cfg.catalogue or None).ensure(cfg.ema_spans, cfg.rsi_periods, cfg.vol_window)
    return {"signal_catalogue": load_signal_catalogue(settings.signals.catalogue or None).fingerprint(),
            "feature_catalogue": features.fingerprint()}


def canonical_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def input_tables(settings: Settings) -> list[str]:
    """The tables whose partition hashes a fold's manifest lists."""
    interval = settings.features.interval
    return ["raw_candles", f"bars_{interval}", f"features_{interval}", "signals", "factors", "backtest_folds",
            "backtest_pnl"]


def fold_manifest(
    settings: Settings, key: str, day: datetime, hashes: pl.DataFrame, folds: pl.DataFrame,
    commit: str, dirty: bool | None, versions: dict[str, str], exp_id: str,
) -> dict[str, Any]:
    """The manifest document of fold ``key`` (without its own hash).

    ``hashes``: ``partition_hashes`` rows (table_name, partition_key, row_count, content_hash,
    params_hash) of the input tables; the fold's own tables count for its day only.
    """
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
    fold = folds.filter(pl.col("day").dt.strftime("%Y-%m-%d") == key).sort("cost_mode")
    dropped = ["day", "cost_mode", "train_start", "train_end", "test_start", "test_end"]
    metrics = {row["cost_mode"]: {k: v for k, v in row.items() if k not in dropped} for row in fold.iter_rows(named=True)}
    return {
        "kind": "walk_forward_fold",
        "partition_key": key,
        "experiment_id": exp_id,
        "hypothesis": hypothesis(settings),
        "git": {"commit": commit, "dirty": dirty},
        "packages": versions,
        "config_hash": settings.fingerprint(),
        "catalogue_hashes": catalogue_hashes(settings),
        "parameter_hashes": params,
        "inputs": inputs,
        "metrics": metrics,
    }

"""Experiments: what a backtest result claims and what produced it, as comparable documents.

An experiment is one (hypothesis, strategy configuration, universe, interval, cost mode). Its
configuration is a nested JSON document (:func:`experiment_config`); its id is the first 16 hex
digits of SHA-256 over that document's canonical JSON, so two experiments share an id exactly
when every one of those differs in nothing, and all folds of one experiment share it.

The strategy configuration is every walk-forward and portfolio setting, the content hashes of the
signal and feature catalogues, and the seeds (bootstrap; simulator when it provides the candles).
In ``clean`` mode no cost is charged, so the cost settings are not part of it. What the data were
is not configuration: a fold's manifest records the content hash of every input partition, and
:func:`experiment_diff` compares those separately from the configuration, the code and the packages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from quant_assets.config import Settings
from quant_assets.quant.feature_catalogue import load_catalogue
from quant_assets.quant.signal_catalogue import load_signal_catalogue
from quant_assets.quant.walk_forward import COST_MODES

COST_KEYS = ("fee_bps", "half_spread_bps", "impact_k", "participation_cap")
DEFAULT_HYPOTHESIS = (
    "The strategy with the best in-sample Sharpe among the signal catalogue's rules and the factor "
    "portfolios, re-selected every fold on its training window, earns a positive out-of-sample return."
)


def canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, default=str, separators=(",", ":"))


def canonical_hash(document: Any) -> str:
    """SHA-256 (hex) of the document's canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def hypothesis(settings: Settings) -> str:
    return settings.governance.hypothesis or DEFAULT_HYPOTHESIS


def catalogue_hashes(settings: Settings) -> dict[str, str]:
    """SHA-256 of the signal catalogue and of the feature catalogue (with the settings' EMAs, RSIs
    and volatility ensured, as the features asset builds it)."""
    cfg = settings.features
    features = load_catalogue(cfg.catalogue or None).ensure(cfg.ema_spans, cfg.rsi_periods, cfg.vol_window)
    return {"signal_catalogue": load_signal_catalogue(settings.signals.catalogue or None).fingerprint(),
            "feature_catalogue": features.fingerprint()}


def _plain(value: Any) -> Any:
    """Tuples as lists, so a document equals itself after a JSON round trip."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def experiment_config(settings: Settings, cost_mode: str) -> dict[str, Any]:
    """The experiment's defining document (see the module)."""
    if cost_mode not in COST_MODES:
        raise ValueError(f"cost mode must be one of {', '.join(COST_MODES)}, not {cost_mode!r}")
    backtest = dataclasses.asdict(settings.backtest)
    seeds = {"bootstrap": backtest.pop("bootstrap_seed")}
    if "simulator" in settings.candle_providers:
        seeds["simulator"] = settings.simulator_seed
    if cost_mode == "clean":
        backtest = {k: v for k, v in backtest.items() if k not in COST_KEYS}
    market = settings.factors.market_symbol or load_catalogue(settings.features.catalogue or None).market_symbol
    return _plain({
        "hypothesis": hypothesis(settings),
        "universe": {"symbols": sorted(settings.symbols), "market_symbol": market},
        "interval": settings.features.interval,
        "cost_mode": cost_mode,
        "strategy": {"backtest": backtest, "portfolio": dataclasses.asdict(settings.portfolio),
                     **catalogue_hashes(settings)},
        "seeds": seeds,
    })


def experiment_id(config: Mapping[str, Any]) -> str:
    return canonical_hash(config)[:16]


def experiment_ids(settings: Settings) -> dict[str, str]:
    """The experiment id of each cost mode under ``settings``."""
    return {mode: experiment_id(experiment_config(settings, mode)) for mode in COST_MODES}


def flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (``strategy.backtest.fee_bps``); lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _show(value: Any) -> str:
    return "(absent)" if value is _ABSENT else canonical_json(value)


_ABSENT = object()


def experiment_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """What differs from experiment ``a`` to ``b``, one line each, in this order: configuration
    keys, code (git commit and dirty flag), package versions, input partitions whose content
    hashes differ (and those only one of them read).

    ``a`` / ``b``: ``{"config": experiment_config, "git": {"commit", "dirty"}, "packages": {name:
    version}, "inputs": {table: {partition: sha256}}}``; a missing part compares as empty.
    """
    lines = []
    fa, fb = flatten(a.get("config") or {}), flatten(b.get("config") or {})
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, _ABSENT), fb.get(key, _ABSENT)
        if va != vb:
            lines.append(f"config {key}: {_show(va)} -> {_show(vb)}")
    ga, gb = a.get("git") or {}, b.get("git") or {}
    if (ga.get("commit"), ga.get("dirty")) != (gb.get("commit"), gb.get("dirty")):
        lines.append(f"code: commit {_commit(ga)} -> {_commit(gb)}")
    pa, pb = a.get("packages") or {}, b.get("packages") or {}
    for name in sorted(set(pa) | set(pb)):
        if pa.get(name) != pb.get(name):
            lines.append(f"package {name}: {pa.get(name, '(absent)')} -> {pb.get(name, '(absent)')}")
    ia, ib = a.get("inputs") or {}, b.get("inputs") or {}
    only: dict[str, list[str]] = {"a": [], "b": []}
    for table in sorted(set(ia) | set(ib)):
        da, db = ia.get(table, {}), ib.get(table, {})
        for part in sorted(set(da) | set(db)):
            if part not in db:
                only["a"].append(f"{table} {part}")
            elif part not in da:
                only["b"].append(f"{table} {part}")
            elif da[part] != db[part]:
                lines.append(f"input {table} {part}: sha256 {da[part][:12]} -> {db[part][:12]}")
    for side, parts in only.items():
        if parts:
            shown = ", ".join(parts[:5]) + (f" and {len(parts) - 5} more" if len(parts) > 5 else "")
            lines.append(f"inputs read only by {side.upper()}: {shown}")
    return lines


def _commit(git: Mapping[str, Any]) -> str:
    commit = str(git.get("commit") or "unknown")[:12]
    dirty = git.get("dirty")
    return f"{commit} ({'dirty' if dirty else 'clean' if dirty is False else 'state unknown'})"


TRIAL_EXCLUDED = {
    "backtest": ("bootstrap_samples", "bootstrap_block_bars", "pbo_splits", "min_bars_for_sharpe"),
    "portfolio": ("objectives", "risk_aversions", "modes", "calibration", "calibration_buckets"),
}


def trial_config(settings: Settings, cost_mode: str, strategy_json: str) -> str:
    """Canonical JSON of one trial: the strategy (``StrategySpec.config_json``) and the walk-forward
    settings its out-of-sample returns depend on in ``cost_mode``. The grid's own lists, the
    statistics' settings and the catalogues' other entries are left out, so the same strategy
    evaluated the same way is one trial however the grid around it changes."""
    strategy = experiment_config(settings, cost_mode)["strategy"]
    evaluation = {section: {k: v for k, v in strategy[section].items() if k not in TRIAL_EXCLUDED[section]}
                  for section in TRIAL_EXCLUDED}
    return canonical_json({"strategy": json.loads(strategy_json), "evaluation": evaluation})


REPRODUCED, MISMATCH, STALE, UNVERIFIED = "REPRODUCED", "MISMATCH", "STALE", "UNVERIFIED"


def experiment_status(folds: int, reproduced: int, mismatched: int, stale_days: int) -> str:
    """An experiment's standing, worst first: a fold that does not reproduce (``MISMATCH``), an
    input that changed since its manifest (``STALE``), every fold reproduced (``REPRODUCED``),
    else ``UNVERIFIED`` (mode trust, or not yet checked)."""
    if mismatched:
        return MISMATCH
    if stale_days:
        return STALE
    return REPRODUCED if folds and reproduced == folds else UNVERIFIED


def status_words(status: str, folds: int, reproduced: int, mismatched: int, mode: str) -> str:
    """One line for people: ``reproduced 60/60 folds (strict)``."""
    if status == REPRODUCED:
        return f"reproduced {reproduced}/{folds} folds ({mode})"
    if status == MISMATCH:
        return f"NOT reproduced: {mismatched} of {folds} folds differ ({mode})"
    if status == STALE:
        return f"stale: an input changed since its manifest was written ({reproduced}/{folds} folds reproduced)"
    return f"unverified: {reproduced}/{folds} folds reproduced ({mode})"

"""The signal catalogue: which trading rules the ``signals`` asset runs, as data (YAML), not code.

Each line of ``signals:`` names a rule of :data:`quant_assets.quant.signals.RULES` and its
parameters, e.g. ``- {rule: rsi_mean_reversion, params: {period: 14, lower: 30, upper: 70}}``,
with an optional ``name`` (a lower-case identifier) and ``description``. The default name is the
rule's prefix and its parameter values in the rule's order, written like feature columns
(``1.5`` -> ``1p5``): ``ema_crossover`` + ``{fast: 9, slow: 21}`` -> ``ema_cross_9_21``,
``atr_breakout`` + ``{channel: 20, atr_period: 14, factor: 1.5}`` -> ``atr_breakout_20_14_1p5``.
The packaged default is ``quant_assets/signal_catalogue.yaml``; ``signals.catalogue`` in the
settings points at another file.

Every problem is one :class:`CatalogueError` line naming the file and the line of the entry
(``signal_catalogue.yaml:14: signal #3 (rsi_mr): ...``). The catalogue's hash
(:meth:`SignalCatalogue.fingerprint`) is SHA-256 of its canonical content: the entries as JSON
(sorted keys, parameters normalised), ordered by name, so neither formatting, comments nor the
order of lines change it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from quant_assets.quant.signals import RULES, rule_positions

__all__ = ["DEFAULT_SIGNAL_CATALOGUE", "SignalCatalogue", "SignalCatalogueError", "SignalSpec",
           "load_signal_catalogue", "parse_signal_catalogue"]

DEFAULT_SIGNAL_CATALOGUE = Path(__file__).resolve().parent.parent / "signal_catalogue.yaml"
_ENTRY_KEYS = {"rule", "params", "name", "description"}


class SignalCatalogueError(ValueError):
    """The signal catalogue is malformed; the one-line message names the file, the line and the problem."""


@dataclass(frozen=True)
class SignalSpec:
    """One catalogue line: the signal's name, its rule and validated parameters, where it was read."""

    name: str
    rule: str
    params: tuple[tuple[str, Any], ...]
    where: str  # "<file>:<line>"

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def features(self) -> tuple[str, ...]:
        """The ``features_<interval>`` columns the rule reads."""
        return RULES[self.rule].features(**self.kwargs)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the rule reads on its decision bar (features and bars)."""
        return RULES[self.rule].columns(**self.kwargs)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rule": self.rule, "params": self.kwargs}


@dataclass(frozen=True)
class SignalCatalogue:
    signals: tuple[SignalSpec, ...]
    source: str = "<memory>"

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.signals]

    @property
    def features(self) -> list[str]:
        """Every feature column some signal reads, in first-use order."""
        return list(dict.fromkeys(c for s in self.signals for c in s.features))

    def as_dict(self) -> dict[str, Any]:
        return {"signals": [s.as_dict() for s in sorted(self.signals, key=lambda s: s.name)]}

    def fingerprint(self) -> str:
        """SHA-256 of the catalogue's canonical content (see the module)."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()

    def positions(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One Float64 column per signal (named like it) of target positions, row-aligned with
        ``frame`` (one row per bar, sorted by symbol, ts; see :mod:`quant_assets.quant.signals`)."""
        return pl.DataFrame([rule_positions(frame, s.rule, s.kwargs).alias(s.name) for s in self.signals])

    def require_features(self, available: Iterable[str]) -> None:
        """Raise naming the first signal line whose rule reads a feature column not in ``available``."""
        have = set(available)
        for spec in self.signals:
            missing = [c for c in spec.features if c not in have]
            if missing:
                raise SignalCatalogueError(
                    f"{spec.where}: signal {spec.name} needs feature column(s) {', '.join(missing)}, which the "
                    "feature catalogue does not produce (add them to it or to features.ema_spans / features.rsi_periods)"
                )


def _suffix(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace(".", "p").replace("-", "m")


def _spec(raw: Any, index: int, where: str) -> SignalSpec:
    label = f"{where}: signal #{index + 1}"
    if not isinstance(raw, Mapping):
        raise SignalCatalogueError(f"{label}: must be a mapping like {{rule: ema_crossover, params: {{fast: 9, slow: 21}}}}")
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise SignalCatalogueError(f"{label}: unknown key(s) {sorted(unknown)}; accepted: {', '.join(sorted(_ENTRY_KEYS))}")
    rule = raw.get("rule")
    if rule not in RULES:
        raise SignalCatalogueError(f"{label}: rule {rule!r} is unknown; accepted: {', '.join(sorted(RULES))}")
    definition = RULES[rule]
    params = raw.get("params") or {}
    if not isinstance(params, Mapping):
        raise SignalCatalogueError(f"{label}: params must be a mapping")
    if set(params) != set(definition.params):
        raise SignalCatalogueError(f"{label}: {rule} takes params {list(definition.params)}, got {sorted(params)}")
    try:
        checked = definition.validate(params)
    except ValueError as exc:
        raise SignalCatalogueError(f"{label}: {rule} {exc}") from None
    name = raw.get("name", "_".join([definition.prefix, *(_suffix(checked[p]) for p in definition.params)]))
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise SignalCatalogueError(f"{label}: name {name!r} must be a lower-case identifier")
    if "description" in raw and not isinstance(raw["description"], str):
        raise SignalCatalogueError(f"{label} ({name}): description must be text")
    return SignalSpec(name, rule, tuple((p, checked[p]) for p in definition.params), where)


def parse_signal_catalogue(raw: Any, source: str = "<memory>", lines: list[int] | None = None) -> SignalCatalogue:
    """Validate a catalogue mapping (the YAML's shape). ``lines``: the 1-based line of each entry."""
    if not isinstance(raw, Mapping):
        raise SignalCatalogueError(f"{source}:1: the signal catalogue must be a mapping with a 'signals' list")
    unknown = set(raw) - {"version", "signals"}
    if unknown:
        raise SignalCatalogueError(f"{source}:1: unknown top-level key(s) {sorted(unknown)}; accepted: signals, version")
    entries = raw.get("signals")
    if not isinstance(entries, list) or not entries:
        raise SignalCatalogueError(f"{source}:1: 'signals' must be a non-empty list")
    specs = tuple(
        _spec(e, i, f"{source}:{lines[i] if lines else i + 1}") for i, e in enumerate(entries)
    )
    seen: dict[str, SignalSpec] = {}
    for spec in specs:
        if spec.name in seen:
            first_line = seen[spec.name].where.rsplit(":", 1)[1]
            raise SignalCatalogueError(f"{spec.where}: signal name {spec.name} is already used on line {first_line}")
        seen[spec.name] = spec
    return SignalCatalogue(specs, source)


def _entry_lines(text: str) -> list[int] | None:
    """The 1-based line of each item of the top-level ``signals`` list, if the YAML has that shape."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "signals" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return None


def load_signal_catalogue(path: str | Path | None = None) -> SignalCatalogue:
    """Load and validate a signal catalogue YAML file (default: the packaged one)."""
    file = Path(path) if path else DEFAULT_SIGNAL_CATALOGUE
    try:
        text = file.read_text()
    except FileNotFoundError:
        raise SignalCatalogueError(f"signal catalogue {file} does not exist") from None
    except OSError as exc:
        raise SignalCatalogueError(f"signal catalogue {file} cannot be read: {exc.strerror or exc}") from None
    try:
        raw, lines = yaml.safe_load(text), _entry_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SignalCatalogueError(f"{file}{line}: not valid YAML: {problem}") from None
    return parse_signal_catalogue(raw, str(file), lines)

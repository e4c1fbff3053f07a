"""Typed settings: a YAML file, then environment overrides, validated once at load.

Order of precedence (last wins): built-in defaults, the YAML file named by ``QUANT_CONFIG``
(default ``./quant.yaml``; absent is fine), then these environment variables:

==========================  ==========================================  ========================
variable                    setting                                     default
==========================  ==========================================  ========================
``QUANT_DATA_DIR``          ``data_dir``                                ``./data``
``QUANT_DUCKDB_PATH``       ``duckdb_path``                             ``$QUANT_DATA_DIR/quant.duckdb``
``QUANT_SYMBOLS``           ``universe.symbols`` (comma-separated)      8 USDT pairs
``QUANT_BASE_INTERVAL``     ``intervals.base`` (``1m`` or ``5m``)       ``1m``
``QUANT_BAR_INTERVALS``     ``intervals.bars`` (comma-separated)        ``5m,15m,1h,1d``
``QUANT_START_DATE``        ``partitions.start_date`` (YYYY-MM-DD)      ``2024-01-01``
``QUANT_CANDLE_PROVIDERS``  ``providers.candles`` (comma-separated)     ``simulator``
``QUANT_SIMULATOR_SEED``    ``simulator.seed``                          ``42``
==========================  ==========================================  ========================

Invalid settings raise :class:`ConfigError` with one line naming the key and what is accepted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG_FILE = "quant.yaml"
INTERVAL_MINUTES: dict[str, int] = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440}
BASE_INTERVALS = ("1m", "5m")
CANDLE_PROVIDERS = ("simulator",)
DEFAULT_SYMBOLS = (
    "BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT", "AVAX/USDT",
)
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,15}/[A-Z0-9]{2,15}$")


class ConfigError(ValueError):
    """A setting is missing, malformed or outside its accepted values."""


@dataclass(frozen=True)
class FeatureSettings:
    interval: str = "1h"
    ema_spans: tuple[int, ...] = (9, 21, 50)
    rsi_periods: tuple[int, ...] = (14,)
    vol_window: int = 24


@dataclass(frozen=True)
class SignalSettings:
    ema_pairs: tuple[tuple[int, int], ...] = ((9, 21), (21, 50), (9, 50))


@dataclass(frozen=True)
class BacktestSettings:
    train_days: int = 14
    min_train_days: int = 7
    fee_bps: float = 10.0
    slippage_bps: float = 5.0


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    duckdb_path: Path = Path("data/quant.duckdb")
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    base_interval: str = "1m"
    bar_intervals: tuple[str, ...] = ("5m", "15m", "1h", "1d")
    start_date: date = date(2024, 1, 1)
    candle_providers: tuple[str, ...] = ("simulator",)
    simulator_seed: int = 42
    features: FeatureSettings = field(default_factory=FeatureSettings)
    signals: SignalSettings = field(default_factory=SignalSettings)
    backtest: BacktestSettings = field(default_factory=BacktestSettings)

    @property
    def manifest_dir(self) -> Path:
        return self.data_dir / "manifests"

    def fingerprint(self) -> str:
        """SHA-256 of the settings that shape data (paths excluded), for manifests."""
        shaped = {k: v for k, v in asdict(self).items() if k not in ("data_dir", "duckdb_path")}
        text = json.dumps(shaped, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


_KNOWN: dict[str, tuple[str, ...]] = {
    "": ("data_dir", "duckdb_path", "universe", "intervals", "partitions", "providers",
         "simulator", "features", "signals", "backtest"),
    "universe": ("symbols",),
    "intervals": ("base", "bars"),
    "partitions": ("start_date",),
    "providers": ("candles",),
    "simulator": ("seed",),
    "features": ("interval", "ema_spans", "rsi_periods", "vol_window"),
    "signals": ("ema_pairs",),
    "backtest": ("train_days", "min_train_days", "fee_bps", "slippage_bps"),
}

_ENV: dict[str, tuple[str, str]] = {
    "QUANT_DATA_DIR": ("", "data_dir"),
    "QUANT_DUCKDB_PATH": ("", "duckdb_path"),
    "QUANT_SYMBOLS": ("universe", "symbols"),
    "QUANT_BASE_INTERVAL": ("intervals", "base"),
    "QUANT_BAR_INTERVALS": ("intervals", "bars"),
    "QUANT_START_DATE": ("partitions", "start_date"),
    "QUANT_CANDLE_PROVIDERS": ("providers", "candles"),
    "QUANT_SIMULATOR_SEED": ("simulator", "seed"),
}
_LIST_KEYS = {"symbols", "bars", "candles"}


def _check_known(raw: Mapping[str, Any], section: str = "") -> None:
    for key, value in raw.items():
        dotted = f"{section}.{key}" if section else key
        if key not in _KNOWN[section]:
            raise ConfigError(f"config key '{dotted}' is unknown; accepted: {', '.join(_KNOWN[section])}")
        if not section and key in _KNOWN and key != "":
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key '{key}' must be a mapping with keys: {', '.join(_KNOWN[key])}")
            _check_known(value, key)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return loaded


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for var, (section, key) in _ENV.items():
        if var not in env or env[var] == "":
            continue
        value: Any = env[var]
        if key in _LIST_KEYS:
            value = [part.strip() for part in value.split(",") if part.strip()]
        target = raw.setdefault(section, {}) if section else raw
        target[key] = value


def _interval(value: Any, key: str, accepted: tuple[str, ...]) -> str:
    if value not in accepted:
        raise ConfigError(f"config key '{key}' = {value!r} is not accepted; accepted: {', '.join(accepted)}")
    return str(value)


def _positive_int(value: Any, key: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key '{key}' = {value!r} must be a positive integer") from None
    if number <= 0 or str(number) != str(value).strip():
        raise ConfigError(f"config key '{key}' = {value!r} must be a positive integer")
    return number


def _int_list(value: Any, key: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"config key '{key}' must be a non-empty list of positive integers")
    return tuple(_positive_int(v, key) for v in value)


def _validate(raw: dict[str, Any]) -> Settings:
    defaults = Settings()
    data_dir = Path(raw.get("data_dir") or defaults.data_dir)
    duckdb_path = Path(raw.get("duckdb_path") or data_dir / "quant.duckdb")

    symbols = tuple(raw.get("universe", {}).get("symbols", defaults.symbols))
    if not symbols:
        raise ConfigError("config key 'universe.symbols' is empty; give at least one symbol like BTC/USDT")
    for symbol in symbols:
        if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
            raise ConfigError(
                f"config key 'universe.symbols' has {symbol!r}; accepted: ccxt style BASE/QUOTE such as BTC/USDT"
            )
    if len(set(symbols)) != len(symbols):
        raise ConfigError("config key 'universe.symbols' lists a symbol twice")

    intervals = raw.get("intervals", {})
    base = _interval(intervals.get("base", defaults.base_interval), "intervals.base", BASE_INTERVALS)
    bars = tuple(intervals.get("bars", defaults.bar_intervals))
    if not bars:
        raise ConfigError("config key 'intervals.bars' is empty; accepted: " + ", ".join(INTERVAL_MINUTES))
    for bar in bars:
        _interval(bar, "intervals.bars", tuple(INTERVAL_MINUTES))
        if INTERVAL_MINUTES[bar] % INTERVAL_MINUTES[base]:
            raise ConfigError(
                f"config key 'intervals.bars' has {bar}, not a multiple of the base interval {base}"
            )
    if len(set(bars)) != len(bars):
        raise ConfigError("config key 'intervals.bars' lists an interval twice")

    start_raw = raw.get("partitions", {}).get("start_date", defaults.start_date)
    try:
        start_date = start_raw if isinstance(start_raw, date) else date.fromisoformat(str(start_raw))
    except ValueError:
        raise ConfigError(
            f"config key 'partitions.start_date' = {start_raw!r} is not a date; accepted: YYYY-MM-DD"
        ) from None

    providers = tuple(raw.get("providers", {}).get("candles", defaults.candle_providers))
    if not providers:
        raise ConfigError("config key 'providers.candles' is empty; accepted: " + ", ".join(CANDLE_PROVIDERS))
    for name in providers:
        _interval(name, "providers.candles", CANDLE_PROVIDERS)

    seed = _positive_int(raw.get("simulator", {}).get("seed", defaults.simulator_seed), "simulator.seed")

    feat_raw = raw.get("features", {})
    features = FeatureSettings(
        interval=_interval(feat_raw.get("interval", defaults.features.interval), "features.interval", bars),
        ema_spans=_int_list(feat_raw.get("ema_spans", list(defaults.features.ema_spans)), "features.ema_spans"),
        rsi_periods=_int_list(
            feat_raw.get("rsi_periods", list(defaults.features.rsi_periods)), "features.rsi_periods"
        ),
        vol_window=_positive_int(feat_raw.get("vol_window", defaults.features.vol_window), "features.vol_window"),
    )

    pairs_raw = raw.get("signals", {}).get("ema_pairs", [list(p) for p in defaults.signals.ema_pairs])
    if not isinstance(pairs_raw, list | tuple) or not pairs_raw:
        raise ConfigError("config key 'signals.ema_pairs' must be a non-empty list of [fast, slow]")
    pairs: list[tuple[int, int]] = []
    for pair in pairs_raw:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ConfigError(f"config key 'signals.ema_pairs' has {pair!r}; accepted: [fast, slow]")
        fast, slow = _int_list(pair, "signals.ema_pairs")
        if fast >= slow:
            raise ConfigError(f"config key 'signals.ema_pairs' has {pair!r}; fast must be < slow")
        for span in (fast, slow):
            if span not in features.ema_spans:
                raise ConfigError(
                    f"config key 'signals.ema_pairs' uses EMA {span}, not in features.ema_spans {list(features.ema_spans)}"
                )
        pairs.append((fast, slow))

    bt_raw = raw.get("backtest", {})
    backtest = BacktestSettings(
        train_days=_positive_int(bt_raw.get("train_days", defaults.backtest.train_days), "backtest.train_days"),
        min_train_days=_positive_int(
            bt_raw.get("min_train_days", defaults.backtest.min_train_days), "backtest.min_train_days"
        ),
        fee_bps=float(bt_raw.get("fee_bps", defaults.backtest.fee_bps)),
        slippage_bps=float(bt_raw.get("slippage_bps", defaults.backtest.slippage_bps)),
    )
    if backtest.min_train_days > backtest.train_days:
        raise ConfigError("config key 'backtest.min_train_days' must not exceed backtest.train_days")
    if backtest.fee_bps < 0 or backtest.slippage_bps < 0:
        raise ConfigError("config keys 'backtest.fee_bps' and 'backtest.slippage_bps' must be >= 0")

    return Settings(
        data_dir=data_dir,
        duckdb_path=duckdb_path,
        symbols=symbols,
        base_interval=base,
        bar_intervals=bars,
        start_date=start_date,
        candle_providers=providers,
        simulator_seed=seed,
        features=features,
        signals=SignalSettings(ema_pairs=tuple(pairs)),
        backtest=backtest,
    )


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load and validate settings: defaults <- YAML file <- environment <- ``overrides``.

    ``overrides`` uses the YAML shape (e.g. ``{"universe": {"symbols": ["BTC/USDT"]}}``) and is
    how tests and the CLI adjust a setting without touching the process environment.
    """
    env = os.environ if env is None else env
    path = Path(config_file or env.get("QUANT_CONFIG") or DEFAULT_CONFIG_FILE)
    raw: dict[str, Any] = {}
    if path.exists():
        raw = _read_yaml(path)
    elif config_file or env.get("QUANT_CONFIG"):
        raise ConfigError(f"config file {path} (QUANT_CONFIG) does not exist")
    _check_known(raw)
    _apply_env(raw, env)
    for section, values in (overrides or {}).items():
        if isinstance(values, Mapping):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    _check_known(raw)
    return _validate(raw)

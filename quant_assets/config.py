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

Ingestion (see ``providers/``): ``QUANT_SPOT_PROVIDERS`` (``providers.spot``, default
``simulator``), ``QUANT_DEX_PROVIDERS`` (``providers.dex``, default none), ``QUANT_DEX_PAIRS``
(``providers.dex_pairs``, ``chainId/pairAddress``), ``QUANT_ALTERNATIVE_PROVIDERS``
(``providers.alternative``, default none), ``QUANT_FUNDING_SYMBOLS``, ``QUANT_FILES_DIR``
(``providers.files_dir``), ``QUANT_<PROVIDER>_BASE_URL`` (``providers.base_urls.<provider>``),
``QUANT_POLL_INTERVAL_S`` (``polling.interval_s``, default 60); the ``resilience`` section has
no variables. API keys (``QUANT_<PROVIDER>_API_KEY``) are read by the providers from the
environment only and never enter these settings.

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
"""Every interval the platform knows, in minutes: the single table providers, bars and features use."""


def bars_per_year(interval: str) -> float:
    """Bars in a 365-day year of 24/7 trading: the annualisation factor for ``interval``."""
    return 365 * 1440 / INTERVAL_MINUTES[interval]
BASE_INTERVALS = ("1m", "5m")
CANDLE_PROVIDERS = ("simulator", "binance", "coinbase", "kraken", "files", "binance_archive")
SPOT_PROVIDERS = ("simulator", "binance", "coinbase", "kraken")
DEX_PROVIDERS = ("dexscreener",)
ALTERNATIVE_PROVIDERS = ("alternative_me", "binance_futures")  # fear & greed, funding rates
# HTTP sources with a configurable base URL (``providers.base_urls.<name>``, env
# ``QUANT_<NAME>_BASE_URL``); kept in sync with ``providers.registry`` (a test checks it).
HTTP_BASE_URLS: dict[str, str] = {
    "binance": "https://api.binance.com",
    "coinbase": "https://api.exchange.coinbase.com",
    "kraken": "https://api.kraken.com",
    "dexscreener": "https://api.dexscreener.com",
    "binance_futures": "https://fapi.binance.com",
    "alternative_me": "https://api.alternative.me",
}
DEFAULT_SYMBOLS = (
    "BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT", "AVAX/USDT",
)
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,15}/[A-Z0-9]{2,15}$")


class ConfigError(ValueError):
    """A setting is missing, malformed or outside its accepted values."""


@dataclass(frozen=True)
class BarSettings:
    """Bar columns and the thresholds of the bar quality gates."""

    roll_vol_window: int = 20          # bars in the rolling volatility window
    min_completeness: float = 0.95     # WARN below this share of expected source candles
    max_gap_minutes: int = 60          # WARN on a run of missing candles longer than this
    return_z_max: float = 12.0         # WARN on a log return beyond this many robust z-scores
    max_staleness_minutes: int = 60    # WARN when a symbol's last bar ends this long before the window


@dataclass(frozen=True)
class FeatureSettings:
    interval: str = "1h"
    ema_spans: tuple[int, ...] = (9, 21, 50)
    rsi_periods: tuple[int, ...] = (14,)
    vol_window: int = 24
    catalogue: str = ""  # feature catalogue YAML; "" = the packaged quant_assets/feature_catalogue.yaml


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
class AutomationSettings:
    """Schedules and declarative refresh (see defs/automation.py). Times are UTC."""

    schedules_enabled: bool = False    # daily (and intraday) schedules start RUNNING when true
    declarative_enabled: bool = True   # the automation-condition sensor (downstream follows upstream)
    daily_at: str = "00:10"            # HH:MM after midnight when the new daily partition is filled
    intraday_refresh: bool = False     # hourly refresh of the current day (needs a current-day partition)
    freshness_grace_minutes: int = 120 # bars/features are stale when not updated by daily_at + grace


@dataclass(frozen=True)
class AlertSettings:
    """Alert sensors and sinks (see defs/alerts.py). Sink URLs and tokens come from env only."""

    enabled: bool = True               # alert sensors start RUNNING
    escalate_after: int = 3            # consecutive failures that raise an alert to CRITICAL
    provider_down_minutes: int = 15    # a provider DOWN for longer than this alerts
    check_interval_s: int = 30         # alert sensors' minimum interval
    retry_attempts: int = 4            # deliveries per sink and message, first included
    retry_wait_s: float = 1.0          # exponential backoff base between deliveries
    retry_max_wait_s: float = 30.0
    timeout_s: float = 10.0            # one HTTP delivery
    ui_url: str = "http://127.0.0.1:3000"  # links in messages


@dataclass(frozen=True)
class ResilienceSettings:
    """How every provider call is throttled, retried, broken and cached (see providers/http.py)."""

    timeout_s: float = 10.0            # connect/read timeout of one HTTP request
    max_attempts: int = 4              # tries per call, first included
    backoff_multiplier_s: float = 0.5  # exponential backoff base: 0.5, 1, 2, ... plus jitter
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 60.0    # a longer Retry-After is not waited for: the breaker opens
    breaker_failures: int = 3          # consecutive failed calls that open a provider's breaker
    breaker_cooldown_s: float = 60.0   # OPEN for this long, then one HALF_OPEN probe
    lkg_ttl_s: float = 900.0           # last-known-good values older than this are a gap
    max_workers: int = 4               # symbols fetched in parallel
    rate_scale: float = 1.0            # multiplies every documented rate limit (benchmarks, mirrors)


@dataclass(frozen=True)
class IngestionSettings:
    """Provider chains beyond candles, base URLs, the files directory, polling."""

    spot_providers: tuple[str, ...] = ("simulator",)
    dex_providers: tuple[str, ...] = ()
    dex_pairs: tuple[str, ...] = ()    # "chainId/pairAddress"
    alternative_providers: tuple[str, ...] = ()  # off by default: the demo runs offline
    base_urls: tuple[tuple[str, str], ...] = tuple(sorted(HTTP_BASE_URLS.items()))
    files_dir: Path | None = None
    funding_symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
    poll_interval_s: int = 60
    resilience: ResilienceSettings = field(default_factory=ResilienceSettings)

    def base_url(self, provider: str) -> str:
        return dict(self.base_urls)[provider]


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
    trades_dir: Path | None = None     # trade files ({BASE}_{QUOTE}-trades.parquet|.feather); None = no trade assets
    ingestion: IngestionSettings = field(default_factory=IngestionSettings)
    bars: BarSettings = field(default_factory=BarSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    signals: SignalSettings = field(default_factory=SignalSettings)
    backtest: BacktestSettings = field(default_factory=BacktestSettings)
    automation: AutomationSettings = field(default_factory=AutomationSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)

    @property
    def manifest_dir(self) -> Path:
        return self.data_dir / "manifests"

    def fingerprint(self) -> str:
        """SHA-256 of the settings that shape data (paths excluded), for manifests."""
        shaped = {
            k: v for k, v in asdict(self).items()
            if k not in ("data_dir", "duckdb_path", "automation", "alerts")
        }
        text = json.dumps(shaped, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


_KNOWN: dict[str, tuple[str, ...]] = {
    "": ("data_dir", "duckdb_path", "universe", "intervals", "partitions", "providers",
         "resilience", "polling", "simulator", "trades", "bars", "features", "signals", "backtest",
         "automation", "alerts"),
    "universe": ("symbols",),
    "intervals": ("base", "bars"),
    "partitions": ("start_date",),
    "providers": ("candles", "spot", "dex", "dex_pairs", "alternative", "base_urls", "files_dir",
                  "funding_symbols"),
    "resilience": tuple(ResilienceSettings.__dataclass_fields__),
    "polling": ("interval_s",),
    "simulator": ("seed",),
    "trades": ("directory",),
    "bars": ("roll_vol_window", "min_completeness", "max_gap_minutes", "return_z_max", "max_staleness_minutes"),
    "features": ("interval", "ema_spans", "rsi_periods", "vol_window", "catalogue"),
    "signals": ("ema_pairs",),
    "backtest": ("train_days", "min_train_days", "fee_bps", "slippage_bps"),
    "automation": tuple(AutomationSettings.__dataclass_fields__),
    "alerts": tuple(AlertSettings.__dataclass_fields__),
}

_ENV: dict[str, tuple[str, str]] = {
    "QUANT_DATA_DIR": ("", "data_dir"),
    "QUANT_DUCKDB_PATH": ("", "duckdb_path"),
    "QUANT_SYMBOLS": ("universe", "symbols"),
    "QUANT_BASE_INTERVAL": ("intervals", "base"),
    "QUANT_BAR_INTERVALS": ("intervals", "bars"),
    "QUANT_START_DATE": ("partitions", "start_date"),
    "QUANT_CANDLE_PROVIDERS": ("providers", "candles"),
    "QUANT_SPOT_PROVIDERS": ("providers", "spot"),
    "QUANT_DEX_PROVIDERS": ("providers", "dex"),
    "QUANT_DEX_PAIRS": ("providers", "dex_pairs"),
    "QUANT_ALTERNATIVE_PROVIDERS": ("providers", "alternative"),
    "QUANT_FUNDING_SYMBOLS": ("providers", "funding_symbols"),
    "QUANT_FILES_DIR": ("providers", "files_dir"),
    "QUANT_POLL_INTERVAL_S": ("polling", "interval_s"),
    "QUANT_SIMULATOR_SEED": ("simulator", "seed"),
    "QUANT_TRADES_DIR": ("trades", "directory"),
    "QUANT_SCHEDULES_ENABLED": ("automation", "schedules_enabled"),
    "QUANT_ALERTS_ENABLED": ("alerts", "enabled"),
}
_LIST_KEYS = {"symbols", "bars", "candles", "spot", "dex", "dex_pairs", "alternative", "funding_symbols"}


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
    for provider in HTTP_BASE_URLS:  # QUANT_BINANCE_BASE_URL -> providers.base_urls.binance
        url = env.get(f"QUANT_{provider.upper()}_BASE_URL")
        if url:
            urls = raw.setdefault("providers", {}).setdefault("base_urls", {})
            if isinstance(urls, dict):
                urls[provider] = url


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


def _trades_dir(value: Any) -> Path | None:
    if value in (None, ""):
        return None
    path = Path(str(value))
    if not path.is_dir():
        raise ConfigError(f"config key 'trades.directory' = {str(value)!r} is not a directory (QUANT_TRADES_DIR)")
    return path


def _positive_float(value: Any, key: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config key '{key}' = {value!r} must be a positive number") from None
    if not number > 0 or number == float("inf"):
        raise ConfigError(f"config key '{key}' = {value!r} must be a positive number")
    return number


def _fraction(value: Any, key: str) -> float:
    number = _positive_float(value, key)
    if number > 1:
        raise ConfigError(f"config key '{key}' = {value!r} must lie in (0, 1]")
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
    ingestion = _validate_ingestion(raw)

    bars_raw = raw.get("bars", {})
    bar_defaults = BarSettings()
    bar_settings = BarSettings(
        roll_vol_window=_positive_int(bars_raw.get("roll_vol_window", bar_defaults.roll_vol_window), "bars.roll_vol_window"),
        min_completeness=_fraction(bars_raw.get("min_completeness", bar_defaults.min_completeness), "bars.min_completeness"),
        max_gap_minutes=_positive_int(bars_raw.get("max_gap_minutes", bar_defaults.max_gap_minutes), "bars.max_gap_minutes"),
        return_z_max=_positive_float(bars_raw.get("return_z_max", bar_defaults.return_z_max), "bars.return_z_max"),
        max_staleness_minutes=_positive_int(
            bars_raw.get("max_staleness_minutes", bar_defaults.max_staleness_minutes), "bars.max_staleness_minutes"
        ),
    )
    if bar_settings.roll_vol_window < 2:
        raise ConfigError("config key 'bars.roll_vol_window' must be at least 2 (a sample std needs two returns)")

    feat_raw = raw.get("features", {})
    features = FeatureSettings(
        interval=_interval(feat_raw.get("interval", defaults.features.interval), "features.interval", bars),
        ema_spans=_int_list(feat_raw.get("ema_spans", list(defaults.features.ema_spans)), "features.ema_spans"),
        rsi_periods=_int_list(
            feat_raw.get("rsi_periods", list(defaults.features.rsi_periods)), "features.rsi_periods"
        ),
        vol_window=_positive_int(feat_raw.get("vol_window", defaults.features.vol_window), "features.vol_window"),
        catalogue=str(feat_raw.get("catalogue") or ""),
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
        trades_dir=_trades_dir(raw.get("trades", {}).get("directory")),
        ingestion=ingestion,
        bars=bar_settings,
        features=features,
        signals=SignalSettings(ema_pairs=tuple(pairs)),
        backtest=backtest,
        automation=_validate_automation(raw.get("automation", {})),
        alerts=_validate_alerts(raw.get("alerts", {})),
    )


def _provider_list(raw: Mapping[str, Any], key: str, accepted: tuple[str, ...], default: tuple[str, ...],
                   allow_empty: bool = False) -> tuple[str, ...]:
    names = raw.get(key, default)
    if not isinstance(names, list | tuple) or (not names and not allow_empty):
        raise ConfigError(f"config key 'providers.{key}' must be a non-empty list; accepted: {', '.join(accepted)}")
    for name in names:
        _interval(name, f"providers.{key}", accepted)
    if len(set(names)) != len(names):
        raise ConfigError(f"config key 'providers.{key}' lists a provider twice")
    return tuple(names)


def _validate_ingestion(raw: Mapping[str, Any]) -> IngestionSettings:
    defaults = IngestionSettings()
    prov = raw.get("providers", {})
    spot = _provider_list(prov, "spot", SPOT_PROVIDERS, defaults.spot_providers)
    dex = _provider_list(prov, "dex", DEX_PROVIDERS, defaults.dex_providers, allow_empty=True)
    alternative = _provider_list(prov, "alternative", ALTERNATIVE_PROVIDERS, defaults.alternative_providers,
                                 allow_empty=True)
    pairs = tuple(str(p) for p in prov.get("dex_pairs", defaults.dex_pairs))
    for pair in pairs:
        if not re.match(r"^[a-z0-9_-]{2,30}/[A-Za-z0-9]{20,70}$", pair):
            raise ConfigError(f"config key 'providers.dex_pairs' has {pair!r}; accepted: chainId/pairAddress")
    funding = tuple(prov.get("funding_symbols", defaults.funding_symbols))
    for symbol in funding:
        if not isinstance(symbol, str) or not _SYMBOL_RE.match(symbol):
            raise ConfigError(f"config key 'providers.funding_symbols' has {symbol!r}; accepted: BASE/QUOTE")
    urls_raw = prov.get("base_urls", {})
    if not isinstance(urls_raw, Mapping):
        raise ConfigError("config key 'providers.base_urls' must be a mapping provider: URL")
    urls = dict(HTTP_BASE_URLS)
    for name, url in urls_raw.items():
        if name not in HTTP_BASE_URLS:
            raise ConfigError(
                f"config key 'providers.base_urls.{name}' is unknown; accepted: {', '.join(HTTP_BASE_URLS)}"
            )
        if not isinstance(url, str) or not re.match(r"^https?://[^\s]+$", url):
            raise ConfigError(f"config key 'providers.base_urls.{name}' = {url!r} is not an http(s) URL")
        urls[name] = url.rstrip("/")
    files_dir = prov.get("files_dir")
    res_raw = raw.get("resilience", {})
    res_defaults = ResilienceSettings()
    res_values: dict[str, Any] = {}
    for name, fld in ResilienceSettings.__dataclass_fields__.items():
        value = res_raw.get(name, getattr(res_defaults, name))
        if fld.type in (int, "int"):
            res_values[name] = _positive_int(value, f"resilience.{name}")
        else:
            res_values[name] = _positive_float(value, f"resilience.{name}")
    poll = _positive_int(raw.get("polling", {}).get("interval_s", defaults.poll_interval_s), "polling.interval_s")
    return IngestionSettings(
        spot_providers=spot,
        dex_providers=dex,
        dex_pairs=pairs,
        alternative_providers=alternative,
        base_urls=tuple(sorted(urls.items())),
        files_dir=Path(files_dir) if files_dir else None,
        funding_symbols=funding,
        poll_interval_s=poll,
        resilience=ResilienceSettings(**res_values),
    )


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"config key '{key}' = {value!r} is not accepted; accepted: true, false")


def _validate_automation(raw: Mapping[str, Any]) -> AutomationSettings:
    d = AutomationSettings()
    daily_at = str(raw.get("daily_at", d.daily_at))
    match = re.match(r"^([01]?\d|2[0-3]):([0-5]\d)$", daily_at)
    if not match:
        raise ConfigError(f"config key 'automation.daily_at' = {daily_at!r} is not accepted; accepted: HH:MM (UTC)")
    return AutomationSettings(
        schedules_enabled=_bool(raw.get("schedules_enabled", d.schedules_enabled), "automation.schedules_enabled"),
        declarative_enabled=_bool(raw.get("declarative_enabled", d.declarative_enabled), "automation.declarative_enabled"),
        daily_at=f"{int(match.group(1)):02d}:{match.group(2)}",
        intraday_refresh=_bool(raw.get("intraday_refresh", d.intraday_refresh), "automation.intraday_refresh"),
        freshness_grace_minutes=_positive_int(
            raw.get("freshness_grace_minutes", d.freshness_grace_minutes), "automation.freshness_grace_minutes"
        ),
    )


def _validate_alerts(raw: Mapping[str, Any]) -> AlertSettings:
    d = AlertSettings()
    ui_url = str(raw.get("ui_url", d.ui_url))
    if not re.match(r"^https?://[^\s]+$", ui_url):
        raise ConfigError(f"config key 'alerts.ui_url' = {ui_url!r} is not an http(s) URL")
    alerts = AlertSettings(
        enabled=_bool(raw.get("enabled", d.enabled), "alerts.enabled"),
        escalate_after=_positive_int(raw.get("escalate_after", d.escalate_after), "alerts.escalate_after"),
        provider_down_minutes=_positive_int(
            raw.get("provider_down_minutes", d.provider_down_minutes), "alerts.provider_down_minutes"
        ),
        check_interval_s=_positive_int(raw.get("check_interval_s", d.check_interval_s), "alerts.check_interval_s"),
        retry_attempts=_positive_int(raw.get("retry_attempts", d.retry_attempts), "alerts.retry_attempts"),
        retry_wait_s=_positive_float(raw.get("retry_wait_s", d.retry_wait_s), "alerts.retry_wait_s"),
        retry_max_wait_s=_positive_float(raw.get("retry_max_wait_s", d.retry_max_wait_s), "alerts.retry_max_wait_s"),
        timeout_s=_positive_float(raw.get("timeout_s", d.timeout_s), "alerts.timeout_s"),
        ui_url=ui_url.rstrip("/"),
    )
    return alerts


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


def settings_to_json(settings: Settings) -> str:
    """Canonical JSON of the settings, for Dagster resource config (see :func:`settings_from_json`)."""
    return json.dumps(asdict(settings), sort_keys=True, default=str)


def settings_from_json(text: str) -> Settings:
    """The :class:`Settings` that :func:`settings_to_json` wrote."""
    return _rebuild(Settings, json.loads(text))


def _rebuild(cls: type, data: Mapping[str, Any]) -> Any:
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)

    def coerce(kind: Any, value: Any) -> Any:
        if value is None:
            return None
        origin = typing.get_origin(kind)
        if dataclasses.is_dataclass(kind):
            return _rebuild(kind, value)
        if origin is tuple:
            args = typing.get_args(kind)
            inner = args[0]
            return tuple(coerce(inner, v) if len(args) == 2 and args[1] is Ellipsis else coerce(a, v)
                         for a, v in zip(args if args[-1] is not Ellipsis else [inner] * len(value), value, strict=True))
        if kind is Path or (origin is not None and Path in typing.get_args(kind)):
            return Path(value)
        if kind is date:
            return date.fromisoformat(value)
        return value

    return cls(**{f.name: coerce(hints[f.name], data[f.name]) for f in dataclasses.fields(cls)})

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
(``providers.files_dir``), ``QUANT_CCXT_EXCHANGE`` (``providers.ccxt_exchange``, the exchange the
``ccxt`` candle provider asks, default ``binance``), ``QUANT_<PROVIDER>_BASE_URL``
(``providers.base_urls.<provider>``; for ``ccxt`` it replaces the scheme and host of each of the
exchange's API URLs, unset: the exchange's own), ``QUANT_POLL_INTERVAL_S`` (``polling.interval_s``, default 60); the ``resilience`` section has
no variables. API keys (``QUANT_<PROVIDER>_API_KEY``) are read by the providers from the
environment only and never enter these settings (ccxt's: ``QUANT_CCXT_API_KEY``,
``QUANT_CCXT_API_SECRET``, ``QUANT_CCXT_PASSPHRASE``).

A variable set to a blank value: a scalar counts as unset (``QUANT_DATA_DIR=`` means the
default); a list is the empty list, so ``QUANT_SYMBOLS=""`` is an error (the universe must not
be empty) rather than, silently, the 8 default symbols, and ``QUANT_DEX_PAIRS=""`` means none.

Invalid settings raise :class:`ConfigError` with one line naming the key, the value and what is
accepted, e.g. ``config key 'backtest.fee_bps' = 'abc' must be a number >= 0 and <= 1000 (basis points)``;
a value from the environment names its variable too. A value echoed in the line is cut to 80
characters (a path to 160; ``...`` marks the cut), so a 5,000-character symbol gives a short line.

How it is built: :class:`Config` and its sections are pydantic dataclasses in the YAML's own
shape (unknown keys forbidden, frozen, no NaN/inf, bounded numbers, ``Literal`` intervals and
provider names, validators for the rules that span keys). Each field's ``description`` is the
"what is accepted" of its error line. :class:`Settings` is the typed view the rest of the code
reads: the sections whose shape matches (``bars``, ``features``, ``signals``, ``backtest``,
``automation``, ``alerts``, ``resilience``) are the very same objects, the rest is regrouped
(``universe.symbols`` -> ``symbols``, ``providers``/``polling``/``resilience`` -> ``ingestion``).
Everything stays a dataclass, so ``dataclasses.asdict`` and :meth:`Settings.fingerprint` see
exactly the values and types they always did.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import asdict, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import PydanticCustomError

DEFAULT_CONFIG_FILE = "quant.yaml"

Interval = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
BaseInterval = Literal["1m", "5m"]
CandleProvider = Literal["simulator", "binance", "coinbase", "kraken", "files", "binance_archive", "ccxt"]
SpotProvider = Literal["simulator", "binance", "coinbase", "kraken"]
DexProvider = Literal["dexscreener"]
AlternativeProvider = Literal["alternative_me", "binance_futures"]  # fear & greed, funding rates
HttpProvider = Literal["binance", "coinbase", "kraken", "dexscreener", "binance_futures", "alternative_me", "ccxt"]

INTERVAL_MINUTES: dict[str, int] = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440}
"""Every interval the platform knows, in minutes: the single table providers, bars and features use."""


def bars_per_year(interval: str) -> float:
    """Bars in a 365-day year of 24/7 trading: the annualisation factor for ``interval``."""
    return 365 * 1440 / INTERVAL_MINUTES[interval]


BASE_INTERVALS: tuple[str, ...] = get_args(BaseInterval)
CANDLE_PROVIDERS: tuple[str, ...] = get_args(CandleProvider)
SPOT_PROVIDERS: tuple[str, ...] = get_args(SpotProvider)
DEX_PROVIDERS: tuple[str, ...] = get_args(DexProvider)
ALTERNATIVE_PROVIDERS: tuple[str, ...] = get_args(AlternativeProvider)
FILE_PROVIDERS = ("files", "binance_archive")  # candle providers that read providers.files_dir
# HTTP sources with a fixed default base URL (``providers.base_urls.<name>``, env
# ``QUANT_<NAME>_BASE_URL``); kept in sync with ``providers.registry`` (a test checks it). ``ccxt``
# also takes one (``HttpProvider`` lists every key), with no default: the exchange's own URLs.
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
DEFAULT_CCXT_EXCHANGE = "binance"
SIMULATOR_EPOCH = date(2015, 1, 1)  # the simulator's first day (providers.simulator.EPOCH; a test checks it)
SYMBOL_PATTERN = r"^[A-Z0-9]{2,15}/[A-Z0-9]{2,15}$"
DEX_PAIR_PATTERN = r"^[a-z0-9_-]{2,30}/[A-Za-z0-9]{20,70}$"
URL_PATTERN = r"^https?://[^\s/]+(/\S*)?$"

# Upper bounds keep every derived time (now + a TTL, a window's lookback, a sleep) representable.
MAX_SECONDS = 31_536_000   # a year
MAX_MINUTES = 525_600      # a year
MAX_WINDOW = 100_000       # bars in a rolling window, EMA span or RSI period
MAX_DAYS = 3_650           # training days
MAX_COUNT = 1_000          # attempts, failures, workers
MAX_BPS = 1_000            # a one-way cost of 10 %


class ConfigError(ValueError):
    """A setting is missing, malformed or outside its accepted values."""


# ---------------------------------------------------------------------------------------------
# Field types. Each carries its accepted values as ``description``: the end of the error line.


def _fail(kind: str, reason: str = "") -> PydanticCustomError:
    return PydanticCustomError(kind, "{reason}", {"reason": reason})


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would read true as 1
        raise _fail("bool_is_not_a_number")
    return value


def _integer(low: int, high: int, accepted: str = "") -> Any:
    return Annotated[int, BeforeValidator(_no_bool),
                     Field(ge=low, le=high, description=accepted or f"an integer from {low} to {high}")]


def _number(accepted: str, **bounds: float) -> Any:
    return Annotated[float, BeforeValidator(_no_bool), Field(description=accepted, **bounds)]


Seconds = _number(f"a number of seconds > 0 and <= {MAX_SECONDS}", gt=0, le=MAX_SECONDS)
Minutes = _integer(1, MAX_MINUTES, f"a whole number of minutes from 1 to {MAX_MINUTES}")
IntervalSeconds = _integer(1, 86_400, "a whole number of seconds from 1 to 86400")
Count = _integer(1, MAX_COUNT)
Days = _integer(1, MAX_DAYS, f"a whole number of days from 1 to {MAX_DAYS}")
Window = _integer(1, MAX_WINDOW, f"a number of bars from 1 to {MAX_WINDOW}")
StdWindow = _integer(2, MAX_WINDOW, f"a number of bars from 2 to {MAX_WINDOW} (a sample std needs two returns)")
Seed = _integer(1, 2**63 - 1, "a positive integer below 2**63")
Bps = _number(f"a number >= 0 and <= {MAX_BPS} (basis points)", ge=0, le=MAX_BPS)
Fraction = _number("a fraction > 0 and <= 1", gt=0, le=1)
Positive = _number("a number > 0", gt=0)
RateScale = _number("a number >= 0.001 and <= 1000000", ge=0.001, le=1_000_000)


def _flag(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else ""
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise _fail("not_a_flag")


Flag = Annotated[bool, BeforeValidator(_flag), Field(description="true or false")]


def _distinct(values: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise _fail("duplicate", f"{_show(value)} is listed twice")
        seen.add(value)
    return values


def _list_of(item: Any, accepted: str, min_length: int = 1) -> Any:
    return Annotated[tuple[item, ...], Field(min_length=min_length, description=accepted),
                     AfterValidator(_distinct)]


def _choices(literal: Any) -> str:
    return ", ".join(get_args(literal))


Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN)]
Url = Annotated[str, Field(pattern=URL_PATTERN, description="an http(s) URL such as https://api.binance.com"),
                AfterValidator(lambda url: url.rstrip("/"))]


def _ccxt_exchange(value: str) -> str:
    if value == DEFAULT_CCXT_EXCHANGE:  # in ccxt.exchanges (a test checks): spares every load ccxt's import
        return value
    import ccxt

    if value not in ccxt.exchanges:
        raise _fail("unknown_exchange", f"ccxt {ccxt.__version__} has no exchange {_show(value)}")
    return value


CcxtExchange = Annotated[str, AfterValidator(_ccxt_exchange),
                         Field(description="a ccxt exchange id such as binance, okx or kraken (ccxt.exchanges)")]


def _empty_is_none(value: Any) -> Any:
    return None if value in (None, "") else value


def _path(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise _fail("nul_in_path")
    return value


def _kind(path: Path) -> str:
    """"dir", "file" (anything else that exists) or "none"; a path the OS refuses is an error."""
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "none"
    except OSError as exc:  # e.g. a 5,000-character name: File name too long
        raise _fail("unusable_path", f"the system refuses it: {exc.strerror or type(exc).__name__}") from None
    return "dir" if stat.S_ISDIR(mode) else "file"


def _not_a_file(path: Path | None) -> Path | None:
    if path is not None and _kind(path) == "file":
        raise _fail("not_a_directory", f"{_show(str(path), PATH_ECHO)} exists and is not a directory")
    return path


def _not_a_dir(path: Path | None) -> Path | None:
    if path is not None and _kind(path) == "dir":
        raise _fail("is_a_directory", f"{_show(str(path), PATH_ECHO)} is a directory")
    return path


def _existing_dir(path: Path | None) -> Path | None:
    if path is not None and _kind(path) != "dir":
        raise _fail("no_directory", f"{_show(str(path), PATH_ECHO)} is not a directory")
    return path


def _existing_file(path: str) -> str:
    if path and _kind(Path(path)) != "file":
        raise _fail("no_file", f"{_show(path, PATH_ECHO)} is not a file")
    return path


def _optional_path(accepted: str, *checks: Any) -> Any:
    return Annotated[Path | None, BeforeValidator(_path), BeforeValidator(_empty_is_none),
                     *(AfterValidator(check) for check in checks), Field(description=accepted)]


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail("not_a_date")


def _hh_mm(value: str) -> str:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
    if not match:
        raise _fail("not_a_time")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def _increasing(values: tuple[int, ...]) -> tuple[int, ...]:
    if list(values) != sorted(values):
        raise _fail("not_increasing", f"{list(values)} is not in increasing order")
    return values


Horizons = Annotated[
    tuple[Window, ...],
    Field(min_length=1, description=f"a non-empty, increasing list of distinct horizons from 1 to {MAX_WINDOW} bars"),
    AfterValidator(_distinct), AfterValidator(_increasing),
]
MomentumWindows = Annotated[
    tuple[StdWindow, ...],
    Field(min_length=1, description=f"a non-empty, increasing list of distinct windows from 2 to {MAX_WINDOW} bars"),
    AfterValidator(_distinct), AfterValidator(_increasing),
]
FactorNames = _list_of(Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")],
                      "a list of distinct factor names such as mom_72, reversal, size, amihud, low_vol, beta, or [] for "
                      "the middle momentum window, reversal, size, low_vol and beta", 0)
Quantiles = _integer(2, 20, "an integer from 2 to 20 (equal-count buckets per bar)")
Components = _integer(1, 50, "an integer from 1 to 50 (principal components)")
Mads = _number("a number >= 0 of median absolute deviations (0: no winsorising)", ge=0)
MarketSymbol = Annotated[str, Field(pattern=f"^$|{SYMBOL_PATTERN[1:-1]}",
                                    description="a symbol BASE/QUOTE of the universe, or empty for the "
                                                "feature catalogue's market_symbol")]


TrainingMode = Annotated[Literal["rolling", "expanding"], Field(description="rolling or expanding")]
Sizing = Annotated[Literal["unit", "kelly"], Field(description="unit or kelly")]
Calibration = Annotated[Literal["logistic", "isotonic"], Field(description="logistic or isotonic")]
ImpactK = _number("a number >= 0 and <= 100 (square-root impact coefficient)", ge=0, le=100)
Capital = _number("a number of quote currency >= 1 and <= 1e15", ge=1, le=1e15)
SharpeBars = _integer(2, MAX_WINDOW, f"a number of bars from 2 to {MAX_WINDOW}")
BootstrapSamples = _integer(100, 100_000, "an integer from 100 to 100000")
PboSplits = Annotated[int, BeforeValidator(_no_bool), Field(ge=2, le=20, multiple_of=2,
                      description="an even integer from 2 to 20")]
GrossLimit = _number("a number > 0 and <= 10 (sum of absolute weights)", gt=0, le=10)
Penalty = _number("a number >= 0 and <= 1 (return per unit of turnover)", ge=0, le=1)
TurnoverCap = _number("a number > 0 and <= 20 (sum of absolute weight changes)", gt=0, le=20)
Leverage = _number("a number > 0 and <= 10", gt=0, le=10)
Objectives = _list_of(Literal["mean_variance", "min_variance", "max_sharpe"],
                      "a list of distinct objectives from mean_variance, min_variance, max_sharpe (or [])", 0)
RiskAversions = _list_of(_number("a number > 0 and <= 1e6", gt=0, le=1e6),
                         "a non-empty list of distinct numbers > 0 and <= 1e6")
PortfolioModes = _list_of(Literal["long_only", "market_neutral"],
                          "a non-empty list of distinct modes from long_only, market_neutral")


Symbols = _list_of(Symbol, "a non-empty list of distinct ccxt symbols BASE/QUOTE such as BTC/USDT")
FundingSymbols = _list_of(Symbol, "a list of distinct symbols BASE/QUOTE such as BTC/USDT (or [])", 0)
BarIntervals = _list_of(Interval, f"a non-empty list of distinct intervals from {_choices(Interval)}, "
                                  "each a multiple of intervals.base")
Spans = _list_of(Window, f"a non-empty list of distinct spans from 1 to {MAX_WINDOW} bars")
Periods = _list_of(Window, f"a non-empty list of distinct periods from 1 to {MAX_WINDOW} bars")
CandleProviders = _list_of(CandleProvider, f"a non-empty list of distinct candle providers from {_choices(CandleProvider)}")
SpotProviders = _list_of(SpotProvider, f"a non-empty list of distinct spot providers from {_choices(SpotProvider)}")
DexProviders = _list_of(DexProvider, f"a list of distinct DEX providers from {_choices(DexProvider)} (or [])", 0)
AlternativeProviders = _list_of(AlternativeProvider,
                                f"a list of distinct providers from {_choices(AlternativeProvider)} (or [])", 0)
DexPairs = _list_of(Annotated[str, Field(pattern=DEX_PAIR_PATTERN)], "a list of distinct DEX pairs chainId/pairAddress (or [])", 0)
BaseUrls = Annotated[dict[HttpProvider, Url], Field(description=f"a mapping from {_choices(HttpProvider)} to an http(s) URL")]
StartDate = Annotated[date, BeforeValidator(_iso_date), Field(description="a date YYYY-MM-DD")]
DailyAt = Annotated[str, AfterValidator(_hh_mm), Field(description="a time HH:MM (UTC)")]
CataloguePath = Annotated[str, BeforeValidator(lambda v: "" if v is None else v), AfterValidator(_existing_file),
                          Field(description="the path of a feature catalogue YAML file, or empty for the packaged one")]
SignalCataloguePath = Annotated[str, BeforeValidator(lambda v: "" if v is None else v), AfterValidator(_existing_file),
                                Field(description="the path of a signal catalogue YAML file, or empty for the packaged one")]
DataDir = _optional_path("a directory path", _not_a_file)
DuckDBPath = _optional_path("a file path", _not_a_dir)
FilesDir = _optional_path("a directory of candle files (the files and binance_archive providers read it)", _not_a_file)
TradesDir = _optional_path("an existing directory of trade files, or empty for none", _existing_dir)


# ---------------------------------------------------------------------------------------------
# The YAML's sections. Those shaped like a part of Settings are that part (shared classes).

_SECTION = ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)


def _rule(key: str, reason: str) -> PydanticCustomError:
    """A rule spanning fields, reported against ``key`` (a dotted config key)."""
    return PydanticCustomError("config_rule", "{key}: {reason}", {"key": key, "reason": reason})


@pydantic_dataclass(frozen=True, config=_SECTION)
class BarSettings:
    """Bar columns and the thresholds of the bar quality gates."""

    roll_vol_window: StdWindow = 20     # bars in the rolling volatility window
    min_completeness: Fraction = 0.95   # WARN below this share of expected source candles
    max_gap_minutes: Minutes = 60       # WARN on a run of missing candles longer than this
    return_z_max: Positive = 12.0       # WARN on a log return beyond this many robust z-scores
    max_staleness_minutes: Minutes = 60  # WARN when a symbol's last bar ends this long before the window


@pydantic_dataclass(frozen=True, config=_SECTION)
class FeatureSettings:
    interval: Annotated[Interval, Field(description="one of the bar intervals (intervals.bars)")] = "1h"
    ema_spans: Spans = (9, 21, 50)
    rsi_periods: Periods = (14,)
    vol_window: StdWindow = 24
    catalogue: CataloguePath = ""  # feature catalogue YAML; "" = the packaged quant_assets/feature_catalogue.yaml

    @model_validator(mode="after")
    def _catalogue_parses(self) -> FeatureSettings:
        """A named catalogue is read now, so a bad one fails at load rather than when the graph is built."""
        if self.catalogue:
            from quant_assets.quant.feature_catalogue import CatalogueError, load_catalogue

            try:
                load_catalogue(self.catalogue).ensure(self.ema_spans, self.rsi_periods, self.vol_window)
            except CatalogueError as exc:
                raise _rule("features.catalogue", str(exc).splitlines()[0]) from None
        return self


@pydantic_dataclass(frozen=True, config=_SECTION)
class SignalSettings:
    """Which trading rules the signals asset runs (see quant/signal_catalogue.py)."""

    catalogue: SignalCataloguePath = ""  # signal catalogue YAML; "" = the packaged quant_assets/signal_catalogue.yaml

    @model_validator(mode="after")
    def _catalogue_parses(self) -> SignalSettings:
        """A named catalogue is read now, so a bad line fails at load rather than when the graph is built."""
        if self.catalogue:
            from quant_assets.quant.signal_catalogue import (
                SignalCatalogueError,
                load_signal_catalogue,
            )

            try:
                load_signal_catalogue(self.catalogue)
            except SignalCatalogueError as exc:
                raise _rule("signals.catalogue", str(exc).splitlines()[0]) from None
        return self


@pydantic_dataclass(frozen=True, config=_SECTION)
class BacktestSettings:
    """Walk-forward folds, costs, metrics and overfitting statistics (see quant/walk_forward.py,
    backtest_engine.py, overfitting.py). Days are UTC days, windows are bars of features.interval."""

    train_days: Days = 14              # training window before each fold's out-of-sample window
    min_train_days: Days = 7           # fewer days of signals in the training window: the fold is skipped
    test_days: Days = 1                # a fold's out-of-sample window (days, each a partition)
    step_days: Days = 1                # days between fold starts; >= test_days (no out-of-sample day twice)
    training: TrainingMode = "rolling"  # rolling: the last train_days; expanding: every day since the origin
    fee_bps: Bps = 10.0                # realistic costs: exchange fee per side, of traded notional
    half_spread_bps: Bps = 2.5         # realistic costs: half the bid-ask spread, of traded notional
    impact_k: ImpactK = 1.0            # square-root impact k * sigma * sqrt(traded notional / bar dollar volume)
    participation_cap: Fraction = 0.1  # a trade is cut to this share of the previous bar's dollar volume
    capital: Capital = 1_000_000.0     # quote-currency notional at the start of each fold (impact needs money)
    min_bars_for_sharpe: SharpeBars = 100  # a Sharpe (and Sortino, PSR, DSR) needs at least this many bars
    sizing: Sizing = "unit"            # unit: the strategy's weights; kelly: scaled by fractional Kelly
    bootstrap_samples: BootstrapSamples = 1000  # stationary block bootstrap resamples of the Sharpe
    bootstrap_block_bars: Window = 24  # mean block length of the bootstrap, bars
    bootstrap_seed: Seed = 7
    pbo_splits: PboSplits = 16         # CSCV blocks (even); all C(S, S/2) splits

    @model_validator(mode="after")
    def _min_within_train(self) -> BacktestSettings:
        if self.min_train_days > self.train_days:
            raise _rule("backtest.min_train_days", f"it exceeds backtest.train_days = {self.train_days}")
        if self.step_days < self.test_days:
            raise _rule("backtest.step_days", f"it is below backtest.test_days = {self.test_days}: "
                                              "folds would test a day twice")
        return self


@pydantic_dataclass(frozen=True, config=_SECTION)
class PortfolioSettings:
    """Factor portfolios (see quant/portfolio.py): an IC-weighted composite of factors for expected
    returns, Ledoit-Wolf covariance, a cvxpy problem per rebalance. Each point of the grid
    objectives x risk_aversions x modes (min_variance has no risk aversion; it and max_sharpe are long-only)
    is one strategy of the walk-forward, beside every signal of the catalogue."""

    factors: FactorNames = ()           # () = research.fama_macbeth_factors' default set
    objectives: Objectives = ("mean_variance", "min_variance", "max_sharpe")
    risk_aversions: RiskAversions = (1.0, 10.0)  # lambda in w'mu - lambda w'Sigma w (per rebalance horizon)
    modes: PortfolioModes = ("long_only", "market_neutral")
    cov_window: StdWindow = 168         # trailing bars of returns for the Ledoit-Wolf covariance
    rebalance_bars: Window = 24         # bars between rebalances (aligned to the UTC epoch); the mu horizon
    cap: Fraction = 0.5                 # |w_i| <= cap
    gross: GrossLimit = 1.0             # market-neutral: sum |w_i| <= gross
    beta_neutral: Flag = False          # market-neutral: also w' beta = 0 (beta from the factors table)
    turnover_penalty: Penalty = 0.00125  # per unit of ||w - w_prev||_1: about fee + half-spread
    turnover_cap: TurnoverCap = 2.0     # ||w - w_prev||_1 <= this per rebalance (2 = no limit long-only)
    kelly_fraction: Fraction = 0.5      # backtest.sizing = kelly: this share of the full Kelly leverage
    max_leverage: Leverage = 1.0        # cap on the Kelly leverage
    calibration: Calibration = "logistic"  # signal -> P(next return > 0), fitted on each training window
    calibration_buckets: Quantiles = 10    # reliability table buckets


@pydantic_dataclass(frozen=True, config=_SECTION)
class FactorSettings:
    """Cross-sectional factors on ``features.interval`` bars (see quant/factors.py). Windows in bars."""

    momentum_windows: MomentumWindows = (24, 72, 168)  # momentum over w bars, skipping the latest bar
    size_window: StdWindow = 24         # log dollar volume summed over this many bars
    liquidity_window: StdWindow = 24    # Amihud illiquidity averaged over this many bars
    volatility_window: StdWindow = 24   # low volatility: minus the std of log returns over this many bars
    beta_window: StdWindow = 168        # beta to the market symbol over this many bars
    winsor_mads: Mads = 3.0             # clip at the bar's median +- this many MADs (x 1.4826) before z-scoring
    market_symbol: MarketSymbol = ""    # "" = the feature catalogue's market_symbol
    orthogonalise: Flag = True          # also store <factor>_orth: residual on the others and on beta


@pydantic_dataclass(frozen=True, config=_SECTION)
class ResearchSettings:
    """Validation, factor model and regimes (see quant/validation.py, factor_model.py, regimes.py)."""

    horizons: Horizons = (1, 4, 24)     # forward-return horizons in bars
    quantiles: Quantiles = 5            # equal-count buckets per bar, 1 = lowest
    rolling_ic_bars: Window = 24        # rolling mean of IC in the tear sheet
    fama_macbeth_factors: FactorNames = ()  # exposures regressed on; () = mom_<middle window>, reversal, size, low_vol, beta
    pca_window: StdWindow = 168         # trailing bars of the returns panel the PCA is fitted on
    pca_components: Components = 3      # principal components kept (explained variance, residuals)
    regime_vol_window: StdWindow = 24   # realised volatility of the market symbol over this many bars
    regime_history: StdWindow = 720     # trailing bars whose percentiles set low / normal / high
    regime_corr_window: StdWindow = 72  # average pairwise correlation and market trend over this many bars


@pydantic_dataclass(frozen=True, config=_SECTION)
class GovernanceSettings:
    """Reproducibility verification of every backtest fold (see quant/reproducibility.py)."""

    reproducibility: Annotated[Literal["strict", "warn", "trust"],
                               Field(description="strict, warn or trust")] = "strict"  # strict: a mismatch blocks
    tolerance: Annotated[float, BeforeValidator(_no_bool),
                         Field(ge=0, le=1, description="a number >= 0 and <= 1")] = 1e-10
    hypothesis: Annotated[str, Field(max_length=2000, description="text of at most 2000 characters")] = ""
    # "" = quant.experiments.DEFAULT_HYPOTHESIS; part of every experiment's id


@pydantic_dataclass(frozen=True, config=_SECTION)
class AutomationSettings:
    """Schedules and declarative refresh (see defs/automation.py). Times are UTC."""

    schedules_enabled: Flag = False    # daily (and intraday) schedules start RUNNING when true
    declarative_enabled: Flag = True   # the automation-condition sensor (downstream follows upstream)
    daily_at: DailyAt = "00:10"        # HH:MM after midnight when the new daily partition is filled
    intraday_refresh: Flag = False     # hourly refresh of the current day (needs a current-day partition)
    freshness_grace_minutes: Minutes = 120  # bars/features are stale when not updated by daily_at + grace


@pydantic_dataclass(frozen=True, config=_SECTION)
class AlertSettings:
    """Alert sensors and sinks (see defs/alerts.py). Sink URLs and tokens come from env only."""

    enabled: Flag = True               # alert sensors start RUNNING
    escalate_after: Count = 3          # consecutive failures that raise an alert to CRITICAL
    provider_down_minutes: Minutes = 15  # a provider DOWN for longer than this alerts
    check_interval_s: IntervalSeconds = 30  # alert sensors' minimum interval
    retry_attempts: Count = 4          # deliveries per sink and message, first included
    retry_wait_s: Seconds = 1.0        # exponential backoff base between deliveries
    retry_max_wait_s: Seconds = 30.0
    timeout_s: Seconds = 10.0          # one HTTP delivery
    ui_url: Url = "http://127.0.0.1:3000"  # links in messages


@pydantic_dataclass(frozen=True, config=_SECTION)
class ResilienceSettings:
    """How every provider call is throttled, retried, broken and cached (see providers/http.py)."""

    timeout_s: Seconds = 10.0          # connect/read timeout of one HTTP request
    max_attempts: Count = 4            # tries per call, first included
    backoff_multiplier_s: Seconds = 0.5  # exponential backoff base: 0.5, 1, 2, ... plus jitter
    backoff_max_s: Seconds = 30.0
    retry_after_max_s: Seconds = 60.0  # a longer Retry-After is not waited for: the breaker opens
    breaker_failures: Count = 3        # consecutive failed calls that open a provider's breaker
    breaker_cooldown_s: Seconds = 60.0  # OPEN for this long, then one HALF_OPEN probe
    lkg_ttl_s: Seconds = 900.0         # last-known-good values older than this are a gap
    max_workers: Count = 4             # symbols fetched in parallel
    rate_scale: RateScale = 1.0        # multiplies every documented rate limit (benchmarks, mirrors)


@pydantic_dataclass(frozen=True, config=_SECTION)
class UniverseSection:
    symbols: Symbols = DEFAULT_SYMBOLS


@pydantic_dataclass(frozen=True, config=_SECTION)
class IntervalsSection:
    base: Annotated[BaseInterval, Field(description=f"one of {_choices(BaseInterval)}")] = "1m"
    bars: BarIntervals = ("5m", "15m", "1h", "1d")


@pydantic_dataclass(frozen=True, config=_SECTION)
class PartitionsSection:
    start_date: StartDate = date(2024, 1, 1)


@pydantic_dataclass(frozen=True, config=_SECTION)
class ProvidersSection:
    candles: CandleProviders = ("simulator",)
    spot: SpotProviders = ("simulator",)
    dex: DexProviders = ()
    dex_pairs: DexPairs = ()           # "chainId/pairAddress"
    alternative: AlternativeProviders = ()  # off by default: the demo runs offline
    base_urls: BaseUrls = field(default_factory=dict)  # merged over HTTP_BASE_URLS
    files_dir: FilesDir = None
    funding_symbols: FundingSymbols = ("BTC/USDT", "ETH/USDT")
    ccxt_exchange: CcxtExchange = DEFAULT_CCXT_EXCHANGE  # the exchange the ccxt candle provider asks


@pydantic_dataclass(frozen=True, config=_SECTION)
class PollingSection:
    interval_s: IntervalSeconds = 60


@pydantic_dataclass(frozen=True, config=_SECTION)
class SimulatorSection:
    seed: Seed = 42


@pydantic_dataclass(frozen=True, config=_SECTION)
class TradesSection:
    directory: TradesDir = None  # trade files ({BASE}_{QUOTE}-trades.parquet|.feather); None = no trade assets


@pydantic_dataclass(frozen=True, config=_SECTION)
class Config:
    """The YAML file's shape: every key, its type, bounds and default, and the rules across keys."""

    data_dir: DataDir = None           # None: ./data
    duckdb_path: DuckDBPath = None     # None: $data_dir/quant.duckdb
    universe: UniverseSection = UniverseSection()
    intervals: IntervalsSection = IntervalsSection()
    partitions: PartitionsSection = PartitionsSection()
    providers: ProvidersSection = field(default_factory=ProvidersSection)
    resilience: ResilienceSettings = ResilienceSettings()
    polling: PollingSection = PollingSection()
    simulator: SimulatorSection = SimulatorSection()
    trades: TradesSection = TradesSection()
    bars: BarSettings = BarSettings()
    features: FeatureSettings = FeatureSettings()
    signals: SignalSettings = SignalSettings()
    factors: FactorSettings = FactorSettings()
    research: ResearchSettings = ResearchSettings()
    backtest: BacktestSettings = BacktestSettings()
    portfolio: PortfolioSettings = PortfolioSettings()
    governance: GovernanceSettings = GovernanceSettings()
    automation: AutomationSettings = AutomationSettings()
    alerts: AlertSettings = AlertSettings()

    @model_validator(mode="after")
    def _across_sections(self) -> Config:
        base = self.intervals.base
        for bar in self.intervals.bars:
            if INTERVAL_MINUTES[bar] % INTERVAL_MINUTES[base]:
                raise _rule("intervals.bars", f"{bar} is not a multiple of the base interval {base}")
        if self.features.interval not in self.intervals.bars:
            raise _rule("features.interval", f"intervals.bars is {list(self.intervals.bars)}")
        self._signals_find_their_features()
        factors = [*(f"mom_{w}" for w in self.factors.momentum_windows), "reversal", "size", "amihud", "low_vol", "beta"]
        factors += [f"{name}_orth" for name in factors] if self.factors.orthogonalise else []
        for key, names in (("research.fama_macbeth_factors", self.research.fama_macbeth_factors),
                           ("portfolio.factors", self.portfolio.factors)):
            for name in names:
                if name not in factors:
                    raise _rule(key, f"'{name}' is not a factor; known: {', '.join(factors)}")
        if "simulator" in self.providers.candles and self.partitions.start_date < SIMULATOR_EPOCH:
            raise _rule("partitions.start_date", f"the simulator starts on {SIMULATOR_EPOCH.isoformat()}")
        needs_files = [p for p in self.providers.candles if p in FILE_PROVIDERS]
        if needs_files and (self.providers.files_dir is None or not self.providers.files_dir.is_dir()):
            raise _rule("providers.files_dir", f"the {needs_files[0]} candle provider needs an existing directory")
        return self

    def _signals_find_their_features(self) -> None:
        """Every feature column a signal's rule reads is one the feature catalogue produces."""
        from quant_assets.quant.feature_catalogue import CatalogueError, load_catalogue
        from quant_assets.quant.signal_catalogue import SignalCatalogueError, load_signal_catalogue

        cfg = self.features
        try:
            columns = load_catalogue(cfg.catalogue or None).ensure(cfg.ema_spans, cfg.rsi_periods, cfg.vol_window).columns
            load_signal_catalogue(self.signals.catalogue or None).require_features(columns)
        except SignalCatalogueError as exc:
            raise _rule("signals.catalogue", str(exc).splitlines()[0]) from None
        except CatalogueError as exc:  # the packaged feature catalogue; a named one failed already
            raise _rule("features.catalogue", str(exc).splitlines()[0]) from None

    def settings(self) -> Settings:
        """The typed view the platform reads."""
        data_dir = self.data_dir or Path("data")
        providers = self.providers
        return Settings(
            data_dir=data_dir,
            duckdb_path=self.duckdb_path or data_dir / "quant.duckdb",
            symbols=self.universe.symbols,
            base_interval=self.intervals.base,
            bar_intervals=self.intervals.bars,
            start_date=self.partitions.start_date,
            candle_providers=providers.candles,
            simulator_seed=self.simulator.seed,
            trades_dir=self.trades.directory,
            ingestion=IngestionSettings(
                spot_providers=providers.spot,
                dex_providers=providers.dex,
                dex_pairs=providers.dex_pairs,
                alternative_providers=providers.alternative,
                base_urls=tuple(sorted({**HTTP_BASE_URLS, **providers.base_urls}.items())),
                files_dir=providers.files_dir,
                funding_symbols=providers.funding_symbols,
                ccxt_exchange=providers.ccxt_exchange,
                poll_interval_s=self.polling.interval_s,
                resilience=self.resilience,
            ),
            bars=self.bars,
            features=self.features,
            signals=self.signals,
            factors=self.factors,
            research=self.research,
            backtest=self.backtest,
            portfolio=self.portfolio,
            governance=self.governance,
            automation=self.automation,
            alerts=self.alerts,
        )


# ---------------------------------------------------------------------------------------------
# The typed view: attribute names the platform has always read.


@dataclasses.dataclass(frozen=True)
class IngestionSettings:
    """Provider chains beyond candles, base URLs, the files directory, polling."""

    spot_providers: tuple[str, ...] = ("simulator",)
    dex_providers: tuple[str, ...] = ()
    dex_pairs: tuple[str, ...] = ()    # "chainId/pairAddress"
    alternative_providers: tuple[str, ...] = ()  # off by default: the demo runs offline
    base_urls: tuple[tuple[str, str], ...] = tuple(sorted(HTTP_BASE_URLS.items()))
    files_dir: Path | None = None
    funding_symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT")
    ccxt_exchange: str = DEFAULT_CCXT_EXCHANGE
    poll_interval_s: int = 60
    resilience: ResilienceSettings = ResilienceSettings()

    def base_url(self, provider: str) -> str:
        return dict(self.base_urls)[provider]

    def base_url_override(self, provider: str) -> str | None:
        """The configured base URL of a source with no fixed default (``ccxt``), or None."""
        return dict(self.base_urls).get(provider)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Validated settings (build them with :func:`load_settings`; the defaults equal an empty config)."""

    data_dir: Path = Path("data")
    duckdb_path: Path = Path("data/quant.duckdb")
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    base_interval: str = "1m"
    bar_intervals: tuple[str, ...] = ("5m", "15m", "1h", "1d")
    start_date: date = date(2024, 1, 1)
    candle_providers: tuple[str, ...] = ("simulator",)
    simulator_seed: int = 42
    trades_dir: Path | None = None     # trade files ({BASE}_{QUOTE}-trades.parquet|.feather); None = no trade assets
    ingestion: IngestionSettings = IngestionSettings()
    bars: BarSettings = BarSettings()
    features: FeatureSettings = FeatureSettings()
    signals: SignalSettings = SignalSettings()
    factors: FactorSettings = FactorSettings()
    research: ResearchSettings = ResearchSettings()
    backtest: BacktestSettings = BacktestSettings()
    portfolio: PortfolioSettings = PortfolioSettings()
    governance: GovernanceSettings = GovernanceSettings()
    automation: AutomationSettings = AutomationSettings()
    alerts: AlertSettings = AlertSettings()

    @property
    def manifest_dir(self) -> Path:
        return self.data_dir / "manifests"

    def fingerprint(self) -> str:
        """SHA-256 of the settings that shape data (paths excluded), for manifests."""
        shaped = {
            k: v for k, v in asdict(self).items()
            if k not in ("data_dir", "duckdb_path", "automation", "alerts", "governance")
        }
        if "ccxt" not in self.candle_providers:  # the exchange shapes data only when ccxt is asked
            del shaped["ingestion"]["ccxt_exchange"]
        text = json.dumps(shaped, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Loading: file, environment, overrides, then one validation and one error line.

_CONFIG = TypeAdapter(Config)

_ENV: dict[str, tuple[str, str, bool]] = {  # variable: (section, key, comma-separated list)
    "QUANT_DATA_DIR": ("", "data_dir", False),
    "QUANT_DUCKDB_PATH": ("", "duckdb_path", False),
    "QUANT_SYMBOLS": ("universe", "symbols", True),
    "QUANT_BASE_INTERVAL": ("intervals", "base", False),
    "QUANT_BAR_INTERVALS": ("intervals", "bars", True),
    "QUANT_START_DATE": ("partitions", "start_date", False),
    "QUANT_CANDLE_PROVIDERS": ("providers", "candles", True),
    "QUANT_SPOT_PROVIDERS": ("providers", "spot", True),
    "QUANT_DEX_PROVIDERS": ("providers", "dex", True),
    "QUANT_DEX_PAIRS": ("providers", "dex_pairs", True),
    "QUANT_ALTERNATIVE_PROVIDERS": ("providers", "alternative", True),
    "QUANT_FUNDING_SYMBOLS": ("providers", "funding_symbols", True),
    "QUANT_CCXT_EXCHANGE": ("providers", "ccxt_exchange", False),
    "QUANT_FILES_DIR": ("providers", "files_dir", False),
    "QUANT_POLL_INTERVAL_S": ("polling", "interval_s", False),
    "QUANT_SIMULATOR_SEED": ("simulator", "seed", False),
    "QUANT_TRADES_DIR": ("trades", "directory", False),
    "QUANT_SCHEDULES_ENABLED": ("automation", "schedules_enabled", False),
    "QUANT_ALERTS_ENABLED": ("alerts", "enabled", False),
}


class _YamlLoader(yaml.SafeLoader):
    """``yaml.safe_load`` with two YAML 1.1 implicit types turned off: timestamps (a date stays a
    string, so ``2024-02-30`` is reported against its key by the model) and base-60 numbers
    (``daily_at: 12:30`` is the string "12:30", not the integer 750)."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [
        (tag, re.compile(r"^(?!.*:)" + regexp.pattern.removeprefix("^"), regexp.flags)
         if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") else regexp)
        for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.load(path.read_text(), Loader=_YamlLoader) or {}  # a SafeLoader subclass
    except OSError as exc:
        raise ConfigError(f"config file {_clip(str(path), PATH_ECHO)} cannot be read: {exc.strerror or exc}") from None
    except (yaml.YAMLError, ValueError, TypeError) as exc:  # e.g. a bad !!timestamp
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config file {_clip(str(path), PATH_ECHO)} is not valid YAML: {_clip(first, 160)}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {_clip(str(path), PATH_ECHO)} must hold a mapping at the top level")
    return loaded


def _section_of(raw: dict[str, Any], section: str) -> dict[str, Any] | None:
    """The mapping for ``section`` (created when absent); None when the file put a non-mapping there."""
    if not section:
        return raw
    target = raw.setdefault(section, {})
    return target if isinstance(target, dict) else None  # validation reports the bad section


def _apply_env(raw: dict[str, Any], env: Mapping[str, str], sources: dict[str, str]) -> None:
    """Environment over the file. A blank scalar variable counts as unset (``QUANT_DATA_DIR=``);
    a list variable that is set is that list even when blank: ``QUANT_SYMBOLS=""`` is the empty
    list, an error where a list must not be empty, "none" where ``[]`` is accepted."""
    for var, (section, key, is_list) in _ENV.items():
        if var not in env:
            continue
        value: Any = env[var].strip()
        if is_list:
            value = [part.strip() for part in value.split(",") if part.strip()]
        elif not value:
            continue
        target = _section_of(raw, section)
        if target is not None:
            target[key] = value
            sources[f"{section}.{key}" if section else key] = var
    for provider in get_args(HttpProvider):  # QUANT_BINANCE_BASE_URL -> providers.base_urls.binance
        var = f"QUANT_{provider.upper()}_BASE_URL"
        url = env.get(var)
        target = _section_of(raw, "providers") if url else None
        if url and target is not None:
            urls = target.setdefault("base_urls", {})
            if isinstance(urls, dict):
                urls[provider] = url.strip()
                sources[f"providers.base_urls.{provider}"] = var


def _apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any], sources: dict[str, str]) -> None:
    for section, values in overrides.items():
        current = raw.get(section)
        if isinstance(values, Mapping) and (current is None or isinstance(current, dict)):
            raw[section] = {**(current or {}), **values}
            for key in values:
                sources.pop(f"{section}.{key}", None)
        else:
            raw[section] = values
            sources.pop(section, None)


# ---------------------------------------------------------------------------------------------
# pydantic's ValidationError -> one line naming the key, the value and what is accepted.


ECHO, PATH_ECHO = 80, 160  # characters of a value (of a path) repeated in an error line
_PATH_KEYS = ("data_dir", "duckdb_path", "providers.files_dir", "trades.directory", "features.catalogue", "signals.catalogue")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any, limit: int = ECHO) -> str:
    """``repr`` of ``value`` (lists, dates and paths as in the YAML), at most ``limit`` characters."""
    def plain(v: Any) -> Any:
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {plain(k): plain(x) for k, x in v.items()}
        if isinstance(v, date | Path):
            return str(v)
        return v

    return _clip(repr(plain(value)), limit)


def _fields(cls: Any) -> dict[str, Any]:
    return getattr(cls, "__pydantic_fields__", {})


def _locate(loc: Sequence[str | int]) -> tuple[Any, Any, list[str], list[str | int]]:
    """Split an error location into (class owning the last field, section reached, field path, rest)."""
    parent: Any = Config
    node: Any = Config
    path: list[str] = []
    for i, part in enumerate(loc):
        info = _fields(node).get(part) if isinstance(part, str) else None
        if info is None:
            return parent, node, path, list(loc[i:])
        parent = node
        path.append(part)
        if not _fields(info.annotation):
            return parent, node, path, list(loc[i + 1:])
        node = info.annotation
    return parent, node, path, []


def _lookup(raw: Mapping[str, Any], keys: Sequence[str]) -> tuple[bool, Any]:
    value: Any = raw
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return False, None
        value = value[key]
    return True, value


def _value_description(annotation: Any) -> str:
    """The ``description`` an ``Annotated`` dict value type carries (e.g. ``Url``)."""
    args = get_args(annotation) if get_origin(annotation) is dict else ()
    for meta in get_args(args[1])[1:] if len(args) == 2 else ():
        if getattr(meta, "description", None):
            return str(meta.description)
    return "a valid value"


def _one_line(exc: ValidationError, raw: Mapping[str, Any], sources: Mapping[str, str]) -> str:
    error = exc.errors(include_url=False)[0]
    ctx = error.get("ctx") or {}
    rule = error["type"] == "config_rule"
    parent, node, path, rest = _locate(str(ctx["key"]).split(".") if rule else error["loc"])
    if error["type"] in ("unexpected_keyword_argument", "extra_forbidden", "invalid_key"):
        return f"config key '{'.'.join([*path, str(rest[0])])}' is unknown; accepted: {', '.join(_fields(node))}"
    if not path:
        return f"config = {_show(error['input'])} must be a mapping with keys: {', '.join(_fields(node))}"
    if node is not parent and not rest and not rule:  # a section that is not a mapping
        return (f"config key '{'.'.join(path)}' = {_show(error['input'])} must be a mapping with keys: "
                f"{', '.join(_fields(node))}")
    info = _fields(parent)[path[-1]]
    entry = [part for part in rest if isinstance(part, str)]  # a mapping's key (providers.base_urls)
    if entry and entry[-1] == "[key]":
        accepted = ", ".join(get_args(get_args(info.annotation)[0]))
        return f"config key '{'.'.join([*path, entry[0]])}' is unknown; accepted: {accepted}"
    key_path = [*path, *entry[:1]]
    key = ".".join(key_path)
    found, value = _lookup(raw, key_path)
    if not found:  # a default that a rule across keys rejects
        value = _default(key_path) if rule else error["input"]
    line = f"config key '{key}' = {_show(value, PATH_ECHO if key in _PATH_KEYS else ECHO)}"
    if key in sources:
        line += f" ({sources[key]})"
    line += f" must be {_value_description(info.annotation) if entry else info.description}"
    reason = str(ctx.get("reason") or "")
    if not reason and not entry and any(isinstance(part, int) for part in rest):
        reason = f"{_show(error['input'])} is not"  # the list item at fault
    if not reason and value == [] and key in sources:
        reason = f"{sources[key]} is set but empty (unset it for the default)"
    return f"{line}; {reason}" if reason else line


def _default(keys: Sequence[str]) -> Any:
    value: Any = Config()
    for key in keys:
        value = getattr(value, key)
    return value


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
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. File name too long
        raise ConfigError(f"config file {_clip(str(path), PATH_ECHO)} (QUANT_CONFIG) cannot be read: "
                          f"{exc.strerror or type(exc).__name__}") from None
    if exists:
        raw = _read_yaml(path)
    elif config_file or env.get("QUANT_CONFIG"):
        raise ConfigError(f"config file {_clip(str(path), PATH_ECHO)} (QUANT_CONFIG) does not exist")
    sources: dict[str, str] = {}
    _apply_env(raw, env, sources)
    _apply_overrides(raw, overrides or {}, sources)
    try:
        config = _CONFIG.validate_python(raw)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, raw, sources)) from None
    return config.settings()


_SETTINGS_JSON = TypeAdapter(Settings)


def settings_to_json(settings: Settings) -> str:
    """The settings as JSON, for Dagster resource config; :func:`settings_from_json` reads it back."""
    return _SETTINGS_JSON.dump_json(settings).decode()


def settings_from_json(text: str) -> Settings:
    """The :class:`Settings` that :func:`settings_to_json` wrote (equal to the original)."""
    return _SETTINGS_JSON.validate_json(text)

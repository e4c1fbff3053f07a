"""The feature catalogue: which features the store computes, as data (YAML), not code.

A catalogue entry names a function of :data:`FUNCTIONS` and its parameters; the output
column names follow ``<name>_<param values in the function's order>`` (``rsi`` +
``{period: 14}`` -> ``rsi_14``; ``macd`` + ``12, 26, 9`` -> ``macd_12_26_9``,
``macd_signal_12_26_9``, ``macd_hist_12_26_9``). Each entry also carries a family, a null
policy and an optional outlier policy. The packaged default is
``quant_assets/feature_catalogue.yaml``; ``features.catalogue`` in the settings points at
another file.

Null policies (applied after warm-up only; warm-up rows are always NULL):

* ``skip``: a value that cannot be computed (e.g. the market has no bar at that time) stays NULL.
* ``forward_fill``: it takes the symbol's last computed value instead.
* ``interpolate`` is rejected: filling a gap from the value *after* it is look-ahead, and a
  partition would change when the next one arrives.

Outlier policies flag, in a BOOLEAN companion column ``<column>_outlier``, values beyond
``threshold`` standard deviations (``zscore``) or beyond ``k`` inter-quartile ranges outside
the quartiles (``iqr``), both over the previous ``window`` values of the same symbol's
feature (the current value excluded, so an outlier cannot mask itself). NULL while there
is not a full window. ``winsorise: true`` also clips the feature value to those bounds.
Nothing is ever deleted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from quant_assets.quant import indicators as ind
from quant_assets.quant import volatility as vol

__all__ = [
    "DEFAULT_CATALOGUE",
    "FUNCTIONS",
    "Catalogue",
    "CatalogueError",
    "FeatureSpec",
    "OutlierPolicy",
    "SymbolBars",
    "load_catalogue",
    "parse_catalogue",
]

DEFAULT_CATALOGUE = Path(__file__).resolve().parent.parent / "feature_catalogue.yaml"
NULL_POLICIES = ("skip", "forward_fill")
FAMILIES = ("returns", "volatility", "technical", "trend", "liquidity", "cross_asset")


class CatalogueError(ValueError):
    """The catalogue is malformed; the message names the entry and the problem."""


@dataclass(frozen=True)
class SymbolBars:
    """One symbol's bars as float64 arrays (oldest first) plus what features need besides."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    dollar_volume: np.ndarray
    market_return: np.ndarray  # the market's 1-bar log return at the same timestamps (NaN if none)
    bars_per_year: float
    cache: dict[Any, np.ndarray | tuple[np.ndarray, ...]] = field(default_factory=dict, compare=False)

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """Intermediate results shared by several features of this symbol (e.g. 1-bar log returns)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


def _logret(b: SymbolBars) -> np.ndarray:
    return b.memo("logret_1", lambda: vol.log_return(b.close))


def _beta_corr(b: SymbolBars, window: int) -> tuple[np.ndarray, np.ndarray]:
    return b.memo(("beta_corr", window), lambda: vol.rolling_beta_corr(_logret(b), b.market_return, window))


Compute = Callable[..., Sequence[np.ndarray]]


@dataclass(frozen=True)
class Function:
    family: str
    params: tuple[str, ...]
    outputs: tuple[str, ...]  # templates over {name}
    compute: Compute
    doc: str


def _bb(b: SymbolBars, period: int, nbdev: float) -> list[np.ndarray]:
    upper, middle, lower = ind.bbands(b.close, period, nbdev, nbdev)
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        pctb = np.where(width > 0, (b.close - lower) / width, np.nan)
        rel_width = width / middle
    return [upper, middle, lower, pctb, rel_width]


FUNCTIONS: dict[str, Function] = {
    "simple_return": Function("returns", ("periods",), ("{name}",),
        lambda b, periods: [vol.simple_return(b.close, periods)], "close[t]/close[t-k] - 1"),
    "log_return": Function("returns", ("periods",), ("{name}",),
        lambda b, periods: [vol.log_return(b.close, periods)], "ln(close[t]/close[t-k])"),
    "return_zscore": Function("returns", ("window",), ("{name}",),
        lambda b, window: [vol.rolling_zscore(_logret(b), window)],
        "z-score of the 1-bar log return over the last `window` returns (ddof 1)"),
    "vol_close_to_close": Function("volatility", ("window",), ("{name}",),
        lambda b, window: [vol.vol_close_to_close(b.close, window, b.bars_per_year)],
        "close-to-close volatility, annualised"),
    "vol_parkinson": Function("volatility", ("window",), ("{name}",),
        lambda b, window: [vol.vol_parkinson(b.high, b.low, window, b.bars_per_year)],
        "Parkinson high-low volatility, annualised"),
    "vol_garman_klass": Function("volatility", ("window",), ("{name}",),
        lambda b, window: [vol.vol_garman_klass(b.open, b.high, b.low, b.close, window, b.bars_per_year)],
        "Garman-Klass volatility (per-bar term clamped at 0), annualised"),
    "vol_rogers_satchell": Function("volatility", ("window",), ("{name}",),
        lambda b, window: [vol.vol_rogers_satchell(b.open, b.high, b.low, b.close, window, b.bars_per_year)],
        "Rogers-Satchell volatility, annualised"),
    "vol_yang_zhang": Function("volatility", ("window",), ("{name}",),
        lambda b, window: [vol.vol_yang_zhang(b.open, b.high, b.low, b.close, window, b.bars_per_year)],
        "Yang-Zhang volatility, annualised"),
    "atr": Function("volatility", ("period",), ("{name}",),
        lambda b, period: [ind.atr(b.high, b.low, b.close, period)], "TA-Lib ATR, price units"),
    "rsi": Function("technical", ("period",), ("{name}",),
        lambda b, period: [ind.rsi(b.close, period)], "TA-Lib RSI, 0-100"),
    "macd": Function("technical", ("fast", "slow", "signal"), ("{name}", "{name}_signal", "{name}_hist"),
        lambda b, fast, slow, signal: list(ind.macd(b.close, fast, slow, signal)),
        "TA-Lib MACD: line, signal, histogram; price units"),
    "stoch": Function("technical", ("fastk", "slowk", "slowd"), ("{name}_k", "{name}_d"),
        lambda b, fastk, slowk, slowd: list(ind.stoch(b.high, b.low, b.close, fastk, slowk, slowd)),
        "TA-Lib STOCH (SMA smoothing): slow %K and %D, 0-100"),
    "bbands": Function("technical", ("period", "nbdev"),
        ("{name}_upper", "{name}_middle", "{name}_lower", "{name}_pctb", "{name}_width"),
        lambda b, period, nbdev: _bb(b, period, nbdev),
        "TA-Lib BBANDS (SMA, population std); %b = (c - lower)/(upper - lower), width = (upper - lower)/middle"),
    "adx": Function("technical", ("period",), ("{name}", "plus_di", "minus_di"),
        lambda b, period: list(ind.dmi(b.high, b.low, b.close, period)), "TA-Lib ADX, PLUS_DI, MINUS_DI; 0-100"),
    "obv": Function("technical", (), ("{name}",),
        lambda b: [ind.obv(b.close, b.volume)], "TA-Lib OBV, base-volume units, cumulative from the first bar given (the store passes every bar since the origin)"),
    "mfi": Function("technical", ("period",), ("{name}",),
        lambda b, period: [ind.mfi(b.high, b.low, b.close, b.volume, period)], "TA-Lib MFI, 0-100"),
    "ema": Function("trend", ("span",), ("{name}",),
        lambda b, span: [ind.ema(b.close, span)], "TA-Lib EMA (SMA seed), price units"),
    "sma": Function("trend", ("period",), ("{name}",),
        lambda b, period: [ind.sma(b.close, period)], "TA-Lib SMA, price units"),
    "dollar_volume": Function("liquidity", ("window",), ("{name}",),
        lambda b, window: [vol.rolling_mean(b.dollar_volume, window)],
        "mean quote-currency volume per bar over `window` bars"),
    "amihud": Function("liquidity", ("window",), ("{name}",),
        lambda b, window: [vol.amihud(b.close, b.dollar_volume, window)],
        "Amihud illiquidity, |return| per million quote currency traded"),
    "beta": Function("cross_asset", ("window",), ("{name}",),
        lambda b, window: [_beta_corr(b, window)[0]],
        "rolling OLS beta of 1-bar log returns on the market's"),
    "corr": Function("cross_asset", ("window",), ("{name}",),
        lambda b, window: [_beta_corr(b, window)[1]],
        "rolling correlation of 1-bar log returns with the market's"),
}


@dataclass(frozen=True)
class OutlierPolicy:
    method: str  # "zscore" | "iqr"
    threshold: float  # z for zscore, k for iqr
    window: int = 500
    winsorise: bool = False


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    function: str
    params: tuple[tuple[str, Any], ...]
    family: str
    null_policy: str = "skip"
    outlier: OutlierPolicy | None = None
    columns: tuple[str, ...] = field(default=())

    def compute(self, bars: SymbolBars) -> list[np.ndarray]:
        return list(FUNCTIONS[self.function].compute(bars, **dict(self.params)))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "family": self.family, "function": self.function,
                               "params": dict(self.params), "null_policy": self.null_policy}
        if self.outlier:
            out["outlier"] = {"method": self.outlier.method, "threshold": self.outlier.threshold,
                              "window": self.outlier.window, "winsorise": self.outlier.winsorise}
        return out


@dataclass(frozen=True)
class Catalogue:
    features: tuple[FeatureSpec, ...]
    market_symbol: str = "BTC/USDT"
    higher_interval_features: tuple[str, ...] = ()
    source: str = "<memory>"

    @property
    def columns(self) -> list[str]:
        """Feature columns in catalogue order (companion ``_outlier`` flags not included)."""
        return [c for spec in self.features for c in spec.columns]

    @property
    def flag_columns(self) -> list[str]:
        return [f"{c}_outlier" for spec in self.features if spec.outlier for c in spec.columns]

    def as_dict(self) -> dict[str, Any]:
        return {"market_symbol": self.market_symbol,
                "higher_interval_features": list(self.higher_interval_features),
                "features": [s.as_dict() for s in self.features]}

    def fingerprint(self) -> str:
        """SHA-256 of the catalogue's content (not of its file's formatting)."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()

    def with_entries(self, *entries: Mapping[str, Any]) -> Catalogue:
        """A copy with more entries (same rules as lines of the YAML file)."""
        raw = self.as_dict()
        raw["features"] = [*raw["features"], *entries]
        return parse_catalogue(raw, self.source)

    def ensure(self, ema_spans: Sequence[int] = (), rsi_periods: Sequence[int] = (),
               vol_window: int | None = None) -> Catalogue:
        """Add the EMAs, RSIs and close-to-close volatility the settings name, if absent."""
        wanted: list[dict[str, Any]] = [
            *({"name": "ema", "function": "ema", "params": {"span": n}} for n in ema_spans),
            *({"name": "rsi", "function": "rsi", "params": {"period": n}} for n in rsi_periods),
        ]
        if vol_window is not None:
            wanted.append({"name": "vol_cc", "function": "vol_close_to_close", "params": {"window": vol_window}})
        have = set(self.columns)
        extra = [e for e in wanted if _columns(e["name"], e["function"], e["params"])[0] not in have]
        return self.with_entries(*extra) if extra else self


def _suffix(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace(".", "p").replace("-", "m")


def _columns(name: str, function: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    fn = FUNCTIONS[function]
    suffix = "".join(f"_{_suffix(params[p])}" for p in fn.params)
    return tuple(t.format(name=name) + suffix for t in fn.outputs)


def _param(value: Any, where: str, key: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogueError(f"{where}: parameter '{key}' = {value!r} must be a number")
    if key == "nbdev":
        if not value > 0:
            raise CatalogueError(f"{where}: parameter '{key}' must be > 0")
        return float(value)
    if not isinstance(value, int) or value < 1:
        raise CatalogueError(f"{where}: parameter '{key}' = {value!r} must be a positive integer")
    minimum = 2 if (key == "window" or (key == "period" and where.endswith("adx"))) else 1
    if value < minimum:
        raise CatalogueError(f"{where}: parameter '{key}' = {value!r} must be >= {minimum}")
    return value


def _outlier(raw: Any, where: str) -> OutlierPolicy | None:
    if raw in (None, "none"):
        return None
    if not isinstance(raw, Mapping):
        raise CatalogueError(f"{where}: outlier must be a mapping like {{method: zscore, threshold: 4}} or none")
    unknown = set(raw) - {"method", "threshold", "k", "window", "winsorise"}
    if unknown:
        raise CatalogueError(f"{where}: outlier has unknown key(s) {sorted(unknown)}")
    method = raw.get("method")
    if method == "zscore":
        threshold = raw.get("threshold", 4.0)
    elif method == "iqr":
        threshold = raw.get("k", raw.get("threshold", 1.5))
    else:
        raise CatalogueError(f"{where}: outlier method {method!r} is not accepted; accepted: zscore, iqr")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold <= 0:
        raise CatalogueError(f"{where}: outlier threshold must be a positive number")
    window = raw.get("window", 500)
    if isinstance(window, bool) or not isinstance(window, int) or window < 4:
        raise CatalogueError(f"{where}: outlier window must be an integer >= 4")
    winsorise = raw.get("winsorise", False)
    if not isinstance(winsorise, bool):
        raise CatalogueError(f"{where}: outlier winsorise must be true or false")
    return OutlierPolicy(method, float(threshold), window, winsorise)


def _spec(raw: Any, index: int) -> FeatureSpec:
    where = f"feature #{index + 1}"
    if not isinstance(raw, Mapping):
        raise CatalogueError(f"{where}: must be a mapping with name, function, params")
    unknown = set(raw) - {"name", "family", "function", "params", "null_policy", "outlier", "description"}
    if unknown:
        raise CatalogueError(f"{where}: unknown key(s) {sorted(unknown)}")
    name, function = raw.get("name"), raw.get("function")
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise CatalogueError(f"{where}: name {name!r} must be a lower-case identifier")
    where = f"feature #{index + 1} ({name})"
    if function not in FUNCTIONS:
        raise CatalogueError(f"{where}: function {function!r} is unknown; accepted: {', '.join(sorted(FUNCTIONS))}")
    fn = FUNCTIONS[function]
    params = raw.get("params") or {}
    if not isinstance(params, Mapping):
        raise CatalogueError(f"{where}: params must be a mapping")
    if set(params) != set(fn.params):
        raise CatalogueError(f"{where}: {function} takes params {list(fn.params)}, got {sorted(params)}")
    checked = tuple((p, _param(params[p], f"{where} {function}", p)) for p in fn.params)
    family = raw.get("family", fn.family)
    if family not in FAMILIES:
        raise CatalogueError(f"{where}: family {family!r} is not accepted; accepted: {', '.join(FAMILIES)}")
    policy = raw.get("null_policy", "skip")
    if policy == "interpolate":
        raise CatalogueError(
            f"{where}: null_policy interpolate would fill a value from a later bar (look-ahead); "
            "accepted: skip, forward_fill"
        )
    if policy not in NULL_POLICIES:
        raise CatalogueError(f"{where}: null_policy {policy!r} is not accepted; accepted: {', '.join(NULL_POLICIES)}")
    return FeatureSpec(name, function, checked, family, policy, _outlier(raw.get("outlier"), where),
                       _columns(name, function, dict(checked)))


def parse_catalogue(raw: Mapping[str, Any], source: str = "<memory>") -> Catalogue:
    """Validate a catalogue mapping (the YAML's shape) into a :class:`Catalogue`."""
    if not isinstance(raw, Mapping):
        raise CatalogueError(f"{source}: the catalogue must be a mapping with a 'features' list")
    unknown = set(raw) - {"version", "market_symbol", "higher_interval_features", "features"}
    if unknown:
        raise CatalogueError(f"{source}: unknown top-level key(s) {sorted(unknown)}")
    entries = raw.get("features")
    if not isinstance(entries, list) or not entries:
        raise CatalogueError(f"{source}: 'features' must be a non-empty list")
    specs = tuple(_spec(e, i) for i, e in enumerate(entries))
    seen: dict[str, str] = {}
    reserved = {"symbol", "ts", "close"}
    for spec in specs:
        for col in spec.columns:
            if col in seen or col in reserved:
                raise CatalogueError(f"{source}: column {col!r} is produced twice ({spec.name}, {seen.get(col, col)})")
            if not col.replace("_", "a").isalnum() or not col[0].isalpha():
                raise CatalogueError(f"{source}: column {col!r} is not a plain identifier")
            seen[col] = spec.name
    market = raw.get("market_symbol", "BTC/USDT")
    if not isinstance(market, str) or "/" not in market:
        raise CatalogueError(f"{source}: market_symbol {market!r} must look like BTC/USDT")
    higher = raw.get("higher_interval_features") or []
    if not isinstance(higher, list) or any(c not in seen for c in higher):
        missing = [c for c in higher if c not in seen] if isinstance(higher, list) else higher
        raise CatalogueError(f"{source}: higher_interval_features names unknown column(s) {missing}")
    return Catalogue(specs, market, tuple(higher), source)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Load and validate a catalogue YAML file (default: the packaged one)."""
    file = Path(path) if path else DEFAULT_CATALOGUE
    try:
        raw = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise CatalogueError(f"feature catalogue {file} does not exist") from None
    except yaml.YAMLError as exc:
        raise CatalogueError(f"feature catalogue {file} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    return parse_catalogue(raw, str(file))

"""Deterministic market simulator: the offline default candle source.

Conventions
-----------
* Time is UTC. ``ts`` is a naive ``datetime`` (polars ``Datetime("us")``) holding the candle
  *open* time: a candle is left-labelled and covers ``[ts, ts + interval)``. Candles sit on the
  interval grid of each UTC day (``00:00``, ``00:05`` ... for ``5m``). The market trades 24/7:
  weekends and holidays are ordinary days.
* Units: ``open/high/low/close`` are quote currency per unit of base currency (``BTC/USDT`` ->
  USDT per BTC); ``volume`` is in base-currency units; ``quote_volume`` is in quote currency,
  ``volume * (high + low + close) / 3``.
* Coverage: days from :data:`EPOCH` (2015-01-01) onwards; :func:`simulate_day` rejects earlier
  days and :class:`SimulatorCandleProvider` returns no rows before it (like an exchange before
  a listing).
* Determinism: the output is a pure function of ``(seed, symbol, day, interval)``. Every random
  draw comes from a fresh ``numpy.random.Generator`` keyed by integers only (the seed, a
  purpose tag, ``zlib.crc32`` of the symbol, the day's ordinal, the interval in minutes). There
  is no global RNG, no cache, no cross-call state and no wall-clock input.

Model
-----
Daily layer, one value per day since :data:`EPOCH` (regenerated on every call; a few thousand
draws is cheap, and every stream is prefix-stable so day ``d`` does not depend on how far the
arrays run):

* market streams (keyed by the seed only, shared by all symbols): a 3-state volatility regime
  Markov chain (calm / normal / turbulent), a persistent AR(1) log-volatility, and a daily
  market shock;
* symbol streams (keyed by seed and symbol): an idiosyncratic shock and AR(1) log-volatility.
  The symbol's daily log return is ``beta * market + idiosyncratic``; ``beta`` comes from the
  symbol hash (``[0.7, 1.4]``; 1 for BTC). The *anchor* log price (the price at 00:00 UTC)
  starts at the symbol's base price on :data:`EPOCH` and follows these returns with a very weak
  pull back to the base (half-life three years), so it never explodes.

Intraday layer (streams keyed by seed, day and interval; symbol streams also by symbol):

* per-candle volatility = hour-of-day seasonality (high 13-16 UTC, low 02-06 UTC) x AR(1)
  log-volatility shared by the market x a smaller symbol AR(1) log-volatility, normalised so
  the day's variance equals the symbol's daily variance (hence ``5m`` candles have ``sqrt(5)``
  times the ``1m`` volatility);
* innovations are unit-variance Student-t (df 4): a shared market factor plus an
  idiosyncratic one, which makes symbols correlated;
* the path is bridged so the day opens exactly at anchor ``d`` and closes exactly at anchor
  ``d + 1``: the last close of a day equals the first open of the next without any state;
* high/low are exact draws of a Brownian bridge's extremes between open and close;
* volume is lognormal, scaled by seasonality, by the candle's ``|return|`` and by the day's
  volatility;
* a small deterministic fraction of candles is missing: ~0.1 % single candles for intervals
  up to ``15m`` and, on ~10 % of days, one outage of 5-30 consecutive candles for ``1m`` and
  ``5m``; ``1h`` and longer are complete. Missing candles are absent rows; the price path
  underneath is untouched, so the next candle opens at the true price.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import IntEnum

import numpy as np
import polars as pl

from quant_assets.config import INTERVAL_MINUTES
from quant_assets.providers.base import CANDLE_SCHEMA, empty_candles
from quant_assets.quant.calendar import utc_naive

__all__ = ["EPOCH", "SimulatorCandleProvider", "interval_minutes", "simulate_day"]

EPOCH = date(2015, 1, 1)
"""First simulated day; every symbol's anchor equals its base price at 00:00 UTC on it."""

_MINUTES_PER_DAY = 1440

# --- daily layer ---------------------------------------------------------------------------
_MARKET_DAILY_VOL = 0.026  # typical daily log-return std of the market factor
_REGIME_VOL = np.array([0.75, 1.0, 1.6])  # calm, normal, turbulent
_REGIME_MEAN_DAYS = np.array([30.0, 40.0, 8.0])  # expected stay per regime visit
_MARKET_LOGVOL_PHI, _MARKET_LOGVOL_SD = 0.94, 0.25
_SYMBOL_LOGVOL_PHI, _SYMBOL_LOGVOL_SD = 0.90, 0.20
_ANCHOR_PHI = 1.0 - math.log(2.0) / (3 * 365)  # pull towards the base price, half-life 3y

# --- intraday layer (per-minute persistence; raised to the interval in minutes) ---------------
_INTRADAY_MARKET_PHI, _INTRADAY_MARKET_SD = 0.99, 0.45
_INTRADAY_SYMBOL_PHI, _INTRADAY_SYMBOL_SD = 0.98, 0.20
_STUDENT_DF = 4.0
_SINGLE_MISSING_PROB = 0.001
_OUTAGE_PROB = 0.10
_OUTAGE_CANDLES = (5, 30)
_SINGLE_MISSING_MAX_MINUTES = 15  # single drops for 1m, 5m, 15m; 1h and up are complete
_OUTAGE_MAX_MINUTES = 5  # outages only for 1m and 5m

_BTC_LIKE = frozenset({"BTC", "XBT", "WBTC"})
_BASE_PRICE: dict[str, float] = {
    "BTC": 60_000.0,
    "ETH": 3_000.0,
    "SOL": 150.0,
    "BNB": 550.0,
    "XRP": 0.6,
    "ADA": 0.45,
    "DOGE": 0.15,
    "AVAX": 35.0,
}
_DAILY_QUOTE_VOLUME: dict[str, float] = {
    "BTC": 1.5e9,
    "ETH": 8e8,
    "SOL": 3e8,
    "BNB": 1.5e8,
    "XRP": 2e8,
    "ADA": 8e7,
    "DOGE": 1.5e8,
    "AVAX": 6e7,
}


class _Stream(IntEnum):
    """Purpose tags: each random stream has its own generator so streams never interfere."""

    PARAMS = 1
    REGIME_START = 2
    REGIME_DURATION = 3
    REGIME_JUMP = 4
    MARKET_LOGVOL = 5
    MARKET_SHOCK = 6
    SYMBOL_LOGVOL = 7
    SYMBOL_SHOCK = 8
    INTRADAY_MARKET_LOGVOL = 9
    INTRADAY_MARKET_SHOCK = 10
    INTRADAY_SYMBOL_LOGVOL = 11
    INTRADAY_SYMBOL_SHOCK = 12
    RANGE = 13
    VOLUME = 14
    MISSING = 15


def interval_minutes(interval: str) -> int:
    """Minutes in a candle interval (``"1m"`` -> 1 ... ``"1d"`` -> 1440)."""
    try:
        return INTERVAL_MINUTES[interval]
    except (KeyError, TypeError):
        accepted = ", ".join(INTERVAL_MINUTES)
        raise ValueError(
            f"unsupported interval {interval!r}; accepted intervals: {accepted}"
        ) from None


@dataclass(frozen=True)
class _SymbolParams:
    key: int  # stable 32-bit hash of the symbol
    base_price: float  # anchor price on EPOCH
    beta: float  # loading on the market factor
    idio: float  # idiosyncratic vol as a fraction of market vol
    daily_quote_volume: float  # typical traded value per day, quote currency


def _symbol_key(symbol: str) -> int:
    return zlib.crc32(symbol.encode("utf-8", "surrogatepass"))


def _symbol_params(symbol: str) -> _SymbolParams:
    key = _symbol_key(symbol)
    u = np.random.default_rng([_Stream.PARAMS, key]).random(4)
    base = symbol.split("/", 1)[0].strip().upper()
    price = _BASE_PRICE.get(base, math.exp(math.log(0.1) + u[0] * math.log(500.0 / 0.1)))
    if base in _BTC_LIKE:
        beta, idio = 1.0, 0.35
    else:
        beta, idio = 0.7 + 0.7 * float(u[1]), 0.5 + 0.3 * float(u[2])
    quote_volume = _DAILY_QUOTE_VOLUME.get(base, math.exp(math.log(2e6) + u[3] * math.log(50.0)))
    return _SymbolParams(key, float(price), beta, idio, float(quote_volume))


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def _ar1(eps: np.ndarray, phi: float, start: float = 0.0) -> np.ndarray:
    """``y[t] = phi * y[t-1] + eps[t]`` with ``y[-1] = start``, for ``0 <= phi <= 1``.

    Vectorised: closed form inside blocks, block carries solved by recursion on the
    (64x shorter) sequence of block ends.
    """
    n = eps.size
    if n == 0 or phi == 0.0:
        return eps.astype(np.float64, copy=True)
    # Keep phi**-k finite within a block: phi**-(block-1) <= e**300.
    block = 64 if phi >= 1.0 else max(1, min(64, int(300.0 / -math.log(phi))))
    pad = (-n) % block
    e = np.concatenate([eps, np.zeros(pad)]).reshape(-1, block)
    k = np.arange(block)
    powers = phi**k
    local = np.cumsum(e * phi ** (-k.astype(np.float64)), axis=1) * powers
    if local.shape[0] == 1:
        carry_in = np.array([start])
    else:
        ends = _ar1(local[:-1, -1], phi**block, start)
        carry_in = np.concatenate([[start], ends])
    return (local + np.outer(carry_in, powers * phi)).ravel()[:n]


def _stationary_ar1(shocks: np.ndarray, phi: float, sd: float) -> np.ndarray:
    """A stationary AR(1) with marginal std ``sd`` driven by standard-normal ``shocks``."""
    eps = shocks * (sd * math.sqrt(max(0.0, 1.0 - phi * phi)))
    if eps.size:
        eps[0] = shocks[0] * sd
    return _ar1(eps, phi)


def _regime_path(seed: int, n_days: int) -> np.ndarray:
    """Regime index per day: a Markov chain built from geometric stays (prefix-stable)."""
    start = int(_rng(seed, _Stream.REGIME_START).random() * 3)
    jumps = 1 + (_rng(seed, _Stream.REGIME_JUMP).random(n_days) < 0.5)
    states = (start + np.concatenate([[0], np.cumsum(jumps[:-1])])) % 3
    stay = 1.0 - 1.0 / _REGIME_MEAN_DAYS[states]
    u = _rng(seed, _Stream.REGIME_DURATION).random(n_days)
    durations = 1 + np.floor(np.log1p(-u) / np.log(stay))
    ends = np.cumsum(durations)
    return states[np.searchsorted(ends, np.arange(n_days), side="right")]


@dataclass(frozen=True)
class _DailyPath:
    """Daily quantities for days ``0 .. n-1`` since EPOCH (``anchor`` has ``n + 1`` entries)."""

    market_vol: np.ndarray
    idio_vol: np.ndarray
    anchor: np.ndarray  # log price at 00:00 UTC of day t


def _daily_path(seed: int, params: _SymbolParams, n_days: int) -> _DailyPath:
    regimes = _regime_path(seed, n_days)
    x = _stationary_ar1(
        _rng(seed, _Stream.MARKET_LOGVOL).standard_normal(n_days),
        _MARKET_LOGVOL_PHI,
        _MARKET_LOGVOL_SD,
    )
    market_vol = _MARKET_DAILY_VOL * _REGIME_VOL[regimes] * np.exp(x - _MARKET_LOGVOL_SD**2)
    market_shock = _rng(seed, _Stream.MARKET_SHOCK).standard_normal(n_days)

    y = _stationary_ar1(
        _rng(seed, _Stream.SYMBOL_LOGVOL, params.key).standard_normal(n_days),
        _SYMBOL_LOGVOL_PHI,
        _SYMBOL_LOGVOL_SD,
    )
    idio_vol = params.idio * market_vol * np.exp(y - _SYMBOL_LOGVOL_SD**2)
    idio_shock = _rng(seed, _Stream.SYMBOL_SHOCK, params.key).standard_normal(n_days)

    returns = params.beta * market_vol * market_shock + idio_vol * idio_shock
    deviation = _ar1(returns, _ANCHOR_PHI)  # log(anchor / base) at the end of each day
    anchor = math.log(params.base_price) + np.concatenate([[0.0], deviation])
    return _DailyPath(market_vol, idio_vol, anchor)


def _seasonal_log_vol(n_candles: int, minutes: int) -> np.ndarray:
    """Log vol multiplier by UTC hour of the candle midpoint: peak ~14:30, trough ~02:30."""
    hour = (np.arange(n_candles) * minutes + minutes / 2.0) / 60.0
    return 0.30 * np.cos(2.0 * np.pi * (hour - 14.5) / 24.0) + 0.20 * np.exp(
        -0.5 * ((hour - 14.0) / 1.2) ** 2
    )


def _unit_t(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_t(_STUDENT_DF, n) * math.sqrt((_STUDENT_DF - 2.0) / _STUDENT_DF)


def _missing_mask(seed: int, key: int, ordinal: int, minutes: int, n: int) -> np.ndarray:
    if minutes > _SINGLE_MISSING_MAX_MINUTES:
        return np.zeros(n, dtype=bool)
    rng = _rng(seed, _Stream.MISSING, key, ordinal, minutes)
    missing = rng.random(n) < _SINGLE_MISSING_PROB
    has_outage = rng.random() < _OUTAGE_PROB
    if minutes <= _OUTAGE_MAX_MINUTES and has_outage:
        length = int(rng.integers(_OUTAGE_CANDLES[0], _OUTAGE_CANDLES[1] + 1))
        first = int(rng.integers(0, n - length + 1))
        missing[first : first + length] = True
    return missing


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _day_index(day: date) -> int:
    if isinstance(day, datetime):
        day = day.date()
    index = (day - EPOCH).days
    if index < 0:
        raise ValueError(f"the simulator starts on {EPOCH.isoformat()}; got {day.isoformat()}")
    return index


def _simulate(
    symbol: str,
    day: date,
    minutes: int,
    seed: int,
    params: _SymbolParams,
    daily: _DailyPath,
) -> dict[str, np.ndarray]:
    """The day's candles as numpy columns (no ``symbol``), missing candles removed."""
    d = _day_index(day)
    day = date.fromordinal(EPOCH.toordinal() + d)
    ordinal = day.toordinal()
    n = _MINUTES_PER_DAY // minutes

    market_vol = float(daily.market_vol[d])
    idio_vol = float(daily.idio_vol[d])
    day_vol = math.hypot(params.beta * market_vol, idio_vol)
    open_anchor, close_anchor = float(daily.anchor[d]), float(daily.anchor[d + 1])

    # Per-candle variance weights (sum to 1): seasonality x market and symbol stochastic vol.
    season = _seasonal_log_vol(n, minutes)
    h_market = _stationary_ar1(
        _rng(seed, _Stream.INTRADAY_MARKET_LOGVOL, ordinal, minutes).standard_normal(n),
        _INTRADAY_MARKET_PHI**minutes,
        _INTRADAY_MARKET_SD,
    )
    h_symbol = _stationary_ar1(
        _rng(seed, _Stream.INTRADAY_SYMBOL_LOGVOL, params.key, ordinal, minutes).standard_normal(n),
        _INTRADAY_SYMBOL_PHI**minutes,
        _INTRADAY_SYMBOL_SD,
    )
    log_vol = season + h_market + h_symbol
    weight = np.exp(2.0 * (log_vol - log_vol.max()))
    weight /= weight.sum()
    scale = np.sqrt(weight)

    market = _unit_t(_rng(seed, _Stream.INTRADAY_MARKET_SHOCK, ordinal, minutes), n)
    idio = _unit_t(_rng(seed, _Stream.INTRADAY_SYMBOL_SHOCK, params.key, ordinal, minutes), n)
    returns = scale * (params.beta * market_vol * market + idio_vol * idio)
    # Bridge: spread the gap to the next anchor in proportion to each candle's variance.
    returns += (close_anchor - open_anchor - returns.sum()) * weight

    close_log = open_anchor + np.cumsum(returns)
    close_log[-1] = close_anchor
    open_log = np.concatenate([[open_anchor], close_log[:-1]])

    # High/low: extremes of a Brownian bridge from open to close with the candle's variance.
    candle_sd = day_vol * scale
    u = _rng(seed, _Stream.RANGE, params.key, ordinal, minutes).random((2, n))
    move_sq = (close_log - open_log) ** 2
    mid = open_log + close_log
    high_log = 0.5 * (mid + np.sqrt(move_sq - 2.0 * candle_sd**2 * np.log1p(-u[0])))
    low_log = 0.5 * (mid - np.sqrt(move_sq - 2.0 * candle_sd**2 * np.log1p(-u[1])))
    open_ = np.exp(open_log)
    close = np.exp(close_log)
    high = np.maximum(np.exp(high_log), np.maximum(open_, close))
    low = np.minimum(np.exp(low_log), np.minimum(open_, close))

    # Volume (base units): lognormal around the symbol's typical traded value.
    vol_rng = _rng(seed, _Stream.VOLUME, params.key, ordinal, minutes)
    typical_day_vol = _MARKET_DAILY_VOL * math.hypot(params.beta, params.idio)
    log_volume = (
        math.log(params.daily_quote_volume / n)
        - open_anchor
        + (season - season.mean())
        + 0.5 * (h_market + h_symbol)
        + 0.35 * (np.abs(returns) / candle_sd - 0.8)
        + 0.8 * math.log(day_vol / typical_day_vol)
        + 0.4 * vol_rng.standard_normal(n)
        - 0.2
    )
    volume = np.exp(log_volume)
    quote_volume = volume * (high + low + close) / 3.0

    keep = ~_missing_mask(seed, params.key, ordinal, minutes, n)
    ts = np.datetime64(day.isoformat(), "us") + np.arange(n) * np.timedelta64(
        minutes * 60_000_000, "us"
    )
    return {
        "ts": ts[keep],
        "open": open_[keep],
        "high": high[keep],
        "low": low[keep],
        "close": close[keep],
        "volume": volume[keep],
        "quote_volume": quote_volume[keep],
    }


def _frame(symbol: str, columns: dict[str, np.ndarray]) -> pl.DataFrame:
    frame = pl.DataFrame(
        [pl.Series(name, values, dtype=CANDLE_SCHEMA[name]) for name, values in columns.items()]
    )
    others = [name for name in CANDLE_SCHEMA if name != "symbol"]
    return frame.select(pl.lit(symbol, dtype=pl.Utf8).alias("symbol"), *others)


def simulate_day(symbol: str, day: date, interval: str = "1m", seed: int = 42) -> pl.DataFrame:
    """All simulated candles of ``symbol`` for one UTC ``day`` (:data:`CANDLE_SCHEMA`).

    Rows are ascending by ``ts`` on the ``interval`` grid of that day, minus the few candles
    the simulator drops as missing. Pure: identical arguments give identical frames.
    """
    minutes = interval_minutes(interval)
    seed = _check_seed(seed)
    if not isinstance(symbol, str) or not symbol:
        raise ValueError(f"symbol must be a non-empty string, got {symbol!r}")
    d = _day_index(day)
    params = _symbol_params(symbol)
    daily = _daily_path(seed, params, d + 1)
    return _frame(symbol, _simulate(symbol, day, minutes, seed, params, daily))


class SimulatorCandleProvider:
    """:class:`~quant_assets.providers.base.CandleProvider` backed by :func:`simulate_day`."""

    name = "simulator"

    def __init__(self, seed: int = 42) -> None:
        self.seed = _check_seed(seed)

    def __repr__(self) -> str:
        return f"SimulatorCandleProvider(seed={self.seed})"

    def fetch_candles(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Candles with ``start <= ts < end`` (naive UTC; aware datetimes are converted).

        Equal to concatenating :func:`simulate_day` over every UTC day the range touches;
        nothing before :data:`EPOCH`.
        """
        minutes = interval_minutes(interval)
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"symbol must be a non-empty string, got {symbol!r}")
        start, end = utc_naive(start), utc_naive(end)
        first = max(start, datetime.combine(EPOCH, time()))
        if first >= end:
            return empty_candles()
        first_day = first.date()
        last_day = (end - timedelta(microseconds=1)).date()
        n_days = (last_day - first_day).days + 1
        params = _symbol_params(symbol)
        # One daily path for the whole range: the streams are prefix-stable, so this gives
        # exactly what simulate_day computes for each day on its own.
        daily = _daily_path(self.seed, params, _day_index(last_day) + 1)
        days = [
            _simulate(symbol, first_day + timedelta(days=i), minutes, self.seed, params, daily)
            for i in range(n_days)
        ]
        columns = {name: np.concatenate([day[name] for day in days]) for name in days[0]}
        ts = columns["ts"]
        inside = (ts >= np.datetime64(start, "us")) & (ts < np.datetime64(end, "us"))
        return _frame(symbol, {name: values[inside] for name, values in columns.items()})

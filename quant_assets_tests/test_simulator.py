"""Tests for the deterministic market simulator (quant_assets.providers.simulator)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant_assets.providers.base import CANDLE_SCHEMA, CandleProvider
from quant_assets.providers.simulator import (
    EPOCH,
    SimulatorCandleProvider,
    interval_minutes,
    simulate_day,
)

MAJORS = {
    "BTC/USDT": 60_000.0,
    "ETH/USDT": 3_000.0,
    "SOL/USDT": 150.0,
    "BNB/USDT": 550.0,
    "XRP/USDT": 0.6,
    "ADA/USDT": 0.45,
    "DOGE/USDT": 0.15,
    "AVAX/USDT": 35.0,
}
DAY = date(2024, 3, 1)
PROVIDER = SimulatorCandleProvider()


def _fetch_days(symbol: str, first: date, n_days: int, interval: str = "1m") -> pl.DataFrame:
    start = datetime.combine(first, datetime.min.time())
    return PROVIDER.fetch_candles(symbol, interval, start, start + timedelta(days=n_days))


def _with_returns(frame: pl.DataFrame) -> pl.DataFrame:
    """Per-candle log return close/open (the true open, so gaps do not distort it)."""
    return frame.with_columns(ret=(pl.col("close") / pl.col("open")).log())


def _frame_digest(frame: pl.DataFrame) -> str:
    digest = hashlib.sha256(frame["symbol"].str.join("|").item().encode())
    for name in frame.columns[1:]:
        digest.update(frame[name].to_numpy().tobytes())
    return digest.hexdigest()


def _assert_valid(frame: pl.DataFrame, day: date, minutes: int) -> None:
    assert frame.schema == pl.Schema(CANDLE_SCHEMA)
    # At most ~0.1 % single drops plus one outage of <= 30 candles.
    assert frame.height >= 0.98 * (1440 // minutes) - 30
    assert frame.height <= 1440 // minutes
    ts = frame["ts"]
    assert ts.is_sorted() and ts.n_unique() == frame.height
    day_start = datetime.combine(day, datetime.min.time())
    assert ts.min() >= day_start and ts.max() < day_start + timedelta(days=1)
    offsets = (ts - day_start).dt.total_minutes().to_numpy()
    assert np.all(offsets % minutes == 0)
    values = frame.select("open", "high", "low", "close", "volume", "quote_volume").to_numpy()
    assert np.all(np.isfinite(values)) and np.all(values > 0)
    o, h, lo, c = (frame[name].to_numpy() for name in ("open", "high", "low", "close"))
    assert np.all(h >= np.maximum(o, c))
    assert np.all(lo <= np.minimum(o, c))
    assert (frame["symbol"].n_unique(), frame["symbol"].null_count()) == (1, 0)
    typical = (frame["high"] + frame["low"] + frame["close"]) / 3.0
    np.testing.assert_allclose(frame["quote_volume"], frame["volume"] * typical, rtol=1e-12)
    # Within the day the path is continuous: open_i == close_{i-1} for adjacent candles.
    adjacent = np.diff(offsets) == minutes
    np.testing.assert_array_equal(o[1:][adjacent], c[:-1][adjacent])


# --- intervals -----------------------------------------------------------------------------


def test_interval_minutes() -> None:
    assert [interval_minutes(i) for i in ("1m", "5m", "15m", "30m", "1h", "4h", "1d")] == [
        1,
        5,
        15,
        30,
        60,
        240,
        1440,
    ]
    with pytest.raises(ValueError, match=r"'2m'.*1m, 5m, 15m, 30m, 1h, 4h, 1d"):
        interval_minutes("2m")
    with pytest.raises(ValueError, match="accepted"):
        simulate_day("BTC/USDT", DAY, "1w")


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "4h", "1d"])
def test_every_interval_gives_valid_candles_on_its_grid(interval: str) -> None:
    frame = simulate_day("BTC/USDT", DAY, interval)
    _assert_valid(frame, DAY, interval_minutes(interval))


def test_hourly_and_longer_intervals_are_complete() -> None:
    assert _fetch_days("AVAX/USDT", date(2023, 1, 1), 90, "1h").height == 90 * 24
    assert _fetch_days("AVAX/USDT", date(2023, 1, 1), 90, "4h").height == 90 * 6


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="2015-01-01"):
        simulate_day("BTC/USDT", date(2014, 12, 31))
    with pytest.raises(ValueError, match="seed"):
        simulate_day("BTC/USDT", DAY, seed=-1)
    with pytest.raises(ValueError, match="symbol"):
        simulate_day("", DAY)


# --- determinism ---------------------------------------------------------------------------


def test_deterministic_regardless_of_what_ran_before() -> None:
    alone = simulate_day("SOL/USDT", DAY, "1m", seed=7)
    # Unrelated work, other symbols, other days and the global RNGs must not matter.
    np.random.seed(123)
    random.seed(123)
    for offset in range(3):
        simulate_day("ETH/USDT", DAY + timedelta(days=offset), "5m", seed=7)
    PROVIDER.fetch_candles("SOL/USDT", "1m", datetime(2023, 1, 1), datetime(2023, 1, 3))
    again = simulate_day("SOL/USDT", DAY, "1m", seed=7)
    assert again.equals(alone)


def test_deterministic_across_processes_and_python_hash_seeds() -> None:
    code = (
        "import hashlib, datetime\n"
        "from quant_assets.providers.simulator import simulate_day\n"
        "f = simulate_day('DOGE/USDT', datetime.date(2024, 3, 1), '5m', seed=3)\n"
        "d = hashlib.sha256(f['symbol'].str.join('|').item().encode())\n"
        "[d.update(f[c].to_numpy().tobytes()) for c in f.columns[1:]]\n"
        "print(d.hexdigest())\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    expected = _frame_digest(simulate_day("DOGE/USDT", date(2024, 3, 1), "5m", seed=3))
    assert out.stdout.strip() == expected


def test_days_symbols_and_seeds_differ() -> None:
    base = simulate_day("BTC/USDT", DAY)
    others = [
        simulate_day("BTC/USDT", DAY + timedelta(days=1)),
        simulate_day("ETH/USDT", DAY),
        simulate_day("BTC/USDC", DAY),
        simulate_day("BTC/USDT", DAY, seed=43),
    ]
    base_ret = _with_returns(base)["ret"].to_numpy()[:1000]
    for other in others:
        other_ret = _with_returns(other)["ret"].to_numpy()[:1000]
        assert not np.allclose(base_ret, other_ret)
        assert abs(np.corrcoef(base_ret, other_ret)[0, 1]) < 0.95


# --- continuity ----------------------------------------------------------------------------


@pytest.mark.parametrize(("symbol", "interval"), [("BTC/USDT", "1m"), ("XRP/USDT", "5m")])
def test_days_join_without_state(symbol: str, interval: str) -> None:
    minutes = interval_minutes(interval)
    days = [date(2023, 12, 20) + timedelta(days=i) for i in range(21)]
    frames = [simulate_day(symbol, d, interval) for d in days]  # each computed on its own
    checked = 0
    last_move = []
    for day, today, tomorrow in zip(days, frames, frames[1:], strict=False):
        # The bridge spreads the gap to the next anchor over the day: the last candle is an
        # ordinary candle, not a jump that absorbs the whole day's residual.
        moves = _with_returns(today)["ret"].abs()
        last_move.append(moves[-1] / moves.median())
        last_ts = datetime.combine(day, datetime.min.time()) + timedelta(minutes=1440 - minutes)
        first_ts = datetime.combine(day + timedelta(days=1), datetime.min.time())
        if today["ts"][-1] == last_ts and tomorrow["ts"][0] == first_ts:
            close, open_ = today["close"][-1], tomorrow["open"][0]
            assert abs(close / open_ - 1.0) < 1e-9
            checked += 1
    assert checked >= 15
    assert np.median(last_move) < 4.0, last_move


def test_missing_candles_leave_the_path_intact() -> None:
    frame = _fetch_days("ETH/USDT", date(2024, 1, 1), 30)
    expected = 30 * 1440
    missing = 1.0 - frame.height / expected
    assert 0.0 < missing < 0.02
    offsets = frame["ts"].diff().dt.total_minutes().to_numpy()[1:]
    gaps = np.flatnonzero(offsets > 1)
    assert gaps.size > 0
    assert offsets.max() >= 6  # at least one outage run of 5+ candles within a month
    # After a gap the candle opens at the true price, not at the last emitted close.
    opens, closes = frame["open"].to_numpy(), frame["close"].to_numpy()
    assert np.all(opens[gaps + 1] != closes[gaps])


def test_missing_fraction_is_small_for_many_symbols() -> None:
    heights = [_fetch_days(s, date(2022, 6, 1), 5).height for s in MAJORS]
    fraction = 1.0 - sum(heights) / (len(MAJORS) * 5 * 1440)
    assert 0.0 < fraction < 0.02


# --- crypto-like statistics -----------------------------------------------------------------


@pytest.fixture(scope="module")
def ten_days() -> dict[str, pl.DataFrame]:
    return {
        s: _with_returns(_fetch_days(s, date(2024, 5, 1), 10))
        for s in ("BTC/USDT", "ETH/USDT", "QQQ/USDT", "ZZZ/EUR")
    }


def test_weekends_are_traded(ten_days: dict[str, pl.DataFrame]) -> None:
    weekdays = set(ten_days["BTC/USDT"]["ts"].dt.weekday().unique().to_list())
    assert weekdays == set(range(1, 8))


def test_symbols_are_correlated(ten_days: dict[str, pl.DataFrame]) -> None:
    def corr(a: str, b: str) -> float:
        left = ten_days[a].filter(pl.col("ts") < datetime(2024, 5, 4)).select("ts", "ret")
        joined = left.join(ten_days[b].select("ts", "ret"), on="ts")
        return float(np.corrcoef(joined["ret"], joined["ret_right"])[0, 1])

    assert corr("BTC/USDT", "ETH/USDT") > 0.3
    assert corr("QQQ/USDT", "ZZZ/EUR") > 0.3


def test_volatility_clusters(ten_days: dict[str, pl.DataFrame]) -> None:
    for frame in ten_days.values():
        # Consecutive 1-minute candles only, so lags are exact.
        ret = frame.filter(frame["ts"].diff().dt.total_minutes().fill_null(1) == 1)["ret"]
        absolute = np.abs(ret.to_numpy())
        absolute -= absolute.mean()
        acf = [
            float(np.mean(absolute[:-lag] * absolute[lag:]) / absolute.var())
            for lag in range(1, 11)
        ]
        assert min(acf) > 0.1, acf


def test_fat_tails(ten_days: dict[str, pl.DataFrame]) -> None:
    for frame in ten_days.values():
        ret = frame["ret"].to_numpy()
        excess_kurtosis = np.mean((ret - ret.mean()) ** 4) / ret.var() ** 2 - 3.0
        # Stochastic vol with Gaussian shocks alone gives ~4; Student-t shocks give 15-35.
        assert excess_kurtosis > 8.0, excess_kurtosis


def test_intraday_seasonality(ten_days: dict[str, pl.DataFrame]) -> None:
    for frame in ten_days.values():
        hour = frame["ts"].dt.hour()
        busy = frame.filter(hour.is_between(14, 15))
        quiet = frame.filter(hour.is_between(3, 4))
        assert busy["ret"].abs().mean() > 1.3 * quiet["ret"].abs().mean()
        assert busy["volume"].mean() > 1.3 * quiet["volume"].mean()


def test_volume_rises_with_absolute_return(ten_days: dict[str, pl.DataFrame]) -> None:
    for frame in ten_days.values():
        corr = np.corrcoef(np.log(frame["volume"]), frame["ret"].abs())[0, 1]
        assert corr > 0.2


def test_realistic_annualised_volatility(ten_days: dict[str, pl.DataFrame]) -> None:
    for frame in ten_days.values():
        annualised = frame["ret"].std() * np.sqrt(1440 * 365)
        assert 0.2 < annualised < 1.5
    for symbol in MAJORS:
        daily = _fetch_days(symbol, date(2022, 1, 1), 730, "1d")
        assert daily.height == 730
        closes = daily["close"].to_numpy()
        annualised = np.std(np.diff(np.log(closes))) * np.sqrt(365)
        assert 0.35 < annualised < 0.95, (symbol, annualised)


def test_five_minute_vol_is_sqrt5_of_one_minute() -> None:
    one = _with_returns(_fetch_days("ADA/USDT", date(2024, 2, 1), 5, "1m"))
    five = _with_returns(_fetch_days("ADA/USDT", date(2024, 2, 1), 5, "5m"))
    assert abs(five.height / one.height - 0.2) < 0.01
    ratio = five["ret"].std() / one["ret"].std()
    assert 1.8 < ratio < 2.7  # sqrt(5) = 2.24
    # Both series run between the same daily anchors.
    np.testing.assert_allclose(five["open"][0], one["open"][0], rtol=1e-12)


# --- price levels --------------------------------------------------------------------------


def test_base_prices_on_the_epoch() -> None:
    for symbol, price in MAJORS.items():
        first = simulate_day(symbol, EPOCH, "1d")
        assert first["open"][0] == pytest.approx(price, rel=1e-12)
    assert simulate_day("BTC/EUR", EPOCH, "1d")["open"][0] == pytest.approx(60_000.0)
    for symbol in ("FOO/USDT", "BAR/BTC", "XYZ123", "QQQ/USDT"):
        assert 0.1 <= simulate_day(symbol, EPOCH, "1d")["open"][0] <= 500.0


def test_prices_do_not_explode_over_the_years() -> None:
    days = [EPOCH + timedelta(days=91 * k) for k in range(64)]  # 2015 .. 2030
    for symbol, price in MAJORS.items():
        closes = np.array([simulate_day(symbol, d, "1d")["close"][0] for d in days])
        assert np.all(closes > price / 30.0) and np.all(closes < price * 30.0), symbol


# --- provider ------------------------------------------------------------------------------


def test_provider_matches_simulate_day_and_respects_bounds() -> None:
    provider = SimulatorCandleProvider(seed=9)
    assert isinstance(provider, CandleProvider)
    assert provider.name == "simulator"
    start, end = datetime(2024, 2, 28, 22, 7, 30), datetime(2024, 3, 1, 0, 10)
    frame = provider.fetch_candles("BNB/USDT", "5m", start, end)
    reference = pl.concat(
        [simulate_day("BNB/USDT", date(2024, 2, 28) + timedelta(days=i), "5m", 9) for i in range(3)]
    ).filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    assert frame.equals(reference)
    assert frame["ts"].min() >= start and frame["ts"].max() < end
    assert frame["ts"].is_sorted()
    # End is exclusive, start inclusive.
    exact = provider.fetch_candles("BNB/USDT", "1h", datetime(2024, 3, 1), datetime(2024, 3, 2))
    assert exact["ts"].max() < datetime(2024, 3, 2)
    assert exact.equals(simulate_day("BNB/USDT", date(2024, 3, 1), "1h", 9))


def test_provider_edge_ranges() -> None:
    empty = PROVIDER.fetch_candles("BTC/USDT", "1m", datetime(2024, 1, 2), datetime(2024, 1, 1))
    assert empty.height == 0 and empty.schema == pl.Schema(CANDLE_SCHEMA)
    before = PROVIDER.fetch_candles("BTC/USDT", "1h", datetime(2014, 1, 1), datetime(2015, 1, 2))
    assert before["ts"].min() == datetime(2015, 1, 1)
    assert before.equals(simulate_day("BTC/USDT", EPOCH, "1h"))
    # Aware datetimes are converted to naive UTC.
    plus_two = timezone(timedelta(hours=2))
    aware = PROVIDER.fetch_candles(
        "BTC/USDT",
        "15m",
        datetime(2024, 1, 1, 2, 0, tzinfo=plus_two),
        datetime(2024, 1, 1, 3, 0, tzinfo=UTC),
    )
    naive = PROVIDER.fetch_candles("BTC/USDT", "15m", datetime(2024, 1, 1), datetime(2024, 1, 1, 3))
    assert aware.equals(naive)
    with pytest.raises(ValueError, match="interval"):
        PROVIDER.fetch_candles("BTC/USDT", "3m", datetime(2024, 1, 1), datetime(2024, 1, 2))


def test_sixty_days_of_eight_symbols_are_nearly_complete() -> None:
    frames = [_fetch_days(symbol, date(2024, 1, 1), 60) for symbol in MAJORS]
    assert sum(f.height for f in frames) > 0.98 * 8 * 60 * 1440


# --- properties ----------------------------------------------------------------------------

symbols = st.one_of(
    st.sampled_from(sorted(MAJORS)),
    st.builds(
        "{}/{}".format,
        st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=8),
        st.sampled_from(["USDT", "USDC", "BTC", "EUR"]),
    ),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12),
)


@settings(max_examples=25, deadline=None)
@given(
    symbol=symbols,
    day=st.dates(date(2018, 1, 1), date(2030, 12, 31)),
    seed=st.integers(0, 2**32 - 1),
    interval=st.sampled_from(["1m", "5m"]),
)
def test_property_valid_and_deterministic(symbol: str, day: date, seed: int, interval: str) -> None:
    frame = simulate_day(symbol, day, interval, seed)
    _assert_valid(frame, day, interval_minutes(interval))
    assert (frame["symbol"] == symbol).all()
    assert simulate_day(symbol, day, interval, seed).equals(frame)

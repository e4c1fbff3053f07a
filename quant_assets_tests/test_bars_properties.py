"""Property tests of the bars model, run straight on DuckDB (no Dagster): random candles with
random gaps, built day by day, equal one full-range build exactly; future data changes no
past bar."""

from datetime import datetime, timedelta

import duckdb
import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant_assets.config import load_settings
from quant_assets.lib.sql_models import (
    MODEL_KEYS,
    SQL_DIR,
    bind_params,
    expand,
    parse_file,
    render,
    run_model,
)
from quant_assets.resources.migrations import apply_migrations

SETTINGS = load_settings(env={"QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": "15m,1h,1d",
                              "QUANT_SYMBOLS": "BTC/USDT,ETH/USDT"}, overrides={"bars": {"roll_vol_window": 20}})
MODELS = [
    (f.name, f.interval, render(f, {"raw_candles", f.name})[0])
    for f in expand(parse_file(SQL_DIR / "bars.sql", MODEL_KEYS, ("asset",)), SETTINGS)
]
DAY0 = datetime(2024, 3, 1)
DAYS = 4


def _candles(seed: int, drop: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = DAYS * 288
    frames = []
    for symbol in ("BTC/USDT", "ETH/USDT"):
        close = 100 * np.exp(np.cumsum(rng.standard_t(3, n) * 0.002))
        open_ = np.concatenate([[100.0], close[:-1]])
        keep = rng.random(n) >= drop
        frames.append(pl.DataFrame({
            "symbol": symbol, "ts": [DAY0 + timedelta(minutes=5 * i) for i in range(n)], "interval": "5m",
            "open": open_, "high": np.maximum(open_, close) * 1.001, "low": np.minimum(open_, close) * 0.999,
            "close": close, "volume": rng.lognormal(0, 1, n), "quote_volume": None, "provider": "simulator",
            "fetched_at": DAY0, "fetch_status": "OK", "error": None,
        }).filter(pl.Series(keep)))
    return pl.concat(frames).with_columns(pl.col("quote_volume").cast(pl.Float64), pl.col("error").cast(pl.Utf8))


def _build(candles: pl.DataFrame, windows: list[tuple[datetime, datetime]]) -> dict[str, list[tuple]]:
    with duckdb.connect() as conn:
        apply_migrations(conn)
        conn.register("c", candles.to_arrow())
        conn.execute("INSERT INTO raw_candles BY NAME SELECT * FROM c")
        for start, end in windows:
            for name, interval, sql in MODELS:
                run_model(conn, name, sql, bind_params(sql, interval, SETTINGS, start, end), (start, end), "ts")
        return {name: conn.execute(f'SELECT * FROM "{name}" ORDER BY symbol, ts').fetchall() for name, _, _ in MODELS}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), drop=st.sampled_from([0.0, 0.02, 0.3]))
def test_day_by_day_equals_one_full_range_build(seed, drop):
    candles = _candles(seed, drop)
    days = [(DAY0 + timedelta(days=d), DAY0 + timedelta(days=d + 1)) for d in range(DAYS)]
    assert _build(candles, days) == _build(candles, [(DAY0, DAY0 + timedelta(days=DAYS))])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), cut_day=st.integers(1, DAYS - 1))
def test_future_candles_change_no_past_bar(seed, cut_day):
    candles = _candles(seed, 0.05)
    cut = DAY0 + timedelta(days=cut_day)
    past_only = _build(candles.filter(pl.col("ts") < cut), [(DAY0, cut)])
    with_future = _build(candles, [(DAY0, DAY0 + timedelta(days=DAYS))])
    for name in past_only:
        assert past_only[name] == [row for row in with_future[name] if row[1] < cut]


def test_bar_volumes_are_the_time_ordered_sums_of_their_candles_bit_for_bit():
    """On 4 threads DuckDB's plain sum() of DOUBLEs adds partial sums in an order of its own (run
    to run, and unlike a left fold where a bar's candles span two row groups); the model sums in
    candle time order, so each bar equals the left fold of its candles exactly."""
    settings_1m = load_settings(env={"QUANT_BASE_INTERVAL": "1m", "QUANT_BAR_INTERVALS": "1h,1d",
                                     "QUANT_SYMBOLS": "BTC/USDT"})
    (daily,) = [f for f in expand(parse_file(SQL_DIR / "bars.sql", MODEL_KEYS, ("asset",)), settings_1m)
                if f.interval == "1d"]
    sql = render(daily, {"raw_candles", daily.name})[0]
    rng = np.random.default_rng(7)
    days, n = 30, 30 * 1440
    ts = pl.datetime_range(DAY0, DAY0 + timedelta(days=days), "1m", closed="left", eager=True, time_unit="us")
    candles = pl.concat([
        pl.DataFrame({"symbol": symbol, "ts": ts, "interval": "1m", "open": 100.0, "high": 100.0, "low": 100.0,
                      "close": 100.0, "volume": rng.lognormal(0, 2, n), "quote_volume": rng.lognormal(0, 2, n),
                      "provider": "simulator", "fetched_at": DAY0, "fetch_status": "OK", "error": None})
        for symbol in [f"S{i}/USDT" for i in range(6)]
    ]).with_columns(pl.col("error").cast(pl.Utf8))
    end = DAY0 + timedelta(days=days)
    with duckdb.connect() as conn:
        apply_migrations(conn)
        conn.register("c", candles.to_arrow())
        conn.execute("INSERT INTO raw_candles BY NAME SELECT * FROM c")
        conn.execute("SET threads = 4")
        run_model(conn, daily.name, sql, bind_params(sql, "1d", settings_1m, DAY0, end), (DAY0, end), "ts")
        got = conn.execute(f'SELECT symbol, ts, volume, quote_volume FROM "{daily.name}" ORDER BY symbol, ts').fetchall()
    folds = candles.sort("symbol", "ts").group_by("symbol", pl.col("ts").dt.truncate("1d"), maintain_order=True).agg(
        pl.col("volume").cum_sum().last(), pl.col("quote_volume").cum_sum().last())
    assert len(got) == folds.height == 6 * days
    assert [(v, q) for *_, v, q in got] == [(v, q) for *_, v, q in folds.iter_rows()]

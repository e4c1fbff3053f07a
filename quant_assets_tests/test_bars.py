"""Bars on real exchange data: equal to an independent pandas resample, gaps listed exactly,
and every bar quality gate proven able to fail."""

from datetime import UTC, datetime

import dagster as dg
import duckdb
import pandas as pd
import polars as pl
import pytest

from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets_tests.conftest import SHARED_DATA, materialize

FREQTRADE = SHARED_DATA / "freqtrade_testdata"
PAIRS = ("ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX", "XLM", "XMR", "ZEC")
FIRST_DAY, LAST_DAY = "2018-01-10", "2018-01-30"
BARS_ONLY = "group:bars and not key:dim_timeframe"


def _load_pairs() -> pl.DataFrame:
    frames = []
    for base in PAIRS:
        raw = pl.read_ipc(FREQTRADE / f"{base}_BTC-5m.feather")
        frames.append(raw.select(
            pl.lit(f"{base}/BTC").alias("symbol"),
            pl.col("date").dt.replace_time_zone(None).dt.cast_time_unit("us").alias("ts"),
            pl.lit("5m").alias("interval"),
            "open", "high", "low", "close", "volume",
            pl.lit(None, dtype=pl.Float64).alias("quote_volume"),
            pl.lit("files").alias("provider"),
            pl.lit(datetime(2024, 1, 1), dtype=pl.Datetime("us")).alias("fetched_at"),
            pl.lit("OK").alias("fetch_status"),
            pl.lit(None, dtype=pl.Utf8).alias("error"),
        ))
    return pl.concat(frames)


@pytest.fixture(scope="module")
def real_bars(tmp_path_factory):
    """The ten real 5m pairs stored as raw_candles, bars built day by day over 21 partitions."""
    if not FREQTRADE.exists():
        pytest.skip(f"real market data not found at {FREQTRADE} (a checkout without ../shared/data)")
    from quant_assets.config import load_settings
    from quant_assets.definitions import build_definitions

    data = tmp_path_factory.mktemp("real")
    settings = load_settings(env={
        "QUANT_DATA_DIR": str(data), "QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": "15m,1h,1d",
        "QUANT_SYMBOLS": ",".join(f"{p}/BTC" for p in PAIRS), "QUANT_START_DATE": FIRST_DAY,
    })
    candles = _load_pairs()
    with QuantDuckDB(database=str(settings.duckdb_path)).connect() as conn:
        conn.register("candles", candles.to_arrow())
        conn.execute("INSERT INTO raw_candles BY NAME SELECT * FROM candles")
    defs = build_definitions(settings)
    result = materialize(defs, start=FIRST_DAY, end=LAST_DAY, selection=BARS_ONLY)
    assert result.success
    return settings, candles, defs


def _pandas_bars(candles: pl.DataFrame, rule: str) -> pd.DataFrame:
    """What a user would write: pandas resample, left-closed, left-labelled, empty bins dropped."""
    out = []
    for symbol, group in candles.to_pandas().groupby("symbol"):
        frame = group.set_index("ts").sort_index()
        agg = frame.resample(rule, closed="left", label="left").agg(
            {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum", "symbol": "count"}
        )
        agg = agg[agg["symbol"] > 0].rename(columns={"symbol": "n_source"})
        agg.insert(0, "symbol", symbol)
        out.append(agg.reset_index())
    return pd.concat(out).sort_values(["symbol", "ts"]).reset_index(drop=True)


@pytest.mark.parametrize(("interval", "rule"), [("15m", "15min"), ("1h", "1h"), ("1d", "1D")])
def test_bars_equal_an_independent_pandas_resample(real_bars, interval, rule):
    settings, candles, _ = real_bars
    expected = _pandas_bars(candles, rule)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        got = conn.execute(
            f"SELECT symbol, ts, open, high, low, close, volume, n_source FROM bars_{interval} ORDER BY symbol, ts"
        ).df()
    assert len(got) == len(expected) > 0
    assert (got["symbol"].to_numpy() == expected["symbol"].to_numpy()).all()
    assert (got["ts"].to_numpy() == expected["ts"].to_numpy()).all()
    for column in ("open", "high", "low", "close", "n_source"):
        assert (got[column].to_numpy() == expected[column].to_numpy()).all(), column
    # Sums of floats in a different order may differ in the last bit.
    assert got["volume"].to_numpy() == pytest.approx(expected["volume"].to_numpy(), rel=1e-12)


def test_bar_gaps_list_exactly_the_missing_candles(real_bars):
    settings, candles, _ = real_bars
    grid = pd.date_range(FIRST_DAY, pd.Timestamp(LAST_DAY) + pd.Timedelta(days=1), freq="5min", inclusive="left")
    present = candles.to_pandas().groupby("symbol")["ts"].apply(set)
    expected = {(s, t) for s in present.index for t in grid if t not in present[s]}
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        gaps = conn.execute("SELECT symbol, gap_start, gap_end, missing_count FROM bar_gaps").fetchall()
    listed = set()
    for symbol, start, end, count in gaps:
        run = pd.date_range(start, end, freq="5min", inclusive="left")
        assert len(run) == count
        listed |= {(symbol, t) for t in run}
    assert listed == expected
    # The files hold real gaps (5,720-5,760 rows a pair), beyond the partial first and last day.
    inner = {(s, t) for s, t in expected if "2018-01-11" <= t.strftime("%Y-%m-%d") <= "2018-01-29"}
    assert 0 < len(inner) < 1000


def test_returns_and_rolling_volatility_follow_their_definitions(real_bars):
    settings, _, _ = real_bars
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        bars = conn.execute(
            "SELECT ts, close, log_return, cum_return, roll_vol FROM bars_1h WHERE symbol = 'ETH/BTC' ORDER BY ts"
        ).df()
    closes = bars["close"].to_numpy()
    import numpy as np

    hours = bars["ts"].diff().dt.total_seconds().div(3600).to_numpy()
    # On the bar grid: the previous bar is the one an hour earlier, else the return is NULL.
    on_grid = hours[1:] == 1
    log_returns = np.where(on_grid, np.log(closes[1:] / closes[:-1]), np.nan)
    assert bars["log_return"].to_numpy()[1:] == pytest.approx(log_returns, rel=1e-12, nan_ok=True)
    assert pd.isna(bars["log_return"][0])
    # Since the day began: against the close of the bar ending at the day's 00:00.
    by_ts = dict(zip(bars["ts"], closes, strict=True))
    reference = [by_ts.get(ts.normalize() - pd.Timedelta(hours=1), np.nan) for ts in bars["ts"]]
    assert bars["cum_return"].to_numpy() == pytest.approx(closes / np.array(reference) - 1, rel=1e-12, abs=1e-15, nan_ok=True)
    assert bars["cum_return"].notna().sum() > 0.9 * len(bars)
    window = settings.bars.roll_vol_window
    for i in range(len(bars)):
        contiguous = i >= window and (hours[i - window + 1:i + 1] == 1).all()
        if contiguous:
            expected = np.std(bars["log_return"].to_numpy()[i - window + 1:i + 1], ddof=1) * np.sqrt(365 * 24)
            assert bars["roll_vol"][i] == pytest.approx(expected, rel=1e-9)
        else:
            assert pd.isna(bars["roll_vol"][i]), i


def test_dim_timeframe_lists_the_configured_intervals(real_bars):
    settings, _, defs = real_bars
    assert materialize(defs, selection="key:dim_timeframe").success
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        rows = conn.execute("SELECT name, seconds, is_base, is_bar_interval FROM dim_timeframe ORDER BY seconds").fetchall()
    assert ("5m", 300, True, False) in rows and ("1h", 3600, False, True) in rows
    assert ("1w", 604800, False, False) in rows


# --- every check can fail -------------------------------------------------------------------

DAY = "2024-03-04"


@pytest.fixture
def built(settings, defs_for):
    defs = defs_for(settings)
    assert materialize(defs, partition_key=DAY, selection=f"key:raw_candles or {BARS_ONLY}").success
    assert materialize(defs, selection="key:dim_timeframe").success
    return settings, defs


def run_check(defs: dg.Definitions, asset: str, name: str, partition: str | None = DAY) -> dg.AssetCheckEvaluation:
    key = dg.AssetCheckKey(dg.AssetKey(asset), name)
    # A run of checks alone takes its partition as a one-day range: Dagster's partition_key
    # validation wants at least one asset in the selection.
    result = materialize(defs, start=partition, end=partition, selection=dg.AssetSelection.checks(key), raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def _sql(settings, statement: str, params=None) -> None:
    with duckdb.connect(str(settings.duckdb_path)) as conn:
        conn.execute(statement, params or [])


def _rebuild(defs, selection: str) -> None:
    assert materialize(defs, partition_key=DAY, selection=selection, raise_on_error=False) is not None


BLOCKING = [
    ("bars_1h", "bars_1h_unique_key", "INSERT INTO bars_1h SELECT * FROM bars_1h WHERE symbol = 'BTC/USDT' LIMIT 1"),
    ("bars_1h", "bars_1h_valid_ohlc", "UPDATE bars_1h SET high = close * 0.9 WHERE symbol = 'ETH/USDT' AND hour(ts) = 3"),
    ("bars_1h", "bars_1h_valid_ohlc", "UPDATE bars_1h SET n_source = n_expected + 1 WHERE symbol = 'ETH/USDT' AND hour(ts) = 3"),
    ("bars_15m", "bars_15m_reconcile_source", "UPDATE bars_15m SET volume = volume * 1.01 WHERE symbol = 'SOL/USDT' AND hour(ts) = 5 AND minute(ts) = 15"),
    ("bars_1d", "bars_1d_reconcile_source", "DELETE FROM bars_1d WHERE symbol = 'SOL/USDT'"),
    ("bar_gaps", "bar_gaps_consistent", "INSERT INTO bar_gaps VALUES ('BTC/USDT', TIMESTAMP '2024-03-04 06:00', TIMESTAMP '2024-03-04 06:02', 2)"),
    ("dim_timeframe", "dim_timeframe_valid", "INSERT INTO dim_timeframe SELECT * FROM dim_timeframe WHERE name = '1h'"),
]


@pytest.mark.parametrize(("asset", "check", "corruption"), BLOCKING, ids=[f"{c}:{i}" for i, (_, c, _) in enumerate(BLOCKING)])
def test_each_blocking_bar_check_passes_then_fails_on_data_built_to_violate_it(built, asset, check, corruption):
    settings, defs = built
    partition = None if asset == "dim_timeframe" else DAY
    assert run_check(defs, asset, check, partition).passed
    _sql(settings, corruption)
    evaluation = run_check(defs, asset, check, partition)
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["failing_rows"].value >= 1


def test_completeness_stale_and_long_gap_warnings(built):
    settings, defs = built
    for name in ("bars_1h_completeness", "bars_1h_stale"):
        assert run_check(defs, "bars_1h", name).passed
    assert run_check(defs, "bar_gaps", "bar_gaps_long").passed
    # ETH's feed stops at 18:00: 6 hours missing -> incomplete, stale, and one long gap.
    _sql(settings, "DELETE FROM raw_candles WHERE symbol = 'ETH/USDT' AND ts >= ?::TIMESTAMP + INTERVAL 18 HOUR", [DAY])
    _rebuild(defs, "key:bars_1h or key:bar_gaps")
    for asset, name in (("bars_1h", "bars_1h_completeness"), ("bars_1h", "bars_1h_stale"), ("bar_gaps", "bar_gaps_long")):
        evaluation = run_check(defs, asset, name)
        assert not evaluation.passed, name
        assert evaluation.severity == dg.AssetCheckSeverity.WARN
        assert "ETH/USDT" in evaluation.metadata["sample"].value
    assert run_check(defs, "bar_gaps", "bar_gaps_consistent").passed


def test_return_outlier_warning(built):
    settings, defs = built
    assert run_check(defs, "bars_1h", "bars_1h_return_outliers").passed
    _sql(
        settings,
        "UPDATE raw_candles SET close = close * 1.5, high = greatest(high, close * 1.5) "
        "WHERE symbol = 'BTC/USDT' AND ts = ?::TIMESTAMP + INTERVAL '12 hours 59 minutes'",
        [DAY],
    )
    _rebuild(defs, "key:bars_1h")
    evaluation = run_check(defs, "bars_1h", "bars_1h_return_outliers")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["failing_rows"].value == 2  # the jump up and the fall back


def test_a_blocking_bar_failure_stops_features_in_the_same_run(settings, defs_for):
    """Reconcile fails inside the run that builds bars_1h: features and everything after are skipped."""
    defs = defs_for(settings)
    assert materialize(defs, partition_key=DAY, selection="key:raw_candles").success
    # A zero low planted behind the gate's back flows into the bar and fails its ERROR check.
    _sql(settings, "UPDATE raw_candles SET low = 0 WHERE symbol = 'BTC/USDT' AND ts = ?::TIMESTAMP + INTERVAL 2 HOUR", [DAY])
    result = materialize(defs, partition_key=DAY, selection=dg.AssetSelection.assets("bars_1h").downstream(), raise_on_error=False)
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    failed = {e.asset_check_key.name for e in result.get_asset_check_evaluations() if not e.passed}
    assert "bars_1h_valid_ohlc" in failed
    assert materialized == {"bars_1h"}
    assert not result.success


def test_bars_are_left_labelled_utc_timestamps(built):
    settings, _ = built
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        first = conn.execute("SELECT min(ts) FROM bars_1h").fetchone()[0]
        column_type = conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'bars_1h' AND column_name = 'ts'"
        ).fetchone()[0]
    assert first == datetime(2024, 3, 4, 0, 0) and column_type == "TIMESTAMP"
    assert datetime.fromisoformat(DAY).replace(tzinfo=UTC).timestamp() == first.replace(tzinfo=UTC).timestamp()



def test_provider_mix_names_every_provider_of_a_bar(built):
    settings, defs = built
    _sql(settings, "UPDATE raw_candles SET provider = 'binance' WHERE symbol = 'BTC/USDT' AND ts >= ?::TIMESTAMP + INTERVAL 7 HOUR AND ts < ?::TIMESTAMP + INTERVAL '7 hours 30 minutes'", [DAY, DAY])
    _sql(settings, "UPDATE raw_candles SET provider = 'a_private_mirror' WHERE symbol = 'BTC/USDT' AND ts = ?::TIMESTAMP + INTERVAL '7 hours 45 minutes'", [DAY])
    _rebuild(defs, "key:bars_1h or key:bars_1d")
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        mixes = dict(conn.execute(
            "SELECT hour(ts), provider_mix FROM bars_1h WHERE symbol = 'BTC/USDT' AND hour(ts) IN (6, 7)"
        ).fetchall())
        daily = conn.execute("SELECT provider_mix FROM bars_1d WHERE symbol = 'BTC/USDT'").fetchone()[0]
    assert mixes == {6: "simulator", 7: "binance,simulator,other"}
    assert daily == "binance,simulator,other"


@pytest.fixture(scope="module")
def trade_settings(tmp_path_factory):
    if not FREQTRADE.exists():
        pytest.skip(f"real market data not found at {FREQTRADE} (a checkout without ../shared/data)")
    from quant_assets.config import load_settings

    data = tmp_path_factory.mktemp("trades")
    return load_settings(env={
        "QUANT_DATA_DIR": str(data), "QUANT_SYMBOLS": "XRP/ETH", "QUANT_START_DATE": "2019-10-01",
        "QUANT_TRADES_DIR": str(FREQTRADE), "QUANT_BAR_INTERVALS": "5m,1h,1d",
    })


def test_trade_bars_from_real_trades_equal_pandas(trade_settings):
    """The 12,477 real XRP/ETH trades become bars equal to a pandas resample of the same trades."""
    from quant_assets.definitions import build_definitions

    defs = build_definitions(trade_settings)
    result = materialize(defs, start="2019-10-11", end="2019-10-13", selection="key:raw_trades or key:trade_bars_5m or key:trade_bars_1h or key:trade_bars_1d")
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    trades = pd.read_parquet(FREQTRADE / "XRP_ETH-trades.parquet")
    trades["ts"] = pd.to_datetime(trades["timestamp"], unit="ms")
    trades = trades.sort_values(["ts", "id"]).set_index("ts")
    with duckdb.connect(str(trade_settings.duckdb_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw_trades").fetchone()[0] == len(trades) == 12477
        for interval, rule in (("5m", "5min"), ("1h", "1h"), ("1d", "1D")):
            got = conn.execute(f"SELECT ts, open, high, low, close, volume, n_trades FROM trade_bars_{interval} ORDER BY ts").df()
            expected = trades.resample(rule, closed="left", label="left").agg(
                open=("price", "first"), high=("price", "max"), low=("price", "min"), close=("price", "last"),
                volume=("amount", "sum"), n_trades=("price", "count"),
            )
            expected = expected[expected["n_trades"] > 0].reset_index()
            assert len(got) == len(expected)
            assert (got["ts"].to_numpy() == expected["ts"].to_numpy()).all()
            for column in ("open", "high", "low", "close", "n_trades"):
                assert (got[column].to_numpy() == expected[column].to_numpy()).all(), (interval, column)
            assert got["volume"].to_numpy() == pytest.approx(expected["volume"].to_numpy(), rel=1e-12)


def test_trade_assets_exist_only_with_a_trades_directory(settings, defs_for):
    names = {s.key.to_user_string() for s in defs_for(settings).resolve_all_asset_specs()}
    assert not {n for n in names if n == "raw_trades" or n.startswith("trade_bars")}
    assert "signal_trades" in names  # the rules' round trips are not trade data


def test_quote_bars_from_polled_snapshots(settings, defs_for):
    """Snapshots every minute (two DEGRADED) become hourly OHLC bars with counts, no volume."""
    defs = defs_for(settings)
    start = datetime(2024, 3, 4)
    rows = [
        ("BTC/USDT", start + pd.Timedelta(minutes=m), 100.0 + (m % 7) - (m // 60), "simulator",
         "DEGRADED" if m in (61, 62) else "OK")
        for m in range(180)
    ]
    frame = pl.DataFrame(rows, schema=["symbol", "ts", "price", "provider", "fetch_status"], orient="row").with_columns(
        quote_ts=pl.col("ts"), bid=pl.lit(None, dtype=pl.Float64), ask=pl.lit(None, dtype=pl.Float64),
        fetched_at=pl.col("ts"), error=pl.lit(None, dtype=pl.Utf8), ts=pl.col("ts").cast(pl.Datetime("us")),
    )
    with QuantDuckDB(database=str(settings.duckdb_path)).connect() as conn:
        conn.register("q", frame.to_arrow())
        conn.execute("INSERT INTO spot_quotes BY NAME SELECT * FROM q")
    result = materialize(defs, partition_key=DAY, selection="key:quote_bars_1h")
    assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as conn:
        bars = conn.execute("SELECT hour(ts), open, high, low, close, n_quotes, n_degraded FROM quote_bars_1h ORDER BY ts").fetchall()
    assert bars == [
        (0, 100.0, 106.0, 100.0, 100.0 + 59 % 7, 60, 0),
        (1, 99.0 + 60 % 7, 105.0, 99.0, 99.0 + 119 % 7, 60, 2),
        (2, 98.0 + 120 % 7, 104.0, 98.0, 98.0 + 179 % 7, 60, 0),
    ]

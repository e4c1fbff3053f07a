"""The features_<interval> assets materialized for real into a temporary DuckDB file."""

from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from quant_assets.config import INTERVAL_MINUTES, bars_per_year
from quant_assets.defs.features.assets import feature_catalogue, higher_intervals
from quant_assets.quant.feature_catalogue import DEFAULT_CATALOGUE
from quant_assets.quant.features import compute_feature_table, join_higher_interval
from quant_assets.resources.tables import query_frame
from quant_assets_tests.conftest import materialize, table_digest

INTERVALS = ("1h", "4h", "1d")
DAYS = ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]


def _settings(make_settings, tmp_path: Path, name: str, **overrides):
    # The first day built is the origin every feature is computed from (partitions.start_date).
    env = {"QUANT_DATA_DIR": str(tmp_path / name), "QUANT_BASE_INTERVAL": "5m",
           "QUANT_BAR_INTERVALS": ",".join(INTERVALS), "QUANT_START_DATE": DAYS[0]}
    return make_settings(env=env, **overrides)


def _selection(settings) -> dg.AssetSelection:
    keys = ["raw_candles", *(f"bars_{i}" for i in settings.bar_intervals),
            *(f"features_{i}" for i in settings.bar_intervals)]
    return dg.AssetSelection.assets(*keys)


def _full_history(conn, settings) -> dict[str, pl.DataFrame]:
    """Every features table recomputed in one go from the stored bars (no partitions involved)."""
    catalogue = feature_catalogue(settings)
    out: dict[str, pl.DataFrame] = {}
    for interval in sorted(settings.bar_intervals, key=lambda i: -INTERVAL_MINUTES[i]):
        bars = query_frame(conn, f'SELECT symbol, ts, open, high, low, close, volume, quote_volume FROM "bars_{interval}"')
        frame = compute_feature_table(bars, catalogue, bars_per_year(interval))
        for h in higher_intervals(settings, interval):
            frame = join_higher_interval(frame, out[h], h, INTERVAL_MINUTES[h], list(catalogue.higher_interval_features))
        out[interval] = frame
    return out


def test_day_by_day_partitions_equal_one_full_history_computation(make_settings, defs_for, tmp_path):
    """Each daily partition reads its lookback from earlier partitions; the stored tables equal a
    single computation over the whole history exactly (every column, every row, bit for bit)."""
    s = _settings(make_settings, tmp_path, "daily")
    defs = defs_for(s)
    for day in DAYS:
        result = materialize(defs, partition_key=day, selection=_selection(s))
        assert result.success
        evaluations = [e for e in result.get_asset_check_evaluations() if "features" in e.asset_key.to_user_string()]
        assert evaluations and all(e.passed for e in evaluations)
    with duckdb.connect(str(s.duckdb_path), read_only=True) as conn:
        expected = _full_history(conn, s)
        for interval in INTERVALS:
            stored = query_frame(conn, f'SELECT * FROM "features_{interval}" ORDER BY symbol, ts')
            assert stored.height == expected[interval].height > 0
            assert stored.columns == expected[interval].columns
            assert stored.equals(expected[interval]), interval
        hourly = query_frame(conn, 'SELECT * FROM "features_1h" ORDER BY symbol, ts')
    # real values, not just NULLs: the last day has every short-warm-up feature and the 4h join
    last = hourly.filter(pl.col("ts") >= pl.datetime(2024, 3, 4))
    # (1d EMAs/RSI need weeks of daily bars: htf_1d_* stay NULL here and are compared above)
    for col in ("ema_50", "macd_hist_12_26_9", "adx_14", "vol_yz_24", "bb_pctb_20_2", "htf_4h_ema_21"):
        assert last[col].null_count() < last.height, col
    assert set(last.columns) >= {"ema_9", "ema_21", "ema_50", "htf_4h_rsi_14", "ret_1_outlier"}


def test_feature_hash_is_stable_across_rematerialization(make_settings, defs_for, tmp_path):
    s = _settings(make_settings, tmp_path, "hash")
    defs = defs_for(s)
    for day in DAYS[:2]:
        assert materialize(defs, partition_key=day, selection=_selection(s)).success

    def snapshot():
        with duckdb.connect(str(s.duckdb_path), read_only=True) as conn:
            hashes = conn.execute(
                "SELECT table_name, symbol, partition_key, row_count, feature_hash, catalogue_hash "
                "FROM feature_hashes ORDER BY ALL").fetchall()
            return hashes, {t: table_digest(conn, f"features_{t}") for t in INTERVALS}

    before = snapshot()
    assert materialize(defs, partition_key=DAYS[1], selection=_selection(s)).success
    assert materialize(defs, partition_key=DAYS[0], selection=_selection(s)).success
    after = snapshot()
    assert after == before
    hashes = before[0]
    assert {(t, d) for t, _s, d, *_ in hashes} == {(f"features_{i}", d) for i in INTERVALS for d in DAYS[:2]}
    assert {sym for _t, sym, *_ in hashes} == set(s.symbols)
    assert all(len(h) == 64 and n > 0 for *_x, n, h, _c in hashes)
    hourly = [h for h in hashes if h[0] == "features_1h"]
    assert len({h[4] for h in hourly}) == len(hourly)  # different days and symbols hash differently


def test_one_catalogue_line_adds_a_column(make_settings, defs_for, tmp_path):
    """A user's catalogue with one more line: the next partition has the column; older ones hold NULL."""
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text(
        DEFAULT_CATALOGUE.read_text() + "  - {name: rsi, function: rsi, params: {period: 28}}\n"
    )
    plain = _settings(make_settings, tmp_path, "grow")
    grown = _settings(make_settings, tmp_path, "grow", features={"catalogue": str(catalogue)})
    assert feature_catalogue(grown).columns == [*feature_catalogue(plain).columns, "rsi_28"]
    assert materialize(defs_for(plain), partition_key=DAYS[0], selection=_selection(plain)).success
    assert materialize(defs_for(grown), partition_key=DAYS[1], selection=_selection(grown)).success
    with duckdb.connect(str(grown.duckdb_path), read_only=True) as conn:
        rows = query_frame(conn, 'SELECT ts, rsi_28 FROM "features_1h" ORDER BY ts')
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'features_1h'").fetchall()]
    assert "rsi_28" in columns
    day0 = rows.filter(pl.col("ts") < pl.datetime(2024, 3, 2))
    day1 = rows.filter(pl.col("ts") >= pl.datetime(2024, 3, 2))
    assert day0["rsi_28"].null_count() == day0.height
    assert day1["rsi_28"].null_count() < day1.height


@pytest.mark.parametrize("interval", ["5m", "15m"])
def test_every_configured_interval_gets_a_features_table(make_settings, defs_for, interval):
    s = make_settings(env={"QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": f"{interval},1h,1d"})
    defs = defs_for(s)
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    for i in (interval, "1h", "1d"):
        spec = specs[f"features_{i}"]
        assert spec.group_name == "features" and spec.partitions_def is not None
    deps = {d.asset_key.to_user_string() for d in specs[f"features_{interval}"].deps}
    assert deps == {f"bars_{interval}", "features_1h", "features_1d"}


def test_blocking_sql_checks_catch_a_bad_feature_value(make_settings, defs_for, tmp_path):
    s = _settings(make_settings, tmp_path, "checks")
    defs = defs_for(s)
    assert materialize(defs, partition_key=DAYS[0], selection=_selection(s)).success
    with duckdb.connect(str(s.duckdb_path)) as conn:
        conn.execute("UPDATE features_1h SET rsi_14 = 150 WHERE ts = ?::TIMESTAMP + INTERVAL 20 HOUR", [DAYS[0]])
    key = dg.AssetCheckKey(dg.AssetKey("features_1h"), "features_1h_finite")
    # the check and the features' consumer: the failing blocking check must stop signals
    selection = dg.AssetSelection.checks(key) | dg.AssetSelection.assets("signals", "signal_trades")
    result = materialize(defs, partition_key=DAYS[0], selection=selection, raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["failing_rows"].value == len(s.symbols)
    assert defs.resolve_asset_graph().get_check_spec(key).blocking
    assert result.get_asset_materialization_events() == []


def test_feature_hashes_do_not_depend_on_how_the_days_are_chunked(make_settings, defs_for, tmp_path, monkeypatch):
    from quant_assets.defs.features import assets as feature_assets

    s = _settings(make_settings, tmp_path, "chunks")
    defs = defs_for(s)
    for day in DAYS[:3]:
        assert materialize(defs, partition_key=day, selection=_selection(s)).success
    query = "SELECT * FROM feature_hashes ORDER BY ALL"
    with duckdb.connect(str(s.duckdb_path), read_only=True) as conn:
        by_day = conn.execute(query).fetchall()
    start, end = datetime.fromisoformat(DAYS[0]), datetime.fromisoformat(DAYS[3])
    for chunk_rows in (1, 10**9):  # one day per chunk, and the whole window in one
        monkeypatch.setattr(feature_assets, "HASH_CHUNK_ROWS", chunk_rows)
        with duckdb.connect(str(s.duckdb_path)) as conn:
            for interval in INTERVALS:
                feature_assets.feature_hashes(conn, f"features_{interval}", start, end, by_day[0][-1])
            assert conn.execute(query).fetchall() == by_day, chunk_rows
    assert (end - start).days == 3 and len(by_day) == 3 * len(INTERVALS) * len(s.symbols)

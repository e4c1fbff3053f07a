"""The ``factors`` asset in the graph: a range run equals day-by-day runs, a day built before its
lookback says so and is right once refreshed, the market it measures against, a run on the
simulated pipeline passes every check, and each SQL check is able to fail."""

import shutil
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest

from quant_assets.config import DEFAULT_SYMBOLS, Settings, load_settings
from quant_assets.definitions import build_definitions
from quant_assets.lib.sql_models import (
    SQL_DIR,
    TEST_KEYS,
    bind_params,
    evaluate_test,
    expand,
    parse_file,
    render,
)
from quant_assets.quant.factors import FactorParams, compute_factors
from quant_assets_tests.conftest import all_defs, table_digest

FIRST = date(2024, 3, 1)
DAYS = [(FIRST + timedelta(days=i)).isoformat() for i in range(4)]
SMALL = {"momentum_windows": [3, 6], "size_window": 4, "liquidity_window": 4, "volatility_window": 4,
         "beta_window": 12}
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
FACTOR_CHECKS = ("factors_unique_key", "factors_finite", "factors_zscored", "factors_inputs_exist",
                 "factors_lookback_complete")


def _settings(root: Path, symbols: Sequence[str] = DEFAULT_SYMBOLS, **factors: object) -> Settings:
    return load_settings(config_file=None, env={
        "QUANT_DATA_DIR": str(root), "QUANT_SYMBOLS": ",".join(symbols), "QUANT_START_DATE": DAYS[0],
        "QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": "1h",
    }, overrides={"factors": {**SMALL, **factors}})


def synthetic_bars(days: Sequence[str], symbols: Sequence[str] = DEFAULT_SYMBOLS, seed: int = 3) -> pl.DataFrame:
    """Hourly bars of ``symbols`` for ``days`` (each day's rows the same whichever days are asked)."""
    frames = []
    for day in days:
        rng = np.random.default_rng([seed, date.fromisoformat(day).toordinal()])
        ts = [datetime.fromisoformat(day) + timedelta(hours=h) for h in range(24)]
        market = rng.normal(0, 0.01, 24)
        for k, symbol in enumerate(symbols):
            close = (20 + 10 * k) * np.exp(np.cumsum((0.5 + 0.1 * k) * market + rng.normal(0, 0.01, 24)))
            volume = rng.lognormal(3, 1, 24)
            frames.append(pl.DataFrame({
                "symbol": symbol, "ts": ts, "open": close, "high": close * 1.01, "low": close * 0.99,
                "close": close, "volume": volume, "quote_volume": volume * close,
            }, schema_overrides={"ts": pl.Datetime("us")}))
    return pl.concat(frames)


def load_bars(s: Settings, bars: pl.DataFrame) -> None:
    """Bars loaded outside the graph (they count as there for the lookback)."""
    s.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(s.duckdb_path)) as conn:
        conn.register("loaded", bars.to_arrow())
        if conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'bars_1h'").fetchone()[0]:
            conn.execute("INSERT INTO bars_1h SELECT * FROM loaded")
        else:
            conn.execute("CREATE TABLE bars_1h AS SELECT * FROM loaded")


def factor_defs(s: Settings) -> dg.Definitions:
    full = build_definitions(s)
    key = dg.AssetKey("factors")
    return dg.Definitions(assets=[a for a in full.assets if key in a.keys],
                          asset_checks=[c for c in full.asset_checks if {k.asset_key for k in c.check_keys} == {key}],
                          resources=full.resources)


def run(defs: dg.Definitions, instance: dg.DagsterInstance, days: Sequence[str]) -> dg.ExecuteInProcessResult:
    tags = {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
    return dg.materialize(all_defs(defs), partition_key=days[0] if len(days) == 1 else None,
                          tags=tags if len(days) > 1 else {}, resources=defs.resources, instance=instance,
                          run_config=QUIET)


def verdicts(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    return {(e.check_name, e.partition): e.passed for e in result.get_asset_check_evaluations()}


def stored(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def range_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dg.ExecuteInProcessResult]]:
    s = _settings(tmp_path_factory.mktemp("range"))
    load_bars(s, synthetic_bars(DAYS))
    with dg.DagsterInstance.ephemeral() as instance:
        yield s, run(factor_defs(s), instance, DAYS)


def test_a_range_run_equals_day_by_day_runs_and_passes_every_check(range_run, tmp_path):
    s, result = range_run
    assert result.success
    checks = verdicts(result)
    assert {name for name, _ in checks} == set(FACTOR_CHECKS) and all(checks.values())
    assert {day for _, day in checks} == set(DAYS)
    daily = _settings(tmp_path / "daily")
    load_bars(daily, synthetic_bars(DAYS))
    defs = factor_defs(daily)
    with dg.DagsterInstance.ephemeral() as instance:
        for day in DAYS:
            assert run(defs, instance, [day]).success
    with duckdb.connect(str(s.duckdb_path), read_only=True) as a, duckdb.connect(str(daily.duckdb_path), read_only=True) as b:
        assert table_digest(a, "factors") == table_digest(b, "factors")
        status = "SELECT partition_key, complete, missing FROM lookback_status WHERE asset = 'factors' ORDER BY 1"
        assert a.execute(status).fetchall() == b.execute(status).fetchall() == [(d, True, "") for d in DAYS]
        names = {n for (n,) in a.execute("SELECT DISTINCT factor_name FROM factors").fetchall()}
    assert names == set(FactorParams(momentum_windows=(3, 6)).names)


def test_the_stored_rows_are_the_cores_on_the_same_bars(range_run):
    s, _ = range_run
    params = FactorParams(momentum_windows=(3, 6), size_window=4, liquidity_window=4, volatility_window=4,
                          beta_window=12)
    expected = compute_factors(synthetic_bars(DAYS), params, 60, "BTC/USDT")
    with duckdb.connect(str(s.duckdb_path), read_only=True) as conn:
        got = pl.from_arrow(conn.execute("SELECT * FROM factors ORDER BY symbol, ts, factor_name").to_arrow_table())
    assert got.height == expected.height > 0
    assert got.equals(expected.select(got.columns))


def test_per_day_metadata(range_run):
    s, result = range_run
    events = result.get_asset_materialization_events()
    by_day = {e.materialization.partition: e.materialization.metadata for e in events}
    assert set(by_day) == set(DAYS)
    last = by_day[DAYS[-1]]
    assert last["symbols_per_bar_min"].value == 8 and last["bars_with_factors"].value == 24
    assert last["rows_beta_orth"].value == 24 * 8 and last["lookback_complete"].value is True
    first = by_day[DAYS[0]]
    assert first["rows_beta"].value == (24 - 12) * 8          # the first 12 bars have no 12 returns yet
    assert "data:image/png;base64," in last["mean_factor_correlation"].value, "the run's picture is on its last day"
    assert "mean_factor_correlation" not in first and first["run_views_on"].value == DAYS[-1]


def test_a_day_built_before_its_lookback_says_so_and_is_right_once_refreshed(range_run, tmp_path):
    full, _ = range_run
    s = _settings(tmp_path)
    load_bars(s, synthetic_bars([DAYS[0], DAYS[1], DAYS[3]]))        # DAYS[2] not there yet
    defs = factor_defs(s)
    day = DAYS[3]
    with dg.DagsterInstance.ephemeral() as instance:
        early = run(defs, instance, [day])
        assert early.success
        assert verdicts(early)[("factors_lookback_complete", day)] is False
        assert all(v for (name, _), v in verdicts(early).items() if name != "factors_lookback_complete")
        meta = early.get_asset_materialization_events()[0].materialization.metadata
        assert meta["lookback_complete"].value is False and meta["lookback_missing"].value == f"bars_1h {DAYS[2]}"
        hours = {(n, ts.hour) for n, ts in stored(s.duckdb_path, "SELECT factor_name, ts FROM factors")}
        assert not [h for _, h in hours if h == 0]                    # reversal needs 23:00 of the missing day
        assert ("mom_6", 6) not in hours and ("mom_6", 7) in hours    # close[t-7] must be on the day itself
        assert ("beta", 11) not in hours and ("beta", 12) in hours
        load_bars(s, synthetic_bars([DAYS[2]]))
        late = run(defs, instance, [day])
        assert all(verdicts(late).values())
    day_rows = f"SELECT * FROM factors WHERE CAST(ts AS DATE) = DATE '{day}' ORDER BY ALL"
    assert stored(s.duckdb_path, day_rows) == stored(full.duckdb_path, day_rows)
    assert stored(s.duckdb_path, "SELECT complete FROM lookback_status WHERE asset = 'factors'") == [(True,)]


def test_the_market_is_the_market_symbol_or_the_equal_weighted_universe(tmp_path):
    with_btc = factor_defs(_settings(tmp_path / "a")).assets[0]
    spec = next(iter(with_btc.specs))
    assert spec.metadata["market"] == "BTC/USDT" and "BTC/USDT's simple return" in spec.description
    btc_quoted = ["ETH/BTC", "SOL/BTC", "XRP/BTC", "ADA/BTC"]
    equal = next(iter(factor_defs(_settings(tmp_path / "b", symbols=btc_quoted)).assets[0].specs))
    assert equal.metadata["market"] == "equal-weighted" and "equal-weighted mean simple return" in equal.description
    named = next(iter(factor_defs(_settings(tmp_path / "c", market_symbol="ETH/USDT")).assets[0].specs))
    assert named.metadata["market"] == "ETH/USDT"


def test_the_equal_weighted_market_in_a_run(tmp_path):
    symbols = ["ETH/BTC", "SOL/BTC", "XRP/BTC", "ADA/BTC"]
    s = _settings(tmp_path, symbols=symbols, orthogonalise=False)
    bars = synthetic_bars(DAYS[:2], symbols)
    load_bars(s, bars)
    with dg.DagsterInstance.ephemeral() as instance:
        result = run(factor_defs(s), instance, DAYS[:2])
    assert result.success and all(verdicts(result).values())
    assert result.asset_materializations_for_node("factors")[0].metadata["market"].value.startswith("equal-weighted")
    params = FactorParams(momentum_windows=(3, 6), size_window=4, liquidity_window=4, volatility_window=4,
                          beta_window=12, orthogonalise=False)
    expected = compute_factors(bars, params, 60, None).filter(pl.col("factor_name") == "beta")
    got = stored(s.duckdb_path, "SELECT symbol, ts, factor_name, value FROM factors WHERE factor_name = 'beta' ORDER BY ALL")
    assert got == sorted(expected.iter_rows()) and len(got) > 100


def test_factors_on_the_simulated_pipeline(tmp_path):
    s = _settings(tmp_path)
    full = build_definitions(s)
    selection = dg.AssetSelection.assets("raw_candles", "bars_1h", "factors")
    wanted = {dg.AssetKey(k) for k in ("raw_candles", "bars_1h", "factors")}
    defs = dg.Definitions(assets=[a for a in full.assets if set(a.keys) & wanted],
                          asset_checks=[c for c in full.asset_checks if {k.asset_key for k in c.check_keys} <= wanted],
                          resources=full.resources)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(all_defs(defs), tags={"dagster/asset_partition_range_start": DAYS[0],
                                                      "dagster/asset_partition_range_end": DAYS[1]},
                                resources=defs.resources, selection=selection, instance=instance, run_config=QUIET)
    assert result.success
    factor_checks = {k: v for k, v in verdicts(result).items() if k[0].startswith("factors_")}
    assert len(factor_checks) == 2 * len(FACTOR_CHECKS) and all(factor_checks.values())
    (orth,) = stored(s.duckdb_path, "SELECT count(*) FROM factors WHERE factor_name = 'beta_orth'")[0]
    assert orth > 0


# --- each SQL check is able to fail -----------------------------------------------------------

def check_sql(s: Settings, name: str) -> tuple[str, dict]:
    (test,) = expand(parse_file(SQL_DIR / "tests" / f"{name}.sql", TEST_KEYS, ("check",)), s)
    sql = render(test, None)[0]
    day = (datetime.fromisoformat(DAYS[-1]), datetime.fromisoformat(DAYS[-1]) + timedelta(days=1))
    return sql, bind_params(sql, test.interval, s, *day, test.header["asset"])


LAST = f"TIMESTAMP '{DAYS[-1]} 12:00:00'"
CORRUPTIONS = {
    "factors_unique_key": [f"INSERT INTO factors SELECT * FROM factors WHERE ts = {LAST} LIMIT 1"],
    "factors_finite": [f"UPDATE factors SET value = 'NaN' WHERE ts = {LAST} AND factor_name = 'size' "
                       "AND symbol = 'ETH/USDT'"],
    "factors_zscored": [f"UPDATE factors SET value = value + 1e-6 WHERE ts = {LAST} AND factor_name = 'beta' "
                        "AND symbol = 'ETH/USDT'"],
    "factors_inputs_exist": [f"DELETE FROM bars_1h WHERE symbol = 'ETH/USDT' AND ts = {LAST} - INTERVAL 7 HOUR"],
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_check_fails_on_a_corrupted_row(range_run, name, tmp_path):
    s, _ = range_run
    copy = tmp_path / "copy.duckdb"
    shutil.copy(s.duckdb_path, copy)
    sql, params = check_sql(s, name)
    window = (params.get("window_start"), params.get("window_end"))
    with duckdb.connect(str(copy)) as conn:
        assert evaluate_test(conn, sql, params, window).passed
        for statement in CORRUPTIONS[name]:
            conn.execute(statement)
        failed = evaluate_test(conn, sql, params, window)
    assert not failed.passed and failed.metadata["failing_rows"] >= 1


def test_the_cross_section_check_fails_on_two_symbols_and_the_inputs_check_on_a_factor_without_a_bar(range_run, tmp_path):
    s, _ = range_run
    copy = tmp_path / "copy.duckdb"
    shutil.copy(s.duckdb_path, copy)
    with duckdb.connect(str(copy)) as conn:
        sql, params = check_sql(s, "factors_zscored")
        window = (params["window_start"], params["window_end"])
        conn.execute(f"DELETE FROM factors WHERE ts = {LAST} AND factor_name = 'size' AND symbol NOT IN "
                     "('ETH/USDT', 'SOL/USDT')")
        failing = evaluate_test(conn, sql, params, window)
        assert not failing.passed and failing.metadata["failing_rows"] == 1
        sql, params = check_sql(s, "factors_inputs_exist")
        assert evaluate_test(conn, sql, params, window).passed
        conn.execute(f"DELETE FROM bars_1h WHERE symbol = 'SOL/USDT' AND ts = {LAST}")
        failing = evaluate_test(conn, sql, params, window)
        assert not failing.passed
        # SOL's 14 factors at 12:00 lost their bar; at 13:00 the reversal and momenta lost bar t - 1
        assert failing.metadata["failing_rows"] >= len(FactorParams(momentum_windows=(3, 6)).names)

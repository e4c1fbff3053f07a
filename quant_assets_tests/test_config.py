"""Settings: file, environment, validation with one-line errors naming the key."""

import dataclasses
from datetime import date
from pathlib import Path
from typing import get_args

import pytest

from quant_assets import config as config_module
from quant_assets.config import (
    DEFAULT_SYMBOLS,
    HTTP_BASE_URLS,
    INTERVAL_MINUTES,
    Config,
    ConfigError,
    ResilienceSettings,
    Settings,
    bars_per_year,
    load_settings,
)


def test_defaults_follow_the_documented_table():
    s = load_settings(env={})
    assert s.base_interval == "1m" and s.bar_intervals == ("5m", "15m", "1h", "1d")
    assert str(s.duckdb_path) == "data/quant.duckdb"
    assert len(s.symbols) == 8 and s.candle_providers == ("simulator",)


def test_yaml_file_then_environment_override(tmp_path):
    config = tmp_path / "quant.yaml"
    config.write_text("data_dir: /srv/q\nuniverse:\n  symbols: [BTC/USDT, ETH/USDT]\nintervals:\n  base: 5m\n")
    s = load_settings(env={"QUANT_CONFIG": str(config), "QUANT_SYMBOLS": "SOL/USDT"})
    assert s.symbols == ("SOL/USDT",)
    assert s.base_interval == "5m"
    assert str(s.duckdb_path) == "/srv/q/quant.duckdb"
    s = load_settings(env={"QUANT_CONFIG": str(config), "QUANT_DUCKDB_PATH": "/x/y.duckdb"})
    assert str(s.duckdb_path) == "/x/y.duckdb"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"QUANT_BASE_INTERVAL": "3m"}, "'intervals.base'"),
        ({"QUANT_BAR_INTERVALS": "7m"}, "'intervals.bars'"),
        ({"QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": "5m,1h", "QUANT_SYMBOLS": "btc"}, "'universe.symbols'"),
        ({"QUANT_START_DATE": "2024-02-30"}, "'partitions.start_date'"),
        ({"QUANT_CANDLE_PROVIDERS": "nasdaq"}, "'providers.candles'"),
        ({"QUANT_SIMULATOR_SEED": "-1"}, "'simulator.seed'"),
        ({"QUANT_CONFIG": "/nonexistent/quant.yaml"}, "does not exist"),
    ],
)
def test_invalid_settings_name_the_key(env, needle):
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_key_in_file_is_named(tmp_path):
    config = tmp_path / "quant.yaml"
    config.write_text("intervals:\n  bsae: 1m\n")
    with pytest.raises(ConfigError, match="'intervals.bsae' is unknown"):
        load_settings(config_file=config, env={})


def test_bar_interval_must_be_a_multiple_of_the_base():
    with pytest.raises(ConfigError, match="not a multiple"):
        load_settings(env={"QUANT_BASE_INTERVAL": "5m", "QUANT_BAR_INTERVALS": "1m,1h"})


def test_fingerprint_ignores_paths_but_not_shaping_settings():
    a = load_settings(env={"QUANT_DATA_DIR": "/a"})
    b = load_settings(env={"QUANT_DATA_DIR": "/b"})
    c = load_settings(env={"QUANT_SIMULATOR_SEED": "7"})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


# --- environment overrides: strings from the environment, comma lists, per-provider URLs -----

def test_environment_strings_become_typed_values(tmp_path):
    trades = tmp_path / "trades"
    trades.mkdir()
    s = load_settings(env={
        "QUANT_SIMULATOR_SEED": "7", "QUANT_POLL_INTERVAL_S": " 30 ", "QUANT_START_DATE": "2023-06-01",
        "QUANT_SCHEDULES_ENABLED": "yes", "QUANT_ALERTS_ENABLED": "0", "QUANT_BASE_INTERVAL": "5m",
        "QUANT_BAR_INTERVALS": " 15m, 1h ,1d,", "QUANT_SYMBOLS": "ETH/USDT,BTC/USDT",
        "QUANT_CANDLE_PROVIDERS": "binance,simulator", "QUANT_SPOT_PROVIDERS": "kraken",
        "QUANT_DEX_PROVIDERS": "dexscreener", "QUANT_ALTERNATIVE_PROVIDERS": "alternative_me,binance_futures",
        "QUANT_FUNDING_SYMBOLS": "BTC/USDT", "QUANT_DEX_PAIRS": "solana/8sLbNZoA1cfnvMJLPfp98ZLAnFSYCFApfJKMbiXNLwxj",
        "QUANT_TRADES_DIR": str(trades), "QUANT_FILES_DIR": str(tmp_path), "QUANT_DATA_DIR": str(tmp_path / "d"),
    })
    assert s.simulator_seed == 7 and s.ingestion.poll_interval_s == 30
    assert s.start_date == date(2023, 6, 1)
    assert s.automation.schedules_enabled is True and s.alerts.enabled is False
    assert s.base_interval == "5m" and s.bar_intervals == ("15m", "1h", "1d")
    assert s.symbols == ("ETH/USDT", "BTC/USDT") and s.candle_providers == ("binance", "simulator")
    assert s.ingestion.spot_providers == ("kraken",) and s.ingestion.dex_providers == ("dexscreener",)
    assert s.ingestion.alternative_providers == ("alternative_me", "binance_futures")
    assert s.ingestion.funding_symbols == ("BTC/USDT",) and len(s.ingestion.dex_pairs) == 1
    assert s.trades_dir == trades and s.ingestion.files_dir == tmp_path
    assert s.duckdb_path == tmp_path / "d" / "quant.duckdb" and s.manifest_dir == tmp_path / "d" / "manifests"


@pytest.mark.parametrize("provider", sorted(HTTP_BASE_URLS))
def test_every_http_provider_base_url_has_its_variable(provider):
    s = load_settings(env={f"QUANT_{provider.upper()}_BASE_URL": "http://127.0.0.1:8080/mirror/"})
    assert s.ingestion.base_url(provider) == "http://127.0.0.1:8080/mirror"
    others = set(HTTP_BASE_URLS) - {provider}
    assert all(s.ingestion.base_url(name) == HTTP_BASE_URLS[name] for name in others)


def test_blank_scalar_variables_are_ignored_and_overrides_beat_the_environment(tmp_path):
    config = tmp_path / "quant.yaml"
    config.write_text("simulator: {seed: 5}\nbacktest: {fee_bps: 3}\n")
    env = {"QUANT_CONFIG": str(config), "QUANT_DATA_DIR": " ", "QUANT_START_DATE": "", "QUANT_SIMULATOR_SEED": "6"}
    s = load_settings(env=env)
    assert s.symbols == DEFAULT_SYMBOLS and s.simulator_seed == 6 and s.backtest.fee_bps == 3.0
    assert s.data_dir == Path("data") and s.start_date == date(2024, 1, 1)
    s = load_settings(env=env, overrides={"simulator": {"seed": 9}, "backtest": {"half_spread_bps": 1}})
    assert s.simulator_seed == 9 and (s.backtest.fee_bps, s.backtest.half_spread_bps) == (3.0, 1.0)


def test_yaml_values_are_read_as_written(tmp_path):
    config = tmp_path / "quant.yaml"
    config.write_text("partitions: {start_date: 2023-06-01}\nautomation: {daily_at: 12:30}\n"
                      "simulator: {seed: 7.0}\nbacktest: {fee_bps: '2.5'}\nproviders: {files_dir: ''}\n")
    s = load_settings(config_file=config, env={})
    assert s.start_date == date(2023, 6, 1) and s.automation.daily_at == "12:30"  # not YAML 1.1's base-60 750
    assert s.simulator_seed == 7 and type(s.simulator_seed) is int
    assert s.backtest.fee_bps == 2.5 and s.ingestion.files_dir is None


# --- the public shape other modules read -------------------------------------------------------

def test_settings_defaults_equal_an_empty_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}) == Settings()
    assert Config().settings() == Settings()


def test_settings_stay_frozen_dataclasses_and_sections_validate_on_replace():
    s = load_settings(env={})
    assert dataclasses.asdict(s)["backtest"] == {
        "train_days": 14, "min_train_days": 7, "test_days": 1, "step_days": 1, "training": "rolling",
        "fee_bps": 10.0, "half_spread_bps": 2.5, "impact_k": 1.0, "participation_cap": 0.1, "capital": 1e6,
        "min_bars_for_sharpe": 100, "sizing": "unit", "bootstrap_samples": 1000, "bootstrap_block_bars": 24,
        "bootstrap_seed": 7, "pbo_splits": 16}
    assert hash(s) == hash(load_settings(env={}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.backtest.fee_bps = 1.0  # type: ignore[misc]
    assert dataclasses.replace(s, simulator_seed=3).simulator_seed == 3
    assert dataclasses.replace(s.backtest, fee_bps=2).fee_bps == 2.0
    with pytest.raises(ValueError):
        dataclasses.replace(s.backtest, fee_bps=float("nan"))
    assert ResilienceSettings(timeout_s=0.5, rate_scale=50).rate_scale == 50.0


def test_the_constants_agree_with_the_literals_and_the_simulator():
    from quant_assets.providers.simulator import EPOCH

    assert tuple(INTERVAL_MINUTES) == get_args(config_module.Interval)
    assert set(config_module.BASE_INTERVALS) <= set(INTERVAL_MINUTES)
    assert get_args(config_module.HttpProvider) == (*HTTP_BASE_URLS, "ccxt")  # ccxt: no fixed default
    assert set(config_module.FILE_PROVIDERS) <= set(config_module.CANDLE_PROVIDERS)
    assert config_module.SIMULATOR_EPOCH == EPOCH
    assert bars_per_year("1h") == 8760.0

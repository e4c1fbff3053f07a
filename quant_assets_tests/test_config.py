"""Settings: file, environment, validation with one-line errors naming the key."""

import pytest

from quant_assets.config import ConfigError, load_settings


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

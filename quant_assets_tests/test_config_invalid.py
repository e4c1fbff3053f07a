"""Every invalid value, whatever its type, is one ConfigError line naming key, value and what is accepted."""

import math

import pytest

from quant_assets.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _no_local_quant_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _error(tmp_path, text: str, env: dict[str, str] | None = None) -> str:
    config = tmp_path / "quant.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=config, env=env or {})
    message = str(info.value)
    assert "\n" not in message and "pydantic" not in message.lower() and "Input should" not in message
    return message


# (YAML fragment, the whole expected line): the exact wording for a representative set.
EXACT = [
    ("backtest: {fee_bps: abc}", "config key 'backtest.fee_bps' = 'abc' must be a number >= 0 and <= 1000 (basis points)"),
    ("backtest: {fee_bps: [1]}", "config key 'backtest.fee_bps' = [1] must be a number >= 0 and <= 1000 (basis points)"),
    ("backtest: {half_spread_bps: [1]}",
     "config key 'backtest.half_spread_bps' = [1] must be a number >= 0 and <= 1000 (basis points)"),
    ("backtest: {pbo_splits: 7}", "config key 'backtest.pbo_splits' = 7 must be an even integer from 2 to 20"),
    ("backtest: {step_days: 1, test_days: 3}",
     "config key 'backtest.step_days' = 1 must be a whole number of days from 1 to 3650; it is below "
     "backtest.test_days = 3: folds would test a day twice"),
    ("backtest: {training: sliding}", "config key 'backtest.training' = 'sliding' must be rolling or expanding"),
    ("portfolio: {modes: [short_only]}", "config key 'portfolio.modes' = ['short_only'] must be a non-empty list "
     "of distinct modes from long_only, market_neutral; 'short_only' is not"),
    ("portfolio: {risk_aversions: []}",
     "config key 'portfolio.risk_aversions' = [] must be a non-empty list of distinct numbers > 0 and <= 1e6"),
    ("backtest: {fee_bps: .nan}", "config key 'backtest.fee_bps' = nan must be a number >= 0 and <= 1000 (basis points)"),
    ("simulator: {seed: true}", "config key 'simulator.seed' = True must be a positive integer below 2**63"),
    ("intervals: {base: 3m}", "config key 'intervals.base' = '3m' must be one of 1m, 5m"),
    ("universe: {symbols: [BTC/USDT, btc]}",
     "config key 'universe.symbols' = ['BTC/USDT', 'btc'] must be a non-empty list of distinct ccxt symbols "
     "BASE/QUOTE such as BTC/USDT; 'btc' is not"),
    ("partitions: {start_date: 2024-02-30}", "config key 'partitions.start_date' = '2024-02-30' must be a date YYYY-MM-DD"),
    ("alerts: {ui_url: 'not a url'}",
     "config key 'alerts.ui_url' = 'not a url' must be an http(s) URL such as https://api.binance.com"),
    ("automation: {schedules_enabled: maybe}", "config key 'automation.schedules_enabled' = 'maybe' must be true or false"),
    ("backtest: {feebps: 1}",
     "config key 'backtest.feebps' is unknown; accepted: train_days, min_train_days, test_days, step_days, training, fee_bps, half_spread_bps, impact_k, participation_cap, capital, min_bars_for_sharpe, sizing, bootstrap_samples, bootstrap_block_bars, bootstrap_seed, pbo_splits"),
    ("backtest: 5", "config key 'backtest' = 5 must be a mapping with keys: train_days, min_train_days, test_days, step_days, training, fee_bps, half_spread_bps, impact_k, participation_cap, capital, min_bars_for_sharpe, sizing, bootstrap_samples, bootstrap_block_bars, bootstrap_seed, pbo_splits"),
    ("providers: {base_urls: {nasdaq: 'http://x'}}",
     "config key 'providers.base_urls.nasdaq' is unknown; accepted: binance, coinbase, kraken, dexscreener, "
     "binance_futures, alternative_me, ccxt"),
]


@pytest.mark.parametrize(("text", "line"), EXACT, ids=[t for t, _ in EXACT])
def test_the_error_line_reads_exactly(tmp_path, text, line):
    assert _error(tmp_path, text) == line


BAD_NUMBERS = ["abc", "[1]", "{a: 1}", ".nan", "nan", ".inf", "inf", "-.inf", "-1", "true", "false", "''", "null"]
NUMBER_KEYS = ["backtest.fee_bps", "backtest.half_spread_bps", "bars.return_z_max", "bars.min_completeness",
               "resilience.timeout_s", "resilience.rate_scale", "alerts.retry_wait_s"]
INT_KEYS = ["simulator.seed", "backtest.train_days", "bars.roll_vol_window", "features.vol_window",
            "resilience.max_workers", "polling.interval_s", "alerts.escalate_after", "automation.freshness_grace_minutes"]
BAD_INTS = [*BAD_NUMBERS, "0", "2.5", "'7.5'", "1e400"]


def _yaml(key: str, value: str) -> str:
    section, name = key.split(".")
    return f"{section}:\n  {name}: {value}\n"


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("key", NUMBER_KEYS)
def test_numbers_refuse_every_other_type(tmp_path, key, value):
    message = _error(tmp_path, _yaml(key, value))
    assert message.startswith(f"config key '{key}' = ")
    assert " must be a number" in message or " must be a fraction" in message


@pytest.mark.parametrize("value", BAD_INTS)
@pytest.mark.parametrize("key", INT_KEYS)
def test_integers_refuse_booleans_fractions_and_other_types(tmp_path, key, value):
    message = _error(tmp_path, _yaml(key, value))
    assert message.startswith(f"config key '{key}' = ") and " must be " in message


@pytest.mark.parametrize(("key", "value"), [
    ("universe.symbols", "[]"), ("universe.symbols", "BTC/USDT"), ("universe.symbols", "[BTC/USDT, BTC/USDT]"),
    ("universe.symbols", "[[BTC/USDT]]"), ("universe.symbols", "{BTC: USDT}"),
    ("intervals.bars", "[]"), ("intervals.bars", "[7m]"), ("intervals.bars", "[1h, 1h]"), ("intervals.bars", "1h"),
    ("providers.candles", "[nasdaq]"), ("providers.candles", "[binance, binance]"), ("providers.candles", "[]"),
    ("providers.spot", "[files]"), ("providers.dex", "[uniswap]"), ("providers.alternative", "[glassnode]"),
    ("providers.dex_pairs", "[solana]"), ("providers.dex_pairs", "''"), ("providers.funding_symbols", "[btc]"),
    ("features.ema_spans", "[]"), ("features.ema_spans", "[9, 9]"), ("features.ema_spans", "[9, 0]"),
    ("features.ema_spans", "[9, 2.5]"), ("features.rsi_periods", "[true]"),
    ("signals.catalogue", "[]"), ("signals.catalogue", "[a.yaml]"),
])
def test_lists(tmp_path, key, value):
    assert _error(tmp_path, _yaml(key, value)).startswith(f"config key '{key}' = ")


@pytest.mark.parametrize(("key", "value"), [
    ("intervals.base", "3m"), ("intervals.base", "15m"), ("intervals.base", "[1m]"), ("intervals.base", "1"),
    ("features.interval", "2h"), ("features.interval", "4h"), ("features.interval", "null"),
])
def test_literals(tmp_path, key, value):
    assert _error(tmp_path, _yaml(key, value)).startswith(f"config key '{key}' = ")


@pytest.mark.parametrize("value", ["maybe", "2", "[true]", "{a: 1}", "null", "1.5"])
@pytest.mark.parametrize("key", ["automation.schedules_enabled", "automation.intraday_refresh", "alerts.enabled"])
def test_booleans(tmp_path, key, value):
    assert _error(tmp_path, _yaml(key, value)).endswith("must be true or false")


@pytest.mark.parametrize("value", ["2024-02-30", "'2024-13-01'", "20240101", "2024-01-01 10:00:00", "'2024-W01-1'",
                                   "[2024-01-01]", "null", "2014-12-31"])
def test_dates(tmp_path, value):
    assert _error(tmp_path, _yaml("partitions.start_date", value)).startswith("config key 'partitions.start_date' = ")


@pytest.mark.parametrize("value", ["'24:00'", "'7'", "'12:60'", "730", "[]"])
def test_times(tmp_path, value):
    assert _error(tmp_path, _yaml("automation.daily_at", value)).startswith("config key 'automation.daily_at' = ")


@pytest.mark.parametrize(("text", "key"), [
    ("alerts: {ui_url: ftp://x}", "alerts.ui_url"), ("alerts: {ui_url: 'http:///'}", "alerts.ui_url"),
    ("alerts: {ui_url: 8080}", "alerts.ui_url"), ("providers: {base_urls: {binance: 'ftp://x'}}", "providers.base_urls.binance"),
    ("providers: {base_urls: {binance: [http://x]}}", "providers.base_urls.binance"),
    ("providers: {base_urls: 'http://x'}", "providers.base_urls"),
])
def test_urls(tmp_path, text, key):
    assert _error(tmp_path, text).startswith(f"config key '{key}' = ")


@pytest.mark.parametrize(("text", "needle"), [
    ("backtest: {fee_bps: 1001}", "'backtest.fee_bps' = 1001 "),
    ("resilience: {timeout_s: 1.0e+12}", "'resilience.timeout_s' = 1000000000000.0 "),
    ("resilience: {rate_scale: 1.0e-300}", "'resilience.rate_scale' = 1e-300 "),
    ("simulator: {seed: 9223372036854775808}", "'simulator.seed' = 9223372036854775808 "),
    ("bars: {roll_vol_window: 1}", "'bars.roll_vol_window' = 1 must be a number of bars from 2"),
    ("bars: {max_gap_minutes: 100000000000}", "'bars.max_gap_minutes' = 100000000000 "),
    ("bars: {min_completeness: 1.5}", "'bars.min_completeness' = 1.5 must be a fraction > 0 and <= 1"),
    ("features: {vol_window: 1}", "'features.vol_window' = 1 must be a number of bars from 2"),
    ("alerts: {check_interval_s: 86401}", "'alerts.check_interval_s' = 86401 "),
])
def test_bounds_that_would_fail_later_in_a_run(tmp_path, text, needle):
    assert needle in _error(tmp_path, text)


@pytest.mark.parametrize(("text", "key"), [
    ("foo: 1", "foo"), ("intervals: {bsae: 1m}", "intervals.bsae"), ("1: 2", "1"),
    ("resilience: {timeout: 3}", "resilience.timeout"), ("backtest: {fee_bps: 1, fees: 2}", "backtest.fees"),
])
def test_unknown_keys(tmp_path, text, key):
    assert _error(tmp_path, text).startswith(f"config key '{key}' is unknown; accepted: ")


@pytest.mark.parametrize("text", ["backtest:", "backtest: [1]", "universe: BTC/USDT", "resilience: 3"])
def test_a_section_must_be_a_mapping(tmp_path, text):
    assert " must be a mapping with keys: " in _error(tmp_path, text)


@pytest.mark.parametrize(("text", "line_end"), [
    ("x: [", "is not valid YAML: while parsing a flow node"),
    ("- a\n- b\n", "must hold a mapping at the top level"),
    ("partitions: {start_date: !!timestamp 2024-02-30}", "is not valid YAML: day is out of range for month"),
])
def test_a_file_that_is_not_a_mapping_of_settings(tmp_path, text, line_end):
    assert _error(tmp_path, text).endswith(line_end)


def test_a_config_path_that_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(config_file=tmp_path, env={})


# Rules across keys: the key at fault, then the reason.
@pytest.mark.parametrize(("text", "line"), [
    ("intervals: {base: 5m, bars: [1m, 1h]}\nfeatures: {interval: 1h}",
     "config key 'intervals.bars' = ['1m', '1h'] must be a non-empty list of distinct intervals from 1m, 5m, 15m, "
     "30m, 1h, 4h, 1d, each a multiple of intervals.base; 1m is not a multiple of the base interval 5m"),
    ("intervals: {bars: [5m, 15m]}",
     "config key 'features.interval' = '1h' must be one of the bar intervals (intervals.bars); "
     "intervals.bars is ['5m', '15m']"),
    ("backtest: {train_days: 3, min_train_days: 5}",
     "config key 'backtest.min_train_days' = 5 must be a whole number of days from 1 to 3650; "
     "it exceeds backtest.train_days = 3"),
    ("partitions: {start_date: 2014-12-31}",
     "config key 'partitions.start_date' = '2014-12-31' must be a date YYYY-MM-DD; the simulator starts on 2015-01-01"),
    ("providers: {candles: [files]}",
     "config key 'providers.files_dir' = None must be a directory of candle files (the files and binance_archive "
     "providers read it); the files candle provider needs an existing directory"),
])
def test_rules_across_keys(tmp_path, text, line):
    assert _error(tmp_path, text) == line


def test_rules_across_keys_hold_when_met(tmp_path):
    candles = tmp_path / "candles"
    candles.mkdir()
    s = load_settings(env={}, overrides={
        "intervals": {"base": "5m", "bars": ["15m", "4h"]}, "features": {"interval": "4h", "ema_spans": [5, 20]},
        "backtest": {"train_days": 5, "min_train_days": 5},
        "partitions": {"start_date": "2015-01-01"}, "providers": {"candles": ["files"], "files_dir": str(candles)},
    })
    assert s.signals.catalogue == "" and s.ingestion.files_dir == candles


@pytest.mark.parametrize(("text", "needle"), [
    ("data_dir: 5", "config key 'data_dir' = 5 must be a directory path"),
    ("data_dir: [a]", "config key 'data_dir' = ['a'] must be a directory path"),
    ("data_dir: \"a\\0b\"", "config key 'data_dir' = 'a\\x00b' must be a directory path"),
    ("trades: {directory: /nonexistent/trades}", "config key 'trades.directory' = '/nonexistent/trades' must be an existing"),
    ("features: {catalogue: /nonexistent/catalogue.yaml}", "config key 'features.catalogue' = '/nonexistent/catalogue.yaml'"),
])
def test_paths(tmp_path, text, needle):
    assert _error(tmp_path, text).startswith(needle)


def test_a_data_dir_that_is_a_file_and_a_duckdb_path_that_is_a_directory(tmp_path):
    (tmp_path / "file").write_text("")
    assert "exists and is not a directory" in _error(tmp_path, f"data_dir: {tmp_path / 'file'}")
    assert "is a directory" in _error(tmp_path, f"duckdb_path: {tmp_path}")


@pytest.mark.parametrize(("env", "line"), [
    ({"QUANT_SIMULATOR_SEED": "abc"},
     "config key 'simulator.seed' = 'abc' (QUANT_SIMULATOR_SEED) must be a positive integer below 2**63"),
    ({"QUANT_SIMULATOR_SEED": "-1"},
     "config key 'simulator.seed' = '-1' (QUANT_SIMULATOR_SEED) must be a positive integer below 2**63"),
    ({"QUANT_POLL_INTERVAL_S": "1.5"},
     "config key 'polling.interval_s' = '1.5' (QUANT_POLL_INTERVAL_S) must be a whole number of seconds from 1 to 86400"),
    ({"QUANT_ALERTS_ENABLED": "perhaps"}, "config key 'alerts.enabled' = 'perhaps' (QUANT_ALERTS_ENABLED) must be true or false"),
    ({"QUANT_BAR_INTERVALS": "5m,7m"},
     "config key 'intervals.bars' = ['5m', '7m'] (QUANT_BAR_INTERVALS) must be a non-empty list of distinct intervals "
     "from 1m, 5m, 15m, 30m, 1h, 4h, 1d, each a multiple of intervals.base; '7m' is not"),
    ({"QUANT_KRAKEN_BASE_URL": "kraken.com"},
     "config key 'providers.base_urls.kraken' = 'kraken.com' (QUANT_KRAKEN_BASE_URL) must be an http(s) URL such as "
     "https://api.binance.com"),
    ({"QUANT_TRADES_DIR": "/nonexistent/trades"},
     "config key 'trades.directory' = '/nonexistent/trades' (QUANT_TRADES_DIR) must be an existing directory of trade "
     "files, or empty for none; '/nonexistent/trades' is not a directory"),
])
def test_environment_values_are_validated_and_the_variable_named(env, line):
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert str(info.value) == line


def test_overrides_are_validated_like_the_file():
    for bad in (math.nan, math.inf, -1.0, "abc", [1], True):
        with pytest.raises(ConfigError, match=r"^config key 'backtest.fee_bps' = "):
            load_settings(env={}, overrides={"backtest": {"fee_bps": bad}})
    with pytest.raises(ConfigError, match=r"^config key 'backtest' = 3 must be a mapping"):
        load_settings(env={}, overrides={"backtest": 3})


def test_a_bad_section_in_the_file_is_reported_even_with_an_env_override(tmp_path):
    message = _error(tmp_path, "universe: 5", env={"QUANT_SYMBOLS": "BTC/USDT"})
    assert message == "config key 'universe' = 5 must be a mapping with keys: symbols"


def test_a_long_value_is_shortened_to_keep_one_line(tmp_path):
    message = _error(tmp_path, "backtest: {fee_bps: [" + ", ".join(["1"] * 200) + "]}")
    assert "..." in message and len(message) < 250


def test_a_named_catalogue_is_parsed_at_load(tmp_path):
    from quant_assets.quant.feature_catalogue import DEFAULT_CATALOGUE

    bad = tmp_path / "bad_catalogue.yaml"
    bad.write_text("features:\n  - {name: x, function: nope}\n")
    message = _error(tmp_path, f"features: {{catalogue: {bad}}}")
    assert message.startswith(f"config key 'features.catalogue' = '{bad}' must be the path of a feature catalogue")
    assert "; feature #1 (x): function 'nope' is unknown; accepted: " in message
    good = tmp_path / "catalogue.yaml"
    good.write_text(DEFAULT_CATALOGUE.read_text())
    assert load_settings(env={}, overrides={"features": {"catalogue": str(good)}}).features.catalogue == str(good)


# --- blank variables and long values ----------------------------------------------------------

@pytest.mark.parametrize("blank", ["", "  ", ","])
def test_a_blank_required_list_variable_is_an_error_not_the_default(blank):
    with pytest.raises(ConfigError) as info:
        load_settings(env={"QUANT_SYMBOLS": blank})
    assert str(info.value) == (
        "config key 'universe.symbols' = [] (QUANT_SYMBOLS) must be a non-empty list of distinct ccxt symbols "
        "BASE/QUOTE such as BTC/USDT; QUANT_SYMBOLS is set but empty (unset it for the default)"
    )
    with pytest.raises(ConfigError, match=r"^config key 'providers.candles' = \[\] \(QUANT_CANDLE_PROVIDERS\) "):
        load_settings(env={"QUANT_CANDLE_PROVIDERS": blank})


def test_a_blank_optional_list_variable_means_none():
    s = load_settings(env={"QUANT_FUNDING_SYMBOLS": "", "QUANT_DEX_PAIRS": " "})
    assert s.ingestion.funding_symbols == () and s.ingestion.dex_pairs == ()


@pytest.mark.parametrize("var", ["QUANT_SYMBOLS", "QUANT_FUNDING_SYMBOLS", "QUANT_BAR_INTERVALS", "QUANT_DEX_PAIRS",
                                 "QUANT_BASE_INTERVAL", "QUANT_START_DATE", "QUANT_SIMULATOR_SEED"])
def test_a_5000_character_value_is_cut_to_80_characters_in_the_line(var):
    with pytest.raises(ConfigError) as info:
        load_settings(env={var: "BTC/USDT," + "x" * 5000})
    message = str(info.value)
    assert "\n" not in message and len(message) < 400 and "x" * 80 not in message and "..." in message, message
    assert f"({var})" in message


@pytest.mark.parametrize("var", ["QUANT_DATA_DIR", "QUANT_DUCKDB_PATH", "QUANT_FILES_DIR", "QUANT_TRADES_DIR", "QUANT_CONFIG"])
def test_a_path_the_os_refuses_is_one_line_not_an_oserror(var):
    with pytest.raises(ConfigError) as info:  # a name past NAME_MAX: stat() raises "File name too long"
        load_settings(env={var: "/tmp/" + "p" * 5000})
    message = str(info.value)
    assert "\n" not in message and len(message) < 400 and "File name too long" in message, message

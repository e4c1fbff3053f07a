"""The feature catalogue: the packaged file, its validation, and one-line additions."""

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
import yaml

from quant_assets.quant import indicators as ind
from quant_assets.quant.feature_catalogue import (
    DEFAULT_CATALOGUE,
    FUNCTIONS,
    CatalogueError,
    load_catalogue,
    parse_catalogue,
)
from quant_assets.quant.features import compute_feature_table

ISSUE_MINIMUM = [
    "ret_1", "ret_7", "ret_30", "logret_1", "logret_7", "logret_30", "ret_zscore_252",
    "vol_cc_24", "vol_parkinson_24", "vol_gk_24", "vol_rs_24", "vol_yz_24", "atr_14",
    "rsi_7", "rsi_14", "rsi_21", "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9",
    "macd_8_17_9", "macd_signal_8_17_9", "macd_hist_8_17_9", "stoch_k_14_3_3", "stoch_d_14_3_3",
    "bb_upper_20_2", "bb_lower_20_2", "bb_pctb_20_2", "bb_width_20_2", "adx_14", "plus_di_14",
    "minus_di_14", "obv", "mfi_14", "ema_9", "ema_10", "ema_21", "ema_50", "ema_200",
    "dollar_volume_24", "amihud_24", "beta_720", "corr_720",
]


def _bars(n: int = 120) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pl.DataFrame({
        "symbol": "BTC/USDT", "ts": [datetime(2024, 1, 1) + timedelta(hours=i) for i in range(n)],
        "open": c, "high": c * 1.01, "low": c * 0.99, "close": c, "volume": rng.uniform(1, 5, n),
    })


def test_packaged_catalogue_lists_the_issue_minimum() -> None:
    catalogue = load_catalogue()
    assert set(ISSUE_MINIMUM) <= set(catalogue.columns)
    assert catalogue.market_symbol == "BTC/USDT"
    assert catalogue.flag_columns == ["ret_1_outlier", "dollar_volume_24_outlier"]
    for spec in catalogue.features:
        assert spec.family and spec.function in FUNCTIONS and spec.null_policy in ("skip", "forward_fill")
    raw = yaml.safe_load(DEFAULT_CATALOGUE.read_text())
    assert all({"name", "family", "function", "params"} <= set(e) for e in raw["features"])


@pytest.mark.parametrize(
    ("line", "column"),
    [("{name: rsi, function: rsi, params: {period: 28}}", "rsi_28"),
     ("{name: ema, family: trend, function: ema, params: {span: 100}}", "ema_100")],
)
def test_one_line_adds_one_column(tmp_path, line: str, column: str) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_text(DEFAULT_CATALOGUE.read_text() + f"  - {line}\n")
    base, grown = load_catalogue(), load_catalogue(path)
    assert grown.columns == [*base.columns, column]
    before = compute_feature_table(_bars(), base, 8760.0)
    after = compute_feature_table(_bars(), grown, 8760.0)
    assert after.drop(column).equals(before)
    close = _bars()["close"].to_numpy()
    expected = ind.rsi(close, 28) if column == "rsi_28" else ind.ema(close, 100)
    np.testing.assert_array_equal(after[column].fill_null(np.nan).to_numpy(), expected)


def test_ensure_adds_what_the_settings_need_once() -> None:
    catalogue = load_catalogue()
    assert catalogue.ensure((9, 21, 50), (14,), 24) is catalogue
    more = catalogue.ensure((9, 100), (14, 28), 48)
    assert more.columns[-3:] == ["ema_100", "rsi_28", "vol_cc_48"]
    assert more.fingerprint() != catalogue.fingerprint()
    assert load_catalogue().fingerprint() == catalogue.fingerprint()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "function": "nope", "params": {}}, "function 'nope' is unknown"),
        ({"name": "rsi", "function": "rsi", "params": {"span": 3}}, "takes params"),
        ({"name": "rsi", "function": "rsi", "params": {"period": 0}}, "positive integer"),
        ({"name": "ema", "function": "ema", "params": {"span": 9}}, "produced twice"),
        ({"name": "r", "function": "rsi", "params": {"period": 3}, "null_policy": "interpolate"}, "look-ahead"),
        ({"name": "r", "function": "rsi", "params": {"period": 3}, "null_policy": "zero"}, "not accepted"),
        ({"name": "r", "function": "rsi", "params": {"period": 3}, "outlier": {"method": "mad"}}, "zscore, iqr"),
        ({"name": "r", "function": "rsi", "params": {"period": 3}, "family": "astrology"}, "family"),
        ({"name": "Bad-Name", "function": "rsi", "params": {"period": 3}}, "lower-case identifier"),
    ],
)
def test_bad_entries_are_rejected_with_a_reason(entry, message) -> None:
    raw = load_catalogue().as_dict()
    raw["features"].append(entry)
    with pytest.raises(CatalogueError, match=message):
        parse_catalogue(raw)


def test_bad_files(tmp_path) -> None:
    with pytest.raises(CatalogueError, match="does not exist"):
        load_catalogue(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("features: [")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(tmp_path / "bad.yaml")
    raw = load_catalogue().as_dict()
    raw["higher_interval_features"] = ["ema_7"]
    with pytest.raises(CatalogueError, match="higher_interval_features"):
        parse_catalogue(raw)

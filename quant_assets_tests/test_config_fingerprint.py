"""Settings.fingerprint() goes into manifests: it must not move when the loader changes.

The two hex values below were computed with the hand-written loader (quant_assets/config.py at
commit 7d603de, before the pydantic rewrite) by running, from a directory without quant.yaml:

    load_settings(env={}).fingerprint()
    load_settings(env={"QUANT_CONFIG": <NON_DEFAULT written to a file>}).fingerprint()

If one of them changes, every stored manifest's config hash changes with it: do not update the
constants unless the set of data-shaping settings changes on purpose. They last changed when
``signals.ema_pairs`` gave way to ``signals.catalogue`` (issue 10): recomputed the same way, with
the NON_DEFAULT file's ``signals.yaml`` written as below; and again when the ``factors`` and ``research``
sections (issue 10) joined the data-shaping settings; and again when the ``backtest`` section grew
folds, costs and overfitting settings and the ``portfolio`` section joined (issue 11), with the
NON_DEFAULT file's ``slippage_bps: 1.5`` become ``half_spread_bps: 1.5``.
"""

import pytest

from quant_assets.config import load_settings

DEFAULT_FINGERPRINT = "071f4721bfb71a7e1bf951c13d52f710a33a8d29495ce32fce9af58a39b0f019"
NON_DEFAULT_FINGERPRINT = "f952d77645a663d2e98d5eabb7d9838a34b9cdc7118df44d87874c995126c88d"

# Touches every data-shaping section; ints where floats belong (timeout_s: 5, fee_bps: 2) and a
# trailing slash on a base URL check that values are normalised exactly as before.
NON_DEFAULT = """\
data_dir: /srv/quant
universe:
  symbols: [ETH/USDT, BTC/USDT, SOL/USDT]
intervals:
  base: 5m
  bars: [15m, 1h, 4h]
partitions:
  start_date: 2023-06-01
providers:
  candles: [binance, simulator]
  spot: [kraken, simulator]
  dex: [dexscreener]
  dex_pairs: [solana/8sLbNZoA1cfnvMJLPfp98ZLAnFSYCFApfJKMbiXNLwxj]
  alternative: [alternative_me]
  base_urls: {binance: "http://127.0.0.1:8080/"}
  files_dir: /srv/candles
  funding_symbols: [BTC/USDT]
resilience:
  timeout_s: 5
  max_attempts: 6
  rate_scale: 2
polling:
  interval_s: 30
simulator:
  seed: 7
bars:
  roll_vol_window: 30
  min_completeness: 0.9
  return_z_max: 10
features:
  interval: 4h
  ema_spans: [5, 20, 60]
  rsi_periods: [7, 14]
  vol_window: 12
signals:
  catalogue: signals.yaml
backtest:
  train_days: 30
  min_train_days: 10
  fee_bps: 2
  half_spread_bps: 1.5
automation:
  schedules_enabled: true
  daily_at: "1:05"
alerts:
  enabled: false
"""


@pytest.fixture(autouse=True)
def _no_local_quant_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ./quant.yaml would be read otherwise


def test_default_fingerprint_is_unchanged():
    assert load_settings(env={}).fingerprint() == DEFAULT_FINGERPRINT


@pytest.fixture(autouse=True)
def _signal_catalogue(tmp_path):
    """``signals.catalogue: signals.yaml`` is read relative to the working directory, ``tmp_path``."""
    (tmp_path / "signals.yaml").write_text(
        "signals:\n  - {rule: ema_crossover, params: {fast: 5, slow: 20}}\n"
        "  - {rule: ema_crossover, params: {fast: 20, slow: 60}}\n")


def test_non_default_fingerprint_is_unchanged(tmp_path):
    config = tmp_path / "nondefault.yaml"
    config.write_text(NON_DEFAULT)
    settings = load_settings(env={"QUANT_CONFIG": str(config)})
    assert settings.fingerprint() == NON_DEFAULT_FINGERPRINT
    assert settings.ingestion.base_url("binance") == "http://127.0.0.1:8080"
    assert settings.backtest.fee_bps == 2.0 and isinstance(settings.backtest.fee_bps, float)


def test_fingerprint_ignores_paths_automation_and_alerts(tmp_path):
    config = tmp_path / "nondefault.yaml"
    config.write_text(NON_DEFAULT.replace("/srv/quant", "/elsewhere").replace('"1:05"', '"02:00"')
                      .replace("enabled: false", "enabled: true"))
    assert load_settings(env={"QUANT_CONFIG": str(config)}).fingerprint() == NON_DEFAULT_FINGERPRINT

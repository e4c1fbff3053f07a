"""Stage ``backtests``: walk-forward folds, positions, portfolio weights, calibration, and the
summary with its overfitting statistics."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.backtests.calibration import build_calibration
from quant_assets.defs.backtests.checks import backtest_checks
from quant_assets.defs.backtests.summary import build_summary, summary_checks
from quant_assets.defs.backtests.walk_forward import build_backtest
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    assets = [build_backtest(settings), build_calibration(settings), build_summary(settings)]
    checks = [*sql_checks_for(settings, assets), *backtest_checks(settings), *summary_checks(settings)]
    return dg.Definitions(assets=assets, asset_checks=checks)

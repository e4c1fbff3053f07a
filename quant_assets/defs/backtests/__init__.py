"""Stage ``backtests``: walk-forward folds and their out-of-sample PnL."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.backtests.walk_forward import build_backtest
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    assets = [build_backtest(settings)]
    return dg.Definitions(assets=assets, asset_checks=sql_checks_for(settings, assets))

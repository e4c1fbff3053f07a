"""Stage ``signals``: trading signals from the feature store."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.signals.assets import build_signals
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    assets = [build_signals(settings)]
    return dg.Definitions(assets=assets, asset_checks=sql_checks_for(settings, assets))

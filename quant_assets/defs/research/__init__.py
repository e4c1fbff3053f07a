"""Stage ``research``: validation of signals (information coefficients)."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.research.signal_ic import build_signal_ic
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    assets = [build_signal_ic(settings)]
    return dg.Definitions(assets=assets, asset_checks=sql_checks_for(settings, assets))

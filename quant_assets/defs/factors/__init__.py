"""Stage ``factors``: cross-sectional factors across the universe, per bar."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.factors.assets import build_factors
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    assets = [build_factors(settings)]
    return dg.Definitions(assets=assets, asset_checks=sql_checks_for(settings, assets))

"""Stage ``features``: the catalogue-driven feature store, one table per bar interval."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.features.assets import build_features
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    assets = build_features(settings)
    return dg.Definitions(assets=assets, asset_checks=sql_checks_for(settings, assets))

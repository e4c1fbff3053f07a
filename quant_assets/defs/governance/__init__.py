"""Stage ``governance``: manifests of every backtest fold and the experiment registry."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.governance.manifest import build_manifest
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    assets = [build_manifest(settings)]
    return dg.Definitions(assets=assets, asset_checks=sql_checks_for(settings, assets))

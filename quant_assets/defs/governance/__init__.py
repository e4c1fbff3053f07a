"""Stage ``governance``: manifests of every backtest fold, the experiment registry, and the
reproducibility verification of every fold."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.governance.manifest import build_manifest
from quant_assets.defs.governance.reproducibility import (
    build_reproducibility,
    reproducibility_checks,
)
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    assets = [build_manifest(settings), build_reproducibility(settings)]
    return dg.Definitions(assets=assets, asset_checks=[*sql_checks_for(settings, assets),
                                                       *reproducibility_checks(settings)])

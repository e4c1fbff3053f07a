"""Stage ``governance``: a manifest of every out-of-sample day, the reproducibility verification
of every fold, the experiment registry, and stale-result alerts when recorded inputs change."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.governance.manifest import build_manifest, manifest_checks
from quant_assets.defs.governance.registry import build_registry, registry_checks
from quant_assets.defs.governance.reproducibility import (
    build_reproducibility,
    reproducibility_checks,
)
from quant_assets.defs.governance.staleness import build_stale_results_sensor
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    assets = [build_manifest(settings), build_reproducibility(settings), build_registry(settings)]
    return dg.Definitions(
        assets=assets,
        asset_checks=[*sql_checks_for(settings, assets), *manifest_checks(settings), *reproducibility_checks(settings),
                      *registry_checks(settings)],
        sensors=[build_stale_results_sensor(settings)],
    )

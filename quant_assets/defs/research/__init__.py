"""Stage ``research``: validation of signals and factors, the factor model and regimes."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.research.summary import build_summary, summary_checks
from quant_assets.defs.research.validation import build_validation
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    assets = [build_validation(settings), build_summary(settings)]
    return dg.Definitions(assets=assets, asset_checks=[*sql_checks_for(settings, assets), *summary_checks(settings)])

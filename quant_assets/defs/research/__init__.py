"""Stage ``research``: validation of signals and factors, the factor model and regimes."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.research.factor_model import (
    build_factor_return_summary,
    build_factor_returns,
    build_pca,
    build_summary_check,
)
from quant_assets.defs.research.regimes import build_history_check, build_regimes
from quant_assets.defs.research.summary import build_summary, summary_checks
from quant_assets.defs.research.validation import build_validation
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    daily = [build_validation(settings), build_factor_returns(settings), build_pca(settings), build_regimes(settings)]
    checks = [*summary_checks(settings), build_summary_check(settings), build_history_check(settings)]
    return dg.Definitions(assets=[*daily, build_summary(settings), build_factor_return_summary(settings)],
                          asset_checks=[*sql_checks_for(settings, daily), *checks])

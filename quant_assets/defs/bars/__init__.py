"""Stage ``bars``: OHLCV bars per interval, gaps and the timeframe dimension, as SQL models
(``dbt_like_sql/*.sql``) with their SQL tests (``dbt_like_sql/tests``)."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.lib.sql_models import sql_models_of_group


def defs(settings: Settings) -> dg.Definitions:
    assets, checks = sql_models_of_group(settings, "bars")
    return dg.Definitions(assets=assets, asset_checks=checks)

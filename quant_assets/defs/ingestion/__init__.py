"""Stage ``ingestion``: candles from the provider chain, trades from files, polled spot quotes and
DEX snapshots, alternative data; each gated before any write."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.ingestion.alternative_data import build_alternative_data
from quant_assets.defs.ingestion.polling import build_polling
from quant_assets.defs.ingestion.raw_candles import (
    build_raw_candles,
    build_raw_candles_provenance_check,
)
from quant_assets.defs.ingestion.trades import build_raw_trades
from quant_assets.lib.sql_models import sql_checks_for


def defs(settings: Settings) -> dg.Definitions:
    poll_assets, poll_checks, sensors = build_polling(settings)
    alt_assets, alt_checks = build_alternative_data(settings)
    assets = [
        build_raw_candles(settings),
        *([build_raw_trades(settings)] if settings.trades_dir else []),
        *poll_assets,
        *alt_assets,
    ]
    checks = [build_raw_candles_provenance_check(settings), *poll_checks, *alt_checks]
    return dg.Definitions(assets=assets, asset_checks=[*checks, *sql_checks_for(settings, assets)], sensors=sensors)

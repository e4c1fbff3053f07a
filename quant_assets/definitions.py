"""The single ``dg.Definitions`` of the platform, built from the loaded settings.

``build_definitions(settings)`` is the factory tests call with their own settings;
``defs`` is what ``dagster dev``, ``dagster definitions validate`` and the ``quant`` CLI load.
"""

from __future__ import annotations

import dagster as dg

from quant_assets.config import Settings, load_settings
from quant_assets.defs.alerts import build_alert_sensors
from quant_assets.defs.automation import apply_catalogue, build_automation
from quant_assets.defs.backtests import build_backtest
from quant_assets.defs.features import build_features
from quant_assets.defs.governance import build_manifest
from quant_assets.defs.ingestion import build_ingestion_extras, build_raw_candles
from quant_assets.defs.research import build_signal_ic
from quant_assets.defs.signals import build_signals
from quant_assets.defs.trades import build_raw_trades
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.sql_models import load_sql

STAGES = ("ingestion", "bars", "features", "signals", "research", "backtests", "governance")


def build_definitions(settings: Settings) -> dg.Definitions:
    python_assets = [
        build_raw_candles(settings),
        *([build_raw_trades(settings)] if settings.trades_dir else []),
        *build_features(settings),
        build_signals(settings),
        build_signal_ic(settings),
        build_backtest(settings),
        build_manifest(settings),
    ]
    ingest_assets, ingest_checks, ingest_sensors = build_ingestion_extras(settings)
    python_assets += ingest_assets
    names = {key.path[-1] for a in python_assets for key in a.keys}
    sql = load_sql(settings, names)
    automation = build_automation(settings)
    defs = dg.Definitions(
        assets=[*python_assets, *sql.assets],
        asset_checks=[*sql.checks, *ingest_checks],
        jobs=automation.jobs,
        schedules=automation.schedules,
        sensors=[*automation.sensors, *build_alert_sensors(settings), *ingest_sensors],
        resources={"duckdb": QuantDuckDB(database=str(settings.duckdb_path))},
        # DuckDB has one writer per file: run the steps of a run in one process, one at a time;
        # runs are serialised by the `duckdb` pool (see the instance's dagster.yaml).
        executor=dg.in_process_executor,
    )
    # Owners, stage tags, automation conditions and freshness policies, applied centrally.
    return apply_catalogue(defs, settings)


defs = build_definitions(load_settings())

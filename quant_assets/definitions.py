"""The single ``dg.Definitions`` of the platform, merged from each stage's ``defs(settings)``.

``build_definitions(settings)`` is the factory tests call with their own settings; ``defs`` is
what ``dagster dev``, ``dagster definitions validate`` and the ``quant`` CLI load. The central
policy (owners, stage tags, automation conditions, freshness) is applied to the merged graph.
"""

from __future__ import annotations

import dagster as dg

from quant_assets.config import Settings, load_settings
from quant_assets.defs import (
    backtests,
    bars,
    factors,
    features,
    governance,
    ingestion,
    platform,
    research,
    signals,
)
from quant_assets.defs.platform.automation import apply_catalogue
from quant_assets.lib.providers import ProvidersResource
from quant_assets.lib.sql_models import check_refs
from quant_assets.resources.duckdb import QuantDuckDB

# Asset groups in build order (`quant demo` materializes them one after the other); `platform`
# (open_alerts) reads what the others and the alert sensors wrote.
STAGES = ("ingestion", "bars", "features", "signals", "factors", "research", "backtests", "governance", "platform")
STAGE_PACKAGES = (ingestion, bars, features, signals, factors, research, backtests, governance, platform)


def resources_for(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources every stage uses: the DuckDB file and the providers."""
    duckdb = QuantDuckDB(database=str(settings.duckdb_path))
    return {"duckdb": duckdb, "providers": ProvidersResource.for_settings(settings, duckdb)}


def build_definitions(settings: Settings) -> dg.Definitions:
    merged = dg.Definitions.merge(
        *(package.defs(settings) for package in STAGE_PACKAGES),
        dg.Definitions(
            resources=resources_for(settings),
            # DuckDB has one writer per file: run the steps of a run in one process, one at a
            # time; runs are serialised by the `duckdb` pool (see the instance's dagster.yaml).
            executor=dg.in_process_executor,
        ),
    )
    check_refs(merged)
    return apply_catalogue(merged, settings)


defs = build_definitions(load_settings())

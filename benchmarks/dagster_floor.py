"""What Dagster itself costs for a run shaped like ours, with no work in it: the events floor.

A single-run backfill of daily assets records, for every asset and day, a planned and a
materialized event (with the day's own ``dagster/row_count`` and ``content_hash``), and, for every
check and day, a planned event and an evaluation aimed at that day's latest materialization
(what makes the UI's per-partition status truthful). :func:`floor_definitions` builds assets and
checks that do exactly that and nothing else: no DuckDB, no SQL, no hashing. The assets add their
per-day metadata as the project's assets do (``context.add_asset_metadata`` per partition); the
checks are the project's own :func:`~quant_assets.lib.checks.daily_check` with a test that passes
every day without a query, so they pay for the verdicts' events and the latest-materialization
lookup, not for a scan.

The benchmarks run these next to the real assets: the real run's time minus this is what the
project's own code costs, and this alone is the least any Dagster run of that shape takes.
"""

from collections.abc import Mapping

import dagster as dg

from quant_assets.config import Settings
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.partitions import daily_partitions, window_of
from quant_assets.quant.calendar import Window

NO_HASH = "0" * 64


def _noop_asset(settings: Settings, name: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, partitions_def=daily_partitions(settings), backfill_policy=dg.BackfillPolicy.single_run())
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        window = window_of(context)
        for key in window.keys():
            context.add_asset_metadata({"dagster/row_count": 0, "content_hash": NO_HASH}, partition_key=key)
        return dg.MaterializeResult(metadata={"run_window": window.label()})

    return _asset


def _noop_check(settings: Settings, asset: str, name: str) -> dg.AssetChecksDefinition:
    @daily_check(settings, asset=asset, name=name, description="passes every day without a query", over_range=True)
    def _check(_conn, window: Window) -> Mapping[str, Verdict]:
        return {day.key: Verdict(True, {"failing_rows": 0}) for day in window.days()}

    return _check


def floor_definitions(settings: Settings, checks: Mapping[str, int]) -> list:
    """A no-op daily asset per key of ``checks`` (the real assets' names) and that many no-op
    checks on each."""
    out: list = []
    for asset, n in checks.items():
        out.append(_noop_asset(settings, asset))
        out += [_noop_check(settings, asset, f"noop_{i}") for i in range(n)]
    return out


def checks_per_asset(defs: dg.Definitions, assets: list[str]) -> dict[str, int]:
    """How many checks the real definitions have on each of ``assets``."""
    counts = dict.fromkeys(assets, 0)
    for checks in defs.asset_checks:
        for key in checks.check_keys:
            name = key.asset_key.to_user_string()
            if name in counts:
                counts[name] += 1
    return counts


def daily_assets_of(defs: dg.Definitions, group: str) -> list[str]:
    """The daily-partitioned assets of ``group`` (the unpartitioned ones record one event a run)."""
    graph = defs.resolve_asset_graph()
    return sorted(k.to_user_string() for k in dg.AssetSelection.groups(group).resolve(graph)
                  if graph.get(k).partitions_def is not None)


def materialize_floor(settings: Settings, defs: dg.Definitions, assets: list[str], first: str, last: str,
                      instance: dg.DagsterInstance) -> float:
    """One single-run backfill of ``first``..``last`` of no-op stand-ins for ``assets`` (each with
    as many no-op checks as it has in ``defs``) on ``instance``; its seconds."""
    import time

    from quant_assets.definitions import resources_for

    definitions = floor_definitions(settings, checks_per_asset(defs, assets))
    began = time.perf_counter()
    result = dg.materialize(
        definitions, instance=instance, resources={"duckdb": resources_for(settings)["duckdb"]},
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
    )
    if not result.success:
        raise RuntimeError("the floor run failed")
    return time.perf_counter() - began


def floor_range_definitions(settings: Settings, defs: dg.Definitions, assets: list[str]) -> dg.Definitions:
    """Definitions of the stand-ins for ``assets`` (as many checks each as in ``defs``) with the
    real DuckDB resource, to run through ``quant``'s own ``run_range`` as the demo runs a stage."""
    from quant_assets.definitions import resources_for

    built = floor_definitions(settings, checks_per_asset(defs, assets))
    return dg.Definitions(
        assets=[d for d in built if not isinstance(d, dg.AssetChecksDefinition)],
        asset_checks=[d for d in built if isinstance(d, dg.AssetChecksDefinition)],
        resources={"duckdb": resources_for(settings)["duckdb"]},
    )

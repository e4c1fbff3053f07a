"""Asset checks evaluated day by day, each result recorded against its own partition.

A check of a daily-partitioned asset runs once per run, over the run's window; a range run has
no single partition, so Dagster would record its one result against no partition (the check's
Partitions tab then reads "Missing" for every day). :func:`daily_check` instead evaluates each
day of the window on its own and records one evaluation per day, aimed at that partition's
latest materialization, which is what the UI's per-partition status and partition-aware
automation read. There is no extra result for the range as a whole. A blocking check fails the
step when any day fails, so downstream assets of the run do not execute.

A check whose test is set-based evaluates the whole window in one query grouped by day
(``over_range=True``: its function receives the window and returns every day's verdict), so a
year's backfill costs one scan per check, not 365; each day's result is still its own event.
"""


from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import duckdb
from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # not re-exported
    AssetCheckEvaluationTargetMaterializationData,
)

from quant_assets.config import Settings
from quant_assets.partitions import daily_partitions, window_of
from quant_assets.quant.calendar import Window
from quant_assets.resources.duckdb import QuantDuckDB


@dataclass(frozen=True)
class Verdict:
    """One evaluation: passed or not, and what the UI shows beside it."""

    passed: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)


Evaluate = Callable[[duckdb.DuckDBPyConnection, Window | None], Verdict]
"""Evaluates one day (``Window`` of one day) or, for an unpartitioned asset, the table (``None``)."""

EvaluateRange = Callable[[duckdb.DuckDBPyConnection, Window], Mapping[str, Verdict]]
"""Evaluates a whole window at once: a verdict for each of its days, keyed by partition key."""


def daily_check(
    settings: Settings,
    *,
    asset: str,
    name: str,
    description: str,
    severity: str = "ERROR",
    partitioned: bool = True,
    over_range: bool = False,
) -> Callable[[Evaluate | EvaluateRange], dg.AssetChecksDefinition]:
    """Decorator: an asset check that evaluates ``evaluate`` for each day of the run's window.

    ``severity`` ``ERROR`` makes the check blocking (downstream assets in the run wait for it);
    ``WARN`` only raises an alert. With ``over_range`` (partitioned checks) the function is an
    :data:`EvaluateRange`, called once with the whole window.
    """
    if severity not in ("ERROR", "WARN"):
        raise ValueError(f"severity must be ERROR or WARN, not {severity!r}")
    if over_range and not partitioned:
        raise ValueError("over_range needs a partitioned check: an unpartitioned one has no days")
    level = dg.AssetCheckSeverity.ERROR if severity == "ERROR" else dg.AssetCheckSeverity.WARN
    blocking = level == dg.AssetCheckSeverity.ERROR

    def decorate(evaluate: Evaluate | EvaluateRange) -> dg.AssetChecksDefinition:
        @dg.asset_check(
            asset=asset,
            name=name,
            description=description,
            blocking=blocking,
            partitions_def=daily_partitions(settings) if partitioned else None,
            pool="duckdb",
        )
        def _check(context: dg.AssetCheckExecutionContext, duckdb: QuantDuckDB) -> Iterator[Any]:
            if not partitioned:
                with duckdb.connect() as conn:
                    verdict = evaluate(conn, None)
                yield dg.AssetCheckResult(passed=verdict.passed, severity=level, metadata=dict(verdict.metadata))
                return
            window = window_of(context)
            with duckdb.connect() as conn:
                verdicts = _day_verdicts(conn, evaluate, window, over_range, name)
            key = dg.AssetKey(asset)
            targets = latest_materializations(context.instance, key, [day.key for day, _ in verdicts])
            for day, verdict in verdicts:
                yield dg.AssetCheckEvaluation(
                    asset_key=key,
                    check_name=name,
                    passed=verdict.passed,
                    metadata=dict(verdict.metadata),
                    target_materialization_data=targets.get(day.key),
                    severity=level,
                    blocking=blocking,
                    partition=day.key,
                )
            yield dg.Output(None, output_name=context.op_execution_context.op_def.output_defs[0].name)

        return _check

    return decorate


def _day_verdicts(
    conn: duckdb.DuckDBPyConnection, evaluate: Evaluate | EvaluateRange, window: Window, over_range: bool, name: str
) -> list[tuple[Window, Verdict]]:
    days = list(window.days())
    if not over_range:
        return [(day, evaluate(conn, day)) for day in days]
    by_day = evaluate(conn, window)
    missing = [day.key for day in days if day.key not in by_day]
    if missing:
        raise RuntimeError(f"check {name} returned no verdict for {', '.join(missing[:3])}")
    return [(day, by_day[day.key]) for day in days]


def latest_materializations(
    instance: dg.DagsterInstance, asset: dg.AssetKey, partitions: Sequence[str]
) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """The latest materialization of each partition (what each day's evaluation checked)."""
    if not partitions:
        return {}
    found: dict[str, AssetCheckEvaluationTargetMaterializationData] = {}
    wanted = set(partitions)
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=list(partitions)), limit=2 * len(wanted)
    ).records
    for record in records:  # newest first
        if record.partition_key in wanted and record.partition_key not in found:
            found[record.partition_key] = _target(record)
    for missing in wanted - found.keys():  # re-materialized more often than the page covered
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[missing]), limit=1
        ).records
        if page:
            found[missing] = _target(page[0])
    return found


def _target(record: dg.EventLogRecord) -> AssetCheckEvaluationTargetMaterializationData:
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def failed_days(evaluations: Sequence[dg.AssetCheckEvaluation]) -> dict[dg.AssetCheckKey, tuple[int, int]]:
    """``{check: (days failed, days evaluated)}`` over a run's evaluations."""
    counts: dict[dg.AssetCheckKey, list[int]] = {}
    for evaluation in evaluations:
        tally = counts.setdefault(evaluation.asset_check_key, [0, 0])
        tally[0] += not evaluation.passed
        tally[1] += 1
    return {key: (failed, total) for key, (failed, total) in counts.items()}

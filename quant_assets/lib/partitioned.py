"""The shape every daily-partitioned Python asset shares, written once.

An asset reads the run's window, computes, and replaces exactly that window of its table(s),
recording each day's content hash, in ONE transaction; then it reports per-day figures against
each partition (see ``lib.metadata``). :func:`daily_asset` (one table) and
:func:`daily_multi_asset` (several) fill in what every such asset repeats: the daily partitions,
the single-run backfill policy, the ``duckdb`` concurrency pool, the table metadata, the
connection, the transaction and the result. The body only computes::

    @daily_asset(settings, name="signals", group="signals", description="...", deps=[...])
    def signals(step: WindowStep) -> AssetOutput:
        rows = query_frame(step.conn, "SELECT ... WHERE ts >= ? AND ts < ?", list(step.window))
        return AssetOutput([TableWrite("signals", compute(rows), params={...})])
"""


from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from quant_assets.config import Settings
from quant_assets.lib.metadata import Figures, preview, record_window_metadata
from quant_assets.partitions import daily_partitions, window_of
from quant_assets.quant.calendar import Window
from quant_assets.resources.tables import (
    merge_window,
    record_partition_hashes,
    replace_window,
    transaction,
)


@dataclass(frozen=True)
class TableWrite:
    """The rows of one table for the run's window.

    ``params`` are hashed into ``partition_hashes.params_hash`` (what shaped the rows).
    ``merge_key`` switches from replace to merge (rows equal but for ``volatile`` columns are kept
    as stored). ``prepare`` runs inside the transaction before the write (schema evolution).
    ``frame=None`` writes nothing and only hashes the window (a table another writer fills).
    """

    table: str
    frame: pl.DataFrame | None
    params: Mapping[str, Any]
    time_column: str = "ts"
    merge_key: tuple[str, ...] | None = None
    volatile: tuple[str, ...] = ()
    prepare: Callable[[duckdb.DuckDBPyConnection, pl.DataFrame], pl.DataFrame] | None = None


@dataclass
class AssetOutput:
    """What an asset body returns: its writes and what the UI should show.

    ``daily``: figures of each day (``{partition key: {name: number}}``), attached to that
    partition. ``summary``: figures of the whole run. ``extra``: previews and pictures (markdown).
    ``also``: further writes (e.g. a side table) that belong in the same transaction.
    """

    writes: Sequence[TableWrite]
    daily: Mapping[str, Figures] = field(default_factory=dict)
    summary: Figures = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    also: Sequence[Callable[[duckdb.DuckDBPyConnection], Any]] = ()
    preview_rows: int = 10


@dataclass
class WindowStep:
    """What an asset body works with: the Dagster context, the run's window, a connection, and
    what the asset's ``fetch`` returned (fetched before the connection opens, e.g. over HTTP)."""

    context: dg.AssetExecutionContext
    window: Window
    conn: duckdb.DuckDBPyConnection
    fetched: Any = None

    @property
    def log(self) -> Any:
        return self.context.log


def write_window(conn: duckdb.DuckDBPyConnection, window: Window, output: AssetOutput,
                 asset_of: Mapping[str, str] | None = None) -> dict[str, dict[str, tuple[int, str]]]:
    """Apply every write of ``output`` and record its hashes, all in one transaction.

    Returns ``{table: {day: (rows, sha256)}}``.
    """
    hashes: dict[str, dict[str, tuple[int, str]]] = {}
    start, end = window
    with transaction(conn):
        for write in output.writes:
            frame = write.prepare(conn, write.frame) if write.prepare and write.frame is not None else write.frame
            if frame is None:
                pass
            elif write.merge_key is None:
                replace_window(conn, write.table, frame, start, end, time_column=write.time_column)
            else:
                merge_window(conn, write.table, frame, start, end, key=write.merge_key,
                             volatile=write.volatile, time_column=write.time_column)
            asset = (asset_of or {}).get(write.table, write.table)
            hashes[write.table] = record_partition_hashes(
                conn, asset, write.table, start, end, write.params, write.time_column
            )
        for extra_write in output.also:
            extra_write(conn)
    return hashes


def _result_metadata(step: WindowStep, asset: str, output: AssetOutput,
                     hashes: Mapping[str, tuple[int, str]]) -> dict[str, Any]:
    extra = dict(output.extra)
    if output.writes and output.writes[0].frame is not None and output.preview_rows:
        extra.setdefault("preview", preview(output.writes[0].frame, step.window, output.preview_rows))
    return record_window_metadata(step.context, asset, step.window, hashes, output.daily, output.summary, extra)


def daily_asset(
    settings: Settings,
    *,
    name: str,
    group: str,
    description: str,
    deps: Sequence[str | dg.AssetDep] = (),
    kinds: Sequence[str] = ("python", "polars", "duckdb"),
    metadata: Mapping[str, Any] | None = None,
    code_version: str | None = None,
    resources: Sequence[str] = (),
    fetch: Callable[[dg.AssetExecutionContext, Window], Any] | None = None,
) -> Callable[[Callable[[WindowStep], AssetOutput]], dg.AssetsDefinition]:
    """Decorator: a daily-partitioned asset around ``compute(step) -> AssetOutput``.

    The asset's table is named like the asset; its first write's hashes give each partition's
    row count. ``resources`` names resources the body reads from ``step.context.resources``
    besides ``duckdb``. ``fetch(context, window)``, when given, runs before the DuckDB file is
    opened (slow network work holds no lock) and its result is ``step.fetched``.
    """

    def decorate(compute: Callable[[WindowStep], AssetOutput]) -> dg.AssetsDefinition:
        @dg.asset(
            name=name,
            group_name=group,
            description=description,
            deps=list(deps),
            partitions_def=daily_partitions(settings),
            backfill_policy=dg.BackfillPolicy.single_run(),
            kinds=set(kinds),
            pool="duckdb",
            code_version=code_version,
            metadata={"table": name, **(metadata or {})},
            required_resource_keys={"duckdb", *resources},
        )
        def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            window = window_of(context)
            fetched = fetch(context, window) if fetch else None
            with context.resources.duckdb.connect() as conn:
                step = WindowStep(context, window, conn, fetched)
                output = compute(step)
                hashes = write_window(conn, window, output)
            own = hashes.get(name) or next(iter(hashes.values()), {})
            return dg.MaterializeResult(metadata=_result_metadata(step, name, output, own))

        return _asset

    return decorate


def daily_multi_asset(
    settings: Settings,
    *,
    name: str,
    specs: Sequence[dg.AssetSpec],
    resources: Sequence[str] = (),
) -> Callable[[Callable[[WindowStep], Mapping[str, AssetOutput]]], dg.AssetsDefinition]:
    """Decorator: several daily assets computed together, ``compute(step) -> {asset: output}``.

    Every asset's writes go into the same transaction; each asset gets its own result. A run may
    select some of the assets: all are computed (they come from one computation), only the
    selected ones are written and reported.
    """

    def decorate(compute: Callable[[WindowStep], Mapping[str, AssetOutput]]) -> dg.AssetsDefinition:
        @dg.multi_asset(
            name=name,
            specs=[spec.merge_attributes(metadata={"table": spec.key.to_user_string()}) for spec in specs],
            partitions_def=daily_partitions(settings),
            backfill_policy=dg.BackfillPolicy.single_run(),
            pool="duckdb",
            can_subset=True,
            required_resource_keys={"duckdb", *resources},
        )
        def _multi(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
            window = window_of(context)
            selected = {key.to_user_string() for key in context.selected_asset_keys}
            with context.resources.duckdb.connect() as conn:
                step = WindowStep(context, window, conn)
                outputs = {asset: output for asset, output in compute(step).items() if asset in selected}
                combined = AssetOutput(
                    writes=[w for o in outputs.values() for w in o.writes],
                    also=[a for o in outputs.values() for a in o.also],
                )
                hashes = write_window(conn, window, combined)
            for asset, output in outputs.items():
                own = hashes[output.writes[0].table] if output.writes else {}
                yield dg.MaterializeResult(asset_key=asset, metadata=_result_metadata(step, asset, output, own))

        return _multi

    return decorate

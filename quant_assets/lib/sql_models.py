"""Turn ``dbt_like_sql/`` into Dagster assets (models) and asset checks (tests).

A model is one ``.sql`` file holding one ``SELECT``; a test is one ``.sql`` file under
``tests/`` whose query returns the failing rows (dbt's rule: no rows = pass). Each file starts
with a header of ``-- key: value`` comment lines, what dbt's ``config()`` would declare:

models: ``asset`` (name), ``group``, ``description``, optional ``for_each: bar_intervals``
(one asset per configured interval, ``{interval}`` in names), ``time_column`` (default ``ts``),
``order_by`` (row order for content hashes, default ``symbol, ts``), ``kinds``, and
``lookback: <ref>[, <ref>...]`` for a model that reads those refs from ``$lookback_start``
(earlier partitions): each partition then depends on the days that lookback spans
(``dg.AssetDep`` with a ``TimeWindowPartitionMapping``, so it is refreshed when one of them lands
later), and records whether they were all there (``lookback_status``, per-day metadata; see
``lib.lookback``). A model that reads ``$lookback_start`` must declare it.

tests: ``check`` (name), ``asset`` (the asset checked), ``severity`` (``ERROR`` blocks
downstream assets in the same run, ``WARN`` only alerts), ``description``, optional ``for_each``.
A test with ``day_of: <column>`` is set-based: it holds for every day of the window at once,
each failing row naming its day in that column (a ``TIMESTAMP`` or ``DATE``, or a
``YYYY-MM-DD`` string), so a range run evaluates it in one query grouped by day; its day-by-day
results are those of running it on each day alone (``test_sql_tests_by_day``).
``sample_order`` orders each day's sample of failing rows (default: the ``day_of`` column).
Without ``day_of`` the test runs once per day.

``{{ ref('name') }}`` renders to the table of asset ``name`` and makes it a dependency. Values
are never formatted into SQL: the query uses DuckDB named parameters, bound at run time:

- ``$window_start``, ``$window_end``: the run's partition window (``TIMESTAMP``, UTC)
- ``$asset``: the model's own asset name (in a test: the asset it checks)
- ``$base_interval`` (``INTERVAL``), ``$base_minutes``, ``$symbols`` (the universe, a list)
- ``$bar_intervals`` (configured interval names, a list)
- ``$providers``: every registered candle provider, alphabetical, then ``other`` (a list)
- ``$roll_vol_window``, ``$min_completeness``, ``$max_gap_minutes``, ``$return_z_max``,
  ``$max_staleness_minutes``: the ``bars`` settings
- for files expanded ``for_each: bar_intervals``: ``$interval`` (``INTERVAL``),
  ``$interval_minutes``, ``$n_expected`` (base candles per bar), ``$bars_per_year``
  (365-day year), ``$lookback_start`` (``$window_start`` minus ``roll_vol_window`` bars) and
  ``$roll_span`` (``roll_vol_window - 1`` bars, an ``INTERVAL``)

A model header may say ``partitioned: none``: the asset is then unpartitioned and each run
replaces the whole table. ``requires: trades`` loads the file only when a trades directory is
configured.

Every problem found while loading (no header, unknown key, unknown ``ref``, a cycle, an unknown
parameter, a syntax error) raises :class:`SqlModelError` naming the file and line.
"""


import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from quant_assets.config import INTERVAL_MINUTES, Settings, bars_per_year
from quant_assets.lib.checks import Verdict, daily_check
from quant_assets.lib.lookback import Lookback, lookback_status, record_status, status_figures
from quant_assets.lib.metadata import preview, record_window_metadata
from quant_assets.lib.plots import daily_bars_png
from quant_assets.partitions import daily_partitions, days_spanning, window_of
from quant_assets.providers.registry import CANDLE_PROVIDER_FACTORIES
from quant_assets.quant.calendar import Window
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import (
    ensure_columns_match,
    ident,
    params_hash,
    preview_markdown,
    query_frame,
    record_partition_hashes,
    table_exists,
    transaction,
)

SQL_DIR = Path(__file__).resolve().parents[2] / "dbt_like_sql"
_HEADER_LINE = re.compile(r"^--\s*([a-z_]+)\s*:\s*(.*?)\s*$")
_REF = re.compile(r"\{\{\s*ref\(\s*['\"]([^'\"]+)['\"]\s*\)\s*\}\}")
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
MODEL_KEYS = {
    "asset", "group", "description", "for_each", "time_column", "order_by", "kinds", "partitioned", "requires",
    "lookback",
}
TEST_KEYS = {"check", "asset", "severity", "description", "for_each", "requires", "day_of", "sample_order"}
REQUIREMENTS = {"trades": lambda settings: settings.trades_dir is not None}
EXPANSIONS = {"bar_intervals"}
PARAMS = {
    "window_start", "window_end", "base_interval", "base_minutes", "symbols", "bar_intervals",
    "roll_vol_window", "min_completeness", "max_gap_minutes", "return_z_max", "max_staleness_minutes",
    "interval", "interval_minutes", "n_expected", "bars_per_year", "lookback_start", "roll_span",
    "providers", "asset", "horizons", "quantiles",
}
INTERVAL_PARAMS = {"interval", "interval_minutes", "n_expected", "bars_per_year", "lookback_start", "roll_span"}
WINDOW_PARAMS = {"window_start", "window_end", "lookback_start"}


class SqlModelError(ValueError):
    """A SQL model or test file cannot be loaded; the message names file and line."""


@dataclass(frozen=True)
class SqlFile:
    """One parsed file; ``body_line`` is the 1-based line where the SQL after the header starts."""

    path: Path
    header: dict[str, str]
    header_lines: dict[str, int]
    body: str
    body_line: int
    interval: str | None = None
    refs: tuple[str, ...] = field(default=())

    def where(self, key: str | None = None) -> str:
        line = self.header_lines.get(key, 1) if key else self.body_line
        return f"{self.path.name}:{line}"

    @property
    def name(self) -> str:
        return self.header["check" if "check" in self.header else "asset"]


def parse_file(path: Path, allowed_keys: set[str], required: Iterable[str]) -> SqlFile:
    """Read the ``-- key: value`` header and the SQL body of one file."""
    lines = path.read_text().splitlines()
    header: dict[str, str] = {}
    header_lines: dict[str, int] = {}
    body_start = len(lines)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        match = _HEADER_LINE.match(line)
        if not match:
            if line.lstrip().startswith("--"):
                continue
            body_start = number - 1
            break
        key, value = match.groups()
        if key not in allowed_keys:
            raise SqlModelError(
                f"{path.name}:{number}: unknown header key '{key}'; accepted: {', '.join(sorted(allowed_keys))}"
            )
        header[key], header_lines[key] = value, number
    for key in required:
        if key not in header:
            raise SqlModelError(f"{path.name}:1: missing header key '{key}' (a '-- {key}: ...' line)")
    body = "\n".join(lines[body_start:])
    if not body.strip():
        raise SqlModelError(f"{path.name}:{body_start + 1}: no SQL after the header")
    if "for_each" in header and header["for_each"] not in EXPANSIONS:
        raise SqlModelError(
            f"{path.name}:{header_lines['for_each']}: for_each '{header['for_each']}' is unknown; "
            f"accepted: {', '.join(sorted(EXPANSIONS))}"
        )
    return SqlFile(path, header, header_lines, body, body_start + 1)


def _line_of(sql_file: SqlFile, offset: int) -> int:
    return sql_file.body_line + sql_file.body.count("\n", 0, offset)


def expand(sql_file: SqlFile, settings: Settings) -> list[SqlFile]:
    """One file per configured interval for ``for_each: bar_intervals``, else the file itself;
    none when the file ``requires`` something not configured.

    ``{feature_interval}`` in names and refs becomes the configured feature interval.
    """
    requirement = sql_file.header.get("requires")
    if requirement is not None:
        if requirement not in REQUIREMENTS:
            raise SqlModelError(
                f"{sql_file.where('requires')}: requires '{requirement}' is unknown; accepted: "
                f"{', '.join(sorted(REQUIREMENTS))}"
            )
        if not REQUIREMENTS[requirement](settings):
            return []
    fill = settings.features.interval
    sql_file = replace(
        sql_file,
        header={k: v.replace("{feature_interval}", fill) for k, v in sql_file.header.items()},
        body=sql_file.body.replace("{feature_interval}", fill),
    )
    if sql_file.header.get("for_each") != "bar_intervals":
        return [sql_file]
    out = []
    for interval in settings.bar_intervals:
        header = {k: v.replace("{interval}", interval) for k, v in sql_file.header.items()}
        out.append(replace(sql_file, header=header, interval=interval))
    return out


def render(sql_file: SqlFile, known_assets: set[str] | None) -> tuple[str, tuple[str, ...]]:
    """Replace ``{{ ref() }}`` by quoted table names; check names and parameters; parse the SQL."""
    refs: list[str] = []

    def _sub(match: re.Match[str]) -> str:
        name = match.group(1).replace("{interval}", sql_file.interval or "{interval}")
        if not _NAME.match(name) or (known_assets is not None and name not in known_assets):
            raise SqlModelError(
                f"{sql_file.path.name}:{_line_of(sql_file, match.start())}: ref('{match.group(1)}') "
                f"names no asset; known: {', '.join(sorted(known_assets or ()))}"
            )
        refs.append(name)
        return ident(name)

    sql = _REF.sub(_sub, sql_file.body)
    allowed = PARAMS if sql_file.interval else PARAMS - INTERVAL_PARAMS
    for match in _PARAM.finditer(sql_file.body):
        if match.group(1) not in allowed:
            raise SqlModelError(
                f"{sql_file.path.name}:{_line_of(sql_file, match.start())}: unknown parameter "
                f"${match.group(1)}; accepted: {', '.join('$' + p for p in sorted(allowed))}"
            )
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlModelError(f"{sql_file.where()}: SQL syntax error: {_first_line(exc)}") from exc
    if len(statements) != 1:
        raise SqlModelError(f"{sql_file.where()}: expected exactly one SELECT, found {len(statements)} statements")
    return sql, tuple(dict.fromkeys(refs))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0]


def bind_params(
    sql: str, interval: str | None, settings: Settings, start: datetime | None, end: datetime | None,
    asset: str | None = None,
) -> dict[str, Any]:
    """The named parameters ``sql`` uses, and only those (DuckDB rejects unused ones)."""
    base_minutes = INTERVAL_MINUTES[settings.base_interval]
    bars = settings.bars
    values: dict[str, Any] = {
        "window_start": start, "window_end": end, "asset": asset,
        "base_interval": timedelta(minutes=base_minutes), "base_minutes": base_minutes,
        "symbols": list(settings.symbols), "bar_intervals": list(settings.bar_intervals),
        "roll_vol_window": bars.roll_vol_window, "min_completeness": bars.min_completeness,
        "max_gap_minutes": bars.max_gap_minutes, "return_z_max": bars.return_z_max,
        "max_staleness_minutes": bars.max_staleness_minutes,
        "providers": [*sorted(CANDLE_PROVIDER_FACTORIES), "other"],
        "horizons": list(settings.research.horizons), "quantiles": settings.research.quantiles,
    }
    if interval:
        minutes = INTERVAL_MINUTES[interval]
        step = timedelta(minutes=minutes)
        values.update(
            interval=step, interval_minutes=minutes, n_expected=minutes // base_minutes,
            bars_per_year=bars_per_year(interval),
            lookback_start=start - bars.roll_vol_window * step if start else None,
            roll_span=(bars.roll_vol_window - 1) * step,
        )
    used = set(_PARAM.findall(sql))
    return {k: v for k, v in values.items() if k in used}


def check_acyclic(models: Mapping[str, tuple[SqlFile, tuple[str, ...]]]) -> None:
    """Raise naming a file on the first cycle among model refs."""
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for dep in models[name][1]:
            if dep not in models:
                continue
            if state.get(dep) == 1:
                cycle = " -> ".join([*trail[trail.index(dep):], dep]) if dep in trail else f"{name} -> {dep}"
                raise SqlModelError(f"{models[name][0].where()}: ref cycle {cycle}")
            if dep not in state:
                visit(dep, [*trail, dep])
        state[name] = 2

    for name in models:
        if name not in state:
            visit(name, [name])


@dataclass(frozen=True)
class LoadedSql:
    assets: list[dg.AssetsDefinition]
    checks: list[dg.AssetChecksDefinition]


@functools.lru_cache(maxsize=4)
def _load_all(settings: Settings) -> LoadedSql:
    """Every model and test for ``settings``, loaded once however many groups ask for theirs."""
    return load_sql(settings)


def sql_models_of_group(settings: Settings, group: str) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """The SQL models whose header says ``group``, and the SQL tests of those models."""
    loaded = _load_all(settings)
    assets = [a for a in loaded.assets if a.group_names_by_key[a.key] == group]
    return assets, _checks_of(loaded, assets)


def sql_checks_for(settings: Settings, assets: list[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """The SQL tests (``dbt_like_sql/tests``) that check one of ``assets``."""
    return _checks_of(_load_all(settings), assets)


def _checks_of(loaded: LoadedSql, assets: list[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    keys = {key for a in assets for key in a.keys}
    return [c for c in loaded.checks if {k.asset_key for k in c.check_keys} <= keys]


def check_refs(defs: dg.Definitions) -> None:
    """Every dependency of a SQL model names an asset of ``defs``; else the file and the name."""
    graph = defs.resolve_asset_graph()
    known = graph.get_all_asset_keys()
    for key in known:
        node = graph.get(key)
        sql_file = node.metadata.get("sql_file")
        if sql_file is None:
            continue
        for parent in node.parent_keys:
            if parent not in known:
                raise SqlModelError(
                    f"{Path(str(sql_file)).name}: ref('{parent.to_user_string()}') names no asset; known: "
                    + ", ".join(sorted(k.to_user_string() for k in known))
                )


def load_sql(settings: Settings, python_assets: set[str] | None = None, sql_dir: Path = SQL_DIR) -> LoadedSql:
    """Load every model and test under ``sql_dir`` as Dagster definitions.

    ``python_assets`` names the other assets a ``ref()`` may point at; ``None`` accepts any
    name, and the merged definitions check every dependency instead (:func:`check_refs`).
    """
    model_files = [
        expanded
        for path in sorted(sql_dir.glob("*.sql"))
        for expanded in expand(parse_file(path, MODEL_KEYS, ("asset", "group", "description")), settings)
    ]
    model_names = [f.name for f in model_files]
    for f in model_files:
        if not _NAME.match(f.name):
            raise SqlModelError(f"{f.where('asset')}: asset name '{f.name}' is not a plain lower-case identifier")
        if f.name in (python_assets or ()) or model_names.count(f.name) > 1:
            raise SqlModelError(f"{f.where('asset')}: asset name '{f.name}' is defined twice")
    known = None if python_assets is None else python_assets | set(model_names)
    rendered = {f.name: (f, *render(f, known)) for f in model_files}
    check_acyclic({name: (f, refs) for name, (f, _sql, refs) in rendered.items()})
    unpartitioned = {f.name for f in model_files if _unpartitioned(f)}
    assets = [_model_asset(f, sql, refs, settings, _lookbacks(f, refs, settings)) for f, sql, refs in rendered.values()]

    checks = []
    for path in sorted((sql_dir / "tests").glob("*.sql")):
        parsed = parse_file(path, TEST_KEYS, ("check", "asset", "severity", "description"))
        for test in expand(parsed, settings):
            if test.header["severity"] not in ("ERROR", "WARN"):
                raise SqlModelError(f"{test.where('severity')}: severity must be ERROR or WARN")
            if known is not None and test.header["asset"] not in known:
                raise SqlModelError(f"{test.where('asset')}: asset '{test.header['asset']}' does not exist")
            sql, _refs = render(test, known)
            partitioned = test.header["asset"] not in unpartitioned
            _require_window_params(test, partitioned)
            checks.append(_test_check(test, sql, settings, partitioned))
    return LoadedSql(assets=assets, checks=checks)


def _unpartitioned(f: SqlFile) -> bool:
    value = f.header.get("partitioned", "daily")
    if value not in ("daily", "none"):
        raise SqlModelError(f"{f.where('partitioned')}: partitioned must be daily or none")
    _require_window_params(f, value == "daily")
    return value == "none"


def _require_window_params(f: SqlFile, partitioned: bool) -> None:
    """A daily file must bound its rows by the window; an unpartitioned one has no window."""
    used = set(_PARAM.findall(f.body))
    if partitioned and "check" not in f.header and not {"window_start", "window_end"} <= used:
        raise SqlModelError(f"{f.where()}: a daily model must filter on $window_start and $window_end")
    if not partitioned and used & WINDOW_PARAMS:
        raise SqlModelError(f"{f.where()}: an unpartitioned file cannot use ${sorted(used & WINDOW_PARAMS)[0]}")


def lookback_days(settings: Settings, interval: str) -> int:
    """Days before a partition that ``$lookback_start`` reaches: ``roll_vol_window`` bars of ``interval``."""
    return days_spanning(settings.bars.roll_vol_window, interval)


def _lookbacks(f: SqlFile, refs: tuple[str, ...], settings: Settings) -> list[Lookback]:
    """The model's ``lookback`` header as :class:`Lookback` specs; checked against what it reads."""
    names = [n.strip() for n in f.header.get("lookback", "").split(",") if n.strip()]
    reads_back = "lookback_start" in _PARAM.findall(f.body)
    if names and _unpartitioned(f):
        raise SqlModelError(f"{f.where('lookback')}: an unpartitioned model has no earlier partitions to look back on")
    if names and f.interval is None:
        raise SqlModelError(
            f"{f.where('lookback')}: a lookback spans roll_vol_window bars of the interval, so the model "
            "needs 'for_each: bar_intervals'"
        )
    for name in names:
        if name not in refs:
            raise SqlModelError(
                f"{f.where('lookback')}: lookback '{name}' is not a ref of this model; refs: {', '.join(refs) or 'none'}"
            )
    if reads_back and not names:
        raise SqlModelError(
            f"{f.where()}: the model reads $lookback_start (earlier partitions) but declares no "
            "'-- lookback: <ref>' header naming what it reads there"
        )
    if names and not reads_back:
        raise SqlModelError(f"{f.where('lookback')}: lookback declared but the model never reads $lookback_start")
    return [Lookback(name, lookback_days(settings, f.interval)) for name in names] if f.interval else []


def _model_asset(
    f: SqlFile, sql: str, refs: tuple[str, ...], settings: Settings, lookbacks: list[Lookback]
) -> dg.AssetsDefinition:
    table = f.name
    time_column = f.header.get("time_column", "ts")
    order_by = [c.strip() for c in f.header.get("order_by", "symbol, ts").split(",")]
    kinds = {k.strip() for k in f.header.get("kinds", "duckdb, sql").split(",")}
    partitioned = not _unpartitioned(f)
    back = {lb.upstream: lb for lb in lookbacks}
    reads = "".join(f"\n\nLookback: {lb.describe()}." for lb in lookbacks)

    @dg.asset(
        name=table,
        group_name=f.header["group"],
        description=f"{f.header['description']}{reads}\n\nSQL model `dbt_like_sql/{f.path.name}`.",
        deps=[back[r].dep() if r in back else r for r in refs],
        partitions_def=daily_partitions(settings) if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        kinds=kinds,
        pool="duckdb",
        code_version=_code_version(sql),
        metadata={"sql_file": f"dbt_like_sql/{f.path.name}", "table": table},
    )
    def _sql_model(context: dg.AssetExecutionContext, duckdb: QuantDuckDB) -> dg.MaterializeResult:
        if not partitioned:
            with duckdb.connect() as conn:
                rows = replace_table(conn, table, sql, bind_params(sql, f.interval, settings, None, None))
                sample = query_frame(conn, f"SELECT * FROM {ident(table)} ORDER BY ALL LIMIT 20")
            return dg.MaterializeResult(
                metadata={"dagster/row_count": rows, "preview": dg.MetadataValue.md(preview_markdown(sample, 20))}
            )
        window = window_of(context)
        start, end = window
        params = bind_params(sql, f.interval, settings, start, end, table)
        with duckdb.connect() as conn, transaction(conn):
            status = lookback_status(conn, lookbacks, window, settings.start_date) if lookbacks else {}
            run_model(conn, table, sql, params, (start, end), time_column)
            # What shaped the rows: the SQL and its parameters, not the run's window, so a day has
            # one params_hash however it was run (alone or in a range).
            shaping = {k: v for k, v in params.items() if k not in WINDOW_PARAMS}
            hashes = record_partition_hashes(conn, table, table, start, end, {"sql": sql, "params": shaping}, time_column)
            record_status(conn, table, lookbacks, status)
            daily, extra = _window_figures(conn, table, time_column, order_by, window)
        for key, figures in status_figures(status).items():
            daily[key] = {**daily.get(key, {}), **figures}
        return dg.MaterializeResult(metadata=record_window_metadata(context, table, window, hashes, daily, extra=extra))

    return _sql_model


def replace_table(conn: duckdb.DuckDBPyConnection, table: str, sql: str, params: dict[str, Any]) -> int:
    """Replace the whole of an unpartitioned model's table, in one transaction."""
    with transaction(conn):
        conn.execute(f"CREATE OR REPLACE TABLE {ident(table)} AS {sql}", params)
        rows = conn.execute(f"SELECT count(*) FROM {ident(table)}").fetchone()[0]
    return int(rows)


def _code_version(sql: str) -> str:
    return params_hash({"sql": sql})[:16]


def run_model(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    sql: str,
    params: dict[str, Any],
    window: tuple[datetime, datetime],
    time_column: str,
) -> int:
    """Replace the rows of ``table`` in ``window`` by the model's rows, in one transaction.

    The model must produce rows inside the window only: a row outside it raises inside the
    INSERT (DuckDB's ``error()``), the transaction rolls back and nothing is written. The rows
    are inserted straight from the query, without a staging copy.
    """
    quoted, col = ident(table), ident(time_column)
    bound = {**params, "qa_window_start": window[0], "qa_window_end": window[1]}
    try:
        with transaction(conn):
            columns = [d[0] for d in conn.execute(f"SELECT * FROM ({sql}) LIMIT 0", params).description]
            rows = (f"SELECT * FROM ({sql}) AS model_rows "
                    f"WHERE CASE WHEN model_rows.{col} >= $qa_window_start AND model_rows.{col} < $qa_window_end "
                    f"THEN true ELSE error('model {table} produced rows outside the partition window') END")
            if not table_exists(conn, table):
                # Created with its rows (see resources.tables.replace_window: DuckDB's statistics)
                conn.execute(f"CREATE TABLE {quoted} AS {rows}", bound)
                return int(conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])
            ensure_columns_match(conn, table, columns)
            conn.execute(f"DELETE FROM {quoted} WHERE {col} >= $qa_window_start AND {col} < $qa_window_end",
                         {"qa_window_start": window[0], "qa_window_end": window[1]})
            inserted = conn.execute(f"INSERT INTO {quoted} BY NAME {rows}", bound).fetchone()[0]
    except duckdb.InvalidInputException as exc:
        if "outside the partition window" in str(exc):
            raise SqlModelError(f"model {table} produced rows outside the partition window") from None
        raise
    return int(inserted)


def _window_figures(
    conn: duckdb.DuckDBPyConnection, table: str, time_column: str, order_by: list[str], window: Window
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per-day figures of a model's window and what the run shows: a preview, and for bar
    tables the latest bar per symbol and a picture of completeness over the days."""
    col = ident(time_column)
    sample = query_frame(
        conn,
        f"SELECT * FROM {ident(table)} WHERE {col} >= ? AND {col} < ? "
        f"ORDER BY {', '.join(ident(c) + ' DESC' for c in reversed(order_by))} LIMIT 10",
        list(window),
    )
    extra: dict[str, Any] = {"preview": preview(sample.reverse(), window)}
    if not {"close", "volume", "n_source", "n_expected", "symbol"} <= set(sample.columns):
        return {}, extra
    first = first_symbol(conn, table, window)
    days = query_frame(
        conn,
        f"SELECT strftime(CAST(ts AS DATE), '%Y-%m-%d') AS day, sum(n_source) / sum(n_expected) AS completeness, "
        f"sum(volume) AS volume_sum, arg_max(close, ts) FILTER (symbol = ?) AS last_close "
        f"FROM {ident(table)} WHERE ts >= ? AND ts < ? GROUP BY ALL ORDER BY day",
        [first, *window],
    )
    daily = {
        row["day"]: {
            "completeness": row["completeness"],
            "volume_sum": row["volume_sum"],
            f"last_close_{(first or '').replace('/', '_')}": row["last_close"],
        }
        for row in days.iter_rows(named=True)
    }
    latest = query_frame(
        conn,
        f"SELECT symbol, arg_max(ts, ts) AS ts, arg_max(close, ts) AS close, sum(volume) AS volume, "
        f"sum(n_source) / sum(n_expected) AS completeness FROM {ident(table)} "
        "WHERE ts >= ? AND ts < ? GROUP BY symbol ORDER BY symbol",
        list(window),
    )
    extra["latest_bars"] = dg.MetadataValue.md(f"Per symbol over {window.label()}\n\n" + preview_markdown(latest, 50))
    if days.height > 1:
        extra["completeness_over_days"] = dg.MetadataValue.md(daily_bars_png(
            [date.fromisoformat(d) for d in days["day"]], days["completeness"].to_list(),
            f"{table}: share of expected base candles per day, {window.label()}", "completeness",
        ))
    return daily, extra


def first_symbol(conn: duckdb.DuckDBPyConnection, table: str, window: Window) -> str | None:
    """The alphabetically first symbol with bars in the window (its close is plotted per day)."""
    rows = conn.execute(f"SELECT min(symbol) FROM {ident(table)} WHERE ts >= ? AND ts < ?", list(window)).fetchall()
    return rows[0][0] if rows else None


def _test_check(
    test: SqlFile, sql: str, settings: Settings, partitioned: bool = True
) -> dg.AssetChecksDefinition:
    """A test's check: one query over the run's range when the test is set-based (``day_of``),
    else one per day (or one over the table, unpartitioned)."""
    day_of = test.header.get("day_of")
    over_range = day_of is not None and partitioned
    sample_order = test.header.get("sample_order", day_of)

    @daily_check(
        settings,
        asset=test.header["asset"],
        name=test.name,
        description=f"{test.header['description']}\n\nSQL test `dbt_like_sql/tests/{test.path.name}` "
        f"(passes when it returns no rows; severity {test.header['severity']}"
        f"{'; one query per run, by day' if over_range else ''}).",
        severity=test.header["severity"],
        partitioned=partitioned,
        over_range=over_range,
    )
    def _sql_test(conn: duckdb.DuckDBPyConnection, window: Window | None) -> Verdict | dict[str, Verdict]:
        start, end = window if window is not None else (None, None)
        params = bind_params(sql, test.interval, settings, start, end, test.header["asset"])
        if over_range:
            return evaluate_test_by_day(conn, sql, params, window, day_of, sample_order)
        return evaluate_test(conn, sql, params, (start, end))

    return _sql_test


SAMPLE_ROWS = 5
"""Failing rows shown beside each evaluation."""


def evaluate_test_by_day(
    conn: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, Any],
    window: Window,
    day_of: str,
    sample_order: str,
) -> dict[str, Verdict]:
    """Run a set-based test once over ``window``: each day's verdict from the failing rows whose
    ``day_of`` falls on it, with the same metadata a one-day run gives. A failing row that names
    no day of the window fails every day (a gate must not pass on a row it cannot place)."""
    day = f"CAST(test_rows.{ident(day_of)} AS DATE)"
    frame = query_frame(
        conn,
        f"SELECT {day} AS qa_day, count(*) OVER (PARTITION BY {day}) AS qa_failing, test_rows.* "
        f"FROM ({sql}) AS test_rows "
        f"QUALIFY row_number() OVER (PARTITION BY {day} ORDER BY {sample_order}) <= {SAMPLE_ROWS}",
        params,
    )
    empty = frame.clear().drop("qa_day", "qa_failing")
    keys = set(window.keys())
    by_day = {key: (0, empty) for key in keys}
    unplaced = 0
    for (qa_day,), rows in frame.group_by("qa_day", maintain_order=True):
        key = qa_day.isoformat() if qa_day is not None else None
        failing = int(rows["qa_failing"][0])
        if key in keys:
            by_day[key] = (failing, rows.drop("qa_day", "qa_failing"))
        else:
            unplaced += failing
    verdicts = {}
    for one in window.days():
        failing, sample = by_day[one.key]
        failing += unplaced
        metadata = {
            "failing_rows": int(failing),
            "window": f"[{one.start.isoformat()}, {one.end.isoformat()})",
            "sample": dg.MetadataValue.md(preview_markdown(sample)),
        }
        if unplaced:
            metadata["rows_without_day"] = unplaced
        verdicts[one.key] = Verdict(passed=failing == 0, metadata=metadata)
    return verdicts


def evaluate_test(
    conn: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, Any],
    window: tuple[datetime | None, datetime | None],
) -> Verdict:
    """Run a test query; pass when it returns no rows; the count and first rows go to metadata."""
    failing = conn.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
    sample = query_frame(conn, f"SELECT * FROM ({sql}) LIMIT 5", params)
    return Verdict(
        passed=failing == 0,
        metadata={
            "failing_rows": int(failing),
            "window": f"[{window[0].isoformat()}, {window[1].isoformat()})" if window[0] else "whole table",
            "sample": dg.MetadataValue.md(preview_markdown(sample)),
        },
    )


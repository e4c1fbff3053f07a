"""``quant experiments``: the experiment registry for people (list, show one, diff two).

Reads ``experiment_registry`` and each experiment's manifest file; writes nothing. An id may be
given as a unique prefix of at least 4 characters.
"""

import json
from pathlib import Path
from typing import Any

import duckdb

from quant_assets.quant.experiments import experiment_diff, flatten, status_words
from quant_assets.resources.tables import table_exists

MIN_PREFIX = 4
LIST_SQL = """
    SELECT experiment_id, cost_mode, status, folds, reproduced, mismatched, sharpe, dsr, pbo, n_trials, hypothesis,
           last_run
    FROM experiment_registry ORDER BY last_run DESC, experiment_id
"""


class ExperimentLookupError(ValueError):
    """An id that names no experiment, or more than one."""


def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _registered(conn: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(conn, "experiment_registry") and conn.execute(
        "SELECT count(*) FROM experiment_registry").fetchone()[0] > 0


def list_lines(conn: duckdb.DuckDBPyConnection) -> list[str]:
    if not _registered(conn):
        return ["no experiments registered yet: materialize experiment_registry (`quant demo` does)"]
    lines = []
    for exp_id, mode, status, folds, _rep, _mis, sharpe, dsr, pbo, trials, hypothesis, _ in conn.execute(LIST_SQL).fetchall():
        short = hypothesis if len(hypothesis) <= 60 else hypothesis[:57] + "..."
        lines.append(f"{exp_id}  {mode:<9}  {status:<10}  folds {folds:>4}  net Sharpe {_fmt(sharpe, 2):>6}  "
                     f"DSR {_fmt(dsr)}  PBO {_fmt(pbo)}  trials {trials:>4}  {short}")
    return lines


def resolve(conn: duckdb.DuckDBPyConnection, given: str) -> dict[str, Any]:
    """The registry row of ``given`` (an id or a unique prefix of one)."""
    if len(given) < MIN_PREFIX or not all(c in "0123456789abcdef" for c in given.lower()):
        raise ExperimentLookupError(f"'{given}' is not an experiment id: give at least {MIN_PREFIX} of its hex digits")
    if not _registered(conn):
        raise ExperimentLookupError("no experiments registered yet: materialize experiment_registry (`quant demo` does)")
    cursor = conn.execute("SELECT * FROM experiment_registry WHERE starts_with(experiment_id, ?)", [given.lower()])
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    if not rows:
        raise ExperimentLookupError(f"no experiment '{given}' in experiment_registry; `quant experiments list` "
                                    "shows them")
    if len(rows) > 1:
        raise ExperimentLookupError(f"'{given}' matches {len(rows)} experiments "
                                    f"({', '.join(r['experiment_id'] for r in rows)}): give more digits")
    return rows[0]


def _manifest(row: dict[str, Any]) -> dict[str, Any]:
    path = Path(row["manifest_path"])
    return json.loads(path.read_text()) if path.exists() else {}


def show_lines(conn: duckdb.DuckDBPyConnection, given: str, mode: str) -> list[str]:
    row = resolve(conn, given)
    manifest = _manifest(row)
    lines = [
        f"experiment {row['experiment_id']} ({row['cost_mode']} costs): "
        + status_words(row["status"], row["folds"], row["reproduced"], row["mismatched"], mode),
        f"  hypothesis: {row['hypothesis']}",
        f"  universe {row['universe']}, {row['bar_interval']} bars; out-of-sample days {row['folds']} "
        f"({_day(row['first_day'])}..{_day(row['last_day'])}); first run {row['first_run']}, last run {row['last_run']}",
        f"  net return {_fmt(row['net_return'], 4)}, gross {_fmt(row['gross_return'], 4)}, Sharpe "
        f"{_fmt(row['sharpe'], 2)}, PSR {_fmt(row['psr'])}, DSR {_fmt(row['dsr'])} ({row['n_trials']} trials), "
        f"PBO {_fmt(row['pbo'])}",
        f"  reproducibility: {row['reproduced']} reproduced, {row['mismatched']} differ, {row['unverified']} "
        f"unverified, {row['stale_days']} stale days",
        f"  code: commit {(row['git_commit'] or 'unknown')[:12]}"
        f"{' (dirty tree)' if row['git_dirty'] else ''}; manifest {row['manifest_path']} (sha256 "
        f"{row['manifest_hash'][:12]}{'' if manifest else ', file missing'})",
        "  configuration:",
    ]
    lines += [f"    {key} = {json.dumps(value)}" for key, value in flatten(json.loads(row["config_json"])).items()]
    return lines


def _day(value: Any) -> str:
    return f"{value:%Y-%m-%d}" if value is not None else "n/a"


def diff_lines(conn: duckdb.DuckDBPyConnection, first: str, second: str) -> list[str]:
    a, b = resolve(conn, first), resolve(conn, second)
    ma, mb = _manifest(a), _manifest(b)
    sides = [{"config": json.loads(r["config_json"]), "git": m.get("git"), "packages": m.get("packages"),
              "inputs": m.get("inputs")} for r, m in ((a, ma), (b, mb))]
    header = f"A = {a['experiment_id']} ({a['cost_mode']}), B = {b['experiment_id']} ({b['cost_mode']})"
    missing = [r["experiment_id"] for r, m in ((a, ma), (b, mb)) if not m]
    lines = [header] + [f"manifest of {i} is missing: code, packages and inputs not compared" for i in missing]
    differences = experiment_diff(*sides)
    return lines + (differences or ["no difference in configuration, code, packages or inputs"])

"""What the DuckDB file holds: rows per table, partitions, the walk-forward headline, open alerts.

A reader only: the file is opened read-only and never migrated, so the report works on a
read-only filesystem and next to a notebook that has the file open read-only. DuckDB cannot
open a file read-only while another process writes it; then the report waits two seconds at
most and says so in one line. Everything is read before anything is printed, so a file that
turns out to be damaged prints one error line and no partial report.

Exit codes of :func:`print_report`: 0 report printed; 1 no DuckDB file yet, or it cannot be
read (permissions); 3 the file is damaged (truncated, not a DuckDB file, a block fails to
read); 75 the file is busy (a writer holds it: try again later, as EX_TEMPFAIL says).
"""

import math
import sys
from collections.abc import Callable

import duckdb

from quant_assets.alerts_report import report_alert_lines
from quant_assets.config import Settings
from quant_assets.quant.backtest_statistics import verdict_words
from quant_assets.quant.experiments import experiment_ids, status_words
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.errors import (
    DuckDBBusy,
    DuckDBDamaged,
    DuckDBFileError,
    damaged_error,
    first_line,
)
from quant_assets.resources.tables import ident, table_exists

EXIT_OK, EXIT_UNREADABLE, EXIT_DAMAGED, EXIT_BUSY = 0, 1, 3, 75


def report_tables(settings: Settings) -> list[str]:
    intervals = settings.bar_intervals
    return [
        "raw_candles", *(f"bars_{i}" for i in intervals), "bar_gaps",
        *(f"features_{i}" for i in intervals), "signals", "signal_trades", "factors",
        "signal_ic", "signal_summary", "factor_returns", "regimes", "backtest_folds", "backtest_pnl",
        "backtest_positions", "portfolio_weights", "backtest_trials", "backtest_summary",
        "backtest_manifest", "experiment_registry", "experiment_folds", "reproducibility_runs",
    ]


def _fmt(value: float, percent: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.2%}" if percent else f"{value:.3f}"


def _count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {ident(table)}").fetchone()[0] if table_exists(conn, table) else 0


def report_lines(conn: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """The report, read from ``conn`` (read-only is enough; a missing table counts as empty)."""
    lines = [f"DuckDB file: {settings.duckdb_path.resolve()}"]
    if table_exists(conn, "raw_candles"):
        first, last, days = conn.execute(
            "SELECT min(ts)::DATE, max(ts)::DATE, count(DISTINCT ts::DATE) FROM raw_candles"
        ).fetchone()
    else:
        first, last, days = None, None, 0
    lines.append(f"partitions with candles: {days} ({first} .. {last})")
    lines.append("rows per table:")
    lines += [f"  {table:<22} {_count(conn, table):>12,}" for table in report_tables(settings)]
    if table_exists(conn, "backtest_pnl") and table_exists(conn, "backtest_folds"):
        lines += _backtest_lines(conn, settings)
    return lines + report_alert_lines(conn)


def _backtest_lines(conn: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    ok, other = conn.execute(
        "SELECT count(*) FILTER (status = 'OK'), count(*) FILTER (status <> 'OK') FROM backtest_folds "
        "WHERE cost_mode = 'realistic'"
    ).fetchone()
    chosen = conn.execute(
        "SELECT selected_strategy, count(*) FROM backtest_folds WHERE status = 'OK' AND cost_mode = 'realistic' "
        "GROUP BY ALL ORDER BY 2 DESC, 1"
    ).fetchall()
    interval = settings.features.interval
    lines = [f"walk-forward backtest on {interval} bars: {ok} out-of-sample days traded, {other} not "
             "(no fold, too little training history, or an incomplete lookback)"]
    if chosen:
        lines.append("  strategies chosen (realistic costs): " + ", ".join(f"{name} x{n}" for name, n in chosen))
    if table_exists(conn, "backtest_summary"):
        lines += _summary_lines(conn)
    lines += _governance_lines(conn, settings)
    lines.append(f"manifests: {settings.manifest_dir.resolve()} (and tables backtest_manifest, experiment_registry)")
    return lines


def _governance_lines(conn: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Per cost mode, the current settings' experiment: reproduced or not, its trials, what produced it."""
    if not table_exists(conn, "experiment_registry"):
        return []
    lines = ["  what stands behind these results (`quant experiments show ID` for more):"]
    mode = settings.governance.reproducibility
    for cost_mode, exp_id in experiment_ids(settings).items():
        row = conn.execute("SELECT status, folds, reproduced, mismatched, n_trials, git_commit, git_dirty, "
                           "manifest_path FROM experiment_registry WHERE experiment_id = ?", [exp_id]).fetchone()
        if row is None:
            lines.append(f"    experiment {exp_id} ({cost_mode}): not registered yet (materialize experiment_registry)")
            continue
        status, folds, reproduced, mismatched, trials, commit, dirty, path = row
        tree = "dirty tree" if dirty else "clean tree" if dirty is False else "tree state unknown"
        lines.append(f"    experiment {exp_id} ({cost_mode}): {status_words(status, folds, reproduced, mismatched, mode)}; "
                     f"{trials} trials; commit {(commit or 'unknown')[:12]} ({tree}); manifest {path}")
    return lines


def _summary_lines(conn: duckdb.DuckDBPyConnection) -> list[str]:
    rows = conn.execute("""
        SELECT cost_mode, strategy, n_bars, gross_total_return, total_return, cost_total, sharpe, sortino,
               max_drawdown, psr, dsr, n_trials, pbo, sharpe_ci_low, sharpe_ci_high, null_reason
        FROM backtest_summary WHERE role <> 'trial' ORDER BY cost_mode DESC, role DESC, strategy
    """).fetchall()
    lines = ["  out of sample (annualised over a 365-day year; drawdown on bar-level equity):"]
    for mode, name, n, gross, net, cost, sharpe, sortino, mdd, psr, dsr, trials, pbo, low, high, why in rows:
        label = f"{name} ({mode})"
        text = (f"    {label:<34} {n:>6} bars  gross {_fmt(gross, True):>8}  net {_fmt(net, True):>8}  "
                f"Sharpe {_fmt(sharpe)} [{_fmt(low)}, {_fmt(high)}]  Sortino {_fmt(sortino)}  max DD {_fmt(mdd, True)}")
        if name == "walk_forward":
            text += f"  costs {_fmt(cost, True)}  PSR {_fmt(psr)}  DSR {_fmt(dsr)} ({trials or 0} trials)  PBO {_fmt(pbo)}"
        lines.append(text)
        if name == "walk_forward":
            lines.append(f"      {verdict_words(dsr, pbo)}" + (f" ({why})" if why else ""))
    lines.append("    [a, b]: 95% stationary block-bootstrap interval of the Sharpe; DSR deflates by every trial "
                 "ever run on this universe, interval and cost mode")
    return lines


def read_report(settings: Settings, lines_of: Callable[[duckdb.DuckDBPyConnection, Settings], list[str]] = report_lines
                ) -> list[str]:
    """The report's lines; raises a one-line :class:`DuckDBFileError` when the file cannot be read."""
    path = str(settings.duckdb_path)
    with QuantDuckDB(database=path).connect(read_only=True) as conn:
        try:
            return lines_of(conn, settings)
        except duckdb.Error as exc:  # a block past the end, a checksum that does not match
            raise damaged_error(path, first_line(exc, 120)) from exc


def print_report(settings: Settings,
                 lines_of: Callable[[duckdb.DuckDBPyConnection, Settings], list[str]] = report_lines) -> int:
    """Print the summary; return an exit code (see the module doc), errors as one stderr line."""
    if not settings.duckdb_path.exists():
        print(f"no DuckDB file at {settings.duckdb_path} yet: run `quant demo` first")
        return EXIT_UNREADABLE
    try:
        lines = read_report(settings, lines_of)
    except DuckDBFileError as exc:
        print(f"quant: error: {exc}", file=sys.stderr)
        if isinstance(exc, DuckDBBusy):
            return EXIT_BUSY
        return EXIT_DAMAGED if isinstance(exc, DuckDBDamaged) else EXIT_UNREADABLE
    print("\n".join(lines))
    return EXIT_OK

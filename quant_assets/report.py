"""What the DuckDB file holds: rows per table, partitions, the walk-forward headline."""

import math

import numpy as np

from quant_assets.config import Settings, bars_per_year
from quant_assets.quant.backtest import performance_metrics
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.resources.tables import ident, table_exists


def report_tables(settings: Settings) -> list[str]:
    intervals = settings.bar_intervals
    return [
        "raw_candles", *(f"bars_{i}" for i in intervals), "bar_gaps",
        *(f"features_{i}" for i in intervals), "signals", "signal_ic", "backtest_folds", "backtest_pnl",
        "backtest_manifest", "experiment_registry",
    ]


def _fmt(value: float, percent: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.2%}" if percent else f"{value:.3f}"


def print_report(settings: Settings) -> int:
    """Print the summary; return 0, or 1 when the DuckDB file does not exist yet."""
    if not settings.duckdb_path.exists():
        print(f"no DuckDB file at {settings.duckdb_path} yet: run `quant demo` first")
        return 1
    with QuantDuckDB(database=str(settings.duckdb_path)).connect() as conn:
        print(f"DuckDB file: {settings.duckdb_path.resolve()}")
        first, last, days = conn.execute(
            "SELECT min(ts)::DATE, max(ts)::DATE, count(DISTINCT ts::DATE) FROM raw_candles"
        ).fetchone()
        print(f"partitions with candles: {days} ({first} .. {last})")
        print("rows per table:")
        for table in report_tables(settings):
            n = conn.execute(f"SELECT count(*) FROM {ident(table)}").fetchone()[0] if table_exists(conn, table) else 0
            print(f"  {table:<22} {n:>12,}")
        if not table_exists(conn, "backtest_pnl"):
            return 0
        net = np.array([r[0] for r in conn.execute("SELECT net_return FROM backtest_pnl ORDER BY ts").fetchall()])
        ok, skipped = conn.execute(
            "SELECT count(*) FILTER (status = 'OK'), count(*) FILTER (status <> 'OK') FROM backtest_folds"
        ).fetchone()
        chosen = conn.execute(
            "SELECT selected_signal, count(*) FROM backtest_folds WHERE status = 'OK' GROUP BY ALL ORDER BY 2 DESC"
        ).fetchall()
    print(f"walk-forward backtest: {ok} folds traded, {skipped} skipped for lack of training history")
    if len(net):
        m = performance_metrics(net, bars_per_year(settings.features.interval))
        interval = settings.features.interval
        print(
            f"  out-of-sample, after costs, on {interval} bars: Sharpe {_fmt(m['sharpe'])} and Sortino "
            f"{_fmt(m['sortino'])} (annualised, 365 days), total return {_fmt(m['total_return'], True)}, "
            f"max drawdown {_fmt(m['max_drawdown'], True)} (bar-level equity), hit rate "
            f"{_fmt(m['hit_rate'], True)} of {len(net)} bars"
        )
        print("  rules chosen: " + ", ".join(f"{name} x{n}" for name, n in chosen))
    print(f"manifests: {settings.manifest_dir.resolve()} (and tables backtest_manifest, experiment_registry)")
    return 0

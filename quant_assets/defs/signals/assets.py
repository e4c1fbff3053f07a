"""Signals and their round trips: one step writes ``signals`` and ``signal_trades`` together.

Every rule of the signal catalogue (``quant_assets/signal_catalogue.yaml`` or the file
``signals.catalogue`` names; rules in ``quant.signals``) gives a target position in [-1, 1] per
(symbol, bar), known at the bar's close. ``signal_trades`` are the FIFO round trips of those
positions executed at the next bar's open (``quant.trades``); a round trip belongs to the
partition of its exit.

**State across partitions.** The stateful rules (RSI mean reversion, ATR breakout) and the open
lots carry across midnight. As the features do, the step computes from the fixed origin
``partitions.start_date``: every feature and bar row from that day to the window's end, so a
value is the one a single computation over the whole history gives, whatever order the days
were built in (day-by-day equals one range run by construction). The lookback is therefore
every ``features_<interval>`` and ``bars_<interval>`` partition since the origin, each complete
itself (``lib.lookback``). A day whose lookback is not all there has **no rows** in either table
(a position computed from a shorter history would be wrong, and "no row" is also what warm-up
gives), records itself incomplete in ``lookback_status``, warns (``signals_lookback_complete``)
and is refreshed when the missing days land. Completeness is monotone in the day (a missing day
makes every later day incomplete), so every stored round trip lies wholly in complete days.

The rules' input columns per signal go to the ``signal_catalogue`` table (replaced on each run
with the catalogue in force), which the ``signals_valid`` check reads.
"""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from quant_assets.config import Settings
from quant_assets.lib.lookback import (
    Lookback,
    complete_days,
    lookback_status,
    record_status,
    status_figures,
)
from quant_assets.lib.partitioned import AssetOutput, TableWrite, WindowStep, daily_multi_asset
from quant_assets.quant.calendar import day_start
from quant_assets.quant.signal_catalogue import SignalCatalogue, load_signal_catalogue
from quant_assets.quant.signals import long_signals
from quant_assets.quant.trades import TRADE_SCHEMA, round_trips
from quant_assets.resources.tables import ident, query_frame, table_exists

_BAR_COLUMNS = ("open", "high", "low")


def signal_catalogue(settings: Settings) -> SignalCatalogue:
    """The signal catalogue the settings select."""
    return load_signal_catalogue(settings.signals.catalogue or None)


def signal_lookbacks(settings: Settings) -> list[Lookback]:
    """Every features and bars partition since the origin, each complete itself."""
    interval = settings.features.interval
    return [Lookback(f"features_{interval}", None, complete=True), Lookback(f"bars_{interval}", None, complete=True)]


def read_history(conn: duckdb.DuckDBPyConnection, settings: Settings, catalogue: SignalCatalogue,
                 end: Any) -> pl.DataFrame:
    """Each symbol's feature rows from the origin to ``end`` (exclusive) with the bar's open, high
    and low: the columns the catalogue's rules read, sorted by (symbol, ts)."""
    interval = settings.features.interval
    features, bars = f"features_{interval}", f"bars_{interval}"
    columns = ["close", *(c for c in catalogue.features if c != "close")]
    if not (table_exists(conn, features) and table_exists(conn, bars)):
        schema = {"symbol": pl.Utf8, "ts": pl.Datetime("us"), **dict.fromkeys([*columns, *_BAR_COLUMNS], pl.Float64)}
        return pl.DataFrame(schema=schema)
    return query_frame(conn,
        f"SELECT f.symbol, f.ts, {', '.join('f.' + ident(c) for c in columns)}, "
        f"{', '.join('b.' + ident(c) for c in _BAR_COLUMNS)} "
        f"FROM {ident(features)} AS f JOIN {ident(bars)} AS b USING (symbol, ts) "
        "WHERE f.ts >= ? AND f.ts < ? AND list_contains(?, f.symbol) ORDER BY f.symbol, f.ts",
        [day_start(settings.start_date), end, list(settings.symbols)],
    )


def _in_days(column: str, days: set[str]) -> pl.Expr:
    return pl.col(column).dt.date().cast(pl.Utf8).is_in(sorted(days))


def _write_catalogue(conn: duckdb.DuckDBPyConnection, catalogue: SignalCatalogue) -> None:
    """Replace the ``signal_catalogue`` table: one row per signal with its rule, parameters and inputs."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS signal_catalogue (signal_name VARCHAR PRIMARY KEY, rule VARCHAR NOT NULL, "
        "params VARCHAR NOT NULL, inputs VARCHAR[] NOT NULL, catalogue_hash VARCHAR NOT NULL)"
    )
    conn.execute("DELETE FROM signal_catalogue")
    digest = catalogue.fingerprint()
    conn.executemany(
        "INSERT INTO signal_catalogue VALUES (?, ?, ?, ?, ?)",
        [[s.name, s.rule, json.dumps(s.kwargs, sort_keys=True), list(s.features), digest] for s in catalogue.signals],
    )


def _daily_counts(frame: pl.DataFrame, time_column: str, prefix: str) -> dict[str, dict[str, int]]:
    counts = frame.group_by(pl.col(time_column).dt.date().alias("day"), "signal_name").len()
    return {
        str(day): {f"{prefix}{name}": n for name, n in zip(group["signal_name"], group["len"], strict=True)}
        for (day,), group in counts.group_by("day")
    }


def _merge(*parts: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for day, figures in part.items():
            out.setdefault(day, {}).update(figures)
    return out


def build_signals(settings: Settings) -> dg.AssetsDefinition:
    interval = settings.features.interval
    catalogue = signal_catalogue(settings)
    digest = catalogue.fingerprint()
    lookbacks = signal_lookbacks(settings)
    deps = [lb.dep() for lb in lookbacks]
    params = {"catalogue": digest, "interval": interval}
    listed = ", ".join(f"{s.name} ({s.rule})" for s in catalogue.signals)
    state = (
        f"Computed from the fixed origin {settings.start_date.isoformat()} (partitions.start_date) over the whole "
        "history, so positions carry across midnight and any build order gives the same rows; a day built while "
        "an earlier features or bars day is missing or incomplete has no rows, is recorded incomplete "
        "(lookback_status, metadata, a WARN check) and is refreshed when the day lands."
    )
    metadata = {"catalogue": catalogue.source, "catalogue_hash": digest,
                "signals": dg.MetadataValue.json(catalogue.as_dict()["signals"])}

    @daily_multi_asset(
        settings,
        name="signals_and_trades",
        specs=[
            dg.AssetSpec(
                "signals",
                group_name="signals",
                description=(
                    f"Target positions in [-1, 1] per (signal, symbol, {interval} bar) from the signal catalogue: "
                    f"{listed}. A value at bar ts is known at that bar's close and is traded from the next bar; "
                    f"none before a rule's inputs exist (warm-up). {state}"
                ),
                deps=deps, kinds={"python", "polars", "duckdb"}, code_version=digest[:16], metadata=metadata,
            ),
            dg.AssetSpec(
                "signal_trades",
                group_name="signals",
                description=(
                    "Every closed round trip of every signal per symbol, matched FIFO (a fractional position: an "
                    "increase opens a lot, a decrease closes the oldest lots first, a sign flip closes all): "
                    "side, quantity, entry and exit at the open of the bar after the deciding bar, bars held, "
                    "return = side * (exit / entry - 1) before costs, and the hash of the rule's inputs on the "
                    f"entry's decision bar. A round trip belongs to the day of its exit; open lots are not rows. {state}"
                ),
                deps=deps, kinds={"python", "numpy", "duckdb"}, code_version=digest[:16], metadata=metadata,
            ),
        ],
    )
    def signals_and_trades(step: WindowStep) -> dict[str, AssetOutput]:
        conn, (start, end) = step.conn, step.window
        status = lookback_status(conn, lookbacks, step.window, settings.start_date)
        complete = complete_days(status)
        history = read_history(conn, settings, catalogue, end)
        positions = catalogue.positions(history)
        in_window = (pl.col("ts") >= start) & (pl.col("ts") < end)
        signals = long_signals(history, positions).filter(in_window & _in_days("ts", complete))
        trades = pl.concat([
            round_trips(history.with_columns(positions[s.name].alias("__target")), s.name, s.rule, s.columns,
                        position="__target", exit_since=start)
            for s in catalogue.signals
        ], how="vertical") if catalogue.signals else pl.DataFrame(schema=TRADE_SCHEMA)
        trades = trades.filter((pl.col("exit_ts") < end) & _in_days("exit_ts", complete))
        figures = status_figures(status)
        trade_days = trades.group_by(pl.col("exit_ts").dt.date().alias("day")).agg(
            pl.len().alias("round_trips"), pl.col("return").mean().alias("mean_return"))
        trade_figures = {str(d): {"round_trips": n, "mean_return": r} for d, n, r in trade_days.iter_rows()}
        summary = {"history_rows_read": history.height, "days_lookback_incomplete": len(status) - len(complete)}
        return {
            "signals": AssetOutput(
                [TableWrite("signals", signals.select("symbol", "ts", "signal_name", "value"), params=params)],
                daily=_merge(_daily_counts(signals, "ts", "rows_"), figures), summary=summary,
                also=[lambda c: _write_catalogue(c, catalogue),
                      lambda c: record_status(c, "signals", lookbacks, status)],
            ),
            "signal_trades": AssetOutput(
                [TableWrite("signal_trades", trades, params=params, time_column="exit_ts")],
                daily=_merge(trade_figures, _daily_counts(trades, "exit_ts", "round_trips_"), figures),
                summary=summary,
                also=[lambda c: _write_catalogue(c, catalogue),
                      lambda c: record_status(c, "signal_trades", lookbacks, status)],
            ),
        }

    return signals_and_trades

"""Round trips of target positions, matched first-in first-out (pure numpy/polars).

Execution convention (vectorbt's next-bar-open): the target decided at the close of bar ``t``
(a signal's value at ``ts = t``) is executed at the **open of the next bar** of the symbol
(the next row; a missing bar is skipped, not waited for). The position *held* during bar ``i`` is
therefore the target of bar ``i - 1`` (flat before the first bar); a bar without a target (warm-up,
null) counts as flat. A target decided on the last bar known has no execution yet.

FIFO matching, the position being any fraction in [-1, 1]: an increase of ``|position|`` on the
same side opens a lot of the increase; a decrease closes the oldest lots first (the last one
partially if needed); a change of sign closes every lot and opens one lot of the new position.
Each closed lot (or part of one) is a round trip: ``side`` (+1 long, -1 short), ``quantity`` (the
fraction of capital closed, in (0, 1]), ``entry_ts``/``entry_price`` (the open of the bar the lot
was opened on), ``exit_ts``/``exit_price`` (the open of the bar it was closed on), ``bars_held``
(bars of the symbol from entry to exit, >= 1) and ``return = side * (exit_price / entry_price - 1)``
(a simple return before costs). Lots still open are not round trips.

``entry_feature_hash`` fingerprints what the entry was decided on: the first 16 hex digits of
SHA-256 over the UTF-8 text of the rule's input columns on the decision bar (the bar before the
entry), one ``<column>=<value>`` line per column in name order joined by ``\\n``, the value being
Python's ``repr`` of the float64 (the shortest text that reads back to the same double) or
``null`` (:func:`feature_hash`).
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

__all__ = ["TRADE_SCHEMA", "EPS", "feature_hash", "fifo_round_trips", "round_trips"]

EPS = 1e-12  # position changes and lot remainders smaller than this are rounding, not trades

TRADE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.Utf8(),
    "signal_name": pl.Utf8(),
    "rule": pl.Utf8(),
    "side": pl.Utf8(),
    "quantity": pl.Float64(),
    "entry_ts": pl.Datetime("us"),
    "entry_price": pl.Float64(),
    "exit_ts": pl.Datetime("us"),
    "exit_price": pl.Float64(),
    "bars_held": pl.Int64(),
    "return": pl.Float64(),
    "entry_feature_hash": pl.Utf8(),
}


def fifo_round_trips(held: Sequence[float] | np.ndarray) -> list[tuple[int, float, int, int]]:
    """FIFO lots of a held-position path: ``(side, quantity, entry_bar, exit_bar)`` per closed lot.

    ``held[i]`` is the position (a fraction in [-1, 1]) held during bar ``i``, entered at that
    bar's open; the position before bar 0 is flat. Changes below :data:`EPS` are ignored.
    Raises ``ValueError`` for a value outside [-1, 1] or not finite.
    """
    path = np.asarray(held, dtype=np.float64)
    if path.size and (not np.isfinite(path).all() or np.abs(path).max() > 1 + EPS):
        raise ValueError("positions must be finite fractions in [-1, 1]")
    lots: deque[list[float]] = deque()  # [quantity, entry_bar], oldest first; all of one side
    side, size = 0, 0.0
    out: list[tuple[int, float, int, int]] = []
    previous = np.concatenate([[0.0], path[:-1]])
    for i in np.flatnonzero(np.abs(path - previous) > EPS):
        target = float(path[i])
        new_side = int(np.sign(target)) if abs(target) > EPS else 0
        if side and new_side != side:  # flat or flipped: close everything
            out.extend((side, q, int(bar), int(i)) for q, bar in lots)
            lots.clear()
            side, size = 0, 0.0
        if new_side == 0:
            continue
        want = abs(target)
        if want > size + EPS:
            lots.append([want - size, float(i)])
        else:
            to_close = size - want
            while to_close > EPS and lots:
                lot = lots[0]
                closed = min(lot[0], to_close)
                out.append((new_side, closed, int(lot[1]), int(i)))
                lot[0] -= closed
                to_close -= closed
                if lot[0] <= EPS:
                    lots.popleft()
        side, size = new_side, want
    return out


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    return repr(float(value))


def feature_hash(values: Mapping[str, Any]) -> str:
    """First 16 hex of SHA-256 over ``<name>=<value>`` lines in name order (see the module)."""
    text = "\n".join(f"{name}={_text(values[name])}" for name in sorted(values))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def round_trips(
    frame: pl.DataFrame, signal_name: str, rule: str, columns: Sequence[str], position: str = "value",
    exit_since: datetime | None = None,
) -> pl.DataFrame:
    """Every closed FIFO round trip of one signal, per symbol (columns :data:`TRADE_SCHEMA`).

    ``frame``: one row per bar of each symbol, sorted by (symbol, ts), with ``open`` (the bar's
    open price), the target ``position`` decided at the bar's close (null = flat) and the rule's
    input ``columns`` (hashed at the decision bar). ``exit_since``: only round trips that exit at
    or after it (the matching still starts at the first bar). Sorted by (symbol, exit_ts, entry_ts).
    """
    rows: list[dict[str, Any]] = []
    for (symbol,), bars in frame.group_by("symbol", maintain_order=True):
        target = bars[position].fill_null(0.0).fill_nan(0.0).to_numpy()
        held = np.concatenate([[0.0], target[:-1]])
        ts, opens = bars["ts"].to_list(), bars["open"].to_numpy()
        trips = [t for t in fifo_round_trips(held) if exit_since is None or ts[t[3]] >= exit_since]
        if not trips:
            continue
        decided = bars[[entry - 1 for _, _, entry, _ in trips]].select(columns).to_dicts()
        for (side, quantity, entry, exit_), inputs in zip(trips, decided, strict=True):
            rows.append({
                "symbol": symbol, "signal_name": signal_name, "rule": rule,
                "side": "long" if side > 0 else "short", "quantity": quantity,
                "entry_ts": ts[entry], "entry_price": float(opens[entry]),
                "exit_ts": ts[exit_], "exit_price": float(opens[exit_]), "bars_held": exit_ - entry,
                "return": side * (float(opens[exit_]) / float(opens[entry]) - 1.0),
                "entry_feature_hash": feature_hash(inputs),
            })
    out = pl.DataFrame(rows, schema=TRADE_SCHEMA)
    return out.sort("symbol", "exit_ts", "entry_ts")

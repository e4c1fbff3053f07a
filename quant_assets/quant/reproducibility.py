"""Whether a stored result is reproduced: its inputs unchanged, its numbers recomputed equal.

Two questions, in order:

1. **Inputs.** A manifest records the content hash of every input partition a fold read. Each is
   hashed again now; the first one (in table, then day order) whose hash differs is named.
2. **Outputs.** The fold is recomputed from the stored inputs and compared value by value with
   what is stored; the largest absolute difference and the first key past ``tolerance`` are named.

Statuses: ``MATCH`` (inputs equal, outputs within tolerance), ``MISMATCH``, ``SKIPPED`` (mode
``trust``), ``NO_RESULT`` (nothing stored to reproduce).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

MODES = ("strict", "warn", "trust")
MATCH, MISMATCH, SKIPPED, NO_RESULT = "MATCH", "MISMATCH", "SKIPPED", "NO_RESULT"


@dataclass(frozen=True)
class Verification:
    status: str
    max_abs_diff: float | None = None
    first_mismatch: str | None = None


def first_changed_input(recorded: Mapping[str, Mapping[str, str]], current: Mapping[str, Mapping[str, str]]
                        ) -> str | None:
    """``"<table> <day> (sha256 <recorded[:12]> -> <current[:12]>)"`` for the first recorded input
    partition whose hash differs now (a vanished partition hashes as missing), else ``None``."""
    for table in sorted(recorded):
        for day in sorted(recorded[table]):
            was, now = recorded[table][day], current.get(table, {}).get(day)
            if was != now:
                return f"{table} {day} (sha256 {was[:12]} -> {(now or 'missing')[:12]})"
    return None


def compare_values(stored: pl.DataFrame, recomputed: pl.DataFrame, keys: Sequence[str],
                   columns: Sequence[str], tolerance: float) -> tuple[float, str | None]:
    """Largest absolute difference over ``columns`` joined on ``keys``, and the first key (in key
    order) where a value differs by more than ``tolerance``, a row exists on one side only, or a
    non-numeric value differs. NULL equals NULL."""
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance}")
    joined = stored.select(*keys, *columns).join(
        recomputed.select(*keys, *columns), on=list(keys), how="full", suffix="_new", coalesce=True,
        nulls_equal=True).sort(list(keys))
    largest, first = 0.0, None
    for row in joined.iter_rows(named=True):
        for column in columns:
            a, b = row[column], row[f"{column}_new"]
            if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
                diff = abs(float(a) - float(b))
                differs = diff > tolerance or (math.isnan(diff) and not (math.isnan(a) and math.isnan(b)))
                largest = max(largest, diff) if math.isfinite(diff) else largest
            else:
                differs = a != b
            if differs and first is None:
                first = f"{column} at " + ", ".join(f"{k}={row[k]}" for k in keys) + f": stored {a}, recomputed {b}"
    return largest, first


def verify(changed_input: str | None, max_abs_diff: float, first_mismatch: str | None) -> Verification:
    """The verdict: a changed input or a differing output is a mismatch; the input is named first,
    then the first differing output value."""
    if changed_input is not None:
        output = f"; {first_mismatch}" if first_mismatch else "; the outputs recompute equal"
        return Verification(MISMATCH, max_abs_diff, f"input changed: {changed_input}{output}")
    if first_mismatch is not None:
        return Verification(MISMATCH, max_abs_diff, first_mismatch)
    return Verification(MATCH, max_abs_diff, None)

"""Asset metadata that tells the truth after a single-run range.

Dagster copies the metadata a range run returns to every partition of the range. So a figure
that belongs to one day is attached to that day's partition only
(``context.add_asset_metadata(..., partition_key=day)``), numeric so the UI's Plots tab draws it
across partitions; what the run returns is about the run and says so: its window, a table of
the per-day figures, previews and pictures. In a one-day run the run *is* the partition, so its
summary figures stay plain numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import polars as pl

from quant_assets.quant.calendar import Window
from quant_assets.resources.tables import preview_markdown

Figures = Mapping[str, float | int | str | None]


def record_window_metadata(
    context: dg.AssetExecutionContext,
    asset: str,
    window: Window,
    hashes: Mapping[str, tuple[int, str]],
    daily: Mapping[str, Figures] | None = None,
    summary: Figures | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Attach each day's figures to its partition; return the metadata every partition shares.

    ``hashes`` (``{day: (rows, sha256)}``, from ``record_partition_hashes``) gives every day its
    own ``dagster/row_count`` and ``content_hash``; ``daily`` adds further per-day figures.
    ``summary`` holds figures of the whole run: plain values in a one-day run, a table headed
    with the window in a range run. ``extra`` (previews, pictures, descriptions) must not hold
    numbers that a reader could take for one day's.

    In a range run every partition gets ``run_window`` and the plain ``extra`` values (short
    descriptions), and the views of the whole run (the ``per_day`` table, ``run_summary`` and
    the markdown ``extra``: previews, tables, pictures) go on the window's last day only, named
    by ``run_views_on``: they describe the run, not a day, and copying them into each of a
    year's 365 events cost more than the events themselves.
    """
    daily = daily or {}
    last = window.keys()[-1] if window.n_days > 1 else None
    views: dict[str, Any] = {}
    if last is not None:
        views["per_day"] = dg.MetadataValue.md(per_day_table(hashes, daily))
        if summary:
            lines = [f"**Whole run, {window.label()}**", "", "| figure | value |", "|---|---|"]
            lines += [f"| {k} | {_cell(v)} |" for k, v in summary.items()]
            views["run_summary"] = dg.MetadataValue.md("\n".join(lines))
        views.update({k: v for k, v in (extra or {}).items() if isinstance(v, dg.MarkdownMetadataValue)})
    for key, (rows, digest) in hashes.items():
        figures = {"dagster/row_count": rows, "content_hash": digest}
        figures.update({k: v for k, v in (daily.get(key) or {}).items() if v is not None})
        if key == last:
            figures.update(views)
        context.add_asset_metadata(figures, asset_key=asset, partition_key=key)
    meta: dict[str, Any] = {"run_window": window.label()}
    if last is None:
        meta.update({k: v for k, v in (summary or {}).items() if v is not None})
    else:
        meta["run_views_on"] = last
    meta.update({k: v for k, v in (extra or {}).items() if k not in views})
    return meta


def per_day_table(hashes: Mapping[str, tuple[int, str]], daily: Mapping[str, Figures], limit: int = 400) -> str:
    """Markdown: one row per day with its row count and figures (newest last)."""
    names = sorted({name for figures in daily.values() for name in figures})
    lines = ["| day | rows | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    keys = sorted(hashes)
    for key in keys[-limit:]:
        figures = daily.get(key) or {}
        lines.append(f"| {key} | {hashes[key][0]} | " + " | ".join(_cell(figures.get(n)) for n in names) + " |")
    if len(keys) > limit:
        lines.append(f"| … {len(keys) - limit} earlier days not shown | | " + "| " * len(names))
    return "\n".join(lines)


def preview(frame: pl.DataFrame, window: Window, rows: int = 10) -> dg.MetadataValue:
    """The last ``rows`` rows written, headed by the window they come from."""
    return dg.MetadataValue.md(f"Last {min(rows, frame.height)} rows of {window.label()}\n\n"
                               + preview_markdown(frame.tail(rows)))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)

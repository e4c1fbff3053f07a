"""Pictures for asset metadata: matplotlib figures as PNG images embedded in markdown.

The Dagster UI renders a markdown metadata value, and an inline ``data:image/png;base64`` image
in it is shown as a picture (the pattern of Dagster's own docs for charts in metadata).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from datetime import date

import matplotlib

matplotlib.use("Agg")  # no display: render to memory only

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def figure_markdown(figure: Figure, alt: str) -> str:
    """The figure as an inline PNG in markdown; the figure is closed afterwards."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"


def equity_drawdown_png(days: Sequence[date], equity: Sequence[float], drawdown: Sequence[float],
                        title: str) -> str:
    """Equity (growth of 1.0) above, drawdown (fraction below the running peak) below."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.2), sharex=True,
                                         gridspec_kw={"height_ratios": [2, 1]})
    top.plot(days, equity, color="#1f77b4", linewidth=1.4)
    top.axhline(1.0, color="#999999", linewidth=0.8, linestyle="--")
    top.set_ylabel("equity (start = 1.0)")
    top.set_title(title, fontsize=10)
    bottom.fill_between(days, [-d * 100 for d in drawdown], 0, color="#d62728", alpha=0.4, step="post")
    bottom.set_ylabel("drawdown (%)")
    bottom.set_xlabel("out-of-sample day (UTC)")
    figure.autofmt_xdate()
    return figure_markdown(figure, "equity and drawdown")


def daily_bars_png(days: Sequence[date], values: Sequence[float], title: str, ylabel: str,
                   reference: float | None = None) -> str:
    """One bar per day, with an optional reference line (e.g. a gate's threshold)."""
    figure, axis = plt.subplots(figsize=(8, 2.8))
    axis.bar(days, values, width=0.8, color="#2ca02c")
    if reference is not None:
        axis.axhline(reference, color="#d62728", linewidth=0.9, linestyle="--")
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    figure.autofmt_xdate()
    return figure_markdown(figure, title)


def daily_lines_png(days: Sequence[date], series: dict[str, Sequence[float]], title: str, ylabel: str) -> str:
    """One line per named series over days."""
    figure, axis = plt.subplots(figsize=(8, 2.8))
    for name, values in series.items():
        axis.plot(days, values, linewidth=1.2, label=name)
    axis.axhline(0.0, color="#999999", linewidth=0.8)
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    if len(series) > 1:
        axis.legend(fontsize=7, ncol=min(4, len(series)))
    figure.autofmt_xdate()
    return figure_markdown(figure, title)


def heatmap_png(labels: Sequence[str], matrix: Sequence[Sequence[float]], title: str,
                vmin: float = -1.0, vmax: float = 1.0) -> str:
    """A square matrix (e.g. correlations in [-1, 1]) as a diverging heat map, each cell written
    in it; NaN cells are left blank."""
    import numpy as np

    values = np.asarray(matrix, dtype=float)
    size = max(4.0, 0.45 * len(labels) + 1.5)
    figure, axis = plt.subplots(figsize=(size + 1.2, size))
    image = axis.imshow(np.ma.masked_invalid(values), cmap="RdBu_r", vmin=vmin, vmax=vmax)
    axis.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axis.set_yticks(range(len(labels)), labels, fontsize=7)
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            axis.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=5,
                      color="white" if abs(value) > 0.6 * max(abs(vmin), abs(vmax)) else "black")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    axis.set_title(title, fontsize=9)
    return figure_markdown(figure, title)


def bar_lines_png(times: Sequence[date], series: dict[str, Sequence[float]], title: str, ylabel: str) -> str:
    """One line per named series over bar timestamps (UTC), e.g. cumulative factor returns."""
    return daily_lines_png(times, series, title, ylabel)


def category_timeline_png(times: Sequence[date], rows: dict[str, Sequence[str | None]],
                          levels: dict[str, Sequence[str]], title: str) -> str:
    """One strip per named label series over bar timestamps: a coloured cell per bar and label
    (``levels[name]`` orders that strip's labels), white where the label is NULL."""
    palette = ["#2ca02c", "#bcbd22", "#d62728", "#1f77b4", "#9467bd", "#ff7f0e"]
    figure, axes = plt.subplots(len(rows), 1, figsize=(8, 0.9 + 0.6 * len(rows)), sharex=True, squeeze=False)
    for axis, (name, labels) in zip(axes[:, 0], rows.items(), strict=True):
        for index, level in enumerate(levels[name]):
            hits = [t for t, label in zip(times, labels, strict=True) if label == level]
            axis.scatter(hits, [0] * len(hits), marker="|", s=300, color=palette[index % len(palette)], label=level)
        axis.set_yticks([])
        axis.set_ylabel(name, rotation=0, ha="right", fontsize=8)
        axis.legend(fontsize=6, ncol=len(levels[name]), loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[0, 0].set_title(title, fontsize=10)
    figure.autofmt_xdate()
    return figure_markdown(figure, title)


def explained_variance_png(days: Sequence[date], ratios: dict[str, Sequence[float]], title: str) -> str:
    """Stacked bars per day: the explained-variance ratio of each principal component."""
    figure, axis = plt.subplots(figsize=(8, 2.8))
    bottom = [0.0] * len(days)
    for name, values in ratios.items():
        axis.bar(days, values, bottom=bottom, width=0.8, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_ylim(0, 1)
    axis.set_ylabel("explained variance ratio")
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=7, ncol=min(5, len(ratios)))
    figure.autofmt_xdate()
    return figure_markdown(figure, title)


def equity_comparison_png(times: Sequence[date], equity: dict[str, Sequence[float]], title: str) -> str:
    """Equity curves (growth of 1.0) of several paths above, each one's drawdown below."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for name, curve in equity.items():
        top.plot(times, curve, linewidth=1.2, label=name)
        peak, drawdown = 0.0, []
        for value in curve:
            peak = max(peak, value)
            drawdown.append(-(1 - value / peak) * 100 if peak > 0 else 0.0)
        bottom.plot(times, drawdown, linewidth=0.9)
    top.axhline(1.0, color="#999999", linewidth=0.8, linestyle="--")
    top.set_ylabel("equity (start = 1.0)")
    top.set_title(title, fontsize=10)
    top.legend(fontsize=7, ncol=2)
    bottom.set_ylabel("drawdown (%)")
    bottom.set_xlabel("out-of-sample bar (UTC)")
    figure.autofmt_xdate()
    return figure_markdown(figure, title)


def histogram_png(values: Sequence[float], title: str, xlabel: str, reference: float | None = None) -> str:
    """A histogram of ``values`` with an optional vertical reference line."""
    figure, axis = plt.subplots(figsize=(6, 2.8))
    axis.hist(values, bins=min(40, max(5, len(values) // 20)), color="#1f77b4", alpha=0.8)
    if reference is not None:
        axis.axvline(reference, color="#d62728", linewidth=1.0, linestyle="--")
    axis.set_xlabel(xlabel)
    axis.set_ylabel("splits")
    axis.set_title(title, fontsize=10)
    return figure_markdown(figure, title)

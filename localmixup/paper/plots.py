"""Plotting helpers shared by the chapters."""

from __future__ import annotations

from typing import Any


def plot_band(ax: Any, table: Any, label: str, *, color: Any = None, low: float | None = None,
              high: float | None = None) -> Any:
    """Draw ``table["mean"]`` against its index with the ``[low, high]`` band of
    :func:`localmixup.paper.table1.report.interval_table`, the band clipped to the axis range
    ``[low, high]`` (e.g. 0 and 100 for an error in %); no band where the interval is
    undefined (a single run). Returns the line."""
    line, = ax.plot(table.index, table["mean"], marker="o", label=label, color=color)
    if table["low"].notna().any():
        ax.fill_between(table.index, table["low"].clip(low, high), table["high"].clip(low, high),
                        alpha=0.2, color=line.get_color())
    return line

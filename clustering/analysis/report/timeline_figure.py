"""The "clusters over time" figure: a heatmap of posts per period for the largest clusters, the rest on one row.

Rendering only: the numbers come from :func:`clustering.analysis.posts.timeline.largest_over_time`. Like
:mod:`.plots`, it builds a :class:`matplotlib.figure.Figure` without ``pyplot``; turn it into PNG
bytes with :func:`clustering.analysis.report.plots.figure_to_png`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from clustering.analysis.posts.timeline import OverTime

__all__ = ["over_time_figure"]

NAME_CHARS = 40  # longer cluster names are cut so the rows keep their height
MAX_DATE_TICKS = 12


def _drawable(text: str) -> str:
    """``text`` without emoji and other pictographs (matplotlib's default font has none: they would draw as boxes)."""
    kept = "".join(c for c in unicodedata.normalize("NFC", text) if unicodedata.category(c) not in ("So", "Cf", "Mn"))
    return re.sub(r"\s*,(\s*,)+", ",", kept).strip(" ,")


def _row_label(cluster: int, names: Mapping[int, str | None]) -> str:
    name = _drawable(names.get(cluster) or "").replace("$", r"\$")  # "$" would start matplotlib mathtext
    name = name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"
    return f"{cluster}: {name}" if name else f"cluster {cluster}"


def over_time_figure(data: OverTime, *, names: Mapping[int, str | None] | None = None) -> Figure:
    """Heatmap of posts per period: one row per cluster shown (largest on top), "other clusters" last.

    Parameters
    ----------
    data : OverTime
        From :func:`clustering.analysis.posts.timeline.largest_over_time`.
    names : mapping of int to str, optional
        Cluster names for the row labels.

    Returns
    -------
    matplotlib.figure.Figure
        A figure that says "no dated posts" when there is nothing to draw.
    """
    names = names or {}
    rows = [*data.counts, data.other] if data.other.any() else list(data.counts)
    labels = [_row_label(int(c), names) for c in data.clusters] + (["other clusters"] if data.other.any() else [])
    height = 1.6 + 0.32 * max(len(rows), 1)
    figure = Figure(figsize=(10, height))
    ax = figure.subplots()
    if not rows or not len(data.starts):
        ax.text(0.5, 0.5, "no dated posts", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return figure
    matrix = np.asarray(rows, dtype=float)
    image = ax.imshow(matrix, aspect="auto", interpolation="nearest", cmap="viridis")
    ax.set_yticks(range(len(labels)), labels)
    step = max(1, int(np.ceil(len(data.starts) / MAX_DATE_TICKS)))
    ticks = np.arange(0, len(data.starts), step)
    ax.set_xticks(ticks, [str(data.starts[i]) for i in ticks], rotation=45, ha="right")
    ax.set_xlabel("week starting" if data.period == "week" else "day (UTC)")
    ax.set_title(f"Posts per {data.period}, largest clusters")
    figure.colorbar(image, ax=ax, label="posts", fraction=0.03, pad=0.01)
    figure.tight_layout()
    return figure

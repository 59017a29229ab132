"""Figures and thumbnail montages of an analysis: functions that return matplotlib figures or image bytes.

Nothing here touches storage or shows a window: the pipeline decides where bytes go (local folder or object store).
Matplotlib runs on the Agg backend through :class:`matplotlib.figure.Figure`, never ``pyplot``, so plotting works on
headless nodes and leaves no global figure state behind.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageOps

from clustering.analysis.cluster.select import SCORE_LABELS
from clustering.analysis.palette import BACKGROUND_RGB, NOISE_RGB, cluster_palette

__all__ = [
    "figure_to_png",
    "map_figure",
    "montage",
    "sweep_figure",
]

# Labels drawn at cluster centroids; beyond this many the smallest clusters go unlabelled so the map stays legible.
MAX_MAP_LABELS = 300


def figure_to_png(figure: Figure, *, dpi: int = 120) -> bytes:
    """Render ``figure`` with the Agg backend and return PNG bytes."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def map_figure(
    coords: np.ndarray,
    labels: np.ndarray,
    *,
    title: str = "",
    centroids: dict[int, tuple[float, float]] | None = None,
) -> Figure:
    """Scatter of the 2-D map on the explorer's dark ground: noise grey underneath, clusters in the palette the explorer
    and the montages use (:mod:`clustering.analysis.palette`), cluster numbers at centroids.

    Parameters
    ----------
    coords : numpy.ndarray
        (n, 2) map coordinates.
    labels : numpy.ndarray
        (n,) cluster labels, -1 for noise.
    title : str, default ""
        Figure title.
    centroids : dict, optional
        Where to print each cluster's number; default: the median of its points.
    """
    coords = np.asarray(coords, dtype=float).reshape(-1, 2)
    labels = np.asarray(labels)
    n = len(labels)
    figure = Figure(figsize=(11, 9))
    ax = figure.add_subplot()
    ax.set_facecolor(np.array(BACKGROUND_RGB) / 255)
    # Point size (points^2) shrinks with n so 40k points do not merge into one smear, but never below 2: tight clusters
    # of tiny points vanished behind their own numbers at 40k points.
    size = float(np.clip(8000 / max(n, 1), 2, 30))
    noise = labels < 0
    if noise.any():
        ax.scatter(
            *coords[noise].T,
            s=size,
            c=[np.array(NOISE_RGB) / 255],
            linewidths=0,
            alpha=0.6,
            rasterized=True,
            label="noise",
        )
    cluster_ids = np.unique(labels[~noise]) if (~noise).any() else np.array([], dtype=int)
    if len(cluster_ids):
        palette = cluster_palette(int(cluster_ids.max()) + 1) / 255
        ax.scatter(*coords[~noise].T, s=size, c=palette[labels[~noise]], linewidths=0, alpha=0.85, rasterized=True)
        sizes = {int(c): int((labels == c).sum()) for c in cluster_ids}
        labelled = sorted(sizes, key=lambda c: -sizes[c])[:MAX_MAP_LABELS]
        fontsize = 9 if len(labelled) <= 60 else 7 if len(labelled) <= 150 else 5
        for cluster in labelled:
            if centroids and cluster in centroids:
                x, y = centroids[cluster]
            else:
                x, y = np.median(coords[labels == cluster], axis=0)
            # The number sits on a chip of the cluster's own colour: tight clusters shrink to a few pixels on a large
            # map, and the chip keeps each one findable and its colour readable.
            colour = palette[cluster]
            dark = float(colour @ (0.299, 0.587, 0.114)) < 0.55
            ax.text(
                x,
                y,
                str(cluster),
                fontsize=fontsize,
                ha="center",
                va="center",
                weight="bold",
                color="white" if dark else "black",
                bbox={
                    "boxstyle": "round,pad=0.18",
                    "facecolor": colour,
                    "edgecolor": "black",
                    "linewidth": 0.6,
                    "alpha": 0.8,
                },
            )
    n_clusters = len(cluster_ids)
    noise_share = noise.mean() if n else 0.0
    subtitle = f"{n:,} points, {n_clusters:,} clusters, {noise_share:.1%} noise (grey); colours as in the explorer"
    if n_clusters > MAX_MAP_LABELS:
        subtitle += f"; numbers shown for the {MAX_MAP_LABELS} largest clusters"
    ax.set_title(f"{title}\n{subtitle}" if title else subtitle, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    if n == 0:
        ax.text(0.5, 0.5, "no points to map", transform=ax.transAxes, ha="center", va="center", fontsize=14)
    return figure


# (row key, panel title) of the sweep figure, in order; panels whose key the rows lack are left out.
SWEEP_PANELS = (
    ("clusters", "clusters"),
    ("noise_fraction", "noise fraction"),
    ("dbcv", "DBCV (relative validity)"),
    ("silhouette_reduced", "silhouette, clustering space"),
    ("silhouette_cosine", "silhouette, cosine on embeddings"),
    ("mean_persistence", "mean cluster persistence"),
)


def _value(row: dict, key: str) -> float:
    value = row.get(key)
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _padded(low: float, high: float, *, log: bool) -> tuple[float, float]:
    """Axis limits a little beyond ``low`` and ``high``, so that the end points' markers stay whole."""
    if log:
        return low / 1.12, high * 1.12
    pad = max(high - low, 1) * 0.04
    return low - pad, high + pad


def sweep_figure(rows: Sequence[dict], chosen: int | None = None, *, score: str | None = None) -> Figure:
    """Metric curves against ``min_cluster_size``, one line per ``min_samples`` and selection, the chosen one starred.

    Panels (those the rows hold): the selection rule's score first when ``score`` names it, then clusters, noise
    fraction, DBCV, the silhouettes in the clustering space and in cosine distance on the embeddings, mean persistence.

    Parameters
    ----------
    rows : sequence of dict
        Sweep rows with at least ``min_cluster_size``, ``min_samples`` and the metrics.
    chosen : int, optional
        Index in ``rows`` of the chosen setting.
    score : str, optional
        The rows' column the selection rule maximised (a key of :data:`SCORE_LABELS`).
    """
    present = {k for row in rows for k in row}
    panels = [(key, name) for key, name in SWEEP_PANELS if key in present and key != score]
    if score is not None and score in present:
        panels.insert(0, (score, f"the rule's score:\n{SCORE_LABELS.get(score, score)}"))
    panels = panels or list(SWEEP_PANELS[:3])
    columns = 2 if len(panels) <= 4 else 3
    nrows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(5.2 * columns, 3.6 * nrows), layout="constrained")
    axes = figure.subplots(nrows, columns, squeeze=False).ravel()
    # One line per min_samples and selection method; leaf settings equal to their EOM ones are not in the sweep.
    groups = sorted({(int(row["min_samples"]), row.get("selection") or "eom") for row in rows})
    sizes = [int(row["min_cluster_size"]) for row in rows]
    log_x = bool(sizes) and max(sizes) / max(min(sizes), 1) >= 8
    for ax, (key, name) in zip(axes, panels, strict=False):
        for index, (s, method) in enumerate(groups):
            subset = sorted(
                (int(r["min_cluster_size"]), _value(r, key))
                for r in rows
                if int(r["min_samples"]) == s and (r.get("selection") or "eom") == method
            )
            xs, ys = zip(*subset, strict=True) if subset else ((), ())
            # Distinct markers and shrinking widths keep identical curves (common across min_samples) all visible.
            style = {"marker": "os^Dv"[index % 5], "markersize": 5 - min(index, 3)}
            style["linestyle"] = "--" if method == "leaf" else "-"
            width = max(2.2 - 0.4 * index, 0.8)
            label = f"min_samples={s}" + (", leaf" if method == "leaf" else "")
            ax.plot(xs, ys, **style, linewidth=width, color=f"C{index % 10}", label=label, alpha=0.9)
        if chosen is not None and 0 <= chosen < len(rows):
            row = rows[chosen]
            ax.plot(
                int(row["min_cluster_size"]),
                _value(row, key),
                marker="*",
                markersize=16,
                color="crimson",
                markeredgecolor="black",
                linestyle="none",
                zorder=5,
                label="chosen",
            )
        if log_x:
            ax.set_xscale("log")
            # Plain numbers at 1-2-5 steps: the default minor labels (6x10^0, 2x10^1) overlap and read badly.
            ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        counts = [_value(r, key) for r in rows]
        counts = [c for c in counts if c > 0]
        if key == "clusters" and counts and max(counts) / min(counts) >= 20:
            ax.set_yscale("log")  # cluster counts span orders of magnitude over a wide grid
            ax.yaxis.set_major_formatter(ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        if sizes:  # one x range for every panel, including those scored for a few settings only
            ax.set_xlim(*_padded(min(sizes), max(sizes), log=log_x))
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("min_cluster_size")
        ax.grid(alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if rows:
        axes[0].legend(fontsize=8)
    else:
        axes[0].text(0.5, 0.5, "no settings were swept", transform=axes[0].transAxes, ha="center", va="center")
    return figure


def _placeholder(tile: int, text: str) -> Image.Image:
    image = Image.new("RGB", (tile, tile), (225, 225, 225))
    draw = ImageDraw.Draw(image)
    draw.text((6, tile // 2 - 6), text, fill=(90, 90, 90))
    return image


def montage(
    thumbnails: Sequence[bytes | None],
    *,
    captions: Sequence[str] | None = None,
    columns: int = 5,
    tile: int = 128,
    quality: int = 85,
    frame: tuple[int, int, int] = (255, 255, 255),
) -> bytes:
    """A grid of thumbnails as JPEG bytes; missing or undecodable thumbnails become labelled grey tiles.

    Parameters
    ----------
    thumbnails : sequence of bytes or None
        Encoded images (any format Pillow reads), in display order.
    captions : sequence of str, optional
        One short caption per tile, printed in its bottom-left corner (e.g. the membership probability).
    columns : int, default 5
        Tiles per row.
    tile : int, default 128
        Side of each square tile in pixels; thumbnails are letterboxed into it.
    quality : int, default 85
        JPEG quality of the montage.
    frame : tuple of int, default white
        RGB of the gaps between tiles: a cluster's montage is framed in the cluster's colour.
    """
    count = max(len(thumbnails), 1)
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    gap = 4
    sheet = Image.new("RGB", (columns * (tile + gap) + gap, rows * (tile + gap) + gap), tuple(frame))
    if not thumbnails:
        sheet.paste(_placeholder(tile, "no images"), (gap, gap))
    for index, blob in enumerate(thumbnails):
        image = None
        if blob:
            try:
                with Image.open(io.BytesIO(blob)) as source:
                    image = ImageOps.pad(source.convert("RGB"), (tile, tile), color=(245, 245, 245))
            except (OSError, ValueError):  # a corrupt thumbnail must not sink the report
                image = _placeholder(tile, "unreadable")
        if image is None:
            image = _placeholder(tile, "no thumbnail")
        if captions is not None and index < len(captions) and captions[index]:
            draw = ImageDraw.Draw(image)
            text = str(captions[index])[:24]
            box = draw.textbbox((3, tile - 14), text)
            draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
            draw.text((3, tile - 14), text, fill=(255, 255, 255))
        row, column = divmod(index, columns)
        sheet.paste(image, (gap + column * (tile + gap), gap + row * (tile + gap)))
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()

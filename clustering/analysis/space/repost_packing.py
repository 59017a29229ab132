"""Keep repost bursts beside the content they belong to on the 2-D map, instead of at its edges.

A burst of near-identical reposts is a tiny, extremely dense clump: UMAP's layout pushes such clumps away from
everything else (and lays out disconnected pieces of its graph apart from each other), so the map spends its area on
bursts flung to the edges and squeezes the real content into the middle. :func:`find_bursts` finds the bursts in the
original space's kNN graph (edges far shorter than ordinary neighbour distances) with an *anchor* each, the nearest
point outside the burst; :func:`pack` moves every burst of a finished map beside its anchor, keeping its shape.
:func:`content_share` measures the result: the area of the box holding the central 90 % of the points (on each
axis) as a share of the whole plot's box.

Once the bursts are home, what still stretches the view is UMAP's disc of well-separated groups: whole topics and
small clumps on its rim, with wide empty gaps between them. :func:`compress_outskirts` draws the outer half of the map
closer: every island of the map (points with no empty gap of ``ISLAND_SPACINGS`` spacings between them) moves as one
rigid piece along its ray from the centre, its radius beyond the median radius compressed logarithmically. Shapes,
directions and the order of distances from the centre are kept; UMAP's distances between far-apart groups carry no
meaning, so only empty space is lost.

Measured with ``python bench/quality.py --sets none --map N`` (see docs/performance.md). Starting small graph
components at their anchor instead of UMAP's one eigen-solve per component was tried for issue 13 and dropped: at
12,000 points with 200 isolated bursts it cost 0.6x of UMAP's own multi-component initialisation, not less.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Bursts compared at once when looking for anchors (bounds memory to this many x n scores: 51 MB at 200k points).
_ANCHOR_CHUNK = 64
# A repost burst: at least BURST_MIN_SIZE points linked by kNN edges shorter than BURST_RELATIVE_DISTANCE x the median
# core distance. Scale-free on purpose: EfficientNet features of clip-art put ordinary neighbours at cosine distance
# 0.01-0.06, synthetic CLIP-like ones at 0.3-0.5, while reposts sit 100x closer than ordinary neighbours in both.
# Smaller groups (pairs, triples) stay where UMAP puts them: it does not fling them.
BURST_MIN_SIZE = 5
BURST_RELATIVE_DISTANCE = 0.05
# Islands of the map for compress_outskirts: points closer than this many median nearest-neighbour spacings (one grid
# cell) belong together. 2, 4 and 8 gave the same content share within 0.01 on the bench's maps (40k synthetic,
# emoji, glyphs, art4apps, both synthetic sets); 4 keeps a clump whole where UMAP leaves gaps inside it.
ISLAND_SPACINGS = 4
# Cells per axis of the island grid at most (bounds its memory at 16 MB of labels); a wider map gets coarser cells.
_MAX_GRID = 2048


@dataclass(frozen=True)
class Bursts:
    """Groups of near-identical points (repost bursts) and the nearest other point of each.

    Attributes
    ----------
    labels : np.ndarray
        ``(n,)`` int32 burst id, -1 for points in no burst.
    anchors : np.ndarray
        ``(n_bursts,)`` int64 index of the nearest point outside each burst (-1 when there is none).
    """

    labels: np.ndarray
    anchors: np.ndarray

    @property
    def n_bursts(self) -> int:
        """Number of bursts."""
        return int(self.anchors.shape[0])


def find_bursts(
    X: np.ndarray,
    indices: np.ndarray,
    distances: np.ndarray,
    *,
    min_size: int = BURST_MIN_SIZE,
    relative_distance: float = BURST_RELATIVE_DISTANCE,
) -> Bursts:
    """Repost bursts: connected groups of kNN edges far shorter than ordinary neighbour distances.

    Parameters
    ----------
    X : np.ndarray
        ``(n, d)`` original vectors (anchors of bursts whose neighbour lists hold only each other).
    indices, distances : np.ndarray
        ``(n, k)`` kNN graph, self first.
    min_size : int, default BURST_MIN_SIZE
        Fewest points in a burst.
    relative_distance : float, default BURST_RELATIVE_DISTANCE
        An edge links two reposts when it is shorter than this share of the median core distance (last column).

    Returns
    -------
    Bursts
        Burst ids in order of each burst's first point; the anchor is the nearest listed neighbour outside the
        burst, or the point nearest the burst's mean direction when no member lists one.
    """
    import scipy.sparse
    import scipy.sparse.csgraph

    n, k = indices.shape
    threshold = relative_distance * float(np.median(distances[:, -1])) if n else 0.0
    rows = np.repeat(np.arange(n), k)
    near = (distances.ravel() <= threshold) & (indices.ravel() != rows)
    graph = scipy.sparse.coo_matrix((np.ones(near.sum()), (rows[near], indices.ravel()[near])), shape=(n, n))
    _, group = scipy.sparse.csgraph.connected_components(graph, directed=False)
    sizes = np.bincount(group)
    big = sizes >= min_size
    _, first = np.unique(group, return_index=True)
    order = np.argsort(first[big])
    ids = np.full(sizes.size, -1, dtype=np.int64)
    ids[np.flatnonzero(big)[order]] = np.arange(order.size)
    labels = ids[group].astype(np.int32)
    return Bursts(labels, _burst_anchors(X, indices, distances, labels))


def _nearest(X: np.ndarray, members: np.ndarray, group_of: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """For each group, the allowed point with the largest dot product with the group's mean vector.

    ``members`` are point indices, ``group_of`` their group ids ``0 .. g - 1``; ``allowed`` is an ``(n,)`` mask. The
    embeddings are unit rows, so this is the nearest point by cosine; X is never copied (memory at 200k points).
    """
    count = int(group_of.max()) + 1
    sums = np.zeros((count, X.shape[1]), dtype=np.float64)
    np.add.at(sums, group_of, X[members])
    found = np.empty(count, dtype=np.int64)
    for start in range(0, count, _ANCHOR_CHUNK):
        scores = sums[start : start + _ANCHOR_CHUNK].astype(X.dtype) @ X.T
        scores[:, ~allowed] = -np.inf
        found[start : start + scores.shape[0]] = np.argmax(scores, axis=1)
    return found


def _burst_anchors(X, indices, distances, labels) -> np.ndarray:
    """Nearest listed neighbour outside each burst; bursts whose members list only each other search all points."""
    count = int(labels.max()) + 1 if labels.size else 0
    anchors = np.full(count, -1, dtype=np.int64)
    members = np.flatnonzero(labels >= 0)
    if count == 0:
        return anchors
    neighbour_labels = labels[indices[members]]
    outside = neighbour_labels != labels[members][:, None]
    dist = np.where(outside, distances[members], np.inf)
    best_col = np.argmin(dist, axis=1)
    best_dist = dist[np.arange(members.size), best_col]
    # Per burst, the member whose best outside neighbour is nearest (ties: the earlier member).
    order = np.lexsort((best_dist, labels[members]))
    first = order[np.searchsorted(labels[members][order], np.arange(count))]
    has = np.isfinite(best_dist[first])
    anchors[has] = indices[members[first[has]], best_col[first[has]]]
    missing = np.flatnonzero(~has)
    allowed = labels < 0
    if missing.size and allowed.any():
        in_missing = np.isin(labels[members], missing)
        group_of = np.searchsorted(missing, labels[members][in_missing])
        anchors[missing] = _nearest(X, members[in_missing], group_of, allowed)
    return anchors


def pack(coords: np.ndarray, groups: np.ndarray, anchors: np.ndarray, *, gap: float = 0.5) -> np.ndarray:
    """Move every group of points of a finished layout next to its anchor, keeping its own shape.

    Parameters
    ----------
    coords : np.ndarray
        ``(n, dims)`` layout.
    groups : np.ndarray
        ``(n,)`` group id per point, -1 for points that stay (:attr:`Bursts.labels`).
    anchors : np.ndarray
        ``(n_groups,)`` index of the point each group moves beside; -1 leaves the group where it is.
    gap : float, default 0.5
        Offset from the anchor, away from the layout's centre, in units of the median nearest-neighbour spacing of
        the staying points x the square root of the group's size (a burst sits beside its theme, not on top of it).

    Returns
    -------
    np.ndarray
        A new ``(n, dims)`` float32 layout. A group spread wider than a burst-sized blob is shrunk to one.
    """
    out = np.array(coords, dtype=np.float32, copy=True)
    groups = np.asarray(groups)
    moving = np.flatnonzero(np.asarray(anchors) >= 0)
    staying = groups < 0
    if moving.size == 0 or staying.sum() < 2:
        return out
    centre = out[staying].mean(axis=0)
    step = _spacing(out[staying])
    order = np.argsort(groups, kind="stable")
    bounds = np.searchsorted(groups[order], np.arange(len(anchors) + 1))
    for g in moving:
        members = order[bounds[g] : bounds[g + 1]]
        if members.size == 0:
            continue
        anchor = out[anchors[g]]
        away = anchor - centre
        away = away / max(float(np.linalg.norm(away)), 1e-12)
        shape = out[members] - out[members].mean(axis=0)
        radius = float(np.linalg.norm(shape, axis=1).max())
        limit = step * max(2.0, np.sqrt(members.size))
        if radius > limit:
            shape *= limit / radius
        out[members] = anchor + away * gap * step * np.sqrt(members.size) + shape
    return out


def compress_outskirts(coords: np.ndarray, *, start: float = 0.5) -> np.ndarray:
    """Draw the map's outskirts closer: islands beyond the median radius move inwards, rigidly, along their ray.

    Parameters
    ----------
    coords : np.ndarray
        ``(n, 2)`` map (after :func:`pack`).
    start : float, default 0.5
        Quantile of the points' distances from the map's centre (the coordinate-wise median) below which nothing
        moves; beyond that radius ``s`` an island whose centroid lies at ``r`` moves to
        ``s + s * log(1 + (r - s) / s)``.

    Returns
    -------
    np.ndarray
        A new ``(n, 2)`` float32 map. Every island (see ``ISLAND_SPACINGS``) keeps its shape; the order of the
        islands' distances from the centre is kept.
    """
    if not 0.0 < start < 1.0:
        raise ValueError(f"start must be in (0, 1), got {start!r}")
    points = np.asarray(coords, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"coords must be an (n, 2) map, got shape {points.shape}")
    if points.shape[0] < 3:
        return points.astype(np.float32)
    island = _islands(points, ISLAND_SPACINGS * _spacing(points))
    count = np.bincount(island)
    centroid = np.stack([np.bincount(island, points[:, k]) for k in range(2)], axis=1) / count[:, None]
    centre = np.median(points, axis=0)
    radius = float(np.quantile(np.linalg.norm(points - centre, axis=1), start))
    if radius <= 0:
        return points.astype(np.float32)
    away = centroid - centre
    r = np.linalg.norm(away, axis=1)
    target = np.where(r > radius, radius + radius * np.log1p((r - radius) / radius), r)
    shift = away * (target / np.maximum(r, 1e-12) - 1.0)[:, None]
    return (points + shift[island]).astype(np.float32)


def _islands(points: np.ndarray, cell: float) -> np.ndarray:
    """Island id per point: points in touching occupied cells of a grid of ``cell``-sized squares (8-connected)."""
    import scipy.ndimage

    low = points.min(axis=0)
    cell = max(cell, float((points.max(axis=0) - low).max()) / (_MAX_GRID - 1), 1e-12)
    cells = np.floor((points - low) / cell).astype(np.int64)
    grid = np.zeros(cells.max(axis=0) + 1, dtype=bool)
    grid[cells[:, 0], cells[:, 1]] = True
    labelled, _ = scipy.ndimage.label(grid, structure=np.ones((3, 3), dtype=bool))
    _, island = np.unique(labelled[cells[:, 0], cells[:, 1]], return_inverse=True)
    return island


def _spacing(points: np.ndarray, sample: int = 2000) -> float:
    """Median distance to the nearest other point, on a fixed sample (a scale for offsets)."""
    from sklearn.neighbors import NearestNeighbors

    if points.shape[0] < 2:
        return 1.0
    take = points[:: max(1, points.shape[0] // sample)]
    dist, _ = NearestNeighbors(n_neighbors=2).fit(points).kneighbors(take)
    value = float(np.median(dist[:, 1]))
    return value if value > 0 else 1.0


def content_share(coords: np.ndarray, *, share: float = 0.9) -> float:
    """Area of the box holding the central ``share`` of the points, as a share of the box holding all of them.

    The central box runs from the ``(1 - share) / 2`` to the ``(1 + share) / 2`` quantile on each axis; the plot's
    box from the minimum to the maximum (what a plot autoscales to). 1.0 means content fills the view; a map whose
    bursts are flung to the edges scores near 0.

    Parameters
    ----------
    coords : np.ndarray
        ``(n, 2)`` map coordinates.
    share : float, default 0.9
        Share of the points in the central box, in (0, 1].

    Returns
    -------
    float
        In [0, 1]; nan with fewer than 2 points or a degenerate plot box.
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[0] < 2:
        return float("nan")
    low, high = (1.0 - share) / 2.0, (1.0 + share) / 2.0
    inner = np.quantile(coords, high, axis=0) - np.quantile(coords, low, axis=0)
    outer = coords.max(axis=0) - coords.min(axis=0)
    if np.any(outer <= 0):
        return float("nan")
    return float(np.prod(inner / outer))

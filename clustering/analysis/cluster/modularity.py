"""Modularity of a labelling on the original space's kNN graph, plain and with HDBSCAN's noise filled in.

:func:`knn_modularity` (and its two terms, :func:`modularity_terms`) scores a labelling on the kNN graph of the
original embeddings. It also scores a sweep setting by the clustering it implies for the points HDBSCAN left as noise:

On real image features HDBSCAN's noise in the UMAP space is mostly true cluster members (93-95 % of it on the bench's
real tuning sets; 27-29 % of the emoji set's members at the chosen setting), and how much of each cluster it cuts away
differs from setting to setting. Modularity computed on the clustered points only (:func:`knn_modularity`)
therefore rewards settings that shed their hard points as noise, and its landscape over ``min_cluster_size`` is flat
where it matters. :func:`filled_modularity` scores each setting on what it implies: every point HDBSCAN left as noise
takes the cluster most of its original-space neighbours are in (label propagation over the shared kNN graph, repeated
while it labels more points), then modularity is computed as before, at a resolution that leans towards fewer, larger
clusters (``RESOLUTION``). Points that HDBSCAN clustered but the original-space background test (:mod:`.noise`) called
background stay out: they are the diffuse images the collection really holds, and giving them a cluster again would
score the settings on their background.

The scoring never changes a setting's labels; only the selection uses it. O(n * k^2) per setting in chunks
(k = n_neighbors, 15 by default): 0.01 s per setting at 20,000 points, 0.26 s at 200,000 with 30 % noise.
"""

from __future__ import annotations

import math

import numpy as np

from clustering.analysis.defaults import RESOLUTION

# Label propagation stops after this many rounds even if it still reaches new points: in the bench's tuning sets
# (emoji, glyphs, art4apps, both synthetic sets; four UMAP layouts each) 2 rounds chose the same settings as 3 and 10,
# and 1 round chose worse ones on glyphs (0.86x the best setting instead of 1.00x).
MAX_ROUNDS = 10
# Noise points voted on at once: bounds the (chunk, k, k) comparison to 3 MB at k = 15.
_CHUNK = 16_384


def knn_modularity(labels: np.ndarray, neighbours: np.ndarray, *, resolution: float = 1.0) -> float:
    """Newman modularity of a labelling on the directed kNN graph, noise points and their edges left out.

    ``Q = sum_c (e_cc / m - resolution * out_c * in_c / m**2)`` over clusters ``c``, with ``m`` the edges between
    non-noise points, ``e_cc`` those inside ``c`` and ``out_c`` / ``in_c`` the edges leaving / entering ``c``'s
    points. Splitting a group that is densely linked in the original space lowers ``Q`` (its internal links become
    between-cluster links); merging two groups that are not lowers it too (the expected term grows). O(n * k).

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` cluster labels, -1 for noise.
    neighbours : np.ndarray
        ``(n, k)`` neighbour indices, column 0 the point itself (ignored).
    resolution : float, default 1.0
        Weight of the expected term: below 1 leans towards fewer, larger clusters.

    Returns
    -------
    float
        In [-0.5, 1] at resolution 1; nan with fewer than 2 clusters or no edge between non-noise points.
    """
    inside, expected = modularity_terms(labels, neighbours)
    return inside - resolution * expected


def modularity_terms(labels: np.ndarray, neighbours: np.ndarray) -> tuple[float, float]:
    """The two terms of :func:`knn_modularity`: ``Q = inside - resolution * expected``.

    ``inside`` is the share of the kNN edges between non-noise points that stay inside a cluster, ``expected`` the
    same share for random edges with the clusters' out- and in-degrees (``sum_c out_c * in_c / m**2``). Both nan
    where the modularity is (fewer than 2 clusters, no edge between non-noise points). Together they give a
    setting's modularity at every resolution at once (:mod:`.granularity`).
    """
    labels = np.asarray(labels)
    neighbours = np.asarray(neighbours)
    if neighbours.ndim != 2 or neighbours.shape[0] != labels.shape[0]:
        raise ValueError(f"neighbours must have shape (n={labels.shape[0]}, k), got {neighbours.shape}")
    n_clusters = int(labels.max()) + 1 if labels.size else 0
    if n_clusters < 2 or neighbours.shape[1] < 2:
        return math.nan, math.nan
    source = np.repeat(labels, neighbours.shape[1] - 1)
    target = labels[neighbours[:, 1:].ravel()]
    keep = (source >= 0) & (target >= 0)
    source, target = source[keep], target[keep]
    m = source.size
    if m == 0:
        return math.nan, math.nan
    out_degree = np.bincount(source, minlength=n_clusters).astype(np.float64)
    in_degree = np.bincount(target, minlength=n_clusters).astype(np.float64)
    return float(np.count_nonzero(source == target) / m), float((out_degree @ in_degree) / m**2)


def propagate_labels(labels: np.ndarray, neighbours: np.ndarray, *, fill: np.ndarray) -> np.ndarray:
    """Labels where every noise point of ``fill`` takes the cluster most of its listed neighbours are in.

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` cluster labels, -1 for noise.
    neighbours : np.ndarray
        ``(n, k)`` kNN indices in the original space, column 0 the point itself (``Reduction.knn.indices``).
    fill : np.ndarray
        ``(n,)`` bool: the noise points that may take a cluster; other noise points stay noise and never vote.

    Returns
    -------
    np.ndarray
        ``(n,)`` int64 labels. Each round, every remaining point of ``fill`` takes the most common cluster among its
        neighbours' labels at the start of the round (ties: the one of the nearer neighbour); a point whose
        neighbours are all noise waits for the next round. At most :data:`MAX_ROUNDS` rounds.
    """
    labels = np.asarray(labels)
    neighbours = np.asarray(neighbours)
    fill = np.asarray(fill, dtype=bool)
    n = labels.shape[0]
    if labels.ndim != 1 or fill.shape != labels.shape:
        raise ValueError(f"labels and fill must be (n,) arrays of one length, got {labels.shape} and {fill.shape}")
    if neighbours.ndim != 2 or neighbours.shape[0] != n:
        raise ValueError(f"neighbours must have shape (n={n}, k), got {neighbours.shape}")
    out = labels.astype(np.int64, copy=True)
    waiting = np.flatnonzero(fill & (out < 0))
    for _ in range(MAX_ROUNDS):
        if waiting.size == 0:
            break
        votes = np.concatenate(
            [_majority(out[neighbours[waiting[s : s + _CHUNK], 1:]]) for s in range(0, waiting.size, _CHUNK)]
        )
        found = votes >= 0
        if not found.any():
            break
        out[waiting[found]] = votes[found]
        waiting = waiting[~found]
    return out


def _majority(voters: np.ndarray) -> np.ndarray:
    """Most common non-negative label per row (ties: the earliest column, i.e. the nearer neighbour); -1 if none."""
    if voters.shape[1] == 0:
        return np.full(voters.shape[0], -1, dtype=np.int64)
    counts = (voters[:, :, None] == voters[:, None, :]).sum(axis=2)
    counts[voters < 0] = 0
    best = counts.argmax(axis=1)
    rows = np.arange(voters.shape[0])
    return np.where(counts[rows, best] > 0, voters[rows, best], -1)


def filled_modularity(
    labels: np.ndarray, neighbours: np.ndarray, *, hdbscan_labels: np.ndarray, resolution: float = RESOLUTION
) -> float:
    """kNN-graph modularity of a setting once HDBSCAN's noise has taken its neighbours' clusters.

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` the setting's final labels (after the background test), -1 for noise.
    neighbours : np.ndarray
        ``(n, k)`` kNN indices in the original space, column 0 the point itself.
    hdbscan_labels : np.ndarray
        ``(n,)`` the same setting's labels as HDBSCAN gave them, before the background test: its noise is what
        :func:`propagate_labels` fills; points it clustered that ``labels`` calls noise (background) stay out.
    resolution : float, default RESOLUTION
        Weight of the expected term (> 0); 1 gives :func:`knn_modularity` of the filled
        labels, less favours fewer, larger clusters.

    Returns
    -------
    float
        ``sum_c (e_cc / m - resolution * out_c * in_c / m**2)`` over the directed kNN edges between clustered points
        of the filled labels; nan with fewer than 2 clusters or no such edge.
    """
    if not resolution > 0:
        raise ValueError(f"resolution must be > 0, got {resolution!r}")
    inside, expected = filled_terms(labels, neighbours, hdbscan_labels=hdbscan_labels)
    return inside - resolution * expected


def filled_terms(labels: np.ndarray, neighbours: np.ndarray, *, hdbscan_labels: np.ndarray) -> tuple[float, float]:
    """:func:`modularity_terms` of the filled labels (see :func:`filled_modularity`):
    ``filled_modularity = inside - resolution * expected`` at every resolution."""
    filled = propagate_labels(labels, neighbours, fill=np.asarray(hdbscan_labels) < 0)
    return modularity_terms(filled, np.asarray(neighbours))

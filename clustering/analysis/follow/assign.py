"""New images placed into the clusters of an earlier analysis: a vote of their nearest neighbours in the original
embedding space, with a fit test against the cluster's own spread.

The rule (validated in ``tests/test_follow_update.py`` and ``bench/update.py``): among a new image's ``k`` nearest
images (earlier and new alike, exact cosine), a cluster that holds more than half of them takes it, when the image is
at least as close to the cluster's centroid as the cluster's own members are (its 1st percentile of member-to-centroid
similarity). When other new images are the largest group among its neighbours, it is *unplaced*: the update clusters
those among themselves, which is how a topic that is new in the collection becomes a new cluster. Anything else (noise
holds the majority, the vote is split between clusters, or the image sits outside the winner's spread) is noise, as a
full analysis would leave it. Pure numpy, no I/O.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from clustering.analysis.space.exact_knn import query_neighbours

# A member's similarity to its centroid below this quantile of the cluster's members is "outside the cluster".
FIT_QUANTILE = 0.01

UNPLACED = -2


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where the new images go.

    Attributes
    ----------
    labels : numpy.ndarray
        ``(m,)`` int32: a cluster, -1 (noise by the vote) or :data:`UNPLACED`.
    share : numpy.ndarray
        ``(m,)`` float32: the share of the ``k`` neighbours that voted for the outcome (the probability column).
    neighbours, similarities : numpy.ndarray
        ``(m, k)`` nearest images (indices into the reference, the new images after the earlier ones) and cosines.
    """

    labels: np.ndarray
    share: np.ndarray
    neighbours: np.ndarray
    similarities: np.ndarray


@dataclasses.dataclass(frozen=True)
class ClusterShape:
    """What the vote's fit test and :func:`unify` need of a labelling, computed once.

    Attributes
    ----------
    centroids : numpy.ndarray
        ``(k, d)`` unit centroids.
    thresholds : numpy.ndarray
        ``(k,)`` the :data:`FIT_QUANTILE` of each cluster's member-to-centroid similarity.
    cohesion : float
        The median over clusters of their members' mean similarity to the centroid: how alike one cluster's images are
        in this collection (nan without a cluster).
    """

    centroids: np.ndarray
    thresholds: np.ndarray
    cohesion: float


def cluster_shape(X: np.ndarray, labels: np.ndarray) -> ClusterShape:
    """The centroids, fit thresholds and typical cohesion of the clusters of ``labels`` (-1 noise) over ``X``."""
    member = np.flatnonzero(labels >= 0)
    k = int(labels.max()) + 1 if len(member) else 0
    onehot = sp.csr_matrix((np.ones(len(member), np.float32), (labels[member], member)), shape=(k, len(X)))
    sums = np.asarray(onehot @ X, dtype=np.float64)
    centroids = (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    similarity = np.einsum("nd,nd->n", X[member], centroids[labels[member]])
    order = np.argsort(labels[member], kind="stable")
    groups = np.split(similarity[order], np.cumsum(np.bincount(labels[member], minlength=k))[:-1]) if k else []
    thresholds = np.array([np.quantile(g, FIT_QUANTILE) if len(g) else np.inf for g in groups], dtype=np.float32)
    means = [float(g.mean()) for g in groups if len(g)]
    return ClusterShape(centroids, thresholds, float(np.median(means)) if means else float("nan"))


def place(new: np.ndarray, old: np.ndarray, shape: ClusterShape, old_labels: np.ndarray, *, k: int, threads: int = 1):
    """Place the unit rows ``new`` among ``old`` (unit rows labelled ``old_labels``, -1 noise, of shape ``shape``)."""
    reference = np.concatenate([old, new]) if len(new) else old
    k = min(k, len(reference) - 1)
    if k < 1 or not len(new):
        empty = np.zeros((len(new), max(k, 0)), np.int32)
        return Placement(np.full(len(new), UNPLACED, np.int32), np.zeros(len(new), np.float32), empty,
                         empty.astype(np.float32))  # fmt: skip
    neighbours, similarities = query_neighbours(new, reference, k + 1, threads=threads)
    keep = neighbours != np.arange(len(old), len(old) + len(new))[:, None]  # each new image is its own nearest
    positions = np.stack([np.flatnonzero(row)[:k] for row in keep])
    neighbours = np.take_along_axis(neighbours, positions, axis=1)
    similarities = np.take_along_axis(similarities, positions, axis=1)
    voter = np.where(neighbours < len(old), old_labels[np.minimum(neighbours, len(old) - 1)], UNPLACED)
    winner, count = plurality(voter, low=UNPLACED)
    majority = count * 2 > k
    fits = np.einsum("md,md->m", new, shape.centroids[np.maximum(winner, 0)]) >= shape.thresholds[np.maximum(winner, 0)]
    placed = majority & (winner >= 0) & fits
    labels = np.where(winner == UNPLACED, UNPLACED, np.where(placed, winner, -1)).astype(np.int32)
    share = np.where(placed | (majority & (winner == -1)), count / k, 0.0).astype(np.float32)
    return Placement(labels, share, neighbours, similarities)


def plurality(votes: np.ndarray, *, low: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``votes``, the most frequent label of those ``>= low`` (ties: the smallest) and its count; labels
    below ``low`` are not counted, and a row with none gets ``low`` and 0."""
    counted = votes >= low
    width = int(votes.max(initial=low)) - low + 1
    rows = np.broadcast_to(np.arange(len(votes))[:, None], votes.shape)[counted]
    keys = rows * width + (votes[counted].astype(np.int64) - low)
    counts = np.bincount(keys, minlength=len(votes) * width).reshape(len(votes), width)
    best = np.argmax(counts, axis=1)
    return (best + low).astype(np.int32), counts[np.arange(len(votes)), best]


def unify(X: np.ndarray, labels: np.ndarray, cohesion: float) -> np.ndarray:
    """New clusters judged as the collection's own clusters are: two whose centroids are closer than a typical
    cluster's members are to its centroid (``cohesion``) are one (a small sample of one topic often comes out of UMAP
    and HDBSCAN in pieces); then each image left as noise joins the cluster it fits, if any."""
    labels = labels.copy()
    if not (labels >= 0).any() or not np.isfinite(cohesion):
        return labels
    centroids = cluster_shape(X, labels).centroids
    close = sp.csr_matrix(np.triu(centroids @ centroids.T >= cohesion, 1))
    _, component = connected_components(close, directed=False)  # numbered by their smallest cluster
    labels = np.where(labels >= 0, component[np.maximum(labels, 0)], -1)
    shape = cluster_shape(X, labels)
    noise = np.flatnonzero(labels < 0)
    if len(noise):
        similarity = X[noise] @ shape.centroids.T
        best = np.argmax(similarity, axis=1)
        fits = similarity[np.arange(len(noise)), best] >= shape.thresholds[best]
        labels[noise[fits]] = best[fits]
    return labels.astype(np.int32)

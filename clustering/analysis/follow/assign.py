"""New images placed into the clusters of an earlier analysis: a vote of their nearest neighbours in the original
embedding space, with a fit test against the cluster's own spread.

The rule (validated in ``tests/test_follow_update.py`` and ``bench/update.py``): among a new image's ``k`` nearest
images (earlier and new alike, cosine), a cluster that holds more than half of them takes it, when the image is at
least as close to the cluster's centroid as the cluster's own members are (its 1st percentile of member-to-centroid
similarity). Noise holding more than half makes it noise. Anything else (its neighbours are mostly other new images,
or the vote is split, or it sits outside the cluster's spread) is *unplaced*: the update clusters those among
themselves, which is how a topic that is new in the collection becomes a new cluster. Pure numpy, no I/O.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from clustering.analysis.space.exact_knn import query_neighbours

# A member's similarity to its centroid below this quantile of the cluster's members is "outside the cluster".
FIT_QUANTILE = 0.01
# Two-stage search above this many similarities: candidates from a principal-component projection, then exact cosine.
EXACT_MAX_PRODUCTS = 2 * 10**8
PROJECTION_DIMS = 128
CANDIDATES_PER_NEIGHBOUR = 4

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


def nearest(queries: np.ndarray, reference: np.ndarray, k: int, *, seed: int, threads: int = 1):
    """The ``k`` most similar rows of ``reference`` for each query: exact when small, else a principal-component
    projection proposes ``CANDIDATES_PER_NEIGHBOUR * k`` candidates that exact cosines then rank."""
    k = min(k, len(reference))
    if len(queries) * len(reference) <= EXACT_MAX_PRODUCTS or reference.shape[1] <= PROJECTION_DIMS:
        return query_neighbours(queries, reference, k, threads=threads)
    basis = _principal_axes(reference, PROJECTION_DIMS, seed)
    wanted = min(len(reference), CANDIDATES_PER_NEIGHBOUR * k)
    candidates, _ = query_neighbours(queries @ basis, np.ascontiguousarray(reference @ basis), wanted, threads=threads)
    exact = np.einsum("md,mcd->mc", queries, reference[candidates])
    order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(queries))[:, None]
    return candidates[rows, order].astype(np.int32), exact[rows, order].astype(np.float32)


def _principal_axes(X: np.ndarray, dims: int, seed: int) -> np.ndarray:
    sample = X[np.random.default_rng(seed).choice(len(X), size=min(len(X), 20_000), replace=False)]
    _, _, vt = np.linalg.svd(sample - sample.mean(axis=0), full_matrices=False)
    return np.ascontiguousarray(vt[:dims].T, dtype=np.float32)


def member_similarities(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Unit centroid of each cluster and its members' cosine similarities to it."""
    k = int(labels.max()) + 1 if (labels >= 0).any() else 0
    member = labels >= 0
    sums = np.zeros((k, X.shape[1]), dtype=np.float64)
    np.add.at(sums, labels[member], X[member])
    centroids = (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    similarity = np.einsum("nd,nd->n", X[member], centroids[labels[member]])
    order = np.argsort(labels[member], kind="stable")
    return centroids, np.split(similarity[order], np.cumsum(np.bincount(labels[member], minlength=k))[:-1])


def fit_thresholds(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit centroid of each cluster and the :data:`FIT_QUANTILE` of its members' similarity to it."""
    centroids, groups = member_similarities(X, labels)
    thresholds = np.array([np.quantile(g, FIT_QUANTILE) if len(g) else np.inf for g in groups], dtype=np.float32)
    return centroids, thresholds


def typical_cohesion(X: np.ndarray, labels: np.ndarray) -> float:
    """The median over clusters of their members' mean similarity to the centroid: how alike one cluster's images
    are in this collection (nan without a cluster)."""
    _, groups = member_similarities(X, labels)
    means = [float(g.mean()) for g in groups if len(g)]
    return float(np.median(means)) if means else float("nan")


def unify(X: np.ndarray, labels: np.ndarray, cohesion: float) -> np.ndarray:
    """New clusters judged as the collection's own clusters are: two whose centroids are closer than a typical
    cluster's members are to its centroid are one (a small sample of one topic often comes out of UMAP and HDBSCAN in
    pieces); then each image left as noise joins the cluster it fits (:func:`fit_thresholds`), if any."""
    labels = labels.copy()
    if not (labels >= 0).any() or not np.isfinite(cohesion):
        return labels
    centroids, _ = member_similarities(X, labels)
    k = len(centroids)
    parent = list(range(k))

    def root(c: int) -> int:
        while parent[c] != c:
            c = parent[c]
        return c

    close = np.argwhere(np.triu(centroids @ centroids.T >= cohesion, 1))
    for a, b in close:
        parent[max(root(a), root(b))] = min(root(a), root(b))
    roots = np.array([root(c) for c in range(k)])
    labels = np.where(labels >= 0, np.unique(roots, return_inverse=True)[1][np.maximum(labels, 0)], -1)
    centroids, thresholds = fit_thresholds(X, labels)
    noise = np.flatnonzero(labels < 0)
    if len(noise):
        similarity = X[noise] @ centroids.T
        best = np.argmax(similarity, axis=1)
        fits = similarity[np.arange(len(noise)), best] >= thresholds[best]
        labels[noise[fits]] = best[fits]
    return labels.astype(np.int32)


def place(
    new: np.ndarray, old: np.ndarray, old_labels: np.ndarray, *, k: int, seed: int, threads: int = 1
) -> Placement:
    """Place the unit rows ``new`` among ``old`` (unit rows labelled ``old_labels``, -1 noise)."""
    reference = np.concatenate([old, new]) if len(new) else old
    neighbours, similarities = nearest(new, reference, k + 1, seed=seed, threads=threads)
    own = np.arange(len(old), len(old) + len(new))[:, None]
    keep = neighbours != own  # each new image is its own nearest neighbour: drop it, keep k
    positions = np.stack([np.flatnonzero(row)[:k] for row in keep]) if len(new) else np.zeros((0, k), np.int64)
    neighbours = np.take_along_axis(neighbours, positions, axis=1)
    similarities = np.take_along_axis(similarities, positions, axis=1)
    voter = np.where(neighbours < len(old), old_labels[np.minimum(neighbours, len(old) - 1)], UNPLACED)
    labels = np.full(len(new), UNPLACED, dtype=np.int32)
    share = np.zeros(len(new), dtype=np.float32)
    centroids, thresholds = fit_thresholds(old, old_labels)
    for i, votes in enumerate(voter):
        values, counts = np.unique(votes, return_counts=True)
        best = int(np.argmax(counts))
        winner, count = int(values[best]), int(counts[best])
        if count * 2 <= len(votes) or winner == UNPLACED:
            continue
        if winner >= 0 and float(new[i] @ centroids[winner]) < thresholds[winner]:
            continue
        labels[i], share[i] = winner, count / len(votes)
    return Placement(labels, share, neighbours, similarities)

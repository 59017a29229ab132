"""The kNN graph of the embeddings, computed once for every reduction and for the steps that work in the original space.

Exact (cosine: :mod:`.topk`; other metrics: scikit-learn's brute force) up to :data:`EXACT_KNN_MAX` points,
pynndescent with UMAP's own settings above, cuML's brute force on a GPU. Row ``i`` of the graph starts with ``i``
itself at distance 0, so a graph from any of them reads the same way (UMAP's membership graph, the background test,
the selection score, the repost groups).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clustering.analysis import gpu
from clustering.analysis.space import exact_knn
from clustering.analysis.threads import numba_threads

# Metrics that scikit-learn (exact kNN), pynndescent and UMAP all know by name.
METRICS = ("cosine", "euclidean", "manhattan", "correlation")
KNN_METHODS = ("auto", "exact", "pynndescent")
# Exact kNN up to this many points. Measured on 2 cores, 512-D unit rows: exact (exact_knn.py) 6.6 s at 40,000 points,
# 15.8 s at 60,000, 35.9 s at 90,000; pynndescent 27.7, 30.2 and about 32 s there, most of it compiling on its first
# call in a process (numba cannot cache all of it). They cross near 85,000.
EXACT_KNN_MAX = 80_000
# Rows per block when scanning the embeddings (bounds temporary float64 copies to 64 MiB at 512-D).
_CHUNK = 16_384


@dataclass(frozen=True)
class KnnGraph:
    """Nearest neighbours of every point, the point itself first.

    Attributes
    ----------
    indices : np.ndarray
        ``(n, k)`` int32 neighbour indices, column 0 the point itself.
    distances : np.ndarray
        ``(n, k)`` float32 distances under the reduction's metric.
    method : str
        ``"exact"``, ``"pynndescent"`` or ``"cuml"``.
    """

    indices: np.ndarray
    distances: np.ndarray
    method: str


def knn_graph(
    X: np.ndarray,
    *,
    n_neighbors: int,
    metric: str = "cosine",
    seed: int | None = 42,
    method: str = "auto",
    threads: int = 1,
    reproducible: bool = True,
    use_gpu: bool = False,
) -> KnnGraph:
    """Compute the ``n_neighbors``-nearest-neighbour graph (self included) once, for every reduction.

    Parameters
    ----------
    X : np.ndarray
        ``(n, d)`` data, ``n >= 2``.
    n_neighbors : int
        Neighbours per point including the point itself, ``2 <= n_neighbors <= n``.
    metric : str, default "cosine"
        One of :data:`METRICS`.
    seed : int or None, default 42
        Seed for pynndescent (the exact search needs none).
    method : {"auto", "exact", "pynndescent"}, default "auto"
        "auto" is exact up to ``EXACT_KNN_MAX`` points, pynndescent (with UMAP's own settings) above.
    threads : int, default 1
        Threads for the search. The exact search gives the same graph at any thread count (its threads share out
        fixed tiles, :mod:`.topk`).
    reproducible : bool, default True
        pynndescent partitions its updates by thread, so its graph depends on the thread count: it then runs on one
        thread, and the same seed gives the same graph on any machine's core count. False lets it use ``threads``
        (for layouts that are not reproducible anyway).
    use_gpu : bool, default False
        Exact search with cuML (cosine on unit rows only; :mod:`.gpu`).

    Returns
    -------
    KnnGraph
        Row ``i`` starts with ``i`` itself at distance 0, even when exact duplicates tie with it.
    """
    n = X.shape[0]
    if not 2 <= n_neighbors <= n:
        raise ValueError(f"n_neighbors must be in [2, n={n}], got {n_neighbors}")
    if method not in KNN_METHODS:
        raise ValueError(f"knn method must be one of {KNN_METHODS}, got {method!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    unit = metric == "cosine" and _has_unit_rows(X)
    if use_gpu and unit:
        idx, dist = gpu.knn(X, n_neighbors)
        return KnnGraph(*_self_first(idx, _cosine_from_euclidean(dist)), "cuml")
    if method == "exact" or (method == "auto" and n <= EXACT_KNN_MAX):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):  # the tiles are the parallel work (see .threads)
            idx, dist = _exact_knn(X, n_neighbors, metric, unit=unit, threads=threads)
        return KnnGraph(idx, dist, "exact")
    threads = threads if not reproducible else 1
    idx, dist = _approximate_knn(X, n_neighbors, metric="euclidean" if unit else metric, seed=seed, threads=threads)
    return KnnGraph(*_self_first(idx, _cosine_from_euclidean(dist) if unit else dist), "pynndescent")


def _approximate_knn(X: np.ndarray, k: int, *, metric: str, seed: int | None, threads: int):
    """pynndescent with UMAP's own settings (umap.umap_.nearest_neighbors); the index is dropped right after."""
    from pynndescent import NNDescent

    n = X.shape[0]
    index = NNDescent(
        X,
        n_neighbors=k,
        metric=metric,
        random_state=seed,
        n_trees=min(64, 5 + round(n**0.5 / 20.0)),
        n_iters=max(5, round(float(np.log2(n)))),
        max_candidates=60,
        low_memory=True,
        n_jobs=numba_threads(threads),
        compressed=False,
        verbose=False,
    )
    idx, dist = index.neighbor_graph
    return idx.astype(np.int32), dist.astype(np.float32)


def _has_unit_rows(X: np.ndarray) -> bool:
    """Whether every row has length 1 (CLIP embeddings): cosine ranks then equal euclidean ones, without a copy."""
    return bool(np.allclose(row_lengths(X) ** 2, 1.0, atol=1e-3))


def row_lengths(X: np.ndarray) -> np.ndarray:
    """``(n,)`` float64 length of every row, a block of rows at a time (no full-size float64 copy of ``X``)."""
    lengths = np.empty(X.shape[0])
    for start in range(0, X.shape[0], _CHUNK):
        block = np.asarray(X[start : start + _CHUNK], dtype=np.float64)
        lengths[start : start + _CHUNK] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return lengths


def _cosine_from_euclidean(dist: np.ndarray) -> np.ndarray:
    """Cosine distance of unit rows from their euclidean distance: 1 - cos = d**2 / 2."""
    return (dist.astype(np.float32) ** 2) / 2.0


def _exact_knn(X: np.ndarray, k: int, metric: str, *, unit: bool, threads: int) -> tuple[np.ndarray, np.ndarray]:
    """``unit``: cosine on rows already of length 1 (checked once by the caller), searched without a copy."""
    if metric in ("cosine", "correlation"):
        # Both are 1 - cos of (centred, for correlation) rows: the top similarities between unit rows (exact_knn.py).
        rows = X if unit else unit_rows(X, centre=metric == "correlation")
        idx, dist = exact_knn.cosine_neighbours(rows, k, threads=threads)
    else:
        from sklearn.neighbors import NearestNeighbors

        dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(X).kneighbors(X)
    return _self_first(idx.astype(np.int32), dist.astype(np.float32))


def unit_rows(X: np.ndarray, *, centre: bool = False, dtype=np.float32) -> np.ndarray:
    """A copy of ``X`` with every row (centred first when asked) scaled to length 1, computed in float64; zero rows
    stay zero."""
    Y = np.asarray(X, dtype=np.float64) - (X.mean(axis=1, keepdims=True) if centre else 0.0)
    norms = np.linalg.norm(Y, axis=1, keepdims=True)
    return (Y / np.where(norms == 0, 1.0, norms)).astype(dtype, copy=False)


def _self_first(idx: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Put each point first in its own row at distance 0 (ties with duplicates may have put another point first)."""
    n, k = idx.shape
    rows = np.arange(n)
    keep = idx != rows[:, None]
    keep[keep.all(axis=1), k - 1] = False  # self missing: drop the farthest neighbour instead
    others_idx = idx[keep].reshape(n, k - 1)
    others_dist = dist[keep].reshape(n, k - 1)
    idx = np.concatenate([rows[:, None].astype(idx.dtype), others_idx], axis=1)
    dist = np.concatenate([np.zeros((n, 1), dtype=dist.dtype), np.maximum(others_dist, 0.0)], axis=1)
    return idx, dist

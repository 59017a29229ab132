"""Scores for one sweep setting: one flat dict per setting, i.e. one row of sweep.csv.

Silhouette is reported twice for the same labels (non-noise points only): in the reduced space HDBSCAN saw (flatters
the clustering in absolute terms: UMAP packs clusters) and in cosine distance on the original embeddings (what the
clusters mean; DESIGN measured 0.93 vs 0.38 for the same labels).

- The reduced-space silhouette is quadratic in the number of points (26-54 s per setting at 40k points, DESIGN), so
  it is computed on a seeded random sample of the non-noise points when there are more than ``sample_size`` of them;
  the row says which (``silhouette_sample_size``, ``silhouette_exact``, ``silhouette_seed``).
- The cosine silhouette is always exact, on every non-noise point: with rows scaled to unit length the mean cosine
  distance from a point to a cluster is ``1 - u . S / |C|`` (``S`` the sum of the cluster's unit vectors), so it costs
  O(n * clusters * dim) instead of O(n^2 * dim): 0.05 s instead of 2.2 s for a 10,000-point sample in 512-D.
- The modularity of the labels on the original space's kNN graph (:func:`knn_modularity`) is the selection score
  (see select.py): O(n * k) from the graph the reduction already built, so it costs nothing at 200k points.
  Silhouettes are optional (``silhouettes=False``) since no rule needs them for every setting.
"""

from __future__ import annotations

import math
import time

import numpy as np

from clustering.analysis.sweep import SettingResult

METRIC_DOCS: dict[str, str] = {
    "min_cluster_size": "HDBSCAN min_cluster_size: the smallest group reported as a cluster.",
    "min_samples": "HDBSCAN min_samples: neighbours needed for a point to be dense (larger = more conservative).",
    "n": "Number of points clustered.",
    "clusters": "Number of clusters found (noise excluded).",
    "noise_fraction": "Share of points labelled noise (-1), in [0, 1].",
    "mean_persistence": "Mean per-cluster persistence (hdbscan cluster_persistence_, 0-1; higher = more stable); "
    "nan with no cluster.",
    "median_persistence": "Median per-cluster persistence; nan with no cluster.",
    "dbcv": "hdbscan relative_validity_: fast DBCV approximation on the mutual-reachability spanning tree, in [-1, 1], "
    "higher = denser, better separated clusters; noise points count against it; 0 when everything is noise.",
    "silhouette_reduced": "Silhouette (euclidean) in the reduced space HDBSCAN ran in, non-noise points only; "
    "flattering in absolute terms (UMAP packs clusters) but the best ranker of settings on data with known labels (the "
    "default selection score); nan with < 2 clusters.",
    "silhouette_cosine": "Silhouette (cosine) on the original embeddings, every non-noise point (exact, closed form); "
    "how well the clusters separate in meaning; nan with < 2 clusters.",
    "modularity": "Modularity of the clusters on the kNN graph of the original embeddings (non-noise points; edges "
    "to noise dropped), in [-0.5, 1]: the share of neighbour links inside clusters minus its expectation; higher = "
    "clusters that match who is near whom in meaning, without splitting them up (the default selection score); nan "
    "without the graph or with < 2 clusters.",
    "calinski_harabasz": "Calinski-Harabasz index in the reduced space, all non-noise points (exact); unbounded, "
    "higher = more compact and separated, comparable only within one sweep; nan with < 2 clusters.",
    "largest_cluster_share": "Size of the largest cluster as a share of all points (a catch-all cluster shows up "
    "here); 0 with no cluster.",
    "sweep_seconds": "Seconds HDBSCAN spent on this setting (its share of the shared tree plus its own selection).",
    "metric_seconds": "Seconds spent computing this row's metrics.",
    "silhouette_sample_size": "Non-noise points silhouette_reduced was computed on (all of them when exact).",
    "silhouette_exact": "True when silhouette_reduced used every non-noise point, False when sampled "
    "(silhouette_cosine is always exact).",
    "silhouette_seed": "Seed of the silhouette_reduced sample (numpy default_rng).",
}


def score_setting(
    result: SettingResult,
    cluster_coords: np.ndarray,
    embeddings: np.ndarray,
    *,
    sample_size: int = 10_000,
    seed: int = 0,
    neighbours: np.ndarray | None = None,
    silhouettes: bool = True,
) -> dict:
    """Score one sweep setting; never raises on degenerate clusterings (undefined metrics are nan).

    Parameters
    ----------
    result : SettingResult
        One setting from :func:`clustering.analysis.sweep.sweep`.
    cluster_coords : np.ndarray
        ``(n, k)`` coordinates HDBSCAN ran on.
    embeddings : np.ndarray
        ``(n, d)`` original embeddings (cosine silhouette).
    sample_size : int, default 10_000
        Maximum number of non-noise points for the reduced-space silhouette; exact when there are at most this many.
        The cosine silhouette is always exact.
    seed : int, default 0
        Seed of the silhouette sample (the same seed gives the same sample for the same labels).
    neighbours : np.ndarray or None, default None
        ``(n, k)`` kNN indices in the original space, each row starting with the point itself
        (``Reduction.knn.indices``); gives the ``modularity`` column (nan when None).
    silhouettes : bool, default True
        Compute both silhouettes and Calinski-Harabasz; False leaves them nan (cheap scoring of every setting, then
        full scores for the few settings a report shows).

    Returns
    -------
    dict
        Keys of :data:`METRIC_DOCS`, in that order; values are Python ints, floats (nan when undefined) and bools.
    """
    labels = np.asarray(result.labels)
    n = labels.shape[0]
    cluster_coords = np.asarray(cluster_coords)
    embeddings = np.asarray(embeddings)
    if cluster_coords.ndim != 2 or cluster_coords.shape[0] != n:
        raise ValueError(f"cluster_coords must have shape (n={n}, k), got {cluster_coords.shape}")
    if embeddings.ndim != 2 or embeddings.shape[0] != n:
        raise ValueError(f"embeddings must have shape (n={n}, d), got {embeddings.shape}")
    if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < 2:
        raise ValueError(f"sample_size must be an integer >= 2, got {sample_size!r}")

    start = time.perf_counter()
    clustered = np.flatnonzero(labels >= 0)
    sizes = np.bincount(labels[clustered]) if clustered.size else np.zeros(0, dtype=np.int64)
    n_clusters = int((sizes > 0).sum())
    persistence = np.asarray(result.persistence, dtype=np.float64)

    exact = clustered.size <= sample_size
    sample = clustered if exact else np.sort(np.random.default_rng(seed).choice(clustered, sample_size, replace=False))
    sil_reduced = sil_cosine = ch = math.nan
    if silhouettes:
        # float64: scikit-learn's float32 euclidean path upcasts block by block, 3x slower for the same numbers.
        sil_reduced = _silhouette(cluster_coords[sample].astype(np.float64), labels[sample], "euclidean")
        sil_cosine = cosine_silhouette(embeddings[clustered], labels[clustered])
        ch = _calinski_harabasz(cluster_coords[clustered], labels[clustered])
    modularity = knn_modularity(labels, neighbours) if neighbours is not None else math.nan

    return {
        "min_cluster_size": int(result.min_cluster_size),
        "min_samples": int(result.min_samples),
        "n": int(n),
        "clusters": n_clusters,
        "noise_fraction": float((n - clustered.size) / n) if n else math.nan,
        "mean_persistence": float(persistence.mean()) if persistence.size else math.nan,
        "median_persistence": float(np.median(persistence)) if persistence.size else math.nan,
        "dbcv": float(result.dbcv),
        "silhouette_reduced": sil_reduced,
        "silhouette_cosine": sil_cosine,
        "modularity": modularity,
        "calinski_harabasz": ch,
        "largest_cluster_share": float(sizes.max() / n) if n_clusters else 0.0,
        "sweep_seconds": float(result.seconds),
        "metric_seconds": time.perf_counter() - start,
        "silhouette_sample_size": int(sample.size),
        "silhouette_exact": bool(exact),
        "silhouette_seed": int(seed),
    }


def knn_modularity(labels: np.ndarray, neighbours: np.ndarray) -> float:
    """Newman modularity of a labelling on the directed kNN graph, noise points and their edges left out.

    ``Q = sum_c (e_cc / m - out_c * in_c / m**2)`` over clusters ``c``, with ``m`` the edges between non-noise points,
    ``e_cc`` those inside ``c`` and ``out_c`` / ``in_c`` the edges leaving / entering ``c``'s points. Splitting a
    group that is densely linked in the original space lowers ``Q`` (its internal links become between-cluster
    links); merging two groups that are not lowers it too (the expected term grows). O(n * k).

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` cluster labels, -1 for noise.
    neighbours : np.ndarray
        ``(n, k)`` neighbour indices, column 0 the point itself (ignored).

    Returns
    -------
    float
        In [-0.5, 1]; nan with fewer than 2 clusters or no edge between non-noise points.
    """
    labels = np.asarray(labels)
    neighbours = np.asarray(neighbours)
    if neighbours.ndim != 2 or neighbours.shape[0] != labels.shape[0]:
        raise ValueError(f"neighbours must have shape (n={labels.shape[0]}, k), got {neighbours.shape}")
    n_clusters = int(labels.max()) + 1 if labels.size else 0
    if n_clusters < 2 or neighbours.shape[1] < 2:
        return math.nan
    source = np.repeat(labels, neighbours.shape[1] - 1)
    target = labels[neighbours[:, 1:].ravel()]
    keep = (source >= 0) & (target >= 0)
    source, target = source[keep], target[keep]
    m = source.size
    if m == 0:
        return math.nan
    inside = np.count_nonzero(source == target) / m
    out_degree = np.bincount(source, minlength=n_clusters).astype(np.float64)
    in_degree = np.bincount(target, minlength=n_clusters).astype(np.float64)
    return float(inside - (out_degree @ in_degree) / m**2)


def _silhouette(X: np.ndarray, labels: np.ndarray, metric: str) -> float:
    """scikit-learn's silhouette_score, or nan where it is undefined (needs 2 <= n_labels <= n_samples - 1)."""
    from sklearn.metrics import silhouette_score

    n_labels = np.unique(labels).size
    if not 2 <= n_labels <= labels.size - 1:
        return math.nan
    return float(silhouette_score(X, labels, metric=metric))


def cosine_silhouette(X: np.ndarray, labels: np.ndarray, *, chunk: int = 8192) -> float:
    """Exact mean silhouette under cosine distance, in O(n * clusters * dim).

    Equals ``sklearn.metrics.silhouette_score(X, labels, metric="cosine")`` (to rounding) without the n x n distance
    matrix: rows are scaled to unit length (cosine distance ignores length), so the summed distance from ``u`` to a
    cluster ``C`` is ``|C| - u . S_C`` with ``S_C`` the sum of its unit vectors; the own-cluster sum leaves out ``u``
    itself, and points alone in their cluster score 0, as in scikit-learn.

    Parameters
    ----------
    X : np.ndarray
        ``(n, d)`` vectors (any length; all-zero rows are at distance 1 from everything, as in scikit-learn).
    labels : np.ndarray
        ``(n,)`` cluster labels (no noise label: pass non-noise points only).
    chunk : int, default 8192
        Rows per block (bounds memory to ``chunk * (d + clusters)`` doubles).

    Returns
    -------
    float
        Mean silhouette, or nan when undefined (needs 2 <= clusters <= n - 1).
    """
    labels = np.asarray(labels)
    n = labels.size
    uniq, codes = np.unique(labels, return_inverse=True)
    k = uniq.size
    if not 2 <= k <= n - 1:
        return math.nan
    sizes = np.bincount(codes, minlength=k).astype(np.float64)
    sums = np.zeros((k, X.shape[1]))
    for start in range(0, n, chunk):
        U, c = _unit_rows(X[start : start + chunk]), codes[start : start + chunk]
        order = np.argsort(c, kind="stable")
        heads = np.flatnonzero(np.r_[True, c[order][1:] != c[order][:-1]])
        sums[c[order][heads]] += np.add.reduceat(U[order], heads, axis=0)
    total = 0.0
    for start in range(0, n, chunk):
        U, c = _unit_rows(X[start : start + chunk]), codes[start : start + chunk]
        rows = np.arange(c.size)
        dist_sums = sizes[None, :] - U @ sums.T  # summed cosine distance to every cluster, the point itself included
        own = dist_sums[rows, c] - (1.0 - np.einsum("ij,ij->i", U, U))  # ... minus its distance to itself
        own_size = sizes[c]
        with np.errstate(divide="ignore", invalid="ignore"):
            # Clipped at 0: rounding makes sums over exact duplicates slightly negative, and a negative a or b
            # over a zero max(a, b) would give an infinite silhouette (seen on duplicated glyphs).
            a = np.maximum(own, 0.0) / (own_size - 1.0)
            means = np.maximum(dist_sums, 0.0) / sizes[None, :]
            means[rows, c] = np.inf
            b = means.min(axis=1)
            sil = np.nan_to_num((b - a) / np.maximum(a, b))
        total += float(np.where(own_size > 1, sil, 0.0).sum())
    return total / n


def _unit_rows(X: np.ndarray) -> np.ndarray:
    U = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(U, axis=1, keepdims=True)
    return U / np.where(norms == 0, 1.0, norms)


def _calinski_harabasz(X: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import calinski_harabasz_score

    n_labels = np.unique(labels).size
    if not 2 <= n_labels <= labels.size - 1:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(calinski_harabasz_score(X, labels))
    return value if math.isfinite(value) else math.nan

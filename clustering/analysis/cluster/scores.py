"""Scores for sweep settings: one flat dict per setting, i.e. one row of sweep.csv.

Every setting gets the scores the selection needs, all O(n * k) from arrays the run already has: cluster counts,
noise, persistence, hdbscan's DBCV approximation, and the modularity of the labels on the original space's kNN graph
(:func:`knn_modularity`, the selection score, see select.py), also with HDBSCAN's noise filled in from its neighbours
(``modularity_filled``, cluster/modularity.py). Separation scores cost more and decide nothing by default, so they
are computed for the few settings a reader compares (the chosen one and its runner-ups, :func:`separation_scores`),
unless the selection rule itself ranks by one of them:

- silhouette in the reduced space HDBSCAN saw (flatters the clustering in absolute terms: UMAP packs clusters), on one
  seeded random sample of the points shared by every setting scored together: the sample's distances are computed
  once, in blocks, and serve them all (a setting scores its non-noise points of the sample). Exact silhouettes cost
  26-54 s per setting at 40k points (DESIGN).
- silhouette in cosine distance on the original embeddings, averaged over the same sample, each sampled point's value
  exact against every point: with rows scaled to unit length the mean cosine distance from a point to a cluster is
  ``1 - u . S / |C|`` (``S`` the sum of the cluster's unit vectors), so it costs O(n * dim) for the sums and
  O(sample * clusters * dim) for the points (every point when there are at most ``sample_size``).
- Calinski-Harabasz in the reduced space, exact, O(n * dims).

At 40,000 points silhouettes for all 24 settings took 68 s of a 204 s run (issue 13). At 200,000 points (2 cores, load
4) the 4 compared settings take 8.6 s in all: the shared reduced-space sample 2.8 s, each cosine silhouette 1.3 s (3.5 s
exact on every point), Calinski-Harabasz 0.1 s; the cheap scores of all 24 settings 2.6 s, modularity_filled included.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from clustering.analysis.cluster.modularity import filled_terms, knn_modularity
from clustering.analysis.cluster.setting import SettingResult
from clustering.analysis.defaults import RESOLUTION
from clustering.analysis.space.knn_graph import unit_rows

METRIC_DOCS: dict[str, str] = {
    "min_cluster_size": "HDBSCAN min_cluster_size: the smallest group reported as a cluster.",
    "min_samples": "HDBSCAN min_samples: neighbours needed for a point to be dense (larger = more conservative).",
    "selection": "HDBSCAN cluster_selection_method: eom (excess of mass) or leaf (the condensed tree's leaves).",
    "n": "Number of points clustered: each distinct image once (every row with --keep-duplicates).",
    "clusters": "Number of clusters found (noise excluded).",
    "noise_fraction": "Share of the points clustered (n) labelled noise (-1), in [0, 1].",
    "mean_persistence": "Mean per-cluster persistence (hdbscan cluster_persistence_, 0-1; higher = more stable); "
    "nan with no cluster.",
    "median_persistence": "Median per-cluster persistence; nan with no cluster.",
    "largest_cluster_share": "Size of the largest cluster as a share of all points (a catch-all cluster shows up "
    "here); 0 with no cluster.",
    "diffuse_clusters": "Clusters the diffuse-cluster test (cluster/background.py) labelled noise after the selection: "
    "images no more alike than the whole collection's. Counted for the settings whose labels are written (the chosen "
    "one, its runner-ups, the hierarchy levels), whose clusters, noise and persistence columns count after it and "
    "whose scores are those the selection saw; empty elsewhere.",
    "original_space_merges": "Merges of clusters the original space cannot tell apart (cluster/original_space.py), "
    "after the selection and the diffuse-cluster test; for the chosen setting and the granularity ladder's, whose "
    "clusters, noise and persistence columns count after them; empty elsewhere (as are the next two).",
    "original_space_splits": "Splits of clusters whose halves the original space keeps apart "
    "(cluster/original_space.py).",
    "original_space_background": "Diffuse halves split off a cluster and labelled noise (cluster/original_space.py).",
    "dbcv": "hdbscan relative_validity_: fast DBCV approximation on the mutual-reachability spanning tree, in [-1, 1], "
    "higher = denser, better separated clusters; noise points count against it; 0 when everything is noise.",
    "silhouette_reduced": "Silhouette (euclidean) in the reduced space HDBSCAN ran in, non-noise points of a seeded "
    "sample only; flattering in absolute terms (UMAP packs clusters); nan with fewer than 2 clusters or where not "
    "computed.",
    "silhouette_cosine": "Silhouette (cosine) on the original embeddings, averaged over the non-noise points of the "
    "same sample as silhouette_reduced (each exact against every point, closed form); how well the clusters separate "
    "in meaning; nan with fewer than 2 clusters or where not computed.",
    "modularity": "Modularity of the clusters on the kNN graph of the original embeddings (non-noise points; edges "
    "to noise dropped), in [-0.5, 1]: the share of neighbour links inside clusters minus its expectation; higher = "
    "clusters that match who is near whom in meaning, without splitting them up; nan without the graph or with fewer "
    "than 2 clusters.",
    "modularity_filled": "The same modularity once every point HDBSCAN left as noise takes the cluster most of its "
    "original-space neighbours are in (the background test's noise stays out; see cluster/modularity.py), at the run's "
    "--resolution (default 0.8, which leans towards fewer, larger clusters than plain modularity; metrics.json "
    "params.selection.resolution); the default selection score; nan without the graph or the HDBSCAN labels, or "
    "with fewer than 2 clusters.",
    "modularity_filled_inside": "The first term of modularity_filled: the share of the kNN edges between clustered "
    "points (HDBSCAN's noise filled) that stay inside a cluster; nan where modularity_filled is.",
    "modularity_filled_expected": "Its second term: the same share expected for random edges with the clusters' "
    "degrees. modularity_filled = inside - resolution * expected, so the two give a setting's score at every "
    "resolution (metrics.json granularity); nan where modularity_filled is.",
    "calinski_harabasz": "Calinski-Harabasz index in the reduced space, all non-noise points (exact); unbounded, "
    "higher = more compact and separated, comparable only within one sweep; nan with fewer than 2 clusters or where "
    "not computed.",
    "sweep_seconds": "Seconds HDBSCAN spent on this setting (its share of the shared tree plus its own selection).",
    "metric_seconds": "Seconds spent computing this row's metrics.",
    "silhouette_sample_size": "Non-noise points the silhouettes were averaged over (all of them when exact); 0 where "
    "the separation scores were not computed (only the chosen setting and its runner-ups get them by default).",
    "silhouette_exact": "True when both silhouettes used every non-noise point, False when sampled.",
    "silhouette_seed": "Seed of the silhouette_reduced sample (numpy default_rng; one sample of all points, shared by "
    "the settings scored together).",
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
    hdbscan_labels: np.ndarray | None = None,
    resolution: float | None = None,
) -> dict:
    """Score one sweep setting; never raises on degenerate clusterings (undefined metrics are nan).

    Parameters
    ----------
    result : SettingResult
        One setting from :func:`clustering.analysis.cluster.sweep.sweep` (after the background test, if any).
    cluster_coords : np.ndarray
        ``(n, k)`` coordinates HDBSCAN ran on.
    embeddings : np.ndarray
        ``(n, d)`` original embeddings (cosine silhouette).
    sample_size : int, default 10_000
        Points sampled for the reduced-space silhouette (:func:`separation_scores`).
    seed : int, default 0
        Seed of that sample.
    neighbours : np.ndarray or None, default None
        ``(n, k)`` kNN indices in the original space, each row starting with the point itself
        (``Reduction.knn.indices``); gives the ``modularity`` columns (nan when None).
    silhouettes : bool, default True
        Compute the separation scores (both silhouettes and Calinski-Harabasz); False leaves them nan: cheap scoring
        of every setting, then :func:`separation_scores` for the few settings a report compares.
    hdbscan_labels : np.ndarray or None, default None
        The setting's labels as HDBSCAN gave them, before the background test: gives ``modularity_filled``.
    resolution : float or None, default None
        Resolution of ``modularity_filled``; None: :data:`clustering.analysis.cluster.modularity.RESOLUTION`.

    Returns
    -------
    dict
        Keys of :data:`METRIC_DOCS`, in that order; values are Python ints, floats (nan when undefined) and bools.
    """
    labels = np.asarray(result.labels)
    n = labels.shape[0]
    _check_shapes(n, cluster_coords, embeddings, sample_size)
    start = time.perf_counter()
    modularity = filled = inside = expected = math.nan
    if neighbours is not None:
        modularity = knn_modularity(labels, neighbours)
        if hdbscan_labels is not None:
            inside, expected = filled_terms(labels, neighbours, hdbscan_labels=hdbscan_labels)
            filled = inside - (RESOLUTION if resolution is None else resolution) * expected
    row = {
        "min_cluster_size": int(result.min_cluster_size),
        "min_samples": int(result.min_samples),
        "selection": result.selection,
        "n": int(n),
        **count_columns(result),
        "diffuse_clusters": math.nan,
        "original_space_merges": math.nan,
        "original_space_splits": math.nan,
        "original_space_background": math.nan,
        "dbcv": float(result.dbcv),
        "silhouette_reduced": math.nan,
        "silhouette_cosine": math.nan,
        "modularity": modularity,
        "modularity_filled": filled,
        "modularity_filled_inside": inside,
        "modularity_filled_expected": expected,
        "calinski_harabasz": math.nan,
        "sweep_seconds": float(result.seconds),
        "metric_seconds": time.perf_counter() - start,
        "silhouette_sample_size": 0,
        "silhouette_exact": False,
        "silhouette_seed": int(seed),
    }
    if silhouettes:
        scores = separation_scores([labels], cluster_coords, embeddings, sample_size=sample_size, seed=seed)[0]
        row |= scores | {"metric_seconds": row["metric_seconds"] + scores["metric_seconds"]}
    return row


def count_columns(result: SettingResult) -> dict:
    """The columns that count a setting's labels: clusters, noise, persistence, largest cluster's share."""
    labels = np.asarray(result.labels)
    n = labels.shape[0]
    clustered = labels >= 0
    sizes = np.bincount(labels[clustered]) if clustered.any() else np.zeros(0, dtype=np.int64)
    n_clusters = int((sizes > 0).sum())
    persistence = np.asarray(result.persistence, dtype=np.float64)
    return {
        "clusters": n_clusters,
        "noise_fraction": float((n - clustered.sum()) / n) if n else math.nan,
        "mean_persistence": float(persistence.mean()) if persistence.size else math.nan,
        "median_persistence": float(np.median(persistence)) if persistence.size else math.nan,
        "largest_cluster_share": float(sizes.max() / n) if n_clusters else 0.0,
    }


def separation_scores(
    labelings: Sequence[np.ndarray],
    cluster_coords: np.ndarray,
    embeddings: np.ndarray,
    *,
    sample_size: int = 10_000,
    seed: int = 0,
) -> list[dict]:
    """Both silhouettes and Calinski-Harabasz of several labellings of the same points, sharing one sample.

    Parameters
    ----------
    labelings : sequence of np.ndarray
        ``(n,)`` labels per setting, -1 for noise.
    cluster_coords : np.ndarray
        ``(n, k)`` coordinates HDBSCAN ran on (reduced-space silhouette, Calinski-Harabasz).
    embeddings : np.ndarray
        ``(n, d)`` original embeddings (cosine silhouette).
    sample_size : int, default 10_000
        Points drawn (seeded, without replacement, from all ``n``) for both silhouettes; every point when
        ``n <= sample_size``. Each labelling scores its non-noise points of the sample, the reduced-space silhouette
        on distances computed once for all labellings.
    seed : int, default 0
        Seed of the sample (numpy ``default_rng``).

    Returns
    -------
    list of dict
        Per labelling: ``silhouette_reduced``, ``silhouette_cosine``, ``calinski_harabasz``,
        ``silhouette_sample_size``, ``silhouette_exact``, ``silhouette_seed`` and its share of ``metric_seconds``.
    """
    labelings = [np.asarray(labels) for labels in labelings]
    n = labelings[0].shape[0] if labelings else 0
    _check_shapes(n, cluster_coords, embeddings, sample_size)
    start = time.perf_counter()
    exact = n <= sample_size
    sample = np.arange(n) if exact else np.sort(np.random.default_rng(seed).choice(n, sample_size, replace=False))
    # float64: scikit-learn's silhouette computes its distances in float64 too.
    reduced = sampled_silhouettes(np.asarray(cluster_coords)[sample].astype(np.float64), [x[sample] for x in labelings])
    shared = (time.perf_counter() - start) / max(len(labelings), 1)
    rows = []
    for labels, sil_reduced in zip(labelings, reduced, strict=True):
        start = time.perf_counter()
        clustered = np.flatnonzero(labels >= 0)
        rows.append(
            {
                "silhouette_reduced": sil_reduced,
                "silhouette_cosine": cosine_silhouette(embeddings, labels, rows=sample),
                "calinski_harabasz": _calinski_harabasz(cluster_coords[clustered], labels[clustered]),
                "silhouette_sample_size": int((labels[sample] >= 0).sum()),
                "silhouette_exact": bool(exact),
                "silhouette_seed": int(seed),
                "metric_seconds": shared + time.perf_counter() - start,
            }
        )
    return rows


def sampled_silhouettes(points: np.ndarray, labelings: Sequence[np.ndarray], *, chunk: int = 1024) -> list[float]:
    """Mean euclidean silhouette of each labelling of ``points`` over its non-noise points, one pass over distances.

    Equals ``sklearn.metrics.silhouette_score(points[keep], labels[keep])`` (to rounding) for each labelling, with
    ``keep = labels >= 0``: the distances between ``points`` are computed once, ``chunk`` rows at a time, and summed
    per cluster for every labelling.

    Parameters
    ----------
    points : np.ndarray
        ``(m, k)`` coordinates.
    labelings : sequence of np.ndarray
        ``(m,)`` labels per labelling, -1 for noise.
    chunk : int, default 1024
        Rows of the distance matrix held at once (``chunk * m`` doubles).

    Returns
    -------
    list of float
        One mean silhouette per labelling; nan where undefined (needs 2 <= clusters <= non-noise points - 1).
    """
    from sklearn.metrics.pairwise import euclidean_distances

    prepared = [_ClusterSums.of(labels) for labels in labelings]
    totals = [0.0] * len(prepared)
    for start in range(0, points.shape[0], chunk):
        block = euclidean_distances(points[start : start + chunk], points)
        for index, sums in enumerate(prepared):
            if sums is not None:
                totals[index] += sums.silhouette_sum(block, start)
    return [total / sums.n if sums is not None else math.nan for total, sums in zip(totals, prepared, strict=True)]


@dataclass(frozen=True)
class _ClusterSums:
    """One labelling, ready to turn rows of distances into per-cluster sums (a sparse one-hot of its members)."""

    keep: np.ndarray
    codes: np.ndarray
    sizes: np.ndarray
    onehot: object

    @classmethod
    def of(cls, labels: np.ndarray) -> _ClusterSums | None:
        """None when the silhouette is undefined (fewer than 2 clusters, or as many clusters as points)."""
        import scipy.sparse

        keep = labels >= 0
        _, codes = np.unique(labels[keep], return_inverse=True)
        k, m = int(codes.max()) + 1 if codes.size else 0, codes.size
        if not 2 <= k <= m - 1:
            return None
        onehot = scipy.sparse.csr_matrix((np.ones(m), (np.arange(m), codes)), shape=(m, k))
        return cls(keep, codes, np.bincount(codes, minlength=k).astype(np.float64), onehot)

    @property
    def n(self) -> int:
        return self.codes.size

    def silhouette_sum(self, distances: np.ndarray, start: int) -> float:
        """Sum of the silhouettes of this labelling's points among rows ``start ..`` of the distance matrix."""
        rows = self.keep[start : start + distances.shape[0]]
        if not rows.any():
            return 0.0
        sums = np.asarray((self.onehot.T @ distances[rows][:, self.keep].T).T)  # summed distance to every cluster
        first = int(self.keep[:start].sum())
        own = self.codes[first : first + int(rows.sum())]
        picked = np.arange(own.size)
        own_size = self.sizes[own]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = sums[picked, own] / (own_size - 1.0)  # the point's zero distance to itself is in the sum
            means = sums / self.sizes[None, :]
            means[picked, own] = np.inf
            b = means.min(axis=1)
            sil = np.nan_to_num((b - a) / np.maximum(a, b))
        return float(np.where(own_size > 1, sil, 0.0).sum())


def _check_shapes(n: int, cluster_coords: np.ndarray, embeddings: np.ndarray, sample_size: int) -> None:
    cluster_coords, embeddings = np.asarray(cluster_coords), np.asarray(embeddings)
    if cluster_coords.ndim != 2 or cluster_coords.shape[0] != n:
        raise ValueError(f"cluster_coords must have shape (n={n}, k), got {cluster_coords.shape}")
    if embeddings.ndim != 2 or embeddings.shape[0] != n:
        raise ValueError(f"embeddings must have shape (n={n}, d), got {embeddings.shape}")
    if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < 2:
        raise ValueError(f"sample_size must be an integer >= 2, got {sample_size!r}")


def cosine_silhouette(X: np.ndarray, labels: np.ndarray, *, rows: np.ndarray | None = None, chunk: int = 8192) -> float:
    """Mean silhouette under cosine distance over the non-noise points, in O(n * dim + m * clusters * dim).

    Equals ``sklearn.metrics.silhouette_score(X[keep], labels[keep], metric="cosine")`` (to rounding), ``keep =
    labels >= 0``, without the n x n distance matrix: rows are scaled to unit length (cosine distance ignores length),
    so the summed distance from ``u`` to a cluster ``C`` is ``|C| - u . S_C`` with ``S_C`` the sum of its unit
    vectors; the own-cluster sum leaves out ``u`` itself, and points alone in their cluster score 0, as in
    scikit-learn. ``X`` is read block by block, never copied whole.

    Parameters
    ----------
    X : np.ndarray
        ``(n, d)`` vectors (any length; all-zero rows are at distance 1 from everything, as in scikit-learn).
    labels : np.ndarray
        ``(n,)`` cluster labels; points labelled -1 (noise) are left out.
    rows : np.ndarray, optional
        Ascending row indices whose silhouettes are averaged (their non-noise ones), each exact against every point
        of the clusters: a sample's mean, at a fraction of the cost. Default: every row.
    chunk : int, default 8192
        Rows per block (bounds memory to ``chunk * (d + clusters)`` doubles).

    Returns
    -------
    float
        Mean silhouette, or nan when undefined (needs 2 <= clusters <= non-noise points - 1, and a non-noise row).
    """
    labels = np.asarray(labels)
    keep = labels >= 0
    uniq, kept_codes = np.unique(labels[keep], return_inverse=True)
    k, n = uniq.size, int(keep.sum())
    if not 2 <= k <= n - 1:
        return math.nan
    codes = np.full(labels.size, -1, dtype=np.int64)
    codes[keep] = kept_codes
    sizes = np.bincount(kept_codes, minlength=k).astype(np.float64)
    sums = np.zeros((k, X.shape[1]))
    blocks = [(start, codes[start : start + chunk] >= 0) for start in range(0, labels.size, chunk)]
    for start, members in blocks:
        U, c = unit_rows(X[start : start + chunk][members], dtype=np.float64), codes[start : start + chunk][members]
        order = np.argsort(c, kind="stable")
        heads = np.flatnonzero(np.r_[True, c[order][1:] != c[order][:-1]]) if c.size else np.zeros(0, np.intp)
        if heads.size:
            sums[c[order][heads]] += np.add.reduceat(U[order], heads, axis=0)
    scored = np.flatnonzero(keep) if rows is None else np.asarray(rows)[keep[np.asarray(rows)]]
    if scored.size == 0:
        return math.nan
    total = 0.0
    for start in range(0, scored.size, chunk):
        picked = scored[start : start + chunk]
        U, c = unit_rows(X[picked], dtype=np.float64), codes[picked]
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
    return total / scored.size


def _calinski_harabasz(X: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import calinski_harabasz_score

    n_labels = np.unique(labels).size
    if not 2 <= n_labels <= labels.size - 1:
        return math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(calinski_harabasz_score(X, labels))
    return value if math.isfinite(value) else math.nan

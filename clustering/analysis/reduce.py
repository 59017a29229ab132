"""Dimension reduction for clustering and for the map, from one kNN graph.

The kNN graph of the embeddings is the expensive part of UMAP on 512-D vectors, and both reductions need the same
graph, so it is computed once (exactly up to ``EXACT_KNN_MAX`` points, with pynndescent above) and passed to both fits
through ``precomputed_knn``:

- a ``cluster_dims``-D UMAP with ``min_dist=0`` (packs dense regions; HDBSCAN runs here). Clustering the 2-D map
  instead swallows background points into clusters (89-98 % of injected noise in DESIGN's test);
- a 2-D UMAP (or openTSNE t-SNE, seeded) for plots only, with repost bursts moved beside their nearest content
  (layout.py) instead of being flung to the edges.

The graph itself is returned too (``Reduction.knn``): the background test (noise.py) and the selection score
(metrics.knn_modularity) work in the original space from it.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from clustering.analysis import layout

# Cluster space dimension. Evidence: 24 synthetic datasets (synthetic.make_blobs_on_sphere, n=4000, 512-D; default or
# hard clusters (cluster_spread=(0.9, 1.5), sibling_similarity=0.7); background as satellites of clusters (default) or
# unrelated (satellite_share=0); 10 clusters/10 % background, 20/25 %, 40/40 %; 2 seeds), min_samples=5, the default
# grid and select() defaults. ARI over true cluster members of the chosen setting, mean (min) and per family
# (easy/unrelated, easy/satellite, hard/unrelated, hard/satellite):
#   dims  2: 0.905 (0.689)   .930 .980 .844 .866   UMAP fit median 5.2 s
#   dims  5: 0.884 (0.663)   .939 .975 .842 .782                   5.8 s
#   dims 10: 0.890 (0.663)   .952 .980 .828 .800                   6.2 s
#   dims 15: 0.892 (0.663)   .950 .980 .851 .790                   7.2 s
# Background ending up as noise: 11-12 % at every dimension. The synthetic evidence is a wash (2-D wins when the
# background hugs clusters, 10-15 when it is unrelated); DESIGN's real-data measurement (2-D UMAP swallowed 89-98 % of
# injected noise) rules out 2; 10 ties 15 on accuracy and is cheaper (UMAP and the HDBSCAN tree grow with dims).
# Re-measured for issue 10 with the background test and the modularity selection (bench/quality.py tuning sets),
# member ARI of the automatic choice at 10 / 2 dims: emoji 0.189 / 0.175, glyphs 0.104 / 0.081, synthetic-hard
# 0.812 / 0.889, synthetic-20k 0.986 / 0.963: still a wash, so 10 stays.
DEFAULT_CLUSTER_DIMS = 10

MAP_METHODS = ("umap", "tsne")
# Metrics that scikit-learn (exact kNN), pynndescent and UMAP all know by name.
METRICS = ("cosine", "euclidean", "manhattan", "correlation")
KNN_METHODS = ("auto", "exact", "pynndescent")
# Exact kNN up to this many points. Measured on 2 cores, 512-D: exact (scikit-learn brute force) 1.2 s at 6,000 points
# and 13.9 s at 20,000; pynndescent 0.3-0.6 s at 6,000 warm, but its first call in a process compiles for 37-58 s
# (numba cannot cache all of it). Exact therefore wins up to ~40,000 points in a fresh process and is reproducible
# whatever the thread count (pynndescent's graph changes with it).
EXACT_KNN_MAX = 40_000
# Below this many points UMAP cannot build a graph (it needs n_neighbors >= 2, i.e. 3 points); the reduction falls
# back to PCA (padded with zeros) and says so in ``params["fallback"]``.
_MIN_UMAP_POINTS = 4


@dataclass(frozen=True)
class KnnGraph:
    """Nearest neighbours of every point, the point itself first.

    Attributes
    ----------
    indices : np.ndarray
        ``(n, k)`` int32 neighbour indices, column 0 the point itself.
    distances : np.ndarray
        ``(n, k)`` float32 distances under ``metric``.
    search_index : object or None
        The pynndescent index when one was built (lets UMAP transform new points), else None.
    method : str
        ``"exact"`` or ``"pynndescent"``.
    """

    indices: np.ndarray
    distances: np.ndarray
    search_index: object | None
    method: str


@dataclass(frozen=True)
class Reduction:
    """Coordinates for clustering and for plotting, with timings and the parameters that reproduce them.

    Attributes
    ----------
    cluster_coords : np.ndarray
        ``(n, cluster_dims)`` float32; HDBSCAN runs in this space.
    map_coords : np.ndarray
        ``(n, 2)`` float32; for plots.
    timings : dict of str to float
        Seconds for ``"knn"``, ``"umap_cluster"`` and ``"map"`` (packing included).
    params : dict
        Everything needed to reproduce the coordinates: requested and effective ``n_neighbors``, ``min_dist``,
        ``map_min_dist``, ``metric``, ``seed``, ``cluster_dims``, ``map_method``, ``n_epochs``, ``knn`` (``"exact"`` or
        ``"pynndescent"``), ``fallback`` (None, or why UMAP was not used), ``packed_bursts`` (repost bursts
        moved beside their nearest content on the map; see layout.py) and library versions.
    knn : KnnGraph or None
        The shared kNN graph in the original space, ``n_neighbors`` columns (self first); None below 4 points. Its
        indices drive the selection score (``metrics.knn_modularity``), its last column the background test
        (``noise.core_distances``).
    """

    cluster_coords: np.ndarray
    map_coords: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    knn: KnnGraph | None = None


def knn_graph(
    X: np.ndarray, *, n_neighbors: int, metric: str = "cosine", seed: int | None = 42, method: str = "auto"
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
        Seed for pynndescent (the exact search needs none). With a seed pynndescent runs on one thread: its graph
        depends on the thread count otherwise.
    method : {"auto", "exact", "pynndescent"}, default "auto"
        "auto" is exact up to ``EXACT_KNN_MAX`` points, pynndescent (with UMAP's own settings) above.

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
    if method == "exact" or (method == "auto" and n <= EXACT_KNN_MAX):
        idx, dist = _exact_knn(X, n_neighbors, metric)
        return KnnGraph(idx, dist, None, "exact")

    from umap.umap_ import nearest_neighbors

    idx, dist, index = nearest_neighbors(
        X,
        n_neighbors,
        metric,
        {},
        False,
        np.random.RandomState(seed),
        low_memory=True,
        use_pynndescent=True,
        n_jobs=1 if seed is not None else -1,
        verbose=False,
    )
    idx, dist = _self_first(idx.astype(np.int32), dist.astype(np.float32))
    return KnnGraph(idx, dist, index, "pynndescent")


def _exact_knn(X: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    if metric in ("cosine", "correlation"):
        # Both are 1 - cos of (centred, for correlation) rows: rank by euclidean distance between unit rows, which
        # scikit-learn computes with its fast GEMM-based kernel, then convert back: 1 - cos = d**2 / 2.
        Y = X.astype(np.float64) - (X.mean(axis=1, keepdims=True) if metric == "correlation" else 0.0)
        norms = np.linalg.norm(Y, axis=1, keepdims=True)
        Y = (Y / np.where(norms == 0, 1.0, norms)).astype(np.float32)
        dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="euclidean").fit(Y).kneighbors(Y)
        dist = dist**2 / 2.0
    else:
        dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=metric).fit(X).kneighbors(X)
    return _self_first(idx.astype(np.int32), dist.astype(np.float32))


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


def _validate(
    embeddings,
    *,
    cluster_dims,
    map_method,
    n_neighbors,
    min_dist,
    map_min_dist,
    metric,
    seed,
    n_epochs,
    tsne_perplexity,
    knn,
):
    X = np.asarray(embeddings)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n_points, dim), got shape {X.shape}")
    if X.shape[1] < 1:
        raise ValueError("embeddings must have at least one column")
    if not np.issubdtype(X.dtype, np.number) or not np.isfinite(X).all():
        raise ValueError("embeddings must be finite numbers (drop failed rows before reducing)")
    if isinstance(cluster_dims, bool) or not isinstance(cluster_dims, (int, np.integer)) or cluster_dims < 1:
        raise ValueError(f"cluster_dims must be an integer >= 1, got {cluster_dims!r}")
    if map_method not in MAP_METHODS:
        raise ValueError(f"map_method must be one of {MAP_METHODS}, got {map_method!r}")
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 2:
        raise ValueError(f"n_neighbors must be an integer >= 2, got {n_neighbors!r}")
    for name, value in (("min_dist", min_dist), ("map_min_dist", map_min_dist)):
        if not (0.0 <= value <= 1.0):
            raise ValueError(f"{name} must be in [0, 1] (UMAP's spread is 1), got {value}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    if n_epochs is not None and (isinstance(n_epochs, bool) or not isinstance(n_epochs, (int, np.integer))):
        raise ValueError(f"n_epochs must be a positive integer or None, got {n_epochs!r}")
    if n_epochs is not None and n_epochs < 1:
        raise ValueError(f"n_epochs must be a positive integer or None, got {n_epochs!r}")
    if not tsne_perplexity > 0:
        raise ValueError(f"tsne_perplexity must be > 0, got {tsne_perplexity}")
    if knn not in KNN_METHODS:
        raise ValueError(f"knn must be one of {KNN_METHODS}, got {knn!r}")
    return X


def reduce(
    embeddings: np.ndarray,
    *,
    cluster_dims: int = DEFAULT_CLUSTER_DIMS,
    map_method: str = "umap",
    n_neighbors: int = 15,
    min_dist: float = 0.0,
    map_min_dist: float = 0.1,
    metric: str = "cosine",
    seed: int | None = 42,
    n_epochs: int | None = None,
    progress: bool = False,
    tsne_perplexity: float = 30.0,
    knn: str = "auto",
    pack: bool = True,
) -> Reduction:
    """Reduce embeddings to a clustering space and a 2-D map that share one kNN graph.

    Parameters
    ----------
    embeddings : np.ndarray
        ``(n, d)`` finite vectors (L2-normalised CLIP embeddings); any ``n >= 0``.
    cluster_dims : int, default DEFAULT_CLUSTER_DIMS
        Dimension of the space HDBSCAN runs in (see the evidence at ``DEFAULT_CLUSTER_DIMS``).
    map_method : {"umap", "tsne"}, default "umap"
        2-D map: UMAP from the same graph, or openTSNE (seeded, perplexity affinities from the same graph).
    n_neighbors : int, default 15
        kNN size (self included) for both UMAP fits; shrunk to ``n - 1`` for small inputs (stated in ``params``).
    min_dist : float, default 0.0
        UMAP ``min_dist`` of the clustering fit (0 packs dense regions for density clustering).
    map_min_dist : float, default 0.1
        UMAP ``min_dist`` of the 2-D map (spreads points out for reading).
    metric : str, default "cosine"
        Input metric of the kNN graph.
    seed : int or None, default 42
        ``random_state`` for pynndescent, UMAP and t-SNE. UMAP runs single-threaded whenever a seed is set; None
        trades reproducibility for threads.
    n_epochs : int or None, default None
        UMAP epochs; None lets UMAP choose (200 above 10,000 points, 500 below).
    progress : bool, default False
        Let UMAP / openTSNE report progress.
    tsne_perplexity : float, default 30.0
        t-SNE perplexity; the shared graph is then computed with ``3 * perplexity + 1`` neighbours (UMAP uses the
        first ``n_neighbors`` columns).
    knn : {"auto", "exact", "pynndescent"}, default "auto"
        How the shared graph is found (see :func:`knn_graph`; "auto" is exact up to ``EXACT_KNN_MAX`` points).
    pack : bool, default True
        Move the map's repost bursts beside their nearest content (:func:`pack_map`) instead of leaving them where
        UMAP flings them, at the edges of the view. The clustering space is never packed.

    Returns
    -------
    Reduction
        With ``timings`` for "knn", "umap_cluster" and "map", ``params`` that reproduce the result and the shared
        graph as ``knn``. Fewer than 4 points cannot make a UMAP graph: the coordinates then come from PCA padded
        with zeros (n = 1: zeros), ``params["fallback"]`` says so and ``knn`` is None.
    """
    X = _validate(
        embeddings,
        cluster_dims=cluster_dims,
        map_method=map_method,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        map_min_dist=map_min_dist,
        metric=metric,
        seed=seed,
        n_epochs=n_epochs,
        tsne_perplexity=tsne_perplexity,
        knn=knn,
    )
    n = X.shape[0]
    X = X.astype(np.float32, copy=False)
    params = {
        "cluster_dims": int(cluster_dims),
        "map_method": map_method,
        "n_neighbors_requested": int(n_neighbors),
        "n_neighbors": int(min(n_neighbors, max(n - 1, 0))),
        "min_dist": float(min_dist),
        "map_min_dist": float(map_min_dist),
        "metric": metric,
        "seed": seed,
        "n_epochs": n_epochs,
        "knn": None,
        "knn_k": None,
        "fallback": None,
        "packed_bursts": 0,
        "versions": _versions(map_method),
    }
    timings = {"knn": 0.0, "umap_cluster": 0.0, "map": 0.0}
    if n < _MIN_UMAP_POINTS:
        start = time.perf_counter()
        cluster, map_ = _pca_fallback(X, cluster_dims), _pca_fallback(X, 2)
        timings["umap_cluster"] = time.perf_counter() - start
        params["fallback"] = f"PCA: {n} point(s) are too few for a UMAP graph (needs >= {_MIN_UMAP_POINTS})"
        params["n_neighbors"] = None
        return Reduction(cluster, map_, timings, params)

    k = params["n_neighbors"]
    knn_k = k
    if map_method == "tsne":
        knn_k = int(min(n - 1, max(k, math.ceil(3 * tsne_perplexity) + 1)))
        params["tsne_perplexity"] = float(tsne_perplexity)
    start = time.perf_counter()
    graph = knn_graph(X, n_neighbors=knn_k, metric=metric, seed=seed, method=knn)
    timings["knn"] = time.perf_counter() - start
    params["knn"], params["knn_k"] = graph.method, knn_k
    if k < n_neighbors:
        params["fallback"] = f"n_neighbors shrunk from {n_neighbors} to {k}: only {n} points"

    start = time.perf_counter()
    cluster = _umap(X, graph, k, cluster_dims, min_dist, metric, seed, n_epochs, progress)
    timings["umap_cluster"] = time.perf_counter() - start

    start = time.perf_counter()
    if map_method == "tsne":
        map_, params["tsne_perplexity_effective"] = _tsne(X, graph, tsne_perplexity, seed, progress)
    elif cluster_dims == 2 and map_min_dist == min_dist:
        map_ = cluster.copy()  # the same fit: no need to run it twice
    else:
        map_ = _umap(X, graph, k, 2, map_min_dist, metric, seed, n_epochs, progress)
    shared = KnnGraph(graph.indices[:, :k], graph.distances[:, :k], graph.search_index, graph.method)
    if pack:
        map_, params["packed_bursts"] = pack_map(X, shared, map_)
    timings["map"] = time.perf_counter() - start
    return Reduction(cluster, map_, timings, params, shared)


def pack_map(X: np.ndarray, graph: KnnGraph, coords: np.ndarray) -> tuple[np.ndarray, int]:
    """Move the map's repost bursts beside their nearest content (see layout.py).

    Parameters
    ----------
    X : np.ndarray
        ``(n, d)`` original vectors.
    graph : KnnGraph
        The shared kNN graph (``Reduction.knn``).
    coords : np.ndarray
        ``(n, 2)`` map.

    Returns
    -------
    coords : np.ndarray
        The packed ``(n, 2)`` float32 map.
    n_bursts : int
        Number of repost bursts moved.
    """
    bursts = layout.find_bursts(X, graph.indices, graph.distances)
    return layout.pack(coords, bursts.labels, bursts.anchors), bursts.n_bursts


def _umap(X, graph: KnnGraph, k, dims, min_dist, metric, seed, n_epochs, progress) -> np.ndarray:
    import umap

    n = X.shape[0]
    # Copies: UMAP marks disconnected neighbours in place in the arrays it is given.
    knn = (graph.indices[:, :k].copy(), graph.distances[:, :k].copy(), graph.search_index)
    model = umap.UMAP(
        n_neighbors=k,
        n_components=dims,
        min_dist=min_dist,
        metric=metric,
        random_state=seed,
        n_epochs=n_epochs,
        precomputed_knn=knn,
        # Small inputs: spectral init needs more points than dimensions; random init is UMAP's own fallback.
        init="spectral" if n > dims + 2 else "random",
        n_jobs=1 if seed is not None else -1,
        verbose=progress,
        tqdm_kwds={"disable": not progress},
    )
    with warnings.catch_warnings():
        # Expected and handled here: no search index below 4,096 points (no transform() needed), the seed forcing
        # one thread, and spectral init falling back to random for tiny or disconnected graphs.
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state.*")
        warnings.filterwarnings("ignore", message=".*[Ss]pectral initiali[sz]ation failed.*")
        warnings.filterwarnings("ignore", message=".*Graph is not fully connected.*")
        coords = model.fit_transform(X)
    return np.ascontiguousarray(coords, dtype=np.float32)


def _tsne(X, graph: KnnGraph, perplexity, seed, progress) -> tuple[np.ndarray, float]:
    from openTSNE import TSNE
    from openTSNE.affinity import PerplexityBasedNN
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    idx, dist = graph.indices[:, 1:], graph.distances[:, 1:]  # openTSNE wants neighbours without the point itself
    effective = float(min(perplexity, (idx.shape[1]) / 3.0))
    affinities = PerplexityBasedNN(
        perplexity=effective,
        knn_index=PrecomputedNeighbors(idx.astype(np.int64), dist.astype(np.float64)),
        verbose=progress,
    )
    tsne = TSNE(n_components=2, random_state=seed, n_jobs=1 if seed is not None else -1, verbose=progress)
    # PCA initialisation (openTSNE's default, seeded) needs X: pass both.
    embedding = tsne.fit(X, affinities=affinities)
    return np.ascontiguousarray(np.asarray(embedding), dtype=np.float32), effective


def _pca_fallback(X: np.ndarray, dims: int) -> np.ndarray:
    n = X.shape[0]
    out = np.zeros((n, dims), dtype=np.float32)
    if n >= 2:
        centred = X - X.mean(axis=0)
        u, s, _ = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
        take = min(dims, s.shape[0])
        out[:, :take] = (u[:, :take] * s[:take]).astype(np.float32)
    return out


def _versions(map_method: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    names = ["umap-learn", "pynndescent", "numpy"] + (["openTSNE"] if map_method == "tsne" else [])
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found

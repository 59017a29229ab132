"""Dimension reduction for clustering and for the map, from one kNN graph.

The kNN graph of the embeddings is the expensive part of UMAP on 512-D vectors, and both reductions need the same
graph, so it is computed once (:mod:`.knn`: exact up to 80,000 points, pynndescent above), and so is UMAP's fuzzy
membership graph built from it. Two layouts are optimised from that graph with umap-learn's own SGD:

- a ``cluster_dims``-D layout with ``min_dist=0`` (packs dense regions; HDBSCAN runs here). Clustering the 2-D map
  instead swallows background points into clusters (89-98 % of injected noise in DESIGN's test);
- a 2-D layout (or openTSNE t-SNE, seeded) for plots only, with repost bursts moved beside their nearest content
  (repost_packing.py) instead of being flung to the edges.

Both start from the principal components of the embeddings (:func:`principal_components`): O(n), deterministic, and
the same whatever the graph's shape. UMAP's default spectral initialisation solves one eigenproblem per connected
component of the graph, and social-media collections have many (repost bursts): at 200,000 points it had not finished
after 22 minutes (issue 13), and on some real sets its near-degenerate eigenvectors made the layout differ from one
process to the next.

Threads. The result is the same at any thread count (:mod:`.threads`): the exact kNN search shares fixed product tiles
out over the threads; pynndescent, whose updates are partitioned by thread, runs on one; BLAS runs on one thread here
(the principal components take 0.5 s at 40,000 points). UMAP's SGD is reproducible only single-threaded (its parallel
mode races on shared coordinates), so by default the two layouts run at once, each single-threaded and seeded: the
map in a second process beside the clustering layout (:data:`BESIDE_MIN_POINTS`), or after it in this one with one
thread; the same seeded function either way, so the same map. ``parallel_layout=True`` trades reproducibility for
speed on many cores: both layouts and pynndescent use every thread, one after the other.

The graph itself is returned too (``Reduction.knn``): the background test (cluster/background.py) and the
selection score (cluster/modularity.py's knn_modularity) work in the original space from it.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import time
from dataclasses import dataclass, field

import numpy as np

from clustering.analysis.defaults import DEFAULT_CLUSTER_DIMS
from clustering.analysis.space import repost_packing
from clustering.analysis.space.knn_graph import KNN_METHODS, METRICS, KnnGraph, knn_graph
from clustering.analysis.space.tsne import tsne_map
from clustering.analysis.space.umap_layout import MapProcess, UmapFit, membership_graph, timed
from clustering.analysis.threads import available_threads, single_threaded_blas

MAP_METHODS = ("umap", "tsne")
# The map is laid out in a second process beside the clustering layout from this many points (and 2+ threads): the
# process's start (a fresh interpreter importing UMAP, 3-6 s) is then small against the map's own fit (26 s at 50,000
# points single-threaded, 2 cores).
BESIDE_MIN_POINTS = 20_000
# Below this many points UMAP cannot build a graph (it needs n_neighbors >= 2, i.e. 3 points); the reduction falls
# back to PCA (padded with zeros) and says so in ``params["fallback"]``.
_MIN_UMAP_POINTS = 4
# Rows per block where a pass over the embeddings would otherwise copy all of them (PCA, finiteness check).
_CHUNK = 16_384


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
        Seconds for ``"knn"``, ``"graph"`` (UMAP's membership graph and the PCA initialisation), ``"umap_cluster"``
        and ``"map"`` (packing included). A map laid out beside the clustering layout overlaps it in time.
    params : dict
        Everything needed to reproduce the coordinates: requested and effective ``n_neighbors``, ``min_dist``,
        ``map_min_dist``, ``metric``, ``seed``, ``cluster_dims``, ``map_method``, ``n_epochs``, ``knn`` (``"exact"``,
        ``"pynndescent"`` or ``"cuml"``), ``init`` ("pca"), ``threads``, ``layout`` (how the layouts ran and whether
        they are reproducible), ``fallback`` (None, or why UMAP was not used), ``packed_bursts`` (repost bursts
        moved beside their nearest content on the map; see repost_packing.py) and library versions.
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


def principal_components(X: np.ndarray, dims: int) -> np.ndarray:
    """The first ``dims`` principal-component scores of ``X``, deterministic and without copying ``X``.

    The ``d x d`` covariance is accumulated in float64 blocks of rows and diagonalised; each axis is signed so that
    its largest loading is positive. Columns beyond ``min(n - 1, d)`` are zeros.

    Parameters
    ----------
    X : np.ndarray
        ``(n, d)`` data.
    dims : int
        Number of components.

    Returns
    -------
    np.ndarray
        ``(n, dims)`` float32 scores (zeros for fewer than 2 points).
    """
    n, d = X.shape
    out = np.zeros((n, dims), dtype=np.float32)
    if n < 2:
        return out
    mean = X.mean(axis=0, dtype=np.float64)
    covariance = np.zeros((d, d))
    for start in range(0, n, _CHUNK):
        block = X[start : start + _CHUNK].astype(np.float64) - mean
        covariance += block.T @ block
    _, vectors = np.linalg.eigh(covariance)
    take = min(dims, d, n - 1)  # n centred points span at most n - 1 directions
    axes = vectors[:, ::-1][:, :take]
    axes *= np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(take)])
    for start in range(0, n, _CHUNK):
        out[start : start + _CHUNK, :take] = (X[start : start + _CHUNK].astype(np.float64) - mean) @ axes
    return out


def _validate(embeddings, *, cluster_dims, map_method, n_neighbors, min_dist, map_min_dist, metric, seed, n_epochs,
              tsne_perplexity, knn):  # fmt: skip
    X = np.asarray(embeddings)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n_points, dim), got shape {X.shape}")
    if X.shape[1] < 1:
        raise ValueError("embeddings must have at least one column")
    finite = all(np.isfinite(X[s : s + _CHUNK]).all() for s in range(0, X.shape[0], _CHUNK))
    if not np.issubdtype(X.dtype, np.number) or not finite:
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


@single_threaded_blas()
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
    threads: int | None = None,
    parallel_layout: bool = False,
    use_gpu: bool = False,
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
        ``random_state`` for pynndescent, UMAP and t-SNE; None lets UMAP use every thread (see ``parallel_layout``).
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
        UMAP flings them, at the edges of the view, and draw far islands in. The clustering space is never packed.
    threads : int or None, default None
        Threads for the kNN search and BLAS, and whether the map may run beside the clustering layout (2+); None:
        every core (:func:`available_threads`). The result is the same for the same seed and thread count.
    parallel_layout : bool, default False
        Run UMAP's optimisation on every thread (faster on many cores, not reproducible run to run), the two layouts
        one after the other. Also what a ``seed`` of None gives.
    use_gpu : bool, default False
        kNN graph and layouts with cuML (:mod:`.gpu`); the membership graph and initialisation stay the CPU's.

    Returns
    -------
    Reduction
        With ``timings`` for "knn", "graph", "umap_cluster" and "map", ``params`` that reproduce the result and the
        shared graph as ``knn``. Fewer than 4 points cannot make a UMAP graph: the coordinates then come from PCA
        padded with zeros (n = 1: zeros), ``params["fallback"]`` says so and ``knn`` is None.
    """
    X = _validate(embeddings, cluster_dims=cluster_dims, map_method=map_method, n_neighbors=n_neighbors,
                  min_dist=min_dist, map_min_dist=map_min_dist, metric=metric, seed=seed, n_epochs=n_epochs,
                  tsne_perplexity=tsne_perplexity, knn=knn)  # fmt: skip
    n = X.shape[0]
    X = X.astype(np.float32, copy=False)
    threads = available_threads(threads)
    parallel_layout = bool(parallel_layout or seed is None)
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
        "init": "pca",
        "threads": threads,
        "layout": None,
        "fallback": None,
        "packed_bursts": 0,
        "versions": _versions(map_method),
    }
    timings = {"knn": 0.0, "graph": 0.0, "umap_cluster": 0.0, "map": 0.0}
    if n < _MIN_UMAP_POINTS:
        start = time.perf_counter()
        cluster, map_ = principal_components(X, cluster_dims), principal_components(X, 2)
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
    graph = knn_graph(X, n_neighbors=knn_k, metric=metric, seed=seed, method=knn, threads=threads,
                      reproducible=not parallel_layout, use_gpu=use_gpu)  # fmt: skip
    timings["knn"] = time.perf_counter() - start
    params["knn"], params["knn_k"] = graph.method, knn_k
    if k < n_neighbors:
        params["fallback"] = f"n_neighbors shrunk from {n_neighbors} to {k}: only {n} points"
    shared = KnnGraph(np.ascontiguousarray(graph.indices[:, :k]), np.ascontiguousarray(graph.distances[:, :k]),
                      graph.method)  # fmt: skip

    start = time.perf_counter()
    memberships = membership_graph(X, shared, metric, n_epochs)
    components = principal_components(X, max(cluster_dims, 2))
    _return_freed_memory()
    timings["graph"] = time.perf_counter() - start
    fit = UmapFit(memberships, seed=seed, n_epochs=n_epochs, parallel=parallel_layout, progress=progress,
               gpu_data=X if use_gpu else None)  # fmt: skip

    map_beside = (
        map_method == "umap"
        and not (cluster_dims == 2 and map_min_dist == min_dist)
        and not (parallel_layout or use_gpu)
        and threads >= 2
        and n >= BESIDE_MIN_POINTS
    )
    params["layout"] = _layout_note(parallel_layout, use_gpu, map_beside)
    beside = MapProcess(fit, components[:, :2], map_min_dist) if map_beside else contextlib.nullcontext()
    with beside:
        cluster, timings["umap_cluster"] = timed(fit, components[:, :cluster_dims], min_dist)
        if map_beside:
            map_, timings["map"] = beside.result()  # the map's own time, not the wait for it
        else:
            start = time.perf_counter()
            if map_method == "tsne":
                map_, params["tsne_perplexity_effective"] = tsne_map(X, graph, tsne_perplexity, seed, progress)
            elif cluster_dims == 2 and map_min_dist == min_dist:
                map_ = cluster.copy()  # the same fit: no need to run it twice
            else:
                map_ = fit(components[:, :2], map_min_dist)
            timings["map"] = time.perf_counter() - start
    start = time.perf_counter()
    if pack:
        map_, params["packed_bursts"] = pack_map(X, shared, map_)
    timings["map"] += time.perf_counter() - start
    return Reduction(cluster, map_, timings, params, shared)


def _layout_note(parallel: bool, use_gpu: bool, map_beside: bool) -> str:
    """How the layouts ran, as ``metrics.json`` records it."""
    if use_gpu:
        return "cuML on the GPU, seeded (reproducible to about 3 digits)"
    if parallel:
        return "parallel: UMAP's SGD on every thread, not reproducible run to run"
    beside = ", the map in a second process beside the clustering layout" if map_beside else ""
    return f"reproducible: seeded single-threaded SGD{beside}"


def _return_freed_memory() -> None:
    """Hand the heap that the kNN search and the graph build freed back to the operating system before the long
    layouts: glibc keeps it otherwise (230 MB at 200,000 points, held through both layouts)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return  # not glibc (macOS, musl): its allocator returns memory its own way


def pack_map(X: np.ndarray, graph: KnnGraph, coords: np.ndarray) -> tuple[np.ndarray, int]:
    """Move the map's repost bursts beside their nearest content, then draw its outskirts in (see repost_packing.py).

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
        The packed ``(n, 2)`` float32 map, far islands drawn towards the middle.
    n_bursts : int
        Number of repost bursts moved.
    """
    bursts = repost_packing.find_bursts(X, graph.indices, graph.distances)
    packed = repost_packing.pack(coords, bursts.labels, bursts.anchors)
    return repost_packing.compress_outskirts(packed), bursts.n_bursts


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

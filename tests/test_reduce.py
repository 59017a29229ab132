"""reduce: one kNN graph, a cluster space that keeps the structure, a 2-D map, small inputs that never crash."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clustering.analysis.cluster.sweep import sweep
from clustering.analysis.defaults import DEFAULT_CLUSTER_DIMS
from clustering.analysis.space import reduce as reduce_module
from clustering.analysis.space import umap_layout
from clustering.analysis.space.reduce import Reduction, principal_components, reduce


def test_shapes_dtypes_timings_and_params(sphere_blobs, sphere_reduction):
    r = sphere_reduction
    n = len(sphere_blobs.X)
    assert isinstance(r, Reduction)
    assert r.cluster_coords.shape == (n, 5) and r.cluster_coords.dtype == np.float32
    assert r.map_coords.shape == (n, 2) and r.map_coords.dtype == np.float32
    assert np.isfinite(r.cluster_coords).all() and np.isfinite(r.map_coords).all()
    assert set(r.timings) == {"knn", "graph", "umap_cluster", "map"} and all(t >= 0 for t in r.timings.values())
    p = r.params
    assert (p["cluster_dims"], p["map_method"], p["n_neighbors"], p["seed"], p["metric"]) == (
        5,
        "umap",
        15,
        0,
        "cosine",
    )
    assert p["min_dist"] == 0.0 and p["map_min_dist"] == 0.1 and p["knn"] == "exact" and p["fallback"] is None
    assert "umap-learn" in p["versions"]


def test_cluster_space_keeps_the_known_clusters(sphere_blobs, sphere_reduction):
    # Scored on true cluster members: UMAP pulls this generator's background into the clusters (see bench/sweep.py).
    # Over three layouts: one seed's layout may split a cluster (0.73 for seed 0; UMAP's spectral initialisation
    # gives 0.70-0.92 on this generator's small sets as the PCA one does).
    fg = sphere_blobs.labels >= 0
    layouts = [sphere_reduction, *(reduce(sphere_blobs.X, cluster_dims=5, seed=s, pack=False) for s in (1, 2))]
    scores = [
        adjusted_rand_score(sphere_blobs.labels[fg], sweep(r.cluster_coords, [20], [5], progress=False)[0].labels[fg])
        for r in layouts
    ]
    assert np.mean(scores) > 0.8 and min(scores) > 0.6


def test_layouts_start_from_principal_components_and_equal_umap_learn_with_that_start(sphere_blobs, sphere_reduction):
    import umap

    X, graph = sphere_blobs.X, sphere_reduction.knn
    start = umap_layout.initial_layout(principal_components(X, 5), 0)
    model = umap.UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=0, init=start,
                      precomputed_knn=(graph.indices, graph.distances, None))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no search index below 4,096 points, the seed forcing one thread
        expected = model.fit_transform(X)
    assert sphere_reduction.params["init"] == "pca"
    assert np.array_equal(sphere_reduction.cluster_coords, expected)


def test_membership_graph_is_umaps_fuzzy_simplicial_set(sphere_blobs, sphere_reduction):
    from umap.umap_ import fuzzy_simplicial_set

    graph = sphere_reduction.knn
    ours = umap_layout.membership_graph(sphere_blobs.X, graph, "cosine", n_epochs=None)
    theirs, _, _ = fuzzy_simplicial_set(sphere_blobs.X, 15, None, "cosine", knn_indices=graph.indices,
                                        knn_dists=graph.distances)  # fmt: skip
    theirs = theirs.tocoo()
    theirs.sum_duplicates()
    theirs.data[theirs.data < theirs.data.max() / 500.0] = 0.0  # simplicial_set_embedding's pruning below 10k points
    theirs.eliminate_zeros()
    assert ours.nnz == theirs.nnz > 0
    assert np.array_equal(ours.row, theirs.row) and np.array_equal(ours.col, theirs.col)
    assert np.array_equal(ours.data, theirs.data)


def test_umaps_kernels_come_from_the_disk_cache_with_the_same_code_and_results(sphere_reduction):
    import importlib

    import numba

    umap_layout.use_disk_cached_umap_kernels()
    for module_name, name in umap_layout.UMAP_KERNELS:
        kernel = getattr(importlib.import_module(module_name), name)
        assert type(kernel._cache).__name__ == "FunctionCache", name  # numba's NullCache when not cached
        assert kernel.py_func.__module__ == module_name
    from umap import umap_

    cached = umap_.smooth_knn_dist
    options = {k: v for k, v in cached.targetoptions.items() if k != "nopython"}
    compiled_here = numba.njit(locals=cached.locals, **options)(cached.py_func)  # as umap compiles it, no cache
    distances = sphere_reduction.knn.distances.astype(np.float32)
    for found, expected in zip(cached(distances, 15.0), compiled_here(distances, 15.0), strict=True):
        assert np.array_equal(found, expected)


def test_the_parallel_epoch_is_never_disk_cached():
    """umap builds the serial and the parallel epoch from one Python function and numba's cache key has no compile
    options: a cached parallel variant would later serve seeded (serial) layouts and make them differ run to run."""
    from umap import layouts

    umap_layout.use_disk_cached_umap_kernels()
    serial = layouts._nb_optimize_layout_euclidean_single_epoch
    parallel = layouts._nb_optimize_layout_euclidean_single_epoch_parallel
    assert serial.py_func is parallel.py_func  # the collision this guards against still exists in umap
    assert type(serial._cache).__name__ == "FunctionCache"
    assert type(parallel._cache).__name__ == "NullCache"


def test_principal_components_match_an_svd_and_are_signed_deterministically():
    X = np.random.default_rng(2).normal(size=(300, 12)).astype(np.float32) * np.linspace(3, 0.5, 12)
    pcs = principal_components(X, 4)
    centred = X.astype(np.float64) - X.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    expected = (u[:, :4] * s[:4]) * np.sign(vt[:4][np.arange(4), np.abs(vt[:4]).argmax(axis=1)])
    assert pcs.dtype == np.float32 and pcs.shape == (300, 4)
    assert np.allclose(pcs, expected, atol=1e-4)
    assert np.array_equal(principal_components(X[:2], 4)[:, 1:], np.zeros((2, 3)))  # more dims than points: zeros


def test_the_map_beside_the_clustering_layout_is_the_same_map(sphere_blobs, sphere_reduction, monkeypatch):
    # A second process lays the map out while this one lays out the cluster space: same seed, same coordinates.
    monkeypatch.setattr(reduce_module, "BESIDE_MIN_POINTS", 0)
    beside = reduce(sphere_blobs.X, cluster_dims=5, seed=0, threads=2)
    alone = reduce(sphere_blobs.X, cluster_dims=5, seed=0, threads=1)
    assert "second process" in beside.params["layout"] and "second process" not in alone.params["layout"]
    assert "reproducible" in alone.params["layout"]
    assert np.array_equal(beside.map_coords, alone.map_coords)
    assert np.array_equal(beside.cluster_coords, alone.cluster_coords) and np.array_equal(
        alone.cluster_coords, sphere_reduction.cluster_coords
    )


def test_parallel_layout_is_stated():
    X = np.random.default_rng(3).normal(size=(80, 8)).astype(np.float32)
    r = reduce(X, cluster_dims=3, n_epochs=20, parallel_layout=True)
    assert r.params["layout"].startswith("parallel") and "not reproducible" in r.params["layout"]


def test_the_map_is_a_separate_fit_from_the_cluster_space(sphere_reduction):
    # Different dims and min_dist: the map must not be a slice of the cluster coordinates.
    assert not np.allclose(sphere_reduction.map_coords, sphere_reduction.cluster_coords[:, :2])


def test_same_seed_same_coordinates(sphere_blobs):
    X = sphere_blobs.X[:150]
    a = reduce(X, cluster_dims=3, seed=7, n_epochs=30)
    b = reduce(X, cluster_dims=3, seed=7, n_epochs=30)
    assert np.array_equal(a.cluster_coords, b.cluster_coords) and np.array_equal(a.map_coords, b.map_coords)


def test_two_dims_with_equal_min_dist_reuses_the_cluster_fit(sphere_blobs):
    r = reduce(sphere_blobs.X[:120], cluster_dims=2, min_dist=0.1, map_min_dist=0.1, n_epochs=30, pack=False)
    assert np.array_equal(r.cluster_coords, r.map_coords)


def test_tsne_map_from_the_same_graph(sphere_blobs):
    r = reduce(sphere_blobs.X[:200], cluster_dims=4, map_method="tsne", tsne_perplexity=10, n_epochs=30)
    assert r.map_coords.shape == (200, 2) and np.isfinite(r.map_coords).all()
    assert r.params["map_method"] == "tsne" and r.params["knn_k"] == 31  # 3 * perplexity + 1, self included
    assert r.params["tsne_perplexity_effective"] == 10


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_too_few_points_fall_back_to_pca_and_say_so(n):
    X = np.random.default_rng(n).normal(size=(n, 16)).astype(np.float32)
    r = reduce(X, cluster_dims=5)
    assert r.cluster_coords.shape == (n, 5) and r.map_coords.shape == (n, 2)
    assert np.isfinite(r.cluster_coords).all()
    assert "PCA" in r.params["fallback"]


@pytest.mark.parametrize(("n", "method"), [(4, "umap"), (9, "umap"), (9, "tsne")])
def test_small_inputs_shrink_n_neighbors_and_say_so(n, method):
    X = np.random.default_rng(n).normal(size=(n, 16)).astype(np.float32)
    r = reduce(X, cluster_dims=5, map_method=method, n_epochs=20)
    assert r.params["n_neighbors"] == n - 1 and r.params["n_neighbors_requested"] == 15
    assert "shrunk" in r.params["fallback"]
    assert r.cluster_coords.shape == (n, 5) and np.isfinite(r.cluster_coords).all()
    assert np.isfinite(r.map_coords).all()


def test_default_cluster_dims_is_a_clustering_space():
    assert 2 <= DEFAULT_CLUSTER_DIMS <= 15


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cluster_dims": 0}, "cluster_dims must be an integer >= 1"),
        ({"map_method": "pca"}, "map_method must be one of"),
        ({"n_neighbors": 1}, "n_neighbors must be an integer >= 2"),
        ({"min_dist": -0.1}, "min_dist must be in"),
        ({"map_min_dist": 2.0}, "map_min_dist must be in"),
        ({"metric": "hamming"}, "metric must be one of"),
        ({"seed": -1}, "seed must be a non-negative integer or None"),
        ({"n_epochs": 0}, "n_epochs must be a positive integer or None"),
        ({"knn": "faiss"}, "knn must be one of"),
        ({"tsne_perplexity": 0}, "tsne_perplexity must be > 0"),
    ],
)
def test_validation_names_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        reduce(np.zeros((10, 4), dtype=np.float32), **kwargs)


@pytest.mark.parametrize(
    ("X", "message"),
    [(np.zeros(5), "2-D array"), (np.array([[np.nan, 1.0]] * 5), "finite"), (np.zeros((5, 0)), "at least one column")],
)
def test_bad_embeddings_are_rejected(X, message):
    with pytest.raises(ValueError, match=message):
        reduce(X)


def test_a_script_without_a_main_guard_runs_the_map_beside_once(tmp_path):
    # The map's process must not re-run the caller's script (multiprocessing's "spawn" would, analysis and all).
    script = tmp_path / "analysis_script.py"
    script.write_text(
        "import numpy as np\n"
        "from clustering.analysis.space import reduce as r\n"
        "r.BESIDE_MIN_POINTS = 0\n"
        "print('script ran', flush=True)\n"
        "X = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)\n"
        "print(r.reduce(X, cluster_dims=3, n_epochs=20, threads=2).params['layout'])\n"
    )
    root = str(Path(reduce_module.__file__).resolve().parents[3])
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": root})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("script ran") == 1 and "second process" in done.stdout

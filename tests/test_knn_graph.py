"""The shared kNN graph (space/knn_graph.py): exact against brute force, other metrics, pynndescent against exact."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from clustering.analysis.space.knn_graph import knn_graph


def test_exact_graph_matches_brute_force_and_puts_self_first():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 24)).astype(np.float32)
    X[10] = X[11] = X[12]  # exact duplicates tie at distance 0 with the point itself
    g = knn_graph(X, n_neighbors=8, metric="cosine")
    assert g.method == "exact"
    assert np.array_equal(g.indices[:, 0], np.arange(300)) and (g.distances[:, 0] == 0).all()
    assert set(g.indices[10, 1:3]) == {11, 12} and np.allclose(g.distances[10, 1:3], 0, atol=1e-6)
    dist, idx = NearestNeighbors(n_neighbors=8, metric="cosine", algorithm="brute").fit(X).kneighbors(X)
    clean = np.setdiff1d(np.arange(300), [10, 11, 12])
    assert (np.sort(g.indices[clean], 1) == np.sort(idx[clean], 1)).mean() > 0.99
    assert np.allclose(np.sort(g.distances[clean], 1), np.sort(dist[clean], 1), atol=1e-5)
    assert (np.diff(g.distances, axis=1) >= -1e-6).all()


@pytest.mark.parametrize("metric", ["euclidean", "correlation", "manhattan"])
def test_exact_graph_for_other_metrics(metric):
    X = np.random.default_rng(1).normal(size=(120, 6))
    g = knn_graph(X, n_neighbors=5, metric=metric)
    _, idx = NearestNeighbors(n_neighbors=5, metric=metric, algorithm="brute").fit(X).kneighbors(X)
    assert (np.sort(g.indices, 1) == np.sort(idx, 1)).mean() > 0.99


@pytest.mark.slow
def test_pynndescent_graph_is_reproducible_and_close_to_exact(sphere_blobs):
    X = sphere_blobs.X
    a = knn_graph(X, n_neighbors=10, method="pynndescent", seed=3, threads=2)
    b = knn_graph(X, n_neighbors=10, method="pynndescent", seed=3, threads=2)
    exact = knn_graph(X, n_neighbors=10, method="exact")
    # Two threads, the same seed: the same graph (pynndescent orders its threads' updates).
    assert a.method == "pynndescent" and np.array_equal(a.indices, b.indices)
    # Unit rows are searched as euclidean (no normalised copy); distances are still cosine.
    assert np.allclose(a.distances[:, 1:], 1.0 - np.einsum("ij,ikj->ik", X, X[a.indices[:, 1:]]), atol=1e-5)
    assert np.array_equal(a.indices[:, 0], np.arange(len(X)))
    assert (np.sort(a.indices, 1) == np.sort(exact.indices, 1)).mean() > 0.95

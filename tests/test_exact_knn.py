"""Exact cosine neighbours (exact_knn.py) against a full sort."""

from __future__ import annotations

import numpy as np
import pytest

from clustering.analysis.space import exact_knn


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.mark.parametrize(("n", "k", "threads"), [(300, 15, 1), (300, 15, 2), (57, 57, 2), (40, 1, 1)])
def test_neighbours_match_a_full_sort(n, k, threads):
    X = unit_rows(n, 24, seed=n + k)
    indices, distances = exact_knn.cosine_neighbours(X, k, threads=threads)
    similarities = X.astype(np.float64) @ X.T.astype(np.float64)
    expected = np.argsort(-similarities, axis=1, kind="stable")[:, :k]
    assert indices.dtype == np.int32 and distances.dtype == np.float32
    assert np.array_equal(indices, expected)
    exact = 1.0 - np.take_along_axis(similarities, expected, axis=1)
    assert np.allclose(distances, np.maximum(exact, 0.0), atol=1e-6)
    assert (np.diff(distances, axis=1) >= 0).all() and (distances >= 0).all()


@pytest.mark.parametrize("threads", [1, 2])
def test_small_blocks_and_any_thread_count_give_the_same_graph(monkeypatch, threads):
    # Exact equality: the products come from the same tiles of the same grid, whatever the blocks and threads.
    X = unit_rows(500, 16, seed=3)
    monkeypatch.setattr(exact_knn, "_TILE", 16)  # 32 tiles a side, the last one short
    whole = exact_knn.cosine_neighbours(X, 10, threads=1)
    monkeypatch.setattr(exact_knn, "_BLOCK_BYTES", 4 * 500 * 40)  # 40 rows: 2 tiles per block, the last block short
    blocked = exact_knn.cosine_neighbours(X, 10, threads=threads)
    assert np.array_equal(whole[0], blocked[0]) and np.array_equal(whole[1], blocked[1])


def test_exact_duplicates_tie_towards_the_earlier_point():
    X = unit_rows(60, 8, seed=5)
    X[[10, 30, 50]] = X[20]  # four copies of one image
    for threads in (1, 2):
        indices, _ = exact_knn.cosine_neighbours(X, 4, threads=threads)
        assert sorted(indices[20].tolist()) == [10, 20, 30, 50]
        assert indices[50].tolist()[:4] == sorted(indices[50].tolist()[:4])  # equal similarities: ascending index


def test_rejects_k_out_of_range():
    with pytest.raises(ValueError, match=r"k must be in \[1, n=5\]"):
        exact_knn.cosine_neighbours(unit_rows(5, 4, seed=0), 6)


def test_query_neighbours_are_the_exact_nearest_at_any_thread_count():
    rng = np.random.default_rng(5)
    reference = rng.standard_normal((1300, 24)).astype(np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    queries = reference[:700] + 0.1 * rng.standard_normal((700, 24)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    one = exact_knn.query_neighbours(queries, reference, 9, threads=1)
    two = exact_knn.query_neighbours(queries, reference, 9, threads=2)
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])
    brute = np.argsort(-(queries.astype(np.float64) @ reference.T.astype(np.float64)), axis=1, kind="stable")[:, :9]
    assert (one[0] == brute).mean() > 0.999
    assert np.all(np.diff(one[1], axis=1) <= 0)  # most similar first

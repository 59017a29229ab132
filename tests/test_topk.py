"""Exact cosine neighbours (topk.py) against a full sort."""

from __future__ import annotations

import numpy as np
import pytest

from clustering.analysis import topk


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.mark.parametrize(("n", "k", "threads"), [(300, 15, 1), (300, 15, 2), (57, 57, 2), (40, 1, 1)])
def test_neighbours_match_a_full_sort(n, k, threads):
    X = unit_rows(n, 24, seed=n + k)
    indices, distances = topk.cosine_neighbours(X, k, threads=threads)
    similarities = X.astype(np.float64) @ X.T.astype(np.float64)
    expected = np.argsort(-similarities, axis=1, kind="stable")[:, :k]
    assert indices.dtype == np.int32 and distances.dtype == np.float32
    assert np.array_equal(indices, expected)
    exact = 1.0 - np.take_along_axis(similarities, expected, axis=1)
    assert np.allclose(distances, np.maximum(exact, 0.0), atol=1e-6)
    assert (np.diff(distances, axis=1) >= 0).all() and (distances >= 0).all()


def test_small_blocks_give_the_same_graph(monkeypatch):
    X = unit_rows(500, 16, seed=3)
    whole = topk.cosine_neighbours(X, 10)
    monkeypatch.setattr(topk, "_BLOCK_BYTES", 4 * 500 * 7)  # 7 rows per block, the last one short
    blocked = topk.cosine_neighbours(X, 10, threads=2)
    assert np.array_equal(whole[0], blocked[0]) and np.array_equal(whole[1], blocked[1])


def test_rejects_k_out_of_range():
    with pytest.raises(ValueError, match=r"k must be in \[1, n=5\]"):
        topk.cosine_neighbours(unit_rows(5, 4, seed=0), 6)

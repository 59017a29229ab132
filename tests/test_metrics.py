"""score_setting: values equal scikit-learn / hdbscan on small inputs, sampling is stated and seeded, never raises."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import calinski_harabasz_score, silhouette_score

from clustering.analysis.metrics import METRIC_DOCS, cosine_silhouette, knn_modularity, score_setting
from clustering.analysis.sweep import SettingResult, sweep


@pytest.fixture(scope="module")
def scored_input(sphere_blobs, sphere_reduction):
    result = sweep(sphere_reduction.cluster_coords, [15], [5], progress=False)[0]
    assert result.n_clusters >= 2 and (result.labels == -1).any()  # a useful case: clusters and noise
    return result, sphere_reduction.cluster_coords, sphere_blobs.X


def test_row_has_every_documented_column_in_order(scored_input):
    row = score_setting(*scored_input)
    assert list(row) == list(METRIC_DOCS)
    assert all(isinstance(text, str) and text for text in METRIC_DOCS.values())


def test_exact_values_match_sklearn_and_hdbscan(scored_input, reference_hdbscan):
    result, coords, X = scored_input
    row = score_setting(result, coords, X, sample_size=10_000)
    ref = reference_hdbscan(coords, 15, 5)
    keep = ref.labels_ >= 0

    assert row["silhouette_exact"] is True and row["silhouette_sample_size"] == keep.sum()
    assert row["clusters"] == ref.labels_.max() + 1
    assert row["noise_fraction"] == pytest.approx((~keep).mean())
    assert row["mean_persistence"] == pytest.approx(ref.cluster_persistence_.mean())
    assert row["median_persistence"] == pytest.approx(np.median(ref.cluster_persistence_))
    assert row["dbcv"] == ref.relative_validity_
    assert row["silhouette_reduced"] == pytest.approx(silhouette_score(coords[keep], ref.labels_[keep]))
    assert row["silhouette_cosine"] == pytest.approx(silhouette_score(X[keep], ref.labels_[keep], metric="cosine"))
    assert row["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(coords[keep], ref.labels_[keep]))
    assert row["largest_cluster_share"] == pytest.approx(np.bincount(ref.labels_[keep]).max() / len(X))
    assert row["n"] == len(X) and row["min_cluster_size"] == 15 and row["min_samples"] == 5
    assert row["metric_seconds"] >= 0 and row["sweep_seconds"] == result.seconds


def test_sampled_silhouette_is_seeded_and_stated(scored_input):
    result, coords, X = scored_input
    a = score_setting(result, coords, X, sample_size=200, seed=3)
    b = score_setting(result, coords, X, sample_size=200, seed=3)
    c = score_setting(result, coords, X, sample_size=200, seed=4)
    exact = score_setting(result, coords, X)
    assert a["silhouette_exact"] is False and a["silhouette_sample_size"] == 200 and a["silhouette_seed"] == 3
    assert a["silhouette_reduced"] == b["silhouette_reduced"] != c["silhouette_reduced"]

    # The sample is a seeded draw from the non-noise points; the score is scikit-learn's on that sample.
    clustered = np.flatnonzero(result.labels >= 0)
    sample = np.sort(np.random.default_rng(3).choice(clustered, 200, replace=False))
    expected = silhouette_score(coords[sample], result.labels[sample])
    assert a["silhouette_reduced"] == pytest.approx(expected)
    # The cosine silhouette and Calinski-Harabasz stay exact on all non-noise points.
    assert a["silhouette_cosine"] == c["silhouette_cosine"] == exact["silhouette_cosine"]
    assert a["calinski_harabasz"] == pytest.approx(exact["calinski_harabasz"])


@pytest.mark.parametrize("seed", range(6))
def test_closed_form_cosine_silhouette_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    n, d, k = int(rng.integers(8, 300)), int(rng.integers(2, 30)), int(rng.integers(2, 7))
    X = (rng.normal(size=(n, d)) * rng.uniform(0.1, 5.0, size=(n, 1))).astype(np.float32)  # lengths must not matter
    X[1:4] = X[0]  # exact duplicates
    X[5] = 0.0  # an all-zero row: distance 1 to everything
    labels = rng.integers(0, k, n)
    labels[6] = k  # a singleton cluster scores 0
    expected = silhouette_score(X, labels, metric="cosine")
    assert cosine_silhouette(X, labels, chunk=17) == pytest.approx(expected, abs=1e-6)


def test_closed_form_cosine_silhouette_is_nan_when_undefined():
    X = np.random.default_rng(0).normal(size=(5, 3))
    assert math.isnan(cosine_silhouette(X, np.zeros(5, dtype=int)))
    assert math.isnan(cosine_silhouette(X, np.arange(5)))


def _result(labels, persistence=(), dbcv=0.0) -> SettingResult:
    labels = np.asarray(labels)
    n = labels.size
    return SettingResult(5, 5, labels, np.zeros(n), np.zeros(n), np.asarray(persistence, float), dbcv, 0.01)


UNDEFINED_WITH_ONE_CLUSTER = ("silhouette_reduced", "silhouette_cosine", "calinski_harabasz")


@pytest.mark.parametrize(
    ("labels", "persistence", "clusters"),
    [
        ([-1] * 10, (), 0),  # all noise
        ([0] * 6 + [-1] * 4, (0.5,), 1),  # one cluster
        ([0, 1], (0.2, 0.3), 2),  # two clusters of one point: silhouette undefined (n_labels > n - 1)
        ([0], (1.0,), 1),  # a single point
        ([], (), 0),  # nothing at all
    ],
)
def test_degenerate_clusterings_give_nan_not_errors(labels, persistence, clusters):
    rng = np.random.default_rng(0)
    n = len(labels)
    row = score_setting(_result(labels, persistence), rng.normal(size=(n, 3)), rng.normal(size=(n, 8)))
    assert row["clusters"] == clusters
    for key in UNDEFINED_WITH_ONE_CLUSTER:
        assert math.isnan(row[key]), key
    if not persistence:
        assert math.isnan(row["mean_persistence"]) and math.isnan(row["median_persistence"])
        assert row["largest_cluster_share"] == 0.0
    if n == 0:
        assert math.isnan(row["noise_fraction"])


def test_two_real_clusters_are_scored():
    labels = np.array([0] * 5 + [1] * 5 + [-1] * 2)
    coords = np.vstack([np.zeros((5, 2)), np.ones((5, 2)) * 10, [[5.0, 5.0], [6.0, 5.0]]])
    coords += np.random.default_rng(0).normal(scale=0.1, size=coords.shape)
    row = score_setting(_result(labels, (0.4, 0.6)), coords, coords)
    assert row["clusters"] == 2 and row["noise_fraction"] == pytest.approx(2 / 12)
    assert row["silhouette_reduced"] > 0.9
    assert row["largest_cluster_share"] == pytest.approx(5 / 12)


@pytest.mark.parametrize(
    ("coords_shape", "emb_shape", "sample_size", "message"),
    [
        ((9, 2), (10, 4), 100, "cluster_coords must have shape"),
        ((10, 2), (10,), 100, "embeddings must have shape"),
        ((10, 2), (10, 4), 1, "sample_size must be an integer >= 2"),
    ],
)
def test_validation_names_the_parameter(coords_shape, emb_shape, sample_size, message):
    with pytest.raises(ValueError, match=message):
        score_setting(_result([0] * 10), np.zeros(coords_shape), np.zeros(emb_shape), sample_size=sample_size)


def _brute_modularity(labels, neighbours):
    """Newman's directed modularity by its definition, over non-noise points and the edges between them."""
    n = len(labels)
    edges = [(i, j) for i in range(n) for j in neighbours[i, 1:] if labels[i] >= 0 and labels[j] >= 0]
    m = len(edges)
    clusters = sorted({c for c in labels if c >= 0})
    out = {c: sum(labels[i] == c for i, _ in edges) for c in clusters}
    into = {c: sum(labels[j] == c for _, j in edges) for c in clusters}
    inside = sum(labels[i] == labels[j] for i, j in edges)
    return inside / m - sum(out[c] * into[c] for c in clusters) / m**2


def test_knn_modularity_matches_its_definition():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    neighbours = np.argsort(((X[:, None] - X[None]) ** 2).sum(-1), axis=1)[:, :6]
    labels = rng.integers(-1, 4, 40)
    assert knn_modularity(labels, neighbours) == pytest.approx(_brute_modularity(labels, neighbours))


def test_knn_modularity_punishes_splitting_and_merging():
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (30, 2))])
    neighbours = np.argsort(((X[:, None] - X[None]) ** 2).sum(-1), axis=1)[:, :8]
    truth = np.repeat([0, 1], 30)
    split = np.where(np.arange(60) % 2 == 0, truth, truth + 2)  # each group split in two at random
    merged = np.where(np.arange(60) < 45, 0, 1)  # half of group 1 merged into group 0
    best = knn_modularity(truth, neighbours)
    assert best == pytest.approx(0.5)
    assert knn_modularity(split, neighbours) < best and knn_modularity(merged, neighbours) < best
    assert math.isnan(knn_modularity(np.zeros(60, int), neighbours))  # one cluster
    assert math.isnan(knn_modularity(np.full(60, -1), neighbours))


def test_modularity_column_needs_the_graph_and_silhouettes_can_be_skipped():
    labels = np.array([0] * 5 + [1] * 5 + [-1] * 2)
    coords = np.vstack([np.zeros((5, 2)), np.ones((5, 2)) * 10, [[5.0, 5.0], [6.0, 5.0]]])
    coords += np.random.default_rng(0).normal(scale=0.1, size=coords.shape)
    neighbours = np.argsort(((coords[:, None] - coords[None]) ** 2).sum(-1), axis=1)[:, :4]
    result = _result(labels, (0.4, 0.6))
    assert math.isnan(score_setting(result, coords, coords)["modularity"])
    row = score_setting(result, coords, coords, neighbours=neighbours, silhouettes=False)
    assert row["modularity"] == pytest.approx(knn_modularity(labels, neighbours)) and row["modularity"] > 0.4
    assert all(math.isnan(row[k]) for k in ("silhouette_reduced", "silhouette_cosine", "calinski_harabasz"))


def test_cosine_silhouette_of_exact_duplicates_is_finite():
    X = np.repeat(np.random.default_rng(5).normal(size=(4, 8)), 3, axis=0)
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0])
    value = cosine_silhouette(X, labels)
    assert math.isfinite(value) and -1.0 <= value <= 1.0

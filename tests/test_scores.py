"""score_setting: values equal scikit-learn / hdbscan on small inputs, sampling is stated and seeded, never raises."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import calinski_harabasz_score, silhouette_samples, silhouette_score

from clustering.analysis.cluster.modularity import filled_modularity, knn_modularity
from clustering.analysis.cluster.scores import (
    METRIC_DOCS,
    cosine_silhouette,
    sampled_silhouettes,
    score_setting,
    separation_scores,
)
from clustering.analysis.cluster.setting import SettingResult
from clustering.analysis.cluster.sweep import sweep


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
    assert a["silhouette_exact"] is False and a["silhouette_seed"] == 3
    assert a["silhouette_reduced"] == b["silhouette_reduced"] != c["silhouette_reduced"]

    # The sample is a seeded draw from all points; the score is scikit-learn's on its non-noise points.
    sample = np.sort(np.random.default_rng(3).choice(len(X), 200, replace=False))
    sample = sample[result.labels[sample] >= 0]
    assert a["silhouette_sample_size"] == sample.size < 200
    expected = silhouette_score(coords[sample], result.labels[sample])
    assert a["silhouette_reduced"] == pytest.approx(expected)
    # The cosine silhouette averages the same sampled points, each exact against every point; Calinski-Harabasz is
    # exact on all non-noise points.
    keep = result.labels >= 0
    per_point = np.zeros(len(X))
    per_point[keep] = silhouette_samples(X[keep], result.labels[keep], metric="cosine")
    assert a["silhouette_cosine"] == pytest.approx(per_point[sample].mean(), abs=1e-6)
    assert exact["silhouette_cosine"] == pytest.approx(per_point[keep].mean(), abs=1e-6) != a["silhouette_cosine"]
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


def test_cosine_silhouette_leaves_noise_out():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(90, 6))
    labels = rng.integers(-1, 3, 90)
    keep = labels >= 0
    expected = silhouette_score(X[keep], labels[keep], metric="cosine")
    assert cosine_silhouette(X, labels, chunk=16) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_sampled_silhouettes_share_one_pass_and_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(int(rng.integers(30, 250)), 3))
    labelings = [rng.integers(-1, int(rng.integers(2, 6)), len(points)) for _ in range(3)]
    labelings.append(np.full(len(points), -1))  # all noise: undefined
    got = sampled_silhouettes(points, labelings, chunk=17)
    for labels, value in zip(labelings[:3], got, strict=False):
        keep = labels >= 0
        assert value == pytest.approx(silhouette_score(points[keep], labels[keep]), abs=1e-9)
    assert math.isnan(got[3])


def test_separation_scores_of_several_settings_equal_one_at_a_time(scored_input):
    result, coords, X = scored_input
    other = sweep(coords, [40], [5], progress=False)[0]
    together = separation_scores([result.labels, other.labels], coords, X, sample_size=300, seed=5)
    for labels, scores in zip([result.labels, other.labels], together, strict=True):
        alone = separation_scores([labels], coords, X, sample_size=300, seed=5)[0]
        for key in ("silhouette_reduced", "silhouette_cosine", "calinski_harabasz", "silhouette_sample_size"):
            assert scores[key] == pytest.approx(alone[key]), key
    assert together[0]["silhouette_reduced"] != together[1]["silhouette_reduced"]


def test_cheap_rows_say_the_separation_scores_were_not_computed_and_carry_the_filled_modularity(
    scored_input, sphere_reduction
):
    result, coords, X = scored_input
    neighbours = sphere_reduction.knn.indices
    dropped = np.where(np.arange(len(X)) % 10 == 0, -1, result.labels)  # as if a background test had run
    cheap = score_setting(
        _result(dropped, result.persistence), coords, X, neighbours=neighbours, silhouettes=False,
        hdbscan_labels=result.labels,
    )  # fmt: skip
    assert cheap["silhouette_sample_size"] == 0 and cheap["silhouette_exact"] is False
    expected = filled_modularity(dropped, neighbours, hdbscan_labels=result.labels)
    assert cheap["modularity_filled"] == pytest.approx(expected) != cheap["modularity"]
    # Its two terms give the score at any resolution (the granularity ladder reads them).
    inside, outside_expected = cheap["modularity_filled_inside"], cheap["modularity_filled_expected"]
    assert 0 < outside_expected < inside <= 1
    for resolution in (0.3, 0.8, 2.5):
        at = filled_modularity(dropped, neighbours, hdbscan_labels=result.labels, resolution=resolution)
        assert inside - resolution * outside_expected == pytest.approx(at)
    finer = score_setting(_result(dropped, result.persistence), coords, X, neighbours=neighbours, silhouettes=False,
                          hdbscan_labels=result.labels, resolution=2.5)  # fmt: skip
    assert finer["modularity_filled"] == pytest.approx(inside - 2.5 * outside_expected)
    plain = score_setting(result, coords, X, neighbours=neighbours)
    assert math.isnan(plain["modularity_filled"]) and math.isnan(plain["modularity_filled_inside"])

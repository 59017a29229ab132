"""noise: members far sparser in the original space than their cluster become noise; the rest stays as it was."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clustering.analysis.cluster.background import (
    background_mask,
    core_distances,
    diffuse_clusters,
    drop_background,
    drop_diffuse_clusters,
)
from clustering.analysis.cluster.setting import SettingResult
from clustering.analysis.cluster.sweep import sweep
from clustering.analysis.defaults import DEFAULT_NOISE_Z


def test_core_distance_is_the_last_listed_neighbour():
    distances = np.array([[0.0, 0.1, 0.3], [0.0, 0.2, 0.25]], dtype=np.float32)
    assert core_distances(distances).tolist() == pytest.approx([0.3, 0.25])
    assert core_distances(np.zeros((2, 0))).tolist() == [0.0, 0.0]


def test_outliers_of_each_cluster_are_flagged_by_that_clusters_own_spread():
    rng = np.random.default_rng(0)
    tight = rng.normal(0.10, 0.005, 50)  # a tight cluster, with two members ten times sparser
    tight[:2] = 1.0
    loose = rng.normal(0.50, 0.05, 50)  # a loose cluster: 0.6 is ordinary for it, far above the tight one's scale
    loose[0] = 0.6
    core = np.concatenate([tight, loose, [5.0, 5.0]])
    labels = np.concatenate([np.zeros(50, int), np.ones(50, int), [-1, -1]])
    flagged = background_mask(labels, core)
    assert flagged[:2].all() and not flagged[2:50].any()
    assert not flagged[50:100].any()
    assert not flagged[100:].any()  # noise stays noise, never "flagged"


def test_half_of_every_cluster_stays_and_infinite_z_flags_nothing():
    rng = np.random.default_rng(1)
    core = rng.lognormal(0.0, 2.0, 300)
    labels = rng.integers(0, 5, 300)
    flagged = background_mask(labels, core, z=0.01)
    for c in range(5):
        assert flagged[labels == c].sum() <= (labels == c).sum() // 2
    assert not background_mask(labels, core, z=np.inf).any()


def test_exact_duplicates_do_not_break_the_log():
    labels = np.zeros(10, dtype=int)
    core = np.zeros(10)
    core[-1] = 0.5
    flagged = background_mask(labels, core)
    assert flagged.tolist() == [False] * 9 + [True]


@pytest.mark.parametrize(
    ("labels", "core", "z", "message"),
    [
        (np.zeros(3, int), np.zeros(4), DEFAULT_NOISE_Z, "one length"),
        (np.zeros(3, int), np.zeros(3), 0.0, "z must be > 0"),
    ],
)
def test_validation_names_the_problem(labels, core, z, message):
    with pytest.raises(ValueError, match=message):
        background_mask(labels, core, z=z)


def test_drop_background_relabels_and_zeroes_probabilities_only_where_flagged(sphere_blobs, sphere_reduction):
    result = sweep(sphere_reduction.cluster_coords, [20], [5], progress=False)[0]
    core = core_distances(sphere_reduction.knn.distances)
    dropped = drop_background(result, core)
    flagged = background_mask(result.labels, core)
    assert flagged.any()
    assert (dropped.labels[flagged] == -1).all() and (dropped.probabilities[flagged] == 0).all()
    assert np.array_equal(dropped.labels[~flagged], result.labels[~flagged])
    assert dropped.labels.max() == result.labels.max()  # no cluster empties
    assert drop_background(result, core, z=np.inf) is result


def test_background_pulled_into_clusters_becomes_noise_and_members_stay(sphere_blobs, sphere_reduction):
    """The measured property on the fixture: more of the background ends as noise, the members' clustering holds."""
    truth = sphere_blobs.labels
    members, background = truth >= 0, truth < 0
    result = sweep(sphere_reduction.cluster_coords, [20], [5], progress=False)[0]
    dropped = drop_background(result, core_distances(sphere_reduction.knn.distances))
    before = (result.labels[background] < 0).mean()
    after = (dropped.labels[background] < 0).mean()
    assert after >= before + 0.2
    assert (dropped.labels[members] < 0).mean() <= 0.15
    ari_before = adjusted_rand_score(truth[members], result.labels[members])
    assert adjusted_rand_score(truth[members], dropped.labels[members]) >= ari_before - 0.05


def _tight_diffuse_and_noise(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A tight group around one direction, a 'cluster' of random directions, and unclustered points."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=64)
    tight = centre + 0.3 * rng.normal(size=(50, 64))
    diffuse = rng.normal(size=(50, 64))
    others = rng.normal(size=(100, 64)) + 0.5 * centre
    X = np.vstack([tight, diffuse, others]).astype(np.float32)
    labels = np.r_[np.zeros(50, int), np.ones(50, int), -np.ones(100, int)]
    return X, labels


def _mean_pairwise_cosine(X: np.ndarray) -> float:
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = U @ U.T
    return float((S.sum() - len(X)) / (len(X) * (len(X) - 1)))


def test_a_cluster_no_more_alike_than_the_collection_is_flagged_whole():
    X, labels = _tight_diffuse_and_noise()
    flagged = diffuse_clusters(labels, X)
    assert flagged[50:100].all()
    assert not flagged[:50].any() and not flagged[100:].any()
    # The rule as stated, by brute force: the diffuse group is below the collection's mean pairwise similarity.
    overall = _mean_pairwise_cosine(X)
    assert _mean_pairwise_cosine(X[50:100]) <= overall < _mean_pairwise_cosine(X[:50])


def test_diffuse_clusters_agrees_with_brute_force_on_many_clusters():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 16)) + rng.normal(size=16)
    X *= rng.uniform(0.5, 3.0, (300, 1))  # row lengths must not matter: cosine similarity
    labels = rng.integers(-1, 12, 300)
    overall = _mean_pairwise_cosine(X)
    expected = np.zeros(300, dtype=bool)
    for c in range(12):
        members = labels == c
        if members.sum() >= 2 and _mean_pairwise_cosine(X[members]) <= overall:
            expected[members] = True
    assert 0 < expected.sum() < (labels >= 0).sum()  # the data exercises both outcomes
    assert np.array_equal(diffuse_clusters(labels, X), expected)


def test_drop_diffuse_clusters_empties_them_and_renumbers_the_rest():
    X, _ = _tight_diffuse_and_noise()
    labels = np.r_[np.full(50, 1), np.full(50, 0), -np.ones(100, int)].astype(np.int32)  # the diffuse one is 0
    result = SettingResult(min_cluster_size=5, min_samples=5, labels=labels, probabilities=np.ones(200, np.float32),
                           outlier_scores=np.zeros(200, np.float32), persistence=np.array([0.2, 0.7]), dbcv=0.5,
                           seconds=0.0)  # fmt: skip
    dropped, count = drop_diffuse_clusters(result, X)
    assert count == 1
    assert (dropped.labels[50:] == -1).all() and (dropped.probabilities[50:100] == 0).all()
    assert (dropped.labels[:50] == 0).all() and dropped.n_clusters == 1
    assert dropped.persistence.tolist() == [0.7]
    tight_only = dataclasses.replace(result, labels=np.where(labels == 1, 0, -1).astype(np.int32))
    unchanged, none = drop_diffuse_clusters(tight_only, X)
    assert unchanged is tight_only and none == 0

"""noise: members far sparser in the original space than their cluster become noise; the rest stays as it was."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clustering.analysis.noise import DEFAULT_NOISE_Z, background_mask, core_distances, drop_background
from clustering.analysis.sweep import sweep


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

"""propagate: HDBSCAN's noise takes its neighbours' cluster for scoring; shedding points as noise no longer pays."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from clustering.analysis.cluster import modularity
from clustering.analysis.cluster.modularity import MAX_ROUNDS, filled_modularity, knn_modularity, propagate_labels
from clustering.analysis.cluster.scores import METRIC_DOCS


def test_a_noise_point_takes_the_cluster_most_of_its_neighbours_are_in():
    labels = np.array([0, 0, 1, -1, 1])
    # each row: the point itself, then its neighbours nearest first; point 3 lists 4, 2 (cluster 1) and 0
    neighbours = np.array([[0, 1, 2, 3], [1, 0, 3, 2], [2, 4, 3, 0], [3, 4, 2, 0], [4, 2, 3, 1]])
    out = propagate_labels(labels, neighbours, fill=labels < 0)
    assert out.tolist() == [0, 0, 1, 1, 1]
    assert labels.tolist() == [0, 0, 1, -1, 1]  # the input is not changed


def test_ties_go_to_the_nearer_neighbour_and_noise_does_not_vote():
    labels = np.array([0, 1, -1, -1, -1])
    # point 2 lists 1 (cluster 1) before 0 (cluster 0): a tie that the nearer neighbour breaks; its noise
    # neighbours 3 and 4 do not count
    neighbours = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 1, 3, 0], [3, 4, 0, 1], [4, 3, 2, 2]])
    out = propagate_labels(labels, neighbours, fill=labels < 0)
    assert out[2] == 1
    assert out[3] == 0  # 4 is noise, then 0 (cluster 0) before 1


def test_points_outside_fill_stay_noise_and_never_vote():
    labels = np.array([0, 0, -1, -1])
    neighbours = np.array([[0, 1, 2], [1, 0, 2], [2, 3, 0], [3, 2, 1]])
    fill = np.array([False, False, False, True])  # point 2 is background: it stays out
    out = propagate_labels(labels, neighbours, fill=fill)
    assert out.tolist() == [0, 0, -1, 0]


def test_labels_spread_along_a_chain_one_step_a_round_up_to_the_bound():
    n = MAX_ROUNDS + 5
    labels = np.full(n, -1)
    labels[0] = 3
    neighbours = np.array([[i, max(i - 1, 0)] for i in range(n)])  # each point lists only its predecessor
    out = propagate_labels(labels, neighbours, fill=labels < 0)
    assert (out[: MAX_ROUNDS + 1] == 3).all()
    assert (out[MAX_ROUNDS + 1 :] == -1).all()


def test_majority_vote_matches_a_plain_count():
    rng = np.random.default_rng(0)
    voters = rng.integers(-1, 4, (500, 9))
    expected = []
    for row in voters:
        counts = Counter(v for v in row.tolist() if v >= 0)
        if not counts:
            expected.append(-1)
            continue
        top = max(counts.values())
        expected.append(next(v for v in row.tolist() if counts.get(v) == top))  # first in neighbour order
    assert modularity._majority(voters).tolist() == expected


def test_shedding_boundary_points_as_noise_raises_modularity_but_not_the_filled_score():
    rng = np.random.default_rng(1)
    groups = np.repeat([0, 1], 60)
    boundary = np.zeros(120, dtype=bool)
    boundary[:60:4] = True  # every fourth point of group 0 sits on the edge towards group 1
    neighbours = np.empty((120, 8), dtype=np.int64)
    neighbours[:, 0] = np.arange(120)
    for i in range(120):
        core = np.flatnonzero((groups == groups[i]) & ~boundary)
        neighbours[i, 1:] = rng.choice(core[core != i], 7, replace=False)
    cross = np.flatnonzero((groups == 1) & ~boundary)
    neighbours[boundary, 6:] = rng.choice(cross, (boundary.sum(), 2))  # 5 own neighbours, 2 across the edge
    whole = groups.copy()
    shed = np.where(boundary, -1, groups)  # HDBSCAN left the edge as noise
    assert knn_modularity(shed, neighbours) > knn_modularity(whole, neighbours) + 0.01
    assert filled_modularity(shed, neighbours, hdbscan_labels=shed) == filled_modularity(
        whole, neighbours, hdbscan_labels=whole
    )


def test_background_points_stay_out_of_the_filled_score():
    groups = np.repeat([0, 1], 4)
    neighbours = np.array([[i, *[j for j in range(8) if groups[j] == groups[i] and j != i][:2]] for i in range(8)])
    hdbscan = groups.copy()
    final = groups.copy()
    final[[0, 5]] = -1  # clustered by HDBSCAN, called background by the original-space test
    assert filled_modularity(final, neighbours, hdbscan_labels=hdbscan, resolution=1.0) == knn_modularity(
        final, neighbours
    )


def test_resolution_one_is_knn_modularity_of_the_filled_labels_and_less_prefers_larger_clusters():
    rng = np.random.default_rng(3)
    neighbours = np.c_[np.arange(300), rng.integers(0, 300, (300, 9))]
    labels = rng.integers(-1, 6, 300)
    filled = propagate_labels(labels, neighbours, fill=labels < 0)
    assert filled_modularity(labels, neighbours, hdbscan_labels=labels, resolution=1.0) == pytest.approx(
        knn_modularity(filled, neighbours)
    )
    # Groups A, B, C of 40: A's and B's members list 7 neighbours in their own group and 2 in the other, C's all 9
    # in C. Split {A, B, C}: inside 0.852, expected 1/3; merged {A+B, C}: inside 1, expected 5/9. Newman's modularity
    # keeps A and B apart (0.519 > 0.444); at resolution 0.5 the merge wins (0.722 > 0.685).
    group = np.repeat([0, 1, 2], 40)
    rows = []
    for i in range(120):
        own = np.flatnonzero(group == group[i])
        other = np.flatnonzero(group == 1 - group[i]) if group[i] < 2 else own
        rows.append([i, *rng.choice(own[own != i], 7, replace=False), *rng.choice(other[other != i], 2)])
    graph = np.array(rows)
    split, merged = group, np.minimum(group, 1) * (group // 2)  # merged: A and B -> 0, C -> 1
    score = {
        r: [filled_modularity(x, graph, hdbscan_labels=x, resolution=r) for x in (split, merged)] for r in (1, 0.5)
    }
    assert score[1][0] == pytest.approx(0.852 - 1 / 3, abs=1e-3) and score[1][1] == pytest.approx(1 - 5 / 9)
    assert score[1][0] > score[1][1]
    assert score[0.5][0] < score[0.5][1]


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="labels and fill"):
        propagate_labels(np.zeros(3), np.zeros((3, 2), int), fill=np.zeros(2, bool))
    with pytest.raises(ValueError, match="neighbours must have shape"):
        propagate_labels(np.zeros(3), np.zeros((2, 2), int), fill=np.zeros(3, bool))
    with pytest.raises(ValueError, match="resolution must be > 0"):
        filled_modularity(np.zeros(3, int), np.zeros((3, 2), int), hdbscan_labels=np.zeros(3, int), resolution=0)


def test_metric_docs_state_the_default_resolution_and_its_option():
    assert f"--resolution (default {modularity.RESOLUTION}," in METRIC_DOCS["modularity_filled"]

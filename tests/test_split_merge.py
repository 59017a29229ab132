"""The original-space tests (split_test.py) and the refinement of a clustering with them (split_merge.py), on sets
whose answer is known: issue 22's CLIP-like shape, with topics at cosine 0.76 within and 0.59 between, which is also
their similarity to the background (every point shares one common direction)."""

from __future__ import annotations

import numpy as np
import pytest

from clustering.analysis.knn import knn_graph
from clustering.analysis.split_merge import refine
from clustering.analysis.split_test import ALPHA, MIN_EFFECT, SAME, mean_similarity, near_copy_groups, split_test

DIM = 256
WITHIN, BETWEEN = 0.76, 0.59  # issue 22's figures


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def posts(
    sizes: list[int],
    *,
    background: int = 0,
    bursts: dict[int, int] | None = None,
    seed: int = 0,
    within: float = WITHIN,
    between: float = BETWEEN,
):
    """Topics of ``sizes`` around one common direction, ``background`` images related to none, and per topic
    index a burst of that many near-copies of one of its images. Returns X and the truth (-1 background, bursts
    labelled with their topic)."""
    rng = np.random.default_rng(seed)
    common = unit(rng.standard_normal(DIM))
    shared, own, noise = np.sqrt(between), np.sqrt(within - between), np.sqrt(1 - within)
    # Each topic's own direction: orthonormal to the others and to the common one (a QR with the common one first).
    directions = np.linalg.qr(np.column_stack([common, rng.standard_normal((DIM, len(sizes)))]))[0][:, 1:].T
    parts, truth = [], []
    for topic, size in enumerate(sizes):
        direction = directions[topic]
        members = shared * common + own * direction + noise * rng.standard_normal((size, DIM)) / np.sqrt(DIM)
        parts.append(members)
        truth.append(np.full(size, topic))
        copies = (bursts or {}).get(topic, 0)
        if copies:
            source = members[0] + 0.02 * rng.standard_normal((copies, DIM)) / np.sqrt(DIM)
            parts.append(source)
            truth.append(np.full(copies, topic))
    if background:
        loose = np.sqrt(1 - between) * rng.standard_normal((background, DIM)) / np.sqrt(DIM)
        parts.append(shared * common + loose)
        truth.append(np.full(background, -1))
    return unit(np.concatenate(parts)).astype(np.float32), np.concatenate(truth)


def graph(X: np.ndarray):
    return knn_graph(X, n_neighbors=15)


def test_the_shape_is_issue_22s():
    X, truth = posts([200, 200], background=200)
    S = X @ X.T
    same = (truth[:, None] == truth[None, :]) & (truth[:, None] >= 0) & ~np.eye(len(X), dtype=bool)
    other = (truth[:, None] != truth[None, :]) & (truth[:, None] >= 0) & (truth[None, :] >= 0)
    assert S[same].mean() == pytest.approx(WITHIN, abs=0.02)
    assert S[other].mean() == pytest.approx(BETWEEN, abs=0.02)
    assert S[np.ix_(truth == 0, truth < 0)].mean() == pytest.approx(BETWEEN, abs=0.02)


def test_two_topics_are_kept_apart_and_one_topic_is_not():
    X, truth = posts([150, 150])
    both = split_test(X, np.arange(len(X)), collection=mean_similarity(X), seed=1)
    assert both.splits() and both.effect > 0.5 and both.p_value <= ALPHA
    assert set(np.unique(both.children[truth == 0])) != set(np.unique(both.children[truth == 1]))
    alone = split_test(X, np.flatnonzero(truth == 0), collection=mean_similarity(X), seed=1)
    assert not alone.splits() and alone.effect < MIN_EFFECT


def test_a_topic_beside_its_own_repost_burst_is_one_group():
    X, _ = posts([200], bursts={0: 30})
    burst = np.arange(200, 230)
    copies = near_copy_groups(graph(X).distances, graph(X).indices)
    assert len(np.unique(copies[burst])) == 1, "the burst's re-encodes are one picture"
    everyone, collection, children = np.arange(len(X)), mean_similarity(X), np.isin(np.arange(len(X)), burst)
    found = split_test(X, everyone, collection=collection, copies=copies, children=children, seed=1)
    assert found.merges() and max(found.gaps) < SAME
    without_copies = split_test(X, everyone, collection=collection, children=children, seed=1)
    assert without_copies.gaps[1] > MIN_EFFECT, "counted image by image, the burst looks like a group of its own"


def test_background_beside_a_topic_is_the_diffuse_child():
    X, truth = posts([200], background=300)
    found = split_test(X, np.arange(len(X)), collection=mean_similarity(X), seed=2)
    diffuse = found.diffuse_child()
    assert diffuse is not None
    assert (truth[found.children == bool(diffuse)] < 0).mean() > 0.95
    assert not found.splits(), "background is not a cluster of its own"


def test_the_p_value_is_computed_only_when_asked_and_is_seeded():
    X, _ = posts([120, 120])
    found = split_test(X, np.arange(len(X)), collection=mean_similarity(X), seed=3)
    assert "p_value" not in found.figures()
    assert found.p_value == split_test(X, np.arange(len(X)), collection=mean_similarity(X), seed=3).p_value
    assert found.figures()["p_value"] == found.p_value


def labels_of(truth: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """Cluster labels that put the true topics of each inner list together (other rows noise)."""
    labels = np.full(len(truth), -1)
    for cluster, topics in enumerate(groups):
        labels[np.isin(truth, topics)] = cluster
    return labels


def pure(labels: np.ndarray, truth: np.ndarray) -> list[set[int]]:
    return sorted(({int(t) for t in np.unique(truth[labels == c])} for c in np.unique(labels[labels >= 0])), key=min)


def test_topics_merged_by_the_layout_are_split_back():
    X, truth = posts([150, 150, 150, 150])
    knn = graph(X)
    merged = labels_of(truth, [[0, 1, 2], [3]])
    refined = refine(merged, X, knn.indices, knn.distances, min_cluster_size=20, seed=0)
    assert pure(refined.labels, truth) == [{0}, {1}, {2}, {3}]
    assert refined.count("split") == 2 and refined.count("merge") == 0
    assert all(d.figures["p_value"] <= ALPHA and min(d.figures["gaps"]) >= MIN_EFFECT for d in refined.decisions)


def test_a_topic_cut_in_two_and_a_burst_cut_off_are_merged_back():
    X, truth = posts([200, 200], bursts={1: 30})
    knn = graph(X)
    labels = labels_of(truth, [[0], [1]])
    halves = np.flatnonzero(truth == 0)
    labels[halves[::2]] = 2  # the layout cut topic 0 in two
    labels[200 + 200 : 200 + 230] = 3  # and made topic 1's burst a cluster of its own
    refined = refine(labels, X, knn.indices, knn.distances, min_cluster_size=20, seed=0)
    assert pure(refined.labels, truth) == [{0}, {1}]
    assert refined.count("merge") == 2 and refined.count("split") == 0


def test_a_topic_joined_to_background_keeps_the_topic():
    X, truth = posts([200, 200], background=400)
    knn = graph(X)
    labels = labels_of(truth, [[0, -1], [1]])
    refined = refine(labels, X, knn.indices, knn.distances, min_cluster_size=20, seed=0)
    assert refined.count("background") == 1
    assert (truth[refined.labels == -1] == -1).mean() > 0.95 and (refined.labels[truth == -1] == -1).mean() > 0.9
    assert pure(refined.labels, truth) == [{0}, {1}]


def test_clear_clusters_are_left_alone():
    X, truth = posts([150, 150, 150], background=150)
    knn = graph(X)
    labels = labels_of(truth, [[0], [1], [2]])
    refined = refine(labels, X, knn.indices, knn.distances, min_cluster_size=20, seed=0)
    assert refined.decisions == () and np.array_equal(refined.labels, labels)


def test_the_same_input_gives_the_same_decisions():
    X, truth = posts([100, 100, 100], bursts={2: 25}, seed=4)
    knn = graph(X)
    labels = labels_of(truth, [[0, 1], [2]])
    one, two = (refine(labels, X, knn.indices, knn.distances, min_cluster_size=15, seed=7) for _ in range(2))
    assert np.array_equal(one.labels, two.labels) and one.decisions == two.decisions


def test_a_collection_of_alike_images_keeps_its_clusters():
    """Every image alike, as with the demo's random-weight model: cosine 0.97 within a cluster, 0.92 between. Distinct
    images pass the near-copy cosine there, but they are not copies of one picture: two clusters stay two."""
    X, truth = posts([150, 150], within=0.985, between=0.93, seed=2)
    knn = graph(X)
    collection = mean_similarity(X)
    assert collection > 0.9
    chained = near_copy_groups(knn.distances, knn.indices)
    copies = near_copy_groups(knn.distances, knn.indices, collection=collection)
    assert len(np.unique(chained)) < 10, "at the fixed bar the images chain into a few 'pictures'"
    assert len(np.unique(copies)) > 0.9 * len(X), "the bar rises with the collection's likeness"
    labels = labels_of(truth, [[0], [1]])
    refined = refine(labels, X, knn.indices, knn.distances, min_cluster_size=20, seed=0)
    assert refined.count("merge") == 0 and pure(refined.labels, truth) == [{0}, {1}]

"""layout: repost bursts and small graph components are found, anchored to their nearest content, and packed."""

from __future__ import annotations

import numpy as np
import pytest

from clustering.analysis.space import repost_packing
from clustering.analysis.space.knn_graph import knn_graph
from clustering.analysis.space.reduce import reduce


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def with_bursts():
    """Two loose topics of 150 points in 32-D, and two bursts of 20 near-identical copies of a topic-0 member."""
    rng = np.random.default_rng(0)
    centres = unit(rng.standard_normal((2, 32)))
    topics = unit(np.repeat(centres, 150, axis=0) + 0.6 * rng.standard_normal((300, 32)) / np.sqrt(32))
    sources = [3, 40]
    bursts = [unit(topics[s] + 1e-4 * rng.standard_normal((20, 32))) for s in sources]
    X = np.concatenate([topics, *bursts]).astype(np.float32)
    return X, sources


def test_bursts_are_found_and_anchored_beside_their_source(with_bursts):
    X, sources = with_bursts
    graph = knn_graph(X, n_neighbors=15)
    bursts = repost_packing.find_bursts(X, graph.indices, graph.distances)
    assert bursts.n_bursts == 2
    for b, source in enumerate(sources):
        members = np.flatnonzero(bursts.labels == b)
        assert set(range(300 + 20 * b, 320 + 20 * b)) <= set(members.tolist())
        assert source in members  # the original is one of its reposts
        anchor = bursts.anchors[b]
        assert bursts.labels[anchor] != b and anchor < 150  # nearest other point: a topic-0 member
    assert (bursts.labels[np.setdiff1d(np.arange(150, 300), sources)] == -1).all()


def test_pack_moves_a_flung_group_beside_its_anchor_and_keeps_the_rest():
    rng = np.random.default_rng(1)
    content = rng.uniform(-1, 1, (400, 2))
    flung = np.array([30.0, 30.0]) + rng.normal(0, 0.01, (10, 2))
    coords = np.concatenate([content, flung]).astype(np.float32)
    groups = np.r_[np.full(400, -1), np.zeros(10, int)]
    packed = repost_packing.pack(coords, groups, np.array([7]))
    assert np.array_equal(packed[:400], coords[:400])
    assert np.linalg.norm(packed[400:].mean(axis=0) - coords[7]) < 0.5
    assert repost_packing.content_share(packed) > 5 * repost_packing.content_share(coords)
    assert np.array_equal(repost_packing.pack(coords, groups, np.array([-1])), coords)  # no anchor: stays


def test_content_share_of_simple_layouts():
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 101), np.linspace(0, 1, 101)), -1).reshape(-1, 2)
    assert repost_packing.content_share(grid) == pytest.approx(0.81, abs=0.01)  # central 90 % on each axis
    far = np.concatenate([grid, [[100.0, 100.0]]])
    assert repost_packing.content_share(far) < 0.001
    assert np.isnan(repost_packing.content_share(np.zeros((1, 2))))


def test_an_isolated_burst_is_anchored_to_the_nearest_content(with_bursts):
    X, _ = with_bursts
    # 16 near-identical copies of a direction unrelated to the topics: their neighbour lists hold only each other.
    rng = np.random.default_rng(2)
    lone = unit(unit(rng.standard_normal(32)) + 1e-4 * rng.standard_normal((16, 32))).astype(np.float32)
    data = np.concatenate([X[:300], lone])
    graph = knn_graph(data, n_neighbors=10)
    bursts = repost_packing.find_bursts(data, graph.indices, graph.distances)
    assert bursts.n_bursts == 1 and (bursts.labels[300:] == 0).all() and (bursts.labels[:300] == -1).all()
    cosines = data[:300] @ unit(lone.mean(axis=0))
    assert bursts.anchors[0] == int(np.argmax(cosines))


def test_reduce_packs_the_map_and_says_so(with_bursts):
    X, _ = with_bursts
    packed = reduce(X, cluster_dims=3, n_epochs=60, seed=0)
    loose = reduce(X, cluster_dims=3, n_epochs=60, seed=0, pack=False)
    assert packed.params["packed_bursts"] == 2 and loose.params["packed_bursts"] == 0
    assert np.array_equal(packed.cluster_coords, loose.cluster_coords)
    assert packed.knn is not None and packed.knn.indices.shape == (len(X), 15)
    bursts = repost_packing.find_bursts(X, packed.knn.indices, packed.knn.distances)
    staying = bursts.labels < 0
    only_packed = repost_packing.pack(loose.map_coords, bursts.labels, bursts.anchors)
    assert np.array_equal(only_packed[staying], loose.map_coords[staying])
    # The job's map is the packed one with its outskirts drawn in.
    assert np.array_equal(packed.map_coords, repost_packing.compress_outskirts(only_packed))
    assert repost_packing.content_share(packed.map_coords) >= repost_packing.content_share(only_packed)
    spacing = repost_packing._spacing(loose.map_coords[staying])
    for b, anchor in enumerate(bursts.anchors):
        members = bursts.labels == b
        gap = np.linalg.norm(packed.map_coords[members].mean(axis=0) - packed.map_coords[anchor])
        assert gap < 10 * spacing
        assert gap <= np.linalg.norm(loose.map_coords[members].mean(axis=0) - loose.map_coords[anchor])


def test_compress_outskirts_draws_far_islands_in_rigidly_and_keeps_the_middle():
    rng = np.random.default_rng(2)
    angle, radius = rng.uniform(0, 2 * np.pi, 2000), np.sqrt(rng.uniform(0, 1, 2000))
    disc = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    directions = np.array([[1.0, 0.0], [0.0, 1.0], [-0.6, -0.8]])
    islands = [d * r + rng.normal(0, 0.02, (20, 2)) for d, r in zip(directions, (10.0, 20.0, 40.0), strict=True)]
    coords = np.concatenate([disc, *islands]).astype(np.float32)
    out = repost_packing.compress_outskirts(coords)
    centre = np.median(coords, axis=0)
    inner = np.linalg.norm(coords[:2000] - centre, axis=1) < np.quantile(np.linalg.norm(coords - centre, axis=1), 0.5)
    assert np.array_equal(out[:2000][inner], coords[:2000][inner])
    before, after = [], []
    for k, direction in enumerate(directions):
        part = slice(2000 + 20 * k, 2020 + 20 * k)
        shape_before = coords[part] - coords[part].mean(axis=0)
        shape_after = out[part] - out[part].mean(axis=0)
        np.testing.assert_allclose(shape_after, shape_before, atol=1e-4)  # moved as one piece
        moved = out[part].mean(axis=0) - centre
        assert np.dot(moved / np.linalg.norm(moved), direction) > 0.999  # along its own ray
        before.append(np.linalg.norm(coords[part].mean(axis=0) - centre))
        after.append(np.linalg.norm(moved))
    assert after[0] < before[0] and after[1] < before[1] and after[2] < before[2]
    assert after[0] < after[1] < after[2]  # the order of distances from the centre is kept
    assert repost_packing.content_share(out) > 2 * repost_packing.content_share(coords)


def test_compress_outskirts_checks_its_input_and_passes_tiny_maps_through():
    with pytest.raises(ValueError, match="start must be in"):
        repost_packing.compress_outskirts(np.zeros((5, 2)), start=1.0)
    with pytest.raises(ValueError, match=r"coords must be an \(n, 2\) map"):
        repost_packing.compress_outskirts(np.zeros((5, 3)))
    two = np.array([[0.0, 0.0], [5.0, 5.0]], dtype=np.float32)
    assert np.array_equal(repost_packing.compress_outskirts(two), two)

"""hierarchy: themes, the chosen clusters and sub-clusters linked parent to child, the chosen level unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from clustering.analysis.cluster.background import core_distances, drop_background
from clustering.analysis.cluster.hierarchy import Hierarchy, build_hierarchy, by_size, levels_from_sweep
from clustering.analysis.cluster.scores import score_setting
from clustering.analysis.cluster.select import select
from clustering.analysis.cluster.sweep import sweep


def assert_nested(h: Hierarchy) -> None:
    """Every clustered point's cluster has, one level up, the cluster the point is in there as its parent."""
    for coarse, fine in zip(h.levels[:-1], h.levels[1:], strict=True):
        clustered = fine.labels >= 0
        assert (coarse.labels[clustered] == fine.parents[fine.labels[clustered]]).all()
    assert (h.levels[0].parents == -1).all()


def test_nested_levels_get_their_parents_and_the_chosen_level_is_kept():
    themes = np.array([0, 0, 0, 0, 1, 1, 1, -1, -1])
    clusters = np.array([5, 5, 7, 7, 9, 9, -1, -1, -1])  # ids need not be contiguous
    subclusters = np.array([0, -1, 1, 1, 2, 2, 3, 4, -1])  # 3 and 4 lie in the chosen level's noise
    h = build_hierarchy([themes, clusters, subclusters], names=["themes", "clusters", "subclusters"], chosen=1)
    assert [lv.name for lv in h.levels] == ["themes", "clusters", "subclusters"] and h.clusters is h.levels[1]
    assert h.clusters.labels.tolist() == [0, 0, 1, 1, 2, 2, -1, -1, -1]
    assert h.clusters.parents.tolist() == [0, 0, 1]
    assert h.levels[2].labels.tolist() == [0, -1, 1, 1, 2, 2, -1, -1, -1]  # restricted to clustered points
    assert h.levels[2].parents.tolist() == [0, 1, 2]
    assert h.levels[0].labels.tolist() == [0, 0, 0, 0, 1, 1, 1, -1, -1]
    assert all(lv.labels.dtype == np.int32 and lv.parents.dtype == np.int32 for lv in h.levels)
    assert_nested(h)


def test_a_cluster_in_the_coarser_levels_noise_is_its_own_theme():
    themes = np.array([0, 0, -1, -1, -1])
    clusters = np.array([0, 0, 1, 1, -1])
    h = build_hierarchy([themes, clusters], names=["themes", "clusters"], chosen=1)
    assert h.levels[0].labels.tolist() == [0, 0, 1, 1, -1]
    assert h.levels[1].parents.tolist() == [0, 1]
    assert_nested(h)


def test_non_nested_input_is_made_to_nest_by_majority():
    themes = np.array([0, 0, 0, 1, 1])
    clusters = np.array([0, 0, 0, 0, -1])  # mostly in theme 0, one point in theme 1
    h = build_hierarchy([themes, clusters], names=["themes", "clusters"], chosen=1)
    assert h.levels[1].parents.tolist() == [0]
    assert h.levels[0].labels.tolist() == [0, 0, 0, 0, 1]
    assert_nested(h)


def test_degenerate_levels():
    noise = np.full(4, -1)
    h = build_hierarchy([noise, noise], names=["themes", "clusters"], chosen=0)
    assert h.levels[0].n_clusters == 0 and h.levels[1].n_clusters == 0
    single = build_hierarchy([np.array([0, 0, 1])], names=["clusters"], chosen=0)
    assert single.clusters.parents.tolist() == [-1, -1]
    sized = by_size(build_hierarchy([noise, np.array([0, 0, -1, -1])], names=["themes", "clusters"], chosen=0))
    assert sized.levels[0].n_clusters == 0 and sized.levels[1].n_clusters == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ["a"], "chosen": 0}, "names must name every level"),
        ({"names": ["a", "b"], "chosen": 2}, "chosen must index a level"),
        ({"names": ["a", "b"], "chosen": 0, "min_cluster_sizes": [5]}, "one entry per level"),
    ],
)
def test_validation_names_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_hierarchy([np.zeros(3, int), np.zeros(3, int)], **kwargs)


def test_levels_from_a_sweep_nest_around_the_chosen_setting(sphere_blobs, sphere_reduction):
    coords, X = sphere_reduction.cluster_coords, sphere_blobs.X
    core = core_distances(sphere_reduction.knn.distances)
    results = [drop_background(r, core) for r in sweep(coords, [5, 8, 12, 18, 25, 35, 50, 70], [5], progress=False)]
    rows = [score_setting(r, coords, X, neighbours=sphere_reduction.knn.indices, silhouettes=False) for r in results]
    chosen = select(rows).index
    picked = levels_from_sweep(rows, chosen)
    assert picked["clusters"] == chosen and list(picked) == [
        n for n in ("themes", "clusters", "subclusters") if n in picked
    ]
    if "themes" in picked:
        assert 2 <= rows[picked["themes"]]["clusters"] <= rows[chosen]["clusters"] / 2
    h = build_hierarchy(
        [results[i].labels for i in picked.values()],
        names=list(picked),
        chosen=list(picked).index("clusters"),
        min_cluster_sizes=[results[i].min_cluster_size for i in picked.values()],
    )
    assert np.array_equal(h.clusters.labels >= 0, results[chosen].labels >= 0)
    assert h.clusters.n_clusters == rows[chosen]["clusters"]
    assert_nested(h)


def test_levels_from_sweep_without_coarser_or_finer_settings():
    rows = [{"min_cluster_size": m, "min_samples": 5, "clusters": k, "modularity": q}
            for m, k, q in ((5, 10, 0.5), (10, 8, 0.7), (20, 3, 0.6), (40, 1, float("nan")))]  # fmt: skip
    assert levels_from_sweep(rows, 1) == {"themes": 2, "clusters": 1, "subclusters": 0}
    assert levels_from_sweep(rows, 0) == {"themes": 2, "clusters": 0}
    assert levels_from_sweep(rows, 3) == {"clusters": 3, "subclusters": 0}


def test_renumbering_by_size_keeps_the_tree():
    themes = np.array([0, 0, 1, 1, 1, 1, 1, -1])
    clusters = np.array([0, 0, 1, 2, 2, 2, -1, -1])
    h = build_hierarchy([themes, clusters], names=["themes", "clusters"], chosen=1)
    sized = by_size(h)
    assert sized.levels[0].labels.tolist() == [1, 1, 0, 0, 0, 0, 0, -1]
    assert sized.clusters.labels.tolist() == [1, 1, 2, 0, 0, 0, -1, -1]
    assert sized.clusters.parents.tolist() == [0, 1, 0]
    assert_nested(sized)

"""The overview level (issue 27): clusters joined into 8-30 themes in the original space, each a union of clusters."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from clustering.analysis.cluster.themes import MAX_THEMES, MIN_THEMES, overview_themes
from clustering.analysis.outcome import assemble_outcome
from tests.test_documents import make_run, setting, shard_data


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def families(n_families: int, per_family: int, *, size: int = 20, seed: int = 0, dim: int = 64):
    """``n_families`` groups of ``per_family`` clusters: clusters of one family share most of their direction."""
    rng = np.random.default_rng(seed)
    points, labels, family_of = [], [], []
    for f in range(n_families):
        base = rng.standard_normal(dim)
        for _ in range(per_family):
            centre = unit(base + 0.35 * rng.standard_normal(dim))
            points.append(unit(centre + 0.05 * rng.standard_normal((size, dim))))
            labels.append(np.full(size, len(family_of)))
            family_of.append(f)
    return np.vstack(points).astype(np.float32), np.concatenate(labels), np.array(family_of)


def test_families_of_clusters_become_the_themes():
    X, labels, family_of = families(12, 4)
    overview = overview_themes(X, labels)
    assert overview.n_themes == 12
    # Each theme is exactly one family: the themes' partition of the clusters is the families'.
    pairs = set(zip(overview.theme_of_cluster.tolist(), family_of.tolist(), strict=True))
    assert len(pairs) == 12


def test_every_theme_is_a_union_of_whole_clusters_and_noise_stays_noise():
    X, labels, _ = families(15, 3, seed=1)
    labels = labels.copy()
    labels[::7] = -1
    overview = overview_themes(X, labels)
    themes = overview.labels(labels)
    assert (themes[labels < 0] == -1).all() and (themes[labels >= 0] >= 0).all()
    for cluster in np.unique(labels[labels >= 0]):
        assert len(np.unique(themes[labels == cluster])) == 1


@pytest.mark.parametrize(("n_families", "per_family"), [(3, 4), (60, 2), (200, 1)])
def test_the_count_stays_in_the_overview_range(n_families, per_family):
    X, labels, _ = families(n_families, per_family, size=6, seed=n_families)
    overview = overview_themes(X, labels)
    assert MIN_THEMES <= overview.n_themes <= MAX_THEMES
    assert len(np.unique(overview.theme_of_cluster)) == overview.n_themes
    assert overview.jump >= 0 and overview.cut >= 0


def test_a_few_clusters_are_already_an_overview():
    X, labels, _ = families(2, 4)
    assert overview_themes(X, labels) is None


def test_the_overview_replaces_the_sweeps_themes_in_the_hierarchy():
    """Through the outcome as the job assembles it: the theme level is the overview, a union of chosen clusters."""
    X, labels, _ = families(10, 3, size=5, seed=3)
    n = len(labels)
    data = shard_data(n, copies={n: 0, n + 1: 7})  # two reposts: rows beyond the points take their image's theme
    run = make_run(data, [setting(labels)])
    overview = overview_themes(X, labels)
    clustering = dataclasses.replace(run.clustering, overview=overview)
    outcome = assemble_outcome(clustering, data.duplicates, data.point_of_row, alternatives=0)
    levels = {level.name: level for level in outcome.hierarchy.levels}
    themes, clusters = levels["themes"], levels["clusters"]
    assert themes.n_clusters == overview.n_themes and themes.min_cluster_size is None
    for cluster in range(clusters.n_clusters):
        member = clusters.labels == cluster
        assert len(np.unique(themes.labels[member])) == 1
        assert themes.labels[member][0] == clusters.parents[cluster]


def test_bad_ranges_are_refused():
    X, labels, _ = families(3, 4)
    with pytest.raises(ValueError, match="min_themes"):
        overview_themes(X, labels, min_themes=10, max_themes=5)

"""cluster_points: what it scores, what it keeps, and how it says the layouts ran."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clustering.analysis.cluster.cluster_points import _parallel_layout, cluster_points
from clustering.analysis.defaults import PARALLEL_LAYOUT_MIN_POINTS
from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.steps import Steps


def _config(**overrides) -> AnalyzeConfig:
    values = {"input": "-", "output": "-", "n_epochs": 30, "min_cluster_sizes": "5,10,20,40,80", "progress": False,
              "silhouette_sample_size": 200, **overrides}  # fmt: skip
    return AnalyzeConfig(**values)


@pytest.fixture(scope="module")
def clustered(sphere_blobs):
    return cluster_points(sphere_blobs.X, _config(alternatives=1, threads=1), Steps())


def test_every_setting_is_scored_cheaply_and_the_compared_ones_fully(clustered):
    selection, rows = clustered.selection, clustered.rows
    assert sum(row["selection"] == "eom" for row in rows) == 5
    compared = {selection.index, *selection.runner_ups}
    assert {i for i, row in enumerate(rows) if row["silhouette_sample_size"] > 0} == compared
    for i, row in enumerate(rows):
        separated = [row[k] for k in ("silhouette_reduced", "silhouette_cosine", "calinski_harabasz")]
        assert all(math.isfinite(v) for v in separated) if i in compared else all(math.isnan(v) for v in separated)
        assert math.isfinite(row["modularity"]) == math.isfinite(row["modularity_filled"]) == (row["clusters"] >= 2)


def test_per_point_arrays_are_kept_only_where_later_steps_read_them(clustered):
    selection = clustered.selection
    # The levels are picked at selection; the original-space tests may change the chosen row's counts after it.
    levels, rows = clustered.levels, clustered.rows
    assert levels["clusters"] == selection.index
    chosen = rows[selection.index]
    assert all(rows[i]["min_samples"] == chosen["min_samples"] for i in levels.values())
    assert "themes" not in levels or rows[levels["themes"]]["min_cluster_size"] > chosen["min_cluster_size"]
    assert "subclusters" not in levels or rows[levels["subclusters"]]["min_cluster_size"] < chosen["min_cluster_size"]
    ladder = {rung.index for rung in clustered.ladder}
    assert ladder and ladder <= set(selection.eligible)
    assert set(clustered.results) == {selection.index, *selection.runner_ups[:1], *clustered.levels.values(), *ladder}
    assert len(clustered.results) < len(clustered.rows)
    for result in clustered.results.values():
        assert result.labels.dtype == np.int32
        assert result.probabilities.dtype == result.outlier_scores.dtype == np.float32


def test_cluster_selection_eom_sweeps_excess_of_mass_alone(sphere_blobs):
    both = cluster_points(sphere_blobs.X, _config(threads=1), Steps())
    eom = cluster_points(sphere_blobs.X, _config(threads=1, cluster_selection=("eom",)), Steps())
    assert [row["selection"] for row in eom.rows] == ["eom"] * 5
    assert eom.params["sweep"]["cluster_selection"] == ["eom"]
    keys = ("min_cluster_size", "clusters", "noise_fraction", "modularity_filled")
    same_settings = [[r[k] for k in keys] for r in both.rows if r["selection"] == "eom"]
    assert same_settings == [[r[k] for k in keys] for r in eom.rows]


def _topics_beside_a_gathered_background(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five tight topics in one half of the dimensions, 200 unrelated images in the other half: the background's
    nearest neighbours are background (as photographs among clip-art), but no two of them are alike."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 32))
    X = np.zeros((600, 64), dtype=np.float32)
    X[:400, :32] = np.vstack([c + 0.35 * rng.normal(size=(80, 32)) for c in centres])
    X[400:, 32:] = rng.normal(size=(200, 32))
    return X / np.linalg.norm(X, axis=1, keepdims=True), np.r_[np.repeat(np.arange(5), 80), -np.ones(200, int)]


def test_a_gathered_background_becomes_noise_after_the_choice_and_the_flag_keeps_it():
    X, truth = _topics_beside_a_gathered_background()
    found = cluster_points(X, _config(min_cluster_sizes=None, threads=1), Steps())
    labels = found.results[found.selection.index].labels
    assert np.mean(labels[truth < 0] < 0) > 0.9  # the background's cluster went to noise
    assert adjusted_rand_score(truth[truth >= 0], labels[truth >= 0]) > 0.95  # the topics did not
    chosen = found.rows[found.selection.index]
    assert chosen["diffuse_clusters"] >= 1 and chosen["clusters"] == found.results[found.selection.index].n_clusters
    assert any("no more alike than the collection" in note for note in found.notes)
    assert found.params["diffuse_clusters_as_noise"] is True

    kept = cluster_points(X, _config(min_cluster_sizes=None, threads=1, diffuse_clusters_as_noise=False), Steps())
    assert np.mean(kept.results[kept.selection.index].labels[truth < 0] < 0) < 0.5
    assert kept.params["diffuse_clusters_as_noise"] is False
    assert all(math.isnan(row["diffuse_clusters"]) for row in kept.rows)


def _themes_of_close_topics(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four themes of three close topics each (60 images per topic): topics a person may want apart or together."""
    rng = np.random.default_rng(seed)
    themes = rng.normal(size=(4, 48))
    topics = np.vstack([theme + 0.15 * rng.normal(size=(3, 48)) for theme in themes])
    X = np.vstack([topic + 0.3 * rng.normal(size=(60, 48)) for topic in topics]).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True), np.repeat(np.arange(12), 60)


def test_resolution_sets_the_granularity_of_the_choice():
    X, topics = _themes_of_close_topics()
    sizes = "10,20,40,80,160"
    default = cluster_points(X, _config(min_cluster_sizes=sizes, threads=1), Steps())
    finer = cluster_points(X, _config(min_cluster_sizes=sizes, threads=1, resolution=3.0), Steps())
    default_labels = default.results[default.selection.index].labels
    finer_labels = finer.results[finer.selection.index].labels
    assert adjusted_rand_score(topics // 3, default_labels) > 0.95  # the default keeps the themes
    assert finer.rows[finer.selection.index]["clusters"] > default.rows[default.selection.index]["clusters"]
    assert adjusted_rand_score(topics, finer_labels) > adjusted_rand_score(topics, default_labels) + 0.1
    assert finer.params["selection"]["resolution"] == 3.0 and default.params["selection"]["resolution"] == 0.8
    assert "selection at resolution 3 (default 0.8): more, smaller clusters" in finer.notes
    # The default run's ladder already offers both: the themes around 0.8 and the finer run's choice at 3.
    at = {rung.index: (rung.low, rung.high) for rung in default.ladder}
    assert at[default.selection.index][0] <= 0.8 <= at[default.selection.index][1]
    assert at[finer.selection.index][0] <= 3.0 <= at[finer.selection.index][1]
    assert not any("resolution" in note for note in default.notes)


def test_a_separation_score_as_the_rule_scores_every_setting(sphere_blobs):
    found = cluster_points(sphere_blobs.X, _config(select_by="silhouette_cosine", threads=1), Steps())
    assert all(row["silhouette_sample_size"] > 0 for row in found.rows)


def test_how_the_layouts_ran_is_recorded(clustered):
    params = clustered.params
    assert params["reduction"]["threads"] == 1 and params["reduction"]["init"] == "pca"
    assert params["reduction"]["layout"] == "reproducible: seeded single-threaded SGD"
    assert params["parallel_layout"].startswith("reproducible (auto") and params["backend"].startswith(("CPU", "GPU"))
    assert clustered.notes == ()  # reproducible layouts need no note


def test_parallel_layout_rule():
    big = PARALLEL_LAYOUT_MIN_POINTS + 1
    assert _parallel_layout("auto", big, 32)[0] and not _parallel_layout("auto", big, 2)[0]
    assert not _parallel_layout("auto", PARALLEL_LAYOUT_MIN_POINTS, 32)[0]
    assert _parallel_layout("on", 10, 1)[0] and not _parallel_layout("off", big, 32)[0]
    assert "not reproducible" in _parallel_layout("auto", big, 32)[1]


def test_parallel_layouts_are_noted(sphere_blobs):
    found = cluster_points(sphere_blobs.X, _config(parallel_layout="on"), Steps())
    assert found.params["reduction"]["layout"].startswith("parallel")
    assert any("not reproducible" in note for note in found.notes)

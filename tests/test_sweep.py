"""The one-tree sweep must equal a refit of hdbscan.HDBSCAN for every setting, bit for bit."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from clustering.analysis.cluster.hdbscan_tree import build_tree, relative_validity, select_from_tree
from clustering.analysis.cluster.setting import SettingResult
from clustering.analysis.cluster.sweep import sweep
from clustering.analysis.defaults import SELECTIONS
from clustering.analysis.grid import default_grid, parse_grid
from clustering.config import ConfigError


def _blobs(n: int, dims: int, *, noise: int = 0, seed: int = 0) -> np.ndarray:
    X, _ = make_blobs(n, n_features=dims, centers=5, cluster_std=1.2, random_state=seed)
    if noise:
        rng = np.random.default_rng(seed)
        X = np.vstack([X, rng.uniform(X.min(), X.max(), (noise, dims))])
    return X.astype(np.float32)


def _with_duplicates(X: np.ndarray) -> np.ndarray:
    """Exact duplicates and rounded coordinates: many ties in the mutual-reachability graph."""
    return np.round(np.vstack([X, X[:150], X[:40], np.repeat(X[:1], 30, axis=0)]), 1)


DATASETS = {
    "blobs-2d": lambda: _blobs(700, 2),
    "blobs-5d-noise": lambda: _blobs(600, 5, noise=150, seed=1),
    "blobs-10d-noise": lambda: _blobs(600, 10, noise=150, seed=2),
    "blobs-64d-prims": lambda: _blobs(400, 64, noise=80, seed=3),  # > 60 dims: hdbscan switches to Prim's
    "duplicates-2d": lambda: _with_duplicates(_blobs(500, 2, noise=100, seed=4)),
    "duplicates-10d": lambda: _with_duplicates(_blobs(500, 10, noise=100, seed=5)),
    "integer-grid-ties": lambda: np.random.default_rng(6).integers(0, 4, size=(400, 2)).astype(np.float64),
    "small-12": lambda: _blobs(12, 3, seed=7),
    "small-3": lambda: _blobs(3, 2, seed=8),
    "two-points": lambda: np.array([[0.0, 0.0], [1.0, 1.0]]),
}
SIZES = (2, 5, 15, 40)
SAMPLES = (1, 5, 10)


def assert_same_as_reference(result: SettingResult, ref) -> None:
    setting = f"(min_cluster_size={result.min_cluster_size}, min_samples={result.min_samples}, {result.selection})"
    # Stored compactly: int32 labels, the reference's float64 probabilities and GLOSH scores rounded to float32.
    assert result.labels.dtype == np.int32
    assert result.probabilities.dtype == result.outlier_scores.dtype == np.float32
    assert np.array_equal(result.labels, ref.labels_), f"labels differ {setting}"
    assert np.array_equal(result.probabilities, ref.probabilities_.astype(np.float32)), f"probabilities {setting}"
    # GLOSH is NaN for points at infinite density (exact duplicates) in the reference too.
    scores = ref.outlier_scores_.astype(np.float32)
    assert np.array_equal(result.outlier_scores, scores, equal_nan=True), f"outlier scores {setting}"
    assert np.array_equal(result.persistence, ref.cluster_persistence_), f"persistence differs {setting}"
    same = result.dbcv == ref.relative_validity_ or (math.isnan(result.dbcv) and math.isnan(ref.relative_validity_))
    assert same, f"dbcv {result.dbcv} != {ref.relative_validity_} {setting}"


@pytest.mark.parametrize("name", list(DATASETS))
def test_sweep_equals_refit_for_every_setting(name, reference_hdbscan):
    X = DATASETS[name]()
    results = sweep(X, SIZES, SAMPLES, progress=False)
    eom = [r for r in results if r.selection == "eom"]
    assert [(r.min_samples, r.min_cluster_size) for r in eom] == [(s, m) for s in SAMPLES for m in SIZES]
    for result in results:
        ref = reference_hdbscan(X, result.min_cluster_size, result.min_samples, result.selection)
        assert_same_as_reference(result, ref)
    # A leaf setting is left out only where it is the EOM clustering again.
    kept = {(r.min_samples, r.min_cluster_size) for r in results if r.selection == "leaf"}
    for s in SAMPLES:
        for m in set(SIZES) - {m for s2, m in kept if s2 == s}:
            if len(X) >= 2:
                ref = reference_hdbscan(X, m, s, "leaf").labels_
                assert np.array_equal(ref, reference_hdbscan(X, m, s).labels_), f"leaf m={m} s={s} dropped"


def test_the_datasets_exercise_clusters_noise_and_nan_scores():
    """Guard against the identity test passing only on trivial clusterings."""
    clustered = sweep(DATASETS["blobs-10d-noise"](), [15], [5], progress=False)[0]
    assert clustered.n_clusters >= 2 and (clustered.labels == -1).any()
    dup = sweep(DATASETS["duplicates-2d"](), [2], [1], progress=False)[0]
    assert np.isnan(dup.outlier_scores).any()


def test_numba_and_hdbscan_engines_agree_on_tie_heavy_data():
    rng = np.random.default_rng(11)
    for trial in range(12):
        n, d = int(rng.integers(5, 400)), int(rng.choice([1, 2, 4]))
        X = rng.integers(0, 3, size=(n, d)).astype(np.float64) if trial % 2 else rng.normal(size=(n, d))
        X[: n // 5] = X[0]
        slt, _, _ = build_tree(X, int(rng.integers(1, 8)))
        for m, selection in itertools.product((2, 4, 9, 30), SELECTIONS):
            fast = select_from_tree(slt, m, engine="numba", selection=selection)
            ref = select_from_tree(slt, m, engine="hdbscan", selection=selection)
            for a, b in zip(fast, ref, strict=True):
                assert a.dtype == b.dtype
                assert np.array_equal(a, b, equal_nan=True)


def test_leaf_selection_keeps_the_groups_that_excess_of_mass_merges_beside_a_far_group():
    """Six small groups and one large group far away: EOM takes the root's two halves, the leaves keep the six."""
    rng = np.random.default_rng(0)
    groups = [rng.normal(c, 0.3, (60, 5)) for c in range(6)] + [rng.normal(20, 0.3, (200, 5))]
    X = np.concatenate(groups).astype(np.float32)
    truth = np.repeat(np.arange(7), [60] * 6 + [200])
    by_method = {r.selection: r for r in sweep(X, [40], [5], progress=False)}
    assert by_method["eom"].n_clusters == 2
    assert by_method["leaf"].n_clusters >= 6
    clustered = by_method["leaf"].labels >= 0
    assert adjusted_rand_score(truth[clustered], by_method["leaf"].labels[clustered]) > 0.95


def test_sweep_rejects_unknown_selection_methods():
    with pytest.raises(ValueError, match="selections"):
        sweep(_blobs(50, 2), [5], [5], progress=False, selections=("eom", "excess"))
    with pytest.raises(ValueError, match="selection must be one of"):
        select_from_tree(build_tree(_blobs(50, 2), 5)[0], 5, selection="tree")


def test_build_tree_picks_the_reference_algorithm():
    assert build_tree(_blobs(50, 2), 5)[2] == "boruvka_kdtree"
    assert build_tree(_blobs(50, 61), 5)[2] == "prims_kdtree"


def test_relative_validity_matches_reference(reference_hdbscan):
    X = _blobs(300, 2, noise=40, seed=9)
    ref = reference_hdbscan(X, 10, 5)
    _, mst, _ = build_tree(X, 5)
    assert relative_validity(ref.labels_, mst) == ref.relative_validity_


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_points_are_all_noise(n):
    results = sweep(np.zeros((n, 3)), [2, 5], [1, 5], progress=False)
    assert len(results) == 4
    for r in results:
        assert r.labels.shape == (n,) and (r.labels == -1).all()
        assert r.probabilities.shape == r.outlier_scores.shape == (n,)
        assert r.persistence.size == 0 and r.n_clusters == 0
        assert math.isnan(r.dbcv)


def test_all_identical_points_are_noise_like_the_reference(reference_hdbscan):
    X = np.ones((40, 3))
    result = sweep(X, [5], [5], progress=False)[0]
    assert_same_as_reference(result, reference_hdbscan(X, 5, 5))


def test_progress_bar_goes_to_stderr(capsys):
    sweep(_blobs(60, 2), [5, 10], [5], progress=True)
    assert "HDBSCAN sweep" in capsys.readouterr().err


def test_progress_bar_redraws_at_its_own_pace_not_per_setting(capsys):
    # A fast sweep of 80 settings (40 sizes, two selections) written to a file or a job log, not a terminal: a
    # handful of redraws, where forcing one per setting wrote about 80 (each \r starts one).
    sweep(_blobs(200, 2), list(range(5, 45)), [5], progress=True)
    err = capsys.readouterr().err
    assert "80/80" in err and err.count("\r") <= 20  # tqdm redraws every 0.1 s: 20 allows a slow, loaded machine


def test_seconds_are_recorded():
    results = sweep(_blobs(200, 2), [5, 10], [3], progress=False)
    assert all(r.seconds > 0 for r in results)


@pytest.mark.parametrize(
    ("X", "sizes", "samples", "message"),
    [
        (np.zeros(5), [5], [5], "X must be a 2-D array"),
        (np.array([[0.0, np.nan], [1.0, 1.0]]), [5], [5], "X must be finite"),
        (np.zeros((5, 2)), [1], [5], "min_cluster_sizes must be integers >= 2"),
        (np.zeros((5, 2)), [5], [0], "min_samples must be integers >= 1"),
        (np.zeros((5, 2)), [], [5], "min_cluster_sizes must not be empty"),
        (np.zeros((5, 2)), [5.5], [5], "min_cluster_sizes must be integers"),
    ],
)
def test_sweep_validates_inputs(X, sizes, samples, message):
    with pytest.raises(ValueError, match=message):
        sweep(X, sizes, samples, progress=False)


def test_sweep_rejects_unknown_engine():
    with pytest.raises(ValueError, match="engine must be one of"):
        sweep(np.zeros((5, 2)), [2], [1], progress=False, engine="fast")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("5,10,20", (5, 10, 20)),
        (" 20, 5,5 ,10", (5, 10, 20)),
        ("2:12:5", (2, 7, 12)),  # stop inclusive
        ("2:11:5", (2, 7)),
        ("3:5", (3, 4, 5)),
        ([40, 2, 40], (2, 40)),
        ((np.int64(7),), (7,)),
        ("1000", (1000,)),  # above n: kept, gives an all-noise setting
    ],
)
def test_parse_grid_accepts(spec, expected):
    assert parse_grid(spec, 100) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("a,b", "comma-separated integers"),
        ("5:2", "stop 2 is below start 5"),
        ("2:10:0", "step must be a positive integer"),
        ("2:x", "start:stop"),
        ("1:3:1:1", "start:stop"),
        ("1,5", r"every value must be >= 2, got \[1\]"),
        ([2.5], "values must be integers"),
        ([], "empty"),
    ],
)
def test_parse_grid_rejects_with_the_option_name(spec, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_grid(spec, 100, option="--min-cluster-sizes")
    assert "--min-cluster-sizes" in str(info.value)


def test_parse_grid_minimum_applies_to_min_samples():
    assert parse_grid("1,3", 100, option="min_samples", minimum=1) == (1, 3)


@pytest.mark.parametrize("n", [0, 1, 3, 4, 10, 100, 600, 5_000, 40_000, 1_000_000])
def test_default_grid_is_increasing_valid_and_scales_with_n(n):
    grid = default_grid(n)
    assert grid == parse_grid(None, n)
    assert min(grid) >= 2 and list(grid) == sorted(set(grid))
    if n >= 100:
        assert len(grid) >= 10
        assert max(grid) <= max(n // 2, 20)
        assert max(grid) > max(default_grid(n // 10))


def _children() -> set[int]:
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        found |= {int(pid) for pid in (task / "children").read_text().split()}
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from Linux's /proc")
def test_large_trees_equal_the_reference_without_worker_processes(reference_hdbscan):
    X = _blobs(17_000, 3, noise=500, seed=12)  # above 16,384 points hdbscan splits the core-distance query in jobs
    before = _children()
    result = sweep(X, [60], [5], progress=False)[0]
    assert _children() == before  # threads, not joblib's worker processes
    assert_same_as_reference(result, reference_hdbscan(X, 60, 5))

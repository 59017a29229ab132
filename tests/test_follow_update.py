"""Following a collection, end to end (issue 25): analyse the first 80 % of a dated collection, update it with the
last 20 %, and compare with a full re-analysis of 100 %. Known answers: one topic exists only in the last 20 %.

Two sets: synthetic topics, and real image features (scikit-learn's bundled handwritten digits, 1,797 scanned images,
their pixels as features), in a seeded time order where every "0" is posted late.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.run import run_analysis
from tests.test_shards import write_shards

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Split:
    first: pd.DataFrame  # assignments of the first analysis (80 %)
    updated: pd.DataFrame  # of the update with the last 20 %
    full: pd.DataFrame  # of the full re-analysis of 100 %, in the update's row order
    late_ids: list[str]  # the rows of the topic that exists only in the last 20 %
    folder: Path


def synthetic_set():
    rng = np.random.default_rng(0)
    dim, topics, n = 64, 10, 2000
    centres = rng.standard_normal((topics, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = rng.integers(0, topics, n)
    X = centres[truth] + 0.4 * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), truth


def digits_set():
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data.astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True), digits.target


def analyse(**options) -> pd.DataFrame:
    run_analysis(AnalyzeConfig(progress=False, **options))
    return pd.read_parquet(Path(options["output"]) / "assignments.parquet").set_index("id")


def time_split(root: Path, X: np.ndarray, truth: np.ndarray, late_topic: int) -> Split:
    """Rows in a seeded random order, except every row of ``late_topic``, which comes in the last 20 %."""
    order = np.random.default_rng(1).permutation(len(X))
    late, rest = order[truth[order] == late_topic], order[truth[order] != late_topic]
    cut = int(0.8 * len(X))
    first, second = rest[:cut], np.concatenate([rest[cut:], late])
    ids = np.array([f"p{i:05d}" for i in range(len(X))])
    for name, rows in (("first", first), ("second", second), ("all", np.concatenate([first, second]))):
        write_shards(root / name, X[rows], labels=truth[rows], ids=list(ids[rows]), dim=X.shape[1])
    a = analyse(input=str(root / "first"), output=str(root / "A"))
    u = analyse(input=str(root / "second"), output=str(root / "U"), update=str(root / "A"))
    f = analyse(input=str(root / "all"), output=str(root / "F"))
    return Split(a, u, f.loc[u.index], list(ids[late]), root)


@pytest.fixture(scope="module", params=["synthetic", "digits"])
def split(request, tmp_path_factory) -> Split:
    X, truth = synthetic_set() if request.param == "synthetic" else digits_set()
    return time_split(
        tmp_path_factory.mktemp(request.param), X, truth, late_topic=5 if request.param == "synthetic" else 0
    )


def test_no_earlier_row_changes_cluster_or_place(split):
    earlier = split.updated.loc[split.first.index]
    assert (earlier["cluster"] == split.first["cluster"]).all()
    assert np.allclose(earlier[["x", "y"]].to_numpy(), split.first[["x", "y"]].to_numpy())
    assert (earlier["batch"] == 0).all() and (earlier["label_source"] == "clustering").all()
    new = split.updated.drop(split.first.index)
    assert len(new) == len(split.updated) - len(split.first) and (new["batch"] == 1).all()
    assert set(new["label_source"]) <= {"assigned", "new_cluster"}


def test_the_update_agrees_with_a_full_reanalysis_on_members(split):
    members = (split.updated["cluster"] >= 0) & (split.full["cluster"] >= 0)
    assert members.mean() > 0.8
    ari = adjusted_rand_score(split.updated["cluster"][members], split.full["cluster"][members])
    assert ari >= 0.9, ari


def test_a_topic_only_in_the_last_fifth_is_one_new_cluster(split):
    earlier_clusters = split.first["cluster"].max() + 1
    held = split.updated.loc[split.late_ids, "cluster"].value_counts()
    assert held.index[0] >= earlier_clusters  # a new id, after every earlier one
    assert held.iloc[0] >= 0.8 * len(split.late_ids), held.head()
    clusters = pd.read_csv(split.folder / "U" / "clusters.csv")
    chosen = clusters[clusters["level"] == "clusters"].set_index("cluster")
    assert bool(chosen.loc[held.index[0], "new"]) and not chosen.loc[: earlier_clusters - 1, "new"].any()
    metrics = json.loads((split.folder / "U" / "metrics.json").read_text())
    assert [b["kind"] for b in metrics["batches"]] == ["analysis", "update"]
    assert metrics["batches"][1]["rows"] == len(split.updated) - len(split.first)


def test_an_update_of_an_update_reads_every_batch(split, tmp_path):
    """A third batch: the rows of the second batch's folder again (nothing new) and a few copies of earlier images."""
    updated = analyse(input=str(split.folder / "second"), output=str(tmp_path / "U2"), update=str(split.folder / "U"))
    assert len(updated) == len(split.updated)  # ids already analysed are read once
    assert (updated.loc[split.updated.index, "cluster"] == split.updated["cluster"]).all()
    metrics = json.loads((tmp_path / "U2" / "metrics.json").read_text())
    assert len(metrics["input"]) == 3 and metrics["batches"][-1]["rows"] == 0


def test_an_update_in_place_rewrites_its_own_folder(split, tmp_path):
    import shutil

    shutil.copytree(split.folder / "A", tmp_path / "A")
    updated = analyse(input=str(split.folder / "second"), output=str(tmp_path / "A"), update=str(tmp_path / "A"))
    assert updated.sort_index().equals(split.updated.sort_index())


def test_an_update_whose_earlier_shards_are_gone_says_so(split, tmp_path):
    import shutil

    shutil.copytree(split.folder / "A", tmp_path / "A")
    metrics = json.loads((tmp_path / "A" / "metrics.json").read_text())
    (tmp_path / "A" / "metrics.json").write_text(json.dumps({**metrics, "input": str(tmp_path / "moved")}))
    proc = subprocess.run([sys.executable, str(ROOT / "jobs" / "analyze.py"), "--input", str(split.folder / "second"),
                           "--output", str(tmp_path / "U"), "--update", str(tmp_path / "A")],
                          capture_output=True, text=True)  # fmt: skip
    assert (
        proc.returncode == 2
        and "the shards it analysed are gone" in proc.stderr
        and str(tmp_path / "moved") in proc.stderr
    )
    assert len(proc.stderr.strip().splitlines()) == 1


def test_update_options_that_cannot_work_are_one_line_and_exit_2(tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, str(ROOT / "jobs" / "analyze.py"), *args], capture_output=True, text=True
        )

    (tmp_path / "shards").mkdir()
    not_analysis = run("--input", str(tmp_path / "shards"), "--output", str(tmp_path / "o"), "--update", str(tmp_path))
    assert not_analysis.returncode == 2
    assert "--update" in not_analysis.stderr and "not an analysis folder" in not_analysis.stderr
    both = run("--input", "x", "--output", str(tmp_path / "o"), "--update", "a", "--previous", "b")
    assert both.returncode == 2 and "exclude each other" in both.stderr

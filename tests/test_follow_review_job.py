"""A person's review and kept ids through the Analyze job: ``--review`` on a re-analysis and on an update,
``--previous`` on a re-analysis with another seed; what the tables and the report say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.run import run_analysis
from tests.test_shards import blobs, write_shards


def analyse(**options) -> pd.DataFrame:
    run_analysis(AnalyzeConfig(progress=False, **options))
    return pd.read_parquet(Path(options["output"]) / "assignments.parquet").set_index("id")


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    root = tmp_path_factory.mktemp("review")
    X, truth = blobs(720, dim=32, clusters=6, spread=0.25, seed=3)
    write_shards(root / "a", X[:600], labels=truth[:600], id_prefix="a")
    write_shards(root / "b", X[600:], labels=truth[600:], id_prefix="b")
    before = analyse(input=str(root / "a"), output=str(root / "A"))
    # A grown collection: 200 more posts like those of the last cluster, which makes it the largest.
    last = before.index[before["cluster"] == before["cluster"].max()]
    rows = np.array([int(i.split("-")[1]) for i in last])
    extra = X[rows[np.arange(200) % len(rows)]] + 0.02 * np.random.default_rng(0).standard_normal((200, X.shape[1]))
    grown = np.concatenate([X[:600], extra / np.linalg.norm(extra, axis=1, keepdims=True)]).astype(np.float32)
    ids = [f"a-{i:05d}" for i in range(600)] + [f"c-{i:05d}" for i in range(200)]
    write_shards(root / "grown", grown, labels=np.concatenate([truth[:600], truth[rows[:1]].repeat(200)]), ids=ids)
    return root, before


def members(table: pd.DataFrame, cluster: int) -> list[str]:
    return sorted(table.index[table["cluster"] == cluster])[:1000]


def make_review(root: Path, table: pd.DataFrame) -> tuple[Path, dict]:
    split_ids = members(table, 3)[:12]
    noise_ids = members(table, 4)[:5]
    review = {
        "format": "clipcluster-review", "version": 1, "level": "clusters", "created": "2026-12-07T12:00:00Z",
        "actions": [
            {"kind": "rename", "cluster": 0, "members": members(table, 0), "name": "Flags at the border"},
            {"kind": "merge", "clusters": [1, 2], "members": [members(table, 1), members(table, 2)], "name": "Crowds"},
            {"kind": "split", "ids": split_ids, "name": "Burning cars"},
            {"kind": "noise", "ids": noise_ids},
            {"kind": "rename", "cluster": 9, "members": ["nobody-1", "nobody-2"], "name": "Gone"},
        ],
    }  # fmt: skip
    path = root / "review.json"
    path.write_text(json.dumps(review))
    return path, {"split": split_ids, "noise": noise_ids}


def check_reviewed(out: Path, table: pd.DataFrame, before: pd.DataFrame, picked: dict) -> None:
    clusters = pd.read_csv(out / "clusters.csv")
    chosen = clusters[clusters["level"] == "clusters"].set_index("cluster")
    by_name = {name: cluster for cluster, name in chosen["name"].items()}
    assert {"Flags at the border", "Crowds", "Burning cars"} <= set(by_name)
    assert (chosen.loc[[by_name[n] for n in ("Flags at the border", "Crowds", "Burning cars")], "name_source"]
            == "review").all()  # fmt: skip
    assert chosen.loc[[by_name["Crowds"], by_name["Burning cars"]], "reviewed"].all()
    old = table.loc[before.index]
    merged = old.loc[before.index[before["cluster"].isin([1, 2])], "cluster"]
    assert merged.nunique() == 1 and merged.iloc[0] == by_name["Crowds"]
    assert (old.loc[picked["split"], "cluster"] == by_name["Burning cars"]).all()
    assert (old.loc[picked["noise"], "cluster"] == -1).all()
    assert (old.loc[picked["noise"] + picked["split"], "label_source"] == "review").all()
    assert sorted(table["cluster"][table["cluster"] >= 0].unique()) == list(range(table["cluster"].max() + 1))
    metrics = json.loads((out / "metrics.json").read_text())
    assert [a["kind"] for a in metrics["review"]["applied"]] == ["rename", "merge", "split", "noise"]
    assert [m["action"] for m in metrics["review"]["not_applied"]] == [5]
    report = (out / "report.html").read_text()
    assert "Flags at the border" in report and "named by a person" in report and "no longer applies" in report


def test_a_review_applies_to_a_reanalysis_of_the_same_rows(first, tmp_path):
    root, before = first
    path, picked = make_review(tmp_path, before)
    table = analyse(input=str(root / "a"), output=str(tmp_path / "R"), review=str(path))
    check_reviewed(tmp_path / "R", table, before, picked)


def test_a_review_applies_to_an_update_with_new_posts(first, tmp_path):
    root, before = first
    path, picked = make_review(tmp_path, before)
    table = analyse(input=str(root / "b"), output=str(tmp_path / "U"), update=str(root / "A"), review=str(path))
    check_reviewed(tmp_path / "U", table, before, picked)
    assert (table.drop(before.index)["batch"] == 1).all()


def test_a_reanalysis_of_a_grown_collection_keeps_the_previous_ids(first, tmp_path):
    root, before = first
    grown_id = int(before["cluster"].max())
    plain = analyse(input=str(root / "grown"), output=str(tmp_path / "plain"), seed=7)
    assert plain.loc[before.index[before["cluster"] == grown_id], "cluster"].mode()[0] == 0  # numbered by size
    table = analyse(input=str(root / "grown"), output=str(tmp_path / "P"), previous=str(root / "A"), seed=7)
    old = table.loc[before.index]
    both = (old["cluster"] >= 0) & (before["cluster"] >= 0)
    assert (old.loc[both, "cluster"] == before.loc[both, "cluster"]).mean() > 0.95
    changes = pd.read_csv(tmp_path / "P" / "cluster_changes.csv")
    assert (changes["event"] == "kept").sum() == grown_id + 1 and set(changes["event"]) == {"kept"}
    assert (table.drop(before.index)["batch"] == 1).all()
    metrics = json.loads((tmp_path / "P" / "metrics.json").read_text())
    assert [b["kind"] for b in metrics["batches"]] == ["analysis", "re-analysis"]
    assert metrics["batches"][1]["rows"] == 200

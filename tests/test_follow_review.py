"""A person's review (clustering.analysis.follow.review): checked on load, applied through the rows it names, what no
longer applies reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clustering.analysis.follow.review import apply_review, load_review
from clustering.config import ConfigError

IDS = [f"r{i}" for i in range(12)]
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, -1, -1])


def review_file(tmp_path, actions, **extra):
    path = tmp_path / "review.json"
    path.write_text(json.dumps({"format": "clipcluster-review", "version": 1, "level": "clusters",
                                "actions": actions, **extra}))  # fmt: skip
    return str(path)


def members(cluster):
    return [IDS[i] for i in np.flatnonzero(np.equal(LABELS, cluster))]


def test_rename_merge_split_and_noise_apply_in_order_and_labels_stay_contiguous(tmp_path):
    path = review_file(tmp_path, [
        {"kind": "rename", "cluster": 1, "members": members(1), "name": "Flags"},
        {"kind": "merge", "clusters": [0, 2], "members": [members(0), members(2)], "name": "Crowds"},
        {"kind": "split", "ids": ["r10", "r11"], "name": "Fire"},
        {"kind": "noise", "ids": ["r3"]},
    ])  # fmt: skip
    done = apply_review(load_review(path), LABELS, IDS)
    # 0 and 2 merged into 0; the emptied number 2 is taken by nothing (1 is the last); the split makes cluster 2
    assert done.labels.tolist() == [0, 0, 0, -1, 1, 1, 1, 0, 0, 0, 2, 2]
    assert done.names == {1: "Flags", 0: "Crowds", 2: "Fire"}
    assert done.reviewed == {0, 1, 2}
    assert done.changed_rows.tolist() == [False] * 3 + [True] + [False] * 3 + [True] * 5
    assert [a["kind"] for a in done.applied] == ["rename", "merge", "split", "noise"] and done.not_applied == []


def test_a_cluster_found_again_under_another_number_and_a_cluster_that_is_gone(tmp_path):
    path = review_file(tmp_path, [
        {"kind": "rename", "cluster": 1, "members": members(1), "name": "Flags"},
        {"kind": "rename", "cluster": 2, "members": members(2), "name": "Gone"},
    ])  # fmt: skip
    relabelled = np.array([1, 1, 1, 1, 0, 0, 0, -1, -1, 1, -1, -1])  # cluster 1 is now 0; cluster 2 dissolved
    done = apply_review(load_review(path), relabelled, IDS)
    assert done.names == {0: "Flags"}
    assert len(done.not_applied) == 1 and done.not_applied[0]["action"] == 2
    assert "cluster 2 of the review is gone" in done.not_applied[0]["reason"]
    assert "noise 67%" in done.not_applied[0]["reason"]


def test_a_split_applied_twice_is_the_same_cluster_not_a_new_number(tmp_path):
    path = review_file(tmp_path, [{"kind": "split", "ids": ["r10", "r11"], "name": "Fire"}])
    review = load_review(path)
    once = apply_review(review, LABELS, IDS)
    twice = apply_review(review, once.labels, IDS)
    assert twice.labels.tolist() == once.labels.tolist() and twice.names == {3: "Fire"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "is not a JSON file"),
        (json.dumps({"format": "other"}), "is not a clipcluster review"),
        (json.dumps({"format": "clipcluster-review", "version": 2, "actions": []}), "has version 2"),
        (json.dumps({"format": "clipcluster-review", "version": 1, "actions": [{"kind": "paint"}]}),
         "action 1: 'kind' must be one of"),
        (json.dumps({"format": "clipcluster-review", "version": 1, "actions": [{"kind": "rename", "members": ["a"]}]}),
         "action 1: a rename needs a 'name'"),
        (json.dumps({"format": "clipcluster-review", "version": 1, "actions": [{"kind": "merge", "members": [["a"]]}]}),
         "a merge needs 'members'"),
    ],
)  # fmt: skip
def test_a_bad_review_file_is_one_line_naming_the_problem(tmp_path, document, message):
    path = tmp_path / "review.json"
    path.write_text(document)
    with pytest.raises(ConfigError, match=message) as caught:
        load_review(str(path))
    assert "\n" not in str(caught.value)


def test_a_review_passed_again_changes_nothing_more(tmp_path):
    path = review_file(tmp_path, [
        {"kind": "merge", "clusters": [0, 2], "members": [members(0), members(2)], "name": "Crowds"},
        {"kind": "split", "ids": ["r10", "r11"]},
    ])  # fmt: skip
    review = load_review(path)
    once = apply_review(review, LABELS, IDS)
    again = apply_review(review, once.labels, IDS)
    assert again.labels.tolist() == once.labels.tolist() and again.names == once.names == {0: "Crowds"}
    assert again.not_applied == [] and "already one" in again.applied[0]["sentence"]

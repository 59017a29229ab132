"""Accounts per cluster: posts, distinct accounts, the top accounts and the top account's share."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clustering.analysis.posts.accounts import cluster_accounts
from clustering.analysis.posts.columns import parse_accounts


def test_a_topic_posted_by_three_accounts_has_a_top_share_of_at_least_a_third():
    rng = np.random.default_rng(0)
    topic = list(rng.choice(["ana", "ben", "cleo"], size=30))  # cluster 0: three accounts only
    crowd = [f"user{i}" for i in range(30)]  # cluster 1: thirty accounts, one post each
    stats = cluster_accounts([0] * 30 + [1] * 30, parse_accounts(topic + crowd))
    counts = {name: topic.count(name) for name in ("ana", "ben", "cleo")}
    assert stats.accounts.tolist() == [3, 30]
    assert stats.top_account_share[0] >= 1 / 3
    assert stats.top_account_share[0] == pytest.approx(max(counts.values()) / 30)
    assert stats.top_account_share[1] == pytest.approx(1 / 30)
    assert stats.top_accounts[0][0] == (max(counts, key=counts.get), max(counts.values()))


def test_one_account_pushing_a_cluster_shows_as_a_high_share():
    accounts = ["relay"] * 8 + ["a", "b"]
    stats = cluster_accounts(np.zeros(10, int), parse_accounts(accounts))
    table = stats.table().to_pylist()[0]
    assert table["top_account"] == "relay" and table["top_account_share"] == pytest.approx(0.8)
    assert table["top_accounts"] == "relay (8);a (1);b (1)"


def test_top_accounts_are_ordered_by_posts_then_first_seen_and_capped():
    accounts = ["z", "y", "y", "x", "x", "w", "v", "u", "t"]
    stats = cluster_accounts(np.zeros(9, int), parse_accounts(accounts), top_n=3)
    assert stats.top_accounts[0] == (("y", 2), ("x", 2), ("z", 1))


def test_rows_without_account_count_as_posts_but_not_in_the_share():
    labels = [0, 0, 0, 0, 1, 1, -1]
    stats = cluster_accounts(labels, parse_accounts(["a", "a", None, "b", None, None, "a"]))
    assert stats.posts.tolist() == [4, 2]
    assert stats.accounts.tolist() == [2, 0]
    assert stats.top_account_share[0] == pytest.approx(2 / 3)
    assert math.isnan(stats.top_account_share[1])
    row = stats.table().to_pylist()[1]
    assert row["top_account"] is None and row["top_account_share"] is None


def test_without_an_account_column_only_posts_are_counted():
    stats = cluster_accounts([2, 2, 5, -1], None)
    assert stats.clusters.tolist() == [2, 5] and stats.posts.tolist() == [2, 1]
    table = stats.table()
    assert table.column("accounts").null_count == 2 and table.column("top_account_share").null_count == 2


def test_any_labels_work_and_bad_input_is_refused():
    stats = cluster_accounts([10, 10, 3], parse_accounts(["a", "b", "a"]))
    assert stats.clusters.tolist() == [3, 10] and stats.accounts.tolist() == [1, 2]
    with pytest.raises(ValueError, match="accounts has 2 rows but labels has 3"):
        cluster_accounts([0, 0, 0], parse_accounts(["a", "b"]))
    with pytest.raises(ValueError, match="top_n must be at least 1"):
        cluster_accounts([0], None, top_n=0)

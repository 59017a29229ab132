"""Cluster ids kept across analyses by shared rows (clustering.analysis.follow.matching): known answers."""

from __future__ import annotations

import numpy as np

from clustering.analysis.follow.matching import match_clusters


def events(matching) -> list[tuple]:
    return [(row["event"], row["cluster"], row["previous"]) for row in matching.changes]


def test_the_same_clusters_under_other_numbers_get_their_ids_back():
    previous = np.array([0, 0, 0, 1, 1, 1, 2, 2, -1])
    current = np.array([2, 2, 2, 0, 0, 0, 1, 1, -1])  # the same clusters, numbered by some other order
    matching = match_clusters(previous, current)
    assert matching.relabel(current).tolist() == previous.tolist()
    assert events(matching) == [("kept", 0, 0), ("kept", 1, 1), ("kept", 2, 2)]
    assert matching.born == []


def test_a_split_a_birth_and_a_death_are_listed_and_the_clear_half_keeps_the_id():
    previous = np.array([0] * 10 + [1] * 6 + [2] * 4 + [-1] * 5)
    # cluster 0 splits 7/3 (the 7 keep id 0), cluster 1 stays, cluster 2's rows become noise, five noise rows are new
    current = np.array([0] * 7 + [3] * 3 + [1] * 6 + [-1] * 4 + [2] * 5)
    matching = match_clusters(previous, current)
    labels = matching.relabel(current)
    assert labels[:7].tolist() == [0] * 7 and labels[10:16].tolist() == [1] * 6
    found = events(matching)
    assert ("kept", 0, 0) in found and ("kept", 1, 1) in found
    assert ("died", None, 2) in found
    born = [c for event, c, _ in found if event == "born"]
    assert len(born) == 2 and set(born) == set(labels[[7, 20]].tolist())
    splits = [row for row in matching.changes if row["event"] == "split"]
    assert {row["cluster"] for row in splits} == {0, int(labels[7])} and all(row["previous"] == 0 for row in splits)


def test_a_merge_of_two_equal_clusters_is_listed_and_the_untouched_cluster_keeps_its_id():
    previous = np.array([0] * 8 + [1] * 5 + [2] * 5)
    current = np.array([1] * 8 + [0] * 10)
    matching = match_clusters(previous, current)
    merged = [row for row in matching.changes if row["event"] == "merged"]
    assert {row["previous"] for row in merged} == {1, 2}
    assert matching.relabel(current)[:8].tolist() == [0] * 8


def test_fewer_clusters_than_before_renumber_a_matched_cluster_into_the_contiguous_range():
    previous = np.array([0] * 4 + [1] * 4 + [2] * 4 + [3] * 4)
    current = np.array([-1] * 12 + [0] * 4)  # only the old cluster 3 is left, and it must be numbered 0
    matching = match_clusters(previous, current)
    assert matching.relabel(current)[12:].tolist() == [0] * 4
    assert ("renumbered", 0, 3) in events(matching)


def test_plurality_counts_each_row_and_breaks_ties_towards_the_smaller_label():
    from clustering.analysis.follow.assign import UNPLACED, plurality

    votes = np.array([[3, 3, -1, 5], [-2, -1, -1, -2], [4, 2, 4, 2], [-1, -1, -1, -1]])
    winner, count = plurality(votes, low=UNPLACED)
    assert winner.tolist() == [3, -2, 2, -1] and count.tolist() == [2, 2, 2, 4]
    winner, count = plurality(votes, low=0)  # noise and unplaced not counted
    assert winner.tolist() == [3, 0, 2, 0] and count.tolist() == [2, 0, 2, 0]

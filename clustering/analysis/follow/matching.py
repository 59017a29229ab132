"""Clusters of two analyses matched by the rows they share: which cluster keeps which id, and what split, merged,
was born or died.

The ids are the label numbers themselves, kept contiguous (``0 .. k - 1``) because every table, figure and page of an
analysis is indexed by them. A current cluster keeps its previous id when the match is clear and that number exists in
the new run (fewer clusters than before leave high numbers out); the others take the free numbers, in size order.
Pure functions on arrays, no I/O.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# A match is clear when the current and the previous cluster each hold at least this share of the rows they share
# with the other analysis in the other one (so one of two halves of a split, or one side of a merge, is not a match).
CLEAR_SHARE = 0.5
# A previous cluster "splits" when at least two current clusters each take this share of its shared rows; a current
# cluster is a "merge" when at least two previous clusters each give this share of its shared rows.
PART_SHARE = 0.2

CHANGE_COLUMNS = ("event", "cluster", "previous", "shared_rows", "previous_size", "current_size",
                  "share_of_previous", "share_of_current", "note")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Matching:
    """How the current clusters relate to the previous ones.

    Attributes
    ----------
    new_id : numpy.ndarray
        ``(k,)`` int64: the id each current cluster (by its label before renumbering) takes.
    matched : dict of int to int
        Current label -> previous id, for clear matches only.
    changes : list of dict
        ``cluster_changes.csv`` rows (:data:`CHANGE_COLUMNS`), ids after renumbering.
    """

    new_id: np.ndarray
    matched: dict[int, int]
    changes: list[dict]

    def relabel(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` (current numbering, -1 noise) in the kept ids."""
        out = np.full(len(labels), -1, dtype=np.int32)
        member = labels >= 0
        out[member] = self.new_id[labels[member]]
        return out

    @property
    def born(self) -> list[int]:
        """Ids (after renumbering) of the current clusters matched to no previous one."""
        return sorted(int(self.new_id[c]) for c in range(len(self.new_id)) if c not in self.matched)


def overlap(previous: np.ndarray, current: np.ndarray, k_previous: int, k_current: int) -> np.ndarray:
    """``(k_previous, k_current)`` counts of rows labelled ``p`` before and ``c`` now (noise rows left out)."""
    both = (previous >= 0) & (current >= 0)
    flat = previous[both].astype(np.int64) * k_current + current[both]
    return np.bincount(flat, minlength=k_previous * k_current).reshape(k_previous, k_current)


def match_clusters(previous: np.ndarray, current: np.ndarray) -> Matching:
    """Match the clusters of ``current`` to those of ``previous``, two labellings of the same rows (-1 noise; a row
    absent from one analysis is -1 there).

    A pair is a clear match when each holds at least :data:`CLEAR_SHARE` of the other's shared rows (so each cluster
    has at most one). Matched clusters keep the previous id when it is below the current cluster count; the rest take
    the free numbers from the largest cluster down.
    """
    k_prev = int(previous.max()) + 1 if previous.size and previous.max() >= 0 else 0
    k_cur = int(current.max()) + 1 if current.size and current.max() >= 0 else 0
    counts = overlap(previous, current, k_prev, k_cur).astype(float)
    share_of_prev = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    share_of_cur = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)
    clear = (share_of_prev >= CLEAR_SHARE) & (share_of_cur >= CLEAR_SHARE) & (counts > 0)
    matched = {int(c): int(p) for p, c in zip(*np.nonzero(clear), strict=True)}
    sizes = np.bincount(current[current >= 0], minlength=k_cur)
    new_id = np.full(k_cur, -1, dtype=np.int64)
    for c, p in matched.items():
        if p < k_cur:
            new_id[c] = p
    free = iter(sorted(set(range(k_cur)) - set(new_id[new_id >= 0].tolist())))
    for c in np.lexsort((np.arange(k_cur), -sizes)):
        if new_id[c] < 0:
            new_id[c] = next(free)
    prev_sizes = np.bincount(previous[previous >= 0], minlength=k_prev)
    changes = _changes(counts, matched, new_id, (prev_sizes, sizes))
    return Matching(new_id, matched, changes)


def _changes(counts: np.ndarray, matched: dict[int, int], new_id: np.ndarray, sizes) -> list[dict]:
    prev_sizes, cur_sizes = sizes
    share_of_prev = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    share_of_cur = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)
    k_prev, k_cur = counts.shape
    rows = []

    def row(event, c, p, note=""):
        shared = int(counts[p, c]) if p is not None and c is not None else 0
        return {
            "event": event,
            "cluster": int(new_id[c]) if c is not None else None,
            "previous": p,
            "shared_rows": shared,
            "previous_size": int(prev_sizes[p]) if p is not None else None,
            "current_size": int(cur_sizes[c]) if c is not None else None,
            "share_of_previous": round(float(share_of_prev[p, c]), 4) if p is not None and c is not None else None,
            "share_of_current": round(float(share_of_cur[p, c]), 4) if p is not None and c is not None else None,
            "note": note,
        }

    previous_of = {p: c for c, p in matched.items()}
    for p in range(k_prev):
        parts = np.flatnonzero(share_of_prev[p] >= PART_SHARE)
        if len(parts) >= 2:
            rows.extend(row("split", int(c), p, f"previous cluster {p} went to {len(parts)} clusters") for c in parts)
        elif p not in previous_of:
            target = int(np.argmax(counts[p])) if counts[p].sum() else None
            note = "its rows are noise or absent now" if target is None else "its rows joined another cluster"
            rows.append(row("died", target, p, note))
    for c in range(k_cur):
        sources = np.flatnonzero(share_of_cur[:, c] >= PART_SHARE)
        if len(sources) >= 2:
            rows.extend(row("merged", c, int(p), f"{len(sources)} previous clusters joined") for p in sources)
        if c in matched:
            p = matched[c]
            kept = int(new_id[c]) == p
            rows.append(row("kept" if kept else "renumbered", c, p, "" if kept else f"was {p}; fewer clusters now"))
        elif len(sources) < 2:
            rows.append(row("born", c, None, "matched to no previous cluster"))
    order = {"kept": 0, "renumbered": 1, "born": 2, "split": 3, "merged": 4, "died": 5}
    return sorted(rows, key=lambda r: (order[r["event"]], r["cluster"] if r["cluster"] is not None else -1,
                                       r["previous"] if r["previous"] is not None else -1))  # fmt: skip

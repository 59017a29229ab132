"""A person's review (``review.json``, made in the explorer) read, checked and applied to an analysis's clusters.

The format is in ``docs/follow.md``. A review names clusters by the ids they had when it was made and carries their
members, so it applies to any later analysis of the same rows: a re-analysis, an update, a re-analysis of a grown
collection. An action whose cluster cannot be found again is reported, never dropped silently. Labels stay
contiguous (:mod:`.matching`): a cluster emptied by a merge or sent to noise gives its number to the last cluster.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clustering.config import ConfigError

FORMAT = "clipcluster-review"
VERSION = 1
KINDS = ("rename", "merge", "split", "noise")
MAX_NAME = 200
# The label most of a cluster's recorded members hold is that cluster, when it holds at least this share of them.
FOUND_SHARE = 0.5


@dataclasses.dataclass(frozen=True)
class Review:
    """A checked ``review.json``: its actions in order and where it came from."""

    actions: tuple[dict, ...]
    source: str
    document: dict


@dataclasses.dataclass(frozen=True)
class Reviewed:
    """The labels after a review, and what it did.

    Attributes
    ----------
    labels : numpy.ndarray
        ``(n,)`` int32, contiguous ``0 .. k - 1``, -1 noise.
    names : dict of int to str
        Cluster (final id) -> the person's name.
    reviewed : set of int
        Final ids of the clusters a person renamed or whose members the review changed.
    changed_rows : numpy.ndarray
        ``(n,)`` bool: rows whose label the review set.
    applied, not_applied : list of dict
        One entry per action: ``{"action": index, "kind", "sentence"}``, ``not_applied`` with the reason.
    """

    labels: np.ndarray
    names: dict[int, str]
    reviewed: set[int]
    changed_rows: np.ndarray
    applied: list[dict]
    not_applied: list[dict]

    def document(self, source: str) -> dict:
        """``metrics.json`` ``review``."""
        return {"file": source, "applied": self.applied, "not_applied": self.not_applied}


def load_review(path: str) -> Review:
    """Read and check ``path``; one line naming the problem (``ConfigError``) when it is not a usable review."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--review: no file {path!r}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--review: {path} is not a JSON file: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ConfigError(f'--review: {path} is not a clipcluster review (no "format": "{FORMAT}")')
    if document.get("version") != VERSION:
        raise ConfigError(f"--review: {path} has version {document.get('version')!r}; this clipcluster reads {VERSION}")
    if document.get("level", "clusters") != "clusters":
        raise ConfigError(f"--review: {path} reviews level {document.get('level')!r}; only 'clusters' is supported")
    actions = document.get("actions")
    if not isinstance(actions, list):
        raise ConfigError(f"--review: {path} has no list of actions")
    for i, action in enumerate(actions):
        problem = _problem(action)
        if problem:
            raise ConfigError(f"--review: {path} action {i + 1}: {problem}")
    return Review(tuple(actions), str(path), document)


def _problem(action: object) -> str | None:
    if not isinstance(action, dict) or action.get("kind") not in KINDS:
        return f"'kind' must be one of {', '.join(KINDS)}"
    kind = action["kind"]
    name = action.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME):
        return f"'name' must be a non-empty text of at most {MAX_NAME} characters"
    if kind == "rename" and name is None:
        return "a rename needs a 'name'"
    if kind in ("rename",) and not _id_list(action.get("members")):
        return "a rename needs 'members' (the cluster's row ids)"
    if kind == "merge":
        members = action.get("members")
        if not isinstance(members, list) or len(members) < 2 or not all(_id_list(m) for m in members):
            return "a merge needs 'members': one list of row ids per cluster, at least two"
    if kind in ("split", "noise") and not _id_list(action.get("ids")):
        return f"a {kind} needs 'ids' (a non-empty list of row ids)"
    return None


def _id_list(values: object) -> bool:
    return isinstance(values, list) and bool(values) and all(isinstance(v, (str, int)) for v in values)


def find_cluster(member_rows: np.ndarray, labels: np.ndarray) -> tuple[int | None, str]:
    """The label most of ``member_rows`` hold when it holds at least :data:`FOUND_SHARE` of them; else None and where
    they are now, in words."""
    if not len(member_rows):
        return None, "none of its rows is in this analysis"
    held = labels[member_rows]
    values, counts = np.unique(held, return_counts=True)
    best = int(np.argmax(counts))
    if values[best] >= 0 and counts[best] >= FOUND_SHARE * len(held):
        return int(values[best]), ""
    spread = ", ".join(
        f"{'noise' if v < 0 else f'cluster {v}'} {c / len(held):.0%}"
        for v, c in sorted(zip(values.tolist(), counts.tolist(), strict=True), key=lambda vc: -vc[1])[:3]
    )
    return None, f"its rows are spread now ({spread})"


def apply_review(review: Review, labels: np.ndarray, ids: Sequence[str]) -> Reviewed:
    """Apply ``review`` to ``labels`` (one per row of ``ids``), action by action."""
    row_of = {str(v): i for i, v in enumerate(ids)}
    state = _State(np.asarray(labels, dtype=np.int32).copy(), row_of)
    for index, action in enumerate(review.actions):
        getattr(state, action["kind"])(index, action)
    changed = state.labels != np.asarray(labels)
    return Reviewed(state.labels, state.names, state.reviewed, changed, state.applied, state.not_applied)


class _State:
    """Labels being reviewed, and the record of what each action did."""

    def __init__(self, labels: np.ndarray, row_of: dict[str, int]) -> None:
        self.labels, self.row_of = labels, row_of
        self.names: dict[int, str] = {}
        self.reviewed: set[int] = set()
        self.applied: list[dict] = []
        self.not_applied: list[dict] = []

    def rows(self, values: Sequence) -> np.ndarray:
        return np.array(sorted({self.row_of[str(v)] for v in values if str(v) in self.row_of}), dtype=np.int64)

    def done(self, index: int, action: dict, sentence: str) -> None:
        self.applied.append({"action": index + 1, "kind": action["kind"], "sentence": sentence})

    def skip(self, index: int, action: dict, reason: str) -> None:
        self.not_applied.append({"action": index + 1, "kind": action["kind"], "reason": reason})

    def own(self, cluster: int, action: dict) -> None:
        """``cluster`` is a person's now, under the action's name when it gives one."""
        if action.get("name"):
            self.names[cluster] = action["name"].strip()
        self.reviewed.add(cluster)

    def rename(self, index: int, action: dict) -> None:
        cluster, where = find_cluster(self.rows(action["members"]), self.labels)
        if cluster is None:
            self.skip(index, action, f"cluster {action.get('cluster')} of the review is gone: {where}")
            return
        self.own(cluster, action)
        self.done(index, action, f"cluster {cluster} named {action['name'].strip()!r} by a person")

    def merge(self, index: int, action: dict) -> None:
        found = [find_cluster(self.rows(m), self.labels) for m in action["members"]]
        names = action.get("clusters") or list(range(len(found)))
        gone = [f"cluster {c}: {where}" for c, (cluster, where) in zip(names, found, strict=False) if cluster is None]
        if gone:
            detail = "; ".join(gone)
            self.skip(index, action, f"not every cluster to merge is still there ({detail})")
            return
        targets = list(dict.fromkeys(cluster for cluster, _ in found))
        if len(targets) < 2:  # merged already (a review passed again to a later run)
            self.own(targets[0], action)
            self.done(index, action, f"the clusters are already one: cluster {targets[0]}")
            return
        keep = targets[0]
        self.labels[np.isin(self.labels, targets[1:])] = keep
        self.own(keep, action)
        kept = self._compact(keep)
        self.done(index, action, f"clusters {', '.join(map(str, targets))} merged into cluster {kept}")

    def split(self, index: int, action: dict) -> None:
        rows = self.rows(action["ids"])
        if not len(rows):
            self.skip(index, action, "none of its rows is in this analysis")
            return
        held = np.unique(self.labels[rows])
        if len(held) == 1 and held[0] >= 0 and (self.labels == held[0]).sum() == len(rows):
            self.own(int(held[0]), action)
            self.done(index, action, f"its {len(rows)} rows are already cluster {int(held[0])}")
            return
        new = int(self.labels.max()) + 1 if (self.labels >= 0).any() else 0
        self.labels[rows] = new
        self.own(new, action)
        kept = self._compact(new)
        self.done(index, action, f"{len(rows)} rows made a new cluster {kept}")

    def noise(self, index: int, action: dict) -> None:
        rows = self.rows(action["ids"])
        if not len(rows):
            self.skip(index, action, "none of its rows is in this analysis")
            return
        touched = set(self.labels[rows][self.labels[rows] >= 0].tolist())
        self.labels[rows] = -1
        self.reviewed.update(touched)
        self._compact(None)
        self.done(index, action, f"{len(rows)} rows sent to noise")

    def _compact(self, follow: int | None) -> int | None:
        """Give every emptied number to the last cluster, so labels stay 0 .. k - 1; returns ``follow``'s number."""
        while True:
            present = np.bincount(self.labels[self.labels >= 0]) if (self.labels >= 0).any() else np.zeros(0, int)
            empty = np.flatnonzero(present == 0)
            if not len(empty):
                return follow
            gap, last = int(empty[0]), len(present) - 1
            self.labels[self.labels == last] = gap
            self.names = {gap if c == last else c: n for c, n in self.names.items() if c != gap}
            self.reviewed = {gap if c == last else c for c in self.reviewed if c != gap}
            follow = gap if follow == last else follow

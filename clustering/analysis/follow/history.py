"""What a run knows about its place in a followed collection: each row's batch and label source, the batches so far,
the clusters that are new, and a person's review (``docs/follow.md``)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

CLUSTERING, ASSIGNED, NEW_CLUSTER, REVIEW = "clustering", "assigned", "new_cluster", "review"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class History:
    """Per row and per cluster of the chosen level.

    Attributes
    ----------
    batch : numpy.ndarray
        ``(n,)`` int32: the batch that added each row (0: the first analysis).
    label_source : numpy.ndarray
        ``(n,)`` object: ``clustering``, ``assigned``, ``new_cluster`` or ``review``.
    batches : list of dict
        ``metrics.json`` ``batches``, oldest first, this run last.
    new_clusters : frozenset of int
        Clusters that appeared in this run's batch.
    reviewed : frozenset of int
        Clusters a person renamed or whose members a review changed.
    names : dict of int to str
        A person's names, by cluster.
    review : dict or None
        ``metrics.json`` ``review``: the file, the actions applied and those that no longer apply.
    changes : list of dict
        ``cluster_changes.csv`` rows (:data:`clustering.analysis.follow.matching.CHANGE_COLUMNS`).
    """

    batch: np.ndarray
    label_source: np.ndarray
    batches: list[dict]
    new_clusters: frozenset[int] = frozenset()
    reviewed: frozenset[int] = frozenset()
    names: dict[int, str] = dataclasses.field(default_factory=dict)
    review: dict | None = None
    changes: list[dict] = dataclasses.field(default_factory=list)

    @classmethod
    def first(cls, n: int, input_uri) -> History:
        """A run that follows nothing: every row batch 0, labelled by the clustering."""
        batch = {"batch": 0, "kind": "analysis", "created": now(), "rows": n, "input": input_uri}
        return cls(np.zeros(n, np.int32), np.full(n, CLUSTERING, dtype=object), [batch])

    @property
    def latest(self) -> int:
        return int(self.batches[-1]["batch"]) if self.batches else 0

    def cluster_flags(self, k: int) -> dict[str, list]:
        """``clusters.csv`` columns of the chosen level: ``new`` and ``reviewed``."""
        return {"new": [c in self.new_clusters for c in range(k)], "reviewed": [c in self.reviewed for c in range(k)]}

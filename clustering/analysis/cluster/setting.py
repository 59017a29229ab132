"""One HDBSCAN setting's result and its name: the type the sweep returns and every later step reads.

Kept apart from the sweep's numba code so that the steps that only read results (scores, selection, tables, report,
explorer) import numpy alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SettingResult", "setting_name"]


@dataclass(frozen=True)
class SettingResult:
    """One HDBSCAN setting of a sweep, identical to a refit of the reference estimator.

    Attributes
    ----------
    min_cluster_size, min_samples : int
        The setting, as requested (hdbscan itself caps ``min_samples`` at ``n - 1``; so does the sweep).
    labels : np.ndarray
        ``(n,)`` int32 cluster labels, ``-1`` for noise; ``HDBSCAN(...).fit(X).labels_``.
    probabilities : np.ndarray
        ``(n,)`` float32 membership strengths; ``.probabilities_``.
    outlier_scores : np.ndarray
        ``(n,)`` float32 GLOSH outlier scores; ``.outlier_scores_``.
    persistence : np.ndarray
        ``(n_clusters,)`` float64 per-cluster persistence; ``.cluster_persistence_``.
    dbcv : float
        ``.relative_validity_`` of ``HDBSCAN(..., gen_min_span_tree=True)``: hdbscan's fast DBCV approximation on the
        mutual-reachability spanning tree. hdbscan reports 0.0 when every point is noise; nan where the reference
        estimator cannot run at all (fewer than 2 points).
    seconds : float
        Time for this setting: its share of the tree build plus its own selection, scoring and DBCV.
    selection : str
        hdbscan's ``cluster_selection_method``: "eom" or "leaf" (:data:`SELECTIONS`).
    """

    min_cluster_size: int
    min_samples: int
    labels: np.ndarray
    probabilities: np.ndarray
    outlier_scores: np.ndarray
    persistence: np.ndarray
    dbcv: float
    seconds: float
    selection: str = "eom"

    @property
    def n_clusters(self) -> int:
        """Number of clusters (labels other than -1)."""
        return int(self.labels.max()) + 1 if self.labels.size else 0


def setting_name(min_cluster_size: int, min_samples: int, selection: str | None = "eom") -> str:
    """How reports and logs name a setting: ``min_cluster_size=20, min_samples=5``, with `` (leaf)`` for leaf."""
    suffix = " (leaf)" if selection == "leaf" else ""
    return f"min_cluster_size={min_cluster_size}, min_samples={min_samples}{suffix}"

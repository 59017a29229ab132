"""Account concentration per cluster: the share of its posts made by coordinated accounts, and the Herfindahl index
of its accounts (``clusters.csv`` columns)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from clustering.analysis.posts.columns import Accounts, cluster_index
from clustering.analysis.posts.coordination import Coordination, arrow_floats, checked_rows


def cluster_coordination(
    labels, accounts: Accounts | None, coordination: Coordination | None = None
) -> ClusterCoordination:
    """Per cluster: the share of its posts made by accounts of a coordinated group, and the Herfindahl index of its
    accounts.

    Parameters
    ----------
    labels : array-like of int
        Per-row cluster labels, -1 for noise (any level).
    accounts : Accounts or None
        Per-row account codes; None: only ``posts`` is filled.
    coordination : Coordination, optional
        Without it no account counts as coordinated (``coordinated_posts`` is 0).

    Returns
    -------
    ClusterCoordination
    """
    ids, position = cluster_index(labels)
    k = len(ids)
    posts = np.bincount(position[position >= 0], minlength=k).astype(np.int64)
    if accounts is None:
        nothing = np.full(k, np.nan)
        return ClusterCoordination(ids, posts, np.zeros(k, np.int64), nothing, nothing.copy())
    codes = checked_rows(np.asarray(accounts.codes, dtype=np.int64), len(position), "accounts")
    known = (position >= 0) & (codes >= 0)
    with_account = np.bincount(position[known], minlength=k)
    coordinated_account = (
        coordination.account_group >= 0 if coordination is not None else np.zeros(len(accounts.names), dtype=bool)
    )
    by_coordinated = known & coordinated_account[np.where(codes >= 0, codes, 0)]
    coordinated = np.bincount(position[by_coordinated], minlength=k).astype(np.int64)
    width = max(len(accounts.names), 1)
    pairs, counts = np.unique(position[known] * width + codes[known], return_counts=True)
    owner = pairs // width
    # Herfindahl index: the sum of the squared shares of each account in the cluster's posts (1/accounts .. 1).
    squares = np.bincount(owner, weights=counts.astype(np.float64) ** 2, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(with_account > 0, coordinated / with_account, np.nan)
        herfindahl = np.where(with_account > 0, squares / with_account.astype(np.float64) ** 2, np.nan)
    return ClusterCoordination(ids, posts, coordinated, share, herfindahl)


@dataclasses.dataclass(frozen=True)
class ClusterCoordination:
    """Coordinated posting and account concentration per cluster.

    Attributes
    ----------
    clusters : numpy.ndarray
        int64 cluster ids (every non-negative label present), ascending.
    posts : numpy.ndarray
        int64 rows per cluster.
    coordinated_posts : numpy.ndarray
        int64 posts made by accounts of a coordinated group (all their posts, not only the shared ones).
    coordinated_share : numpy.ndarray
        float64 ``coordinated_posts`` / posts with a known account; NaN when none has one.
    herfindahl : numpy.ndarray
        float64 Herfindahl index of the cluster's accounts: the sum of each account's squared share of the posts
        with a known account (1/accounts when all post equally, 1 for one account); NaN when none has one.
    """

    clusters: np.ndarray
    posts: np.ndarray
    coordinated_posts: np.ndarray
    coordinated_share: np.ndarray
    herfindahl: np.ndarray

    def table(self) -> pa.Table:
        """``cluster``, ``coordinated_posts``, ``coordinated_share``, ``account_herfindahl``: ``clusters.csv``
        columns (join on ``cluster``)."""
        return pa.table(
            {
                "cluster": pa.array(self.clusters, pa.int32()),
                "coordinated_posts": pa.array(self.coordinated_posts, pa.int64()),
                "coordinated_share": arrow_floats(self.coordinated_share),
                "account_herfindahl": arrow_floats(self.herfindahl),
            }
        )

"""Who posted each cluster: posts, distinct accounts, the most active accounts and the top account's share.

A cluster pushed by one account (a high ``top_account_share``) is the coordinated-posting signal researchers look
for. Counting is one ``np.unique`` over (cluster, account) pairs, whatever the number of rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from clustering.analysis.posts.columns import Accounts, cluster_index

__all__ = ["AccountActivity", "AccountStats", "cluster_accounts", "most_active_accounts"]

TOP_ACCOUNTS = 5


@dataclasses.dataclass(frozen=True)
class AccountStats:
    """Posting accounts per cluster.

    Attributes
    ----------
    clusters : numpy.ndarray
        int64 cluster ids (every non-negative label present), ascending.
    posts : numpy.ndarray
        int64 rows per cluster (with or without an account).
    accounts : numpy.ndarray or None
        int64 distinct accounts per cluster; None when the data has no account column.
    top_accounts : tuple of tuple of (str, int)
        Per cluster, the most active accounts with their post counts, most first (ties: the account seen first).
    top_account_share : numpy.ndarray or None
        float64: posts of the top account / posts with a known account; NaN for a cluster without any.
    """

    clusters: np.ndarray
    posts: np.ndarray
    accounts: np.ndarray | None
    top_accounts: tuple[tuple[tuple[str, int], ...], ...]
    top_account_share: np.ndarray | None

    def table(self) -> pa.Table:
        """``cluster``, ``posts``, ``accounts``, ``top_account``, ``top_account_share`` and ``top_accounts``
        (``name (posts)`` items, ``;``-separated); the account columns are null without an account column."""
        n = len(self.clusters)
        has = self.accounts is not None
        top = [t[0][0] if t else None for t in self.top_accounts] if has else [None] * n
        listed = [";".join(f"{name} ({count})" for name, count in t) or None for t in self.top_accounts]
        share = [None if np.isnan(s) else round(float(s), 6) for s in self.top_account_share] if has else [None] * n
        return pa.table(
            {
                "cluster": pa.array(self.clusters, pa.int32()),
                "posts": pa.array(self.posts, pa.int64()),
                "accounts": pa.array(self.accounts if has else [None] * n, pa.int64()),
                "top_account": pa.array(top, pa.string()),
                "top_account_share": pa.array(share, pa.float64()),
                "top_accounts": pa.array(listed if has else [None] * n, pa.string()),
            }
        )


def cluster_accounts(labels, accounts: Accounts | None, *, top_n: int = TOP_ACCOUNTS) -> AccountStats:
    """Posts and accounts of every cluster.

    Parameters
    ----------
    labels : array-like of int
        Per-row cluster labels, -1 for noise (any clustering or hierarchy level).
    accounts : Accounts or None
        Per-row account codes (:func:`clustering.analysis.posts.columns.parse_accounts`); None when the data has none:
        only ``posts`` is filled then.
    top_n : int, default TOP_ACCOUNTS
        Accounts listed per cluster.

    Returns
    -------
    AccountStats
    """
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    ids, position = cluster_index(labels)
    k = len(ids)
    posts = np.bincount(position[position >= 0], minlength=k).astype(np.int64)
    if accounts is None:
        return AccountStats(ids, posts, None, tuple(() for _ in ids), None)
    codes = np.asarray(accounts.codes, dtype=np.int64)
    if len(codes) != len(position):
        raise ValueError(f"accounts has {len(codes)} rows but labels has {len(position)}")
    known = (position >= 0) & (codes >= 0)
    n_names = max(len(accounts.names), 1)
    pairs, counts = np.unique(position[known] * n_names + codes[known], return_counts=True)
    cluster_of, code_of = pairs // n_names, pairs % n_names
    distinct = np.bincount(cluster_of, minlength=k).astype(np.int64)
    with_account = np.bincount(cluster_of, weights=counts, minlength=k)
    # Within each cluster: most posts first, then the account seen first (lowest code).
    order = np.lexsort((code_of, -counts, cluster_of))
    cluster_sorted = cluster_of[order]
    rank = np.arange(len(order)) - np.searchsorted(cluster_sorted, cluster_sorted)
    top = order[rank < top_n]
    listed: list[list[tuple[str, int]]] = [[] for _ in range(k)]
    for index in top:
        listed[cluster_of[index]].append((str(accounts.names[code_of[index]]), int(counts[index])))
    leader = np.zeros(k)
    leader[cluster_sorted[rank == 0]] = counts[order[rank == 0]]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(with_account > 0, leader / with_account, np.nan)
    return AccountStats(ids, posts, distinct, tuple(tuple(t) for t in listed), share)


@dataclasses.dataclass(frozen=True)
class AccountActivity:
    """The most active accounts of a whole collection, most posts first (ties: the account seen first).

    Attributes
    ----------
    names : tuple of str
    posts : numpy.ndarray
        int64 posts of each account.
    share : numpy.ndarray
        float64 its share of the posts that have an account.
    clusters : numpy.ndarray
        int64 distinct clusters its posts fall in.
    busiest : numpy.ndarray
        int64 the cluster holding most of its posts (ties: the lowest id), -1 when all are noise.
    """

    names: tuple[str, ...]
    posts: np.ndarray
    share: np.ndarray
    clusters: np.ndarray
    busiest: np.ndarray


def most_active_accounts(labels, accounts: Accounts, *, top_n: int = 15) -> AccountActivity:
    """The ``top_n`` accounts with the most posts, and where their posts fall among the clusters of ``labels``.

    Parameters
    ----------
    labels : array-like of int
        Per-row cluster labels, -1 for noise.
    accounts : Accounts
        Per-row account codes (:func:`clustering.analysis.posts.columns.parse_accounts`).
    top_n : int, default 15

    Returns
    -------
    AccountActivity
    """
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    labels = np.asarray(labels, dtype=np.int64)
    codes = np.asarray(accounts.codes, dtype=np.int64)
    if len(codes) != len(labels):
        raise ValueError(f"accounts has {len(codes)} rows but labels has {len(labels)}")
    known = codes >= 0
    counts = np.bincount(codes[known], minlength=len(accounts.names))
    top = np.lexsort((np.arange(len(counts)), -counts))[:top_n]
    top = top[counts[top] > 0]
    clusters, busiest = [], []
    for code in top:  # top_n passes over the rows: cheap next to one per account
        mine = labels[(codes == code) & (labels >= 0)]
        per_cluster = np.bincount(mine) if len(mine) else np.zeros(0, np.int64)
        clusters.append(int((per_cluster > 0).sum()))
        busiest.append(int(per_cluster.argmax()) if len(mine) else -1)
    return AccountActivity(
        names=tuple(str(accounts.names[c]) for c in top),
        posts=counts[top].astype(np.int64),
        share=counts[top] / max(int(known.sum()), 1),
        clusters=np.asarray(clusters, np.int64),
        busiest=np.asarray(busiest, np.int64),
    )

"""Levels of granularity, from broad themes through the chosen clusters down to their dense cores and repost bursts.

With ``min_samples`` fixed, every ``min_cluster_size`` of the sweep is a selection from the same single-linkage tree,
and every selected cluster is the full point set of one subtree, so the clusters of a larger ``min_cluster_size``
are unions of those of a smaller one: the sweep already holds a hierarchy. :func:`build_hierarchy` links any labelled
levels into a tree (a parent per cluster, by majority), keeping "the clusters" exactly as chosen:

- coarser levels are made to nest: every point of a cluster takes its parent's label, and a cluster that lies
  wholly in the coarser level's noise becomes its own cluster there ("a cluster that joins no broader theme is its
  own theme");
- finer levels are restricted to points that are clustered one level up (a sub-cluster never holds background).

:func:`levels_from_sweep` picks the levels from a scored sweep: themes are the best-modularity setting with at most
half the chosen clusters (larger ``min_cluster_size``, same ``min_samples``), sub-clusters the smallest
``min_cluster_size`` (where repost bursts and near-duplicates separate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEVEL_NAMES = ("themes", "clusters", "subclusters")
CHOSEN_LEVEL = "clusters"  # the level that is the chosen setting


@dataclass(frozen=True)
class Level:
    """One granularity: a labelling of every point and each cluster's parent one level up.

    Attributes
    ----------
    name : str
        "themes", "clusters" or "subclusters" (any name given to :func:`build_hierarchy`).
    labels : np.ndarray
        ``(n,)`` int32 cluster ids ``0 .. n_clusters - 1``, -1 for noise.
    parents : np.ndarray
        ``(n_clusters,)`` int32: index of the parent cluster in the next coarser level; -1 at the top level.
    min_cluster_size : int or None
        The sweep setting the level comes from (None when unknown).
    """

    name: str
    labels: np.ndarray
    parents: np.ndarray
    min_cluster_size: int | None = None

    @property
    def n_clusters(self) -> int:
        """Number of clusters at this level."""
        return int(self.parents.shape[0])


@dataclass(frozen=True)
class Hierarchy:
    """Levels ordered coarse to fine; ``levels[chosen]`` is the chosen clustering, unchanged.

    Attributes
    ----------
    levels : tuple of Level
        Coarse to fine. Every point clustered at a level is clustered, in its cluster's parent, at every coarser one.
    chosen : int
        Index in ``levels`` of "the clusters" (the selected setting).
    """

    levels: tuple[Level, ...]
    chosen: int

    @property
    def clusters(self) -> Level:
        """The chosen level."""
        return self.levels[self.chosen]


def build_hierarchy(
    labels: Sequence[np.ndarray],
    *,
    names: Sequence[str],
    chosen: int,
    min_cluster_sizes: Sequence[int | None] | None = None,
) -> Hierarchy:
    """Link labellings of the same points, ordered coarse to fine, into a tree of clusters.

    Parameters
    ----------
    labels : sequence of np.ndarray
        One ``(n,)`` labelling per level (-1 noise), coarse to fine; ids need not be contiguous.
    names : sequence of str
        One name per level.
    chosen : int
        Index of the level kept exactly as given (up to renumbering ids ``0 ..`` in order of the given ids).
    min_cluster_sizes : sequence of int or None, optional
        The sweep setting of each level, recorded on the levels.

    Returns
    -------
    Hierarchy
        Coarser levels nest the chosen one (see the module docstring); finer levels keep only points clustered one
        level up. A level with no cluster has an empty ``parents``.
    """
    arrays = [np.asarray(x) for x in labels]
    if not arrays:
        raise ValueError("labels must hold at least one level")
    n = arrays[0].shape[0]
    if any(a.ndim != 1 or a.shape[0] != n for a in arrays):
        raise ValueError(f"every level must be an (n,) array of one length, got {[a.shape for a in arrays]}")
    if len(names) != len(arrays):
        raise ValueError(f"names must name every level: {len(names)} names for {len(arrays)} levels")
    if not 0 <= chosen < len(arrays):
        raise ValueError(f"chosen must index a level in 0..{len(arrays) - 1}, got {chosen}")
    sizes = list(min_cluster_sizes) if min_cluster_sizes is not None else [None] * len(arrays)
    if len(sizes) != len(arrays):
        raise ValueError(f"min_cluster_sizes must have one entry per level, got {len(sizes)} for {len(arrays)}")

    nested: list[np.ndarray] = [np.empty(0)] * len(arrays)
    parents: list[np.ndarray] = [np.empty(0, dtype=np.int32)] * len(arrays)
    nested[chosen] = compact_labels(arrays[chosen])
    for i in range(chosen - 1, -1, -1):  # coarser: nest the finer level, carrying up orphans
        nested[i], parents[i + 1] = _nest_above(nested[i + 1], compact_labels(arrays[i]))
    for i in range(chosen + 1, len(arrays)):  # finer: only points clustered one level up
        nested[i] = compact_labels(np.where(nested[i - 1] >= 0, arrays[i], -1))
        parents[i] = _majority_parent(nested[i], nested[i - 1])
    parents[0] = np.full(_count(nested[0]), -1, dtype=np.int32)
    levels = tuple(
        Level(str(name), nested[i], parents[i], None if sizes[i] is None else int(sizes[i]))
        for i, name in enumerate(names)
    )
    return Hierarchy(levels, chosen)


def by_size(hierarchy: Hierarchy) -> Hierarchy:
    """The same tree with every level's clusters renumbered largest first (ties: lower id first), parents remapped.

    The Analyze job numbers clusters by size; use this so the chosen level matches its cluster numbers.
    """
    orders = []
    for level in hierarchy.levels:
        sizes = np.bincount(level.labels[level.labels >= 0], minlength=level.n_clusters)
        order = np.lexsort((np.arange(level.n_clusters), -sizes))  # old ids, largest first
        new_id = np.empty(level.n_clusters, dtype=np.int32)
        new_id[order] = np.arange(level.n_clusters, dtype=np.int32)
        orders.append((order, new_id))
    levels = []
    for i, level in enumerate(hierarchy.levels):
        order, new_id = orders[i]
        labels = _remap(level.labels, new_id)
        parents = level.parents[order]
        if i > 0:
            parents = _remap(parents, orders[i - 1][1])
        levels.append(Level(level.name, labels, parents.astype(np.int32), level.min_cluster_size))
    return Hierarchy(tuple(levels), hierarchy.chosen)


def levels_from_sweep(rows: Sequence[dict], chosen: int, *, score: str = "modularity") -> dict[str, int]:
    """Pick the sweep rows that make the theme and sub-cluster levels around the chosen row.

    Parameters
    ----------
    rows : sequence of dict
        Scored sweep rows (``min_cluster_size``, ``min_samples``, ``clusters`` and ``score``).
    chosen : int
        Index of the chosen row.
    score : str, default "modularity"
        Column ranking the theme candidates (higher is better; nan is worst).

    Returns
    -------
    dict of str to int
        Row index per level name, coarse to fine, always with "clusters"; "themes" when some setting with the same
        ``min_samples`` and a larger ``min_cluster_size`` finds 2 to half as many clusters, "subclusters" when the
        smallest ``min_cluster_size`` of that ``min_samples`` finds more clusters than the chosen one.
    """
    if not 0 <= chosen < len(rows):
        raise ValueError(f"chosen must index a row in 0..{len(rows) - 1}, got {chosen}")
    picked = rows[chosen]
    same = [i for i, r in enumerate(rows) if r["min_samples"] == picked["min_samples"]]
    themes = [
        i
        for i in same
        if rows[i]["min_cluster_size"] > picked["min_cluster_size"]
        and 2 <= rows[i]["clusters"] <= picked["clusters"] / 2
    ]
    levels: dict[str, int] = {}
    if themes:
        levels["themes"] = max(themes, key=lambda i: (_finite(rows[i].get(score)), -rows[i]["min_cluster_size"]))
    levels["clusters"] = chosen
    finest = min(same, key=lambda i: (rows[i]["min_cluster_size"], -rows[i]["clusters"]))
    if rows[finest]["clusters"] > picked["clusters"]:
        levels["subclusters"] = finest
    return levels


def _remap(ids: np.ndarray, new_id: np.ndarray) -> np.ndarray:
    """``new_id[ids]`` where ``ids >= 0``, -1 elsewhere (also when ``new_id`` is empty); int32."""
    out = np.full(ids.shape[0], -1, dtype=np.int32)
    valid = ids >= 0
    out[valid] = new_id[ids[valid]]
    return out


def _finite(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return -math.inf
    return value if math.isfinite(value) else -math.inf


def _count(labels: np.ndarray) -> int:
    return int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0


def compact_labels(labels: np.ndarray) -> np.ndarray:
    """Ids renumbered 0, 1, ... in order of the given ids; noise (any negative id) -1; int32."""
    out = np.full(labels.shape[0], -1, dtype=np.int32)
    clustered = labels >= 0
    if clustered.any():
        _, out[clustered] = np.unique(labels[clustered], return_inverse=True)
    return out


def _majority_parent(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """For each fine cluster, the coarse cluster holding most of its points (-1 when all are coarse noise)."""
    n_fine, n_coarse = _count(fine), _count(coarse)
    both = (fine >= 0) & (coarse >= 0)
    counts = np.zeros((n_fine, n_coarse + 1), dtype=np.int64)  # last column: no coarse cluster
    np.add.at(counts, (fine[both], coarse[both]), 1)
    counts[:, n_coarse] = np.bincount(fine[fine >= 0], minlength=n_fine) - counts[:, :n_coarse].sum(axis=1)
    best = counts[:, :n_coarse].argmax(axis=1) if n_coarse else np.zeros(n_fine, dtype=np.intp)
    has = counts[:, :n_coarse].max(axis=1) > 0 if n_coarse else np.zeros(n_fine, dtype=bool)
    return np.where(has, best, -1).astype(np.int32)


def _nest_above(fine: np.ndarray, coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coarse labels made to contain the fine clusters; returns (coarse labels, parent of each fine cluster)."""
    parent = _majority_parent(fine, coarse)
    orphans = np.flatnonzero(parent < 0)
    parent[orphans] = _count(coarse) + np.arange(orphans.size, dtype=np.int32)
    nested = coarse.astype(np.int32, copy=True)
    clustered = fine >= 0
    nested[clustered] = parent[fine[clustered]]
    # Coarse clusters that lost every point to their children's parents vanish; renumber to stay contiguous.
    used = np.unique(nested[nested >= 0])
    remap = np.full(max(_count(nested), 1), -1, dtype=np.int32)
    remap[used] = np.arange(used.size, dtype=np.int32)
    nested = np.where(nested >= 0, remap[np.maximum(nested, 0)], -1).astype(np.int32)
    return nested, remap[parent].astype(np.int32)

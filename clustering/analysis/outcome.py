"""The outcome of the clustering over every row: the chosen labels numbered by size, the hierarchy levels, the
alternatives, and the queries the report and the explorer share on it.

:func:`assemble_outcome` spreads the chosen setting (and the runner-ups and the ladder) from the clustered points back
over every row, copies of an image included. :func:`ranked_rows` is the one ranking of rows within each cluster
(exemplars, montages, example texts) and :func:`top_outliers` the one choice of outliers. Nothing here reads or writes a
file.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable

import numpy as np

from clustering import schema
from clustering.analysis.cluster.hierarchy import CHOSEN_LEVEL, Hierarchy, Level, build_hierarchy
from clustering.analysis.cluster.setting import setting_name
from clustering.analysis.run_data import Clustering, Outcome
from clustering.analysis.shards import Duplicates


# ------------------------------------------------------------------------------------------------ the chosen labels
def relabel_by_size(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber clusters 0, 1, ... from the largest down (ties: lower old label first); noise stays -1.

    Returns the new labels and ``order`` with ``order[new] = old``.
    """
    clustered = labels[labels >= 0]
    if clustered.size == 0:
        return labels.astype(np.int32), np.zeros(0, dtype=np.int64)
    counts = np.bincount(clustered)
    old_ids = np.flatnonzero(counts)
    order = old_ids[np.lexsort((old_ids, -counts[old_ids]))]
    mapping = np.full(int(labels.max()) + 1, -1, dtype=np.int64)
    mapping[order] = np.arange(len(order))
    new = np.where(labels >= 0, mapping[np.maximum(labels, 0)], -1)
    return new.astype(np.int32), order


def assemble_outcome(
    clustering: Clustering, duplicates: Duplicates, point_of_row: np.ndarray, *, alternatives: int
) -> Outcome:
    """The chosen setting (and up to ``alternatives`` runner-ups) on every row, in shard row order.

    With no selection (nothing could be swept) every row is noise with probability and outlier score 0.
    """
    n = len(point_of_row)
    coords = clustering.map_coords[point_of_row].astype(np.float32) if n else np.zeros((0, 2), np.float32)
    selection = clustering.selection
    entries: list[dict] = []
    alternative_labels: dict[str, np.ndarray] = {}
    if selection is None:
        labels = np.full(n, -1, dtype=np.int32)
        probabilities = np.zeros(n, dtype=np.float32)
        outlier_scores = np.zeros(n, dtype=np.float32)
        persistence = np.zeros(0)
        chosen_row, selection_info, runner_up_rows, granularity = None, None, [], []
    else:
        chosen = clustering.results[selection.index]
        labels, old_of_new = relabel_by_size(np.asarray(chosen.labels)[point_of_row])
        probabilities = np.asarray(chosen.probabilities, dtype=np.float32)[point_of_row]
        outlier_scores = np.asarray(chosen.outlier_scores, dtype=np.float32)[point_of_row]
        persistence = np.asarray(chosen.persistence, dtype=float)[old_of_new] if len(old_of_new) else np.zeros(0)
        chosen_row = clustering.rows[selection.index]
        selection_info = {
            "index": selection.index,
            "rule": selection.rule,
            "reason": selection.reason,
            "pinned": bool(selection.pinned),
            "original_space": [
                {**decision.document(), "sentence": decision.sentence()}
                for decision in (clustering.refinement.decisions if clustering.refinement else ())
            ],
        }
        runner_up_rows = [clustering.rows[i] for i in selection.runner_ups]
        written = {selection.index: _alternative(schema.CLUSTER, chosen, labels, "chosen")}  # sweep row -> entry
        picked = [i for i in selection.runner_ups if i != selection.index][:alternatives]
        roles = [(index, f"runner-up {rank}") for rank, index in enumerate(picked, start=1)]
        roles += [(rung.index, f"choice at resolution {_span(rung)}") for rung in clustering.ladder]
        for index, role in roles:
            if index in written:  # a setting with two roles is written once, under the first
                continue
            result = clustering.results[index]
            leaf = "_leaf" if result.selection == "leaf" else ""
            column = f"{schema.CLUSTER}_mcs{result.min_cluster_size}_ms{result.min_samples}{leaf}"
            alternative_labels[column], _ = relabel_by_size(np.asarray(result.labels)[point_of_row])
            written[index] = _alternative(column, result, alternative_labels[column], role)
        entries = list(written.values())
        granularity = [_rung_entry(rung, written[rung.index]) for rung in clustering.ladder]

    n_clusters = _count_clusters(labels)
    hierarchy = _hierarchy(clustering, labels, point_of_row) if n_clusters else _flat(labels)
    rows = np.arange(n)
    # Row order of assignments.parquet: clusters in label order, each by probability descending, noise last.
    order = np.lexsort((rows, -probabilities.astype(float), labels, labels < 0)) if n else rows
    group_size = np.bincount(duplicates.inverse, minlength=duplicates.n_unique)[duplicates.inverse] if n else rows
    return Outcome(
        labels=labels,
        probabilities=probabilities,
        outlier_scores=outlier_scores,
        coords=coords,
        persistence=persistence,
        alternatives=entries,
        alternative_labels=alternative_labels,
        order=order,
        is_copy=duplicates.is_copy,
        group_size=group_size,
        hierarchy=hierarchy,
        chosen_row=chosen_row,
        selection_info=selection_info,
        runner_up_rows=runner_up_rows,
        granularity=granularity,
        n_clusters=n_clusters,
        noise_fraction=float((labels < 0).mean()) if n else math.nan,
        notes=_outcome_notes(n_clusters) if selection is not None and n else (),
    )


def _hierarchy(clustering: Clustering, labels: np.ndarray, point_of_row: np.ndarray) -> Hierarchy:
    """Themes above (the overview, or the sweep's coarser setting) and sub-clusters below the chosen labels, spread
    over every row.

    A level whose clusters are all gone once nested (a finer setting that splits no cluster) is left out.
    """
    picked = dict(clustering.levels)
    overview = clustering.overview
    if overview is not None:  # the overview replaces the sweep's coarser setting as the theme level
        picked = {"themes": None, **{name: index for name, index in picked.items() if name != "themes"}}
    chosen_points = clustering.results[picked[CHOSEN_LEVEL]].labels

    def level_labels(name: str, index: int | None) -> np.ndarray:
        if name == CHOSEN_LEVEL:
            return labels
        if index is None:
            return overview.labels(chosen_points)[point_of_row]
        return np.asarray(clustering.results[index].labels)[point_of_row]

    names = tuple(picked)
    arrays = [level_labels(name, index) for name, index in picked.items()]
    sizes = [None if index is None else clustering.rows[index]["min_cluster_size"] for index in picked.values()]
    tree = build_hierarchy(arrays, names=names, chosen=names.index(CHOSEN_LEVEL), min_cluster_sizes=sizes)
    if tree.levels[-1].n_clusters == 0:  # only the finest level can end empty: it holds no clustered point
        tree = Hierarchy(tree.levels[:-1], tree.chosen)
    return _numbered_by_size(tree)


def _flat(labels: np.ndarray) -> Hierarchy:
    """The chosen labels as the only level (nothing clustered: no theme or sub-cluster can exist)."""
    return Hierarchy((Level(CHOSEN_LEVEL, labels, np.full(_count_clusters(labels), -1, np.int32)),), 0)


def _numbered_by_size(tree: Hierarchy) -> Hierarchy:
    """Every level but the chosen one renumbered from its largest cluster down, parents following their ids."""
    levels: list[Level] = []
    new_of_coarser: np.ndarray | None = None
    for index, level in enumerate(tree.levels):
        if index == tree.chosen:
            labels, old_of_new = level.labels, np.arange(level.n_clusters)
        else:
            labels, old_of_new = relabel_by_size(level.labels)
        parents = level.parents[old_of_new]
        if new_of_coarser is not None:
            parents = np.where(parents >= 0, new_of_coarser[np.maximum(parents, 0)], -1)
        levels.append(Level(level.name, labels, parents.astype(np.int32), level.min_cluster_size))
        new_of_coarser = np.empty(level.n_clusters, dtype=np.int64)
        new_of_coarser[old_of_new] = np.arange(level.n_clusters)
    return Hierarchy(tuple(levels), tree.chosen)


def _count_clusters(labels: np.ndarray) -> int:
    return int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0


def _outcome_notes(n_clusters: int) -> tuple[str, ...]:
    if n_clusters == 0:
        return (
            "the chosen setting labels every row as noise: no group is dense enough for these settings; "
            "try smaller --min-cluster-sizes or --min-samples",
        )
    if n_clusters == 1:
        return ("only one cluster was found: the images may form one homogeneous group",)
    return ()


def _span(rung) -> str:
    return f"{rung.low:.2f}-{rung.high:.2f}"


def _rung_entry(rung, alternative: dict) -> dict:
    """One ``metrics.json`` ``granularity`` entry: the resolutions a setting wins over, and its label column's entry
    (setting, clusters and noise over the rows)."""
    keep = ("column", "min_cluster_size", "min_samples", "selection", "clusters", "noise_fraction")
    return {
        "resolution_from": round(float(rung.low), 4),
        "resolution_to": round(float(rung.high), 4),
        **{key: alternative[key] for key in keep},
    }


def _alternative(column: str, result, labels: np.ndarray, role: str) -> dict:
    setting = setting_name(result.min_cluster_size, result.min_samples, result.selection)
    return {
        "column": column,
        "min_cluster_size": int(result.min_cluster_size),
        "min_samples": int(result.min_samples),
        "selection": result.selection,
        "clusters": _count_clusters(labels),
        "noise_fraction": float((labels < 0).mean()) if labels.size else None,
        "label": f"{role}: {setting}",
    }


# ------------------------------------------------------------------------------------------ rows within clusters
def ranked_rows(
    outcome: Outcome,
    *,
    limit: int,
    clusters: Iterable[int] | None = None,
    keep: Callable[[int], bool] | None = None,
) -> dict[int, list[int]]:
    """Up to ``limit`` rows of each cluster, the most typical first: distinct images by probability descending.

    Parameters
    ----------
    outcome : Outcome
    limit : int
        Rows per cluster at most.
    clusters : iterable of int, optional
        The clusters wanted; default every cluster.
    keep : callable, optional
        ``keep(row)`` is False for rows to pass over (e.g. rows without text).

    Returns
    -------
    dict
        Cluster -> row indices (shard order numbering), one key per wanted cluster.
    """
    picks: dict[int, list[int]] = {c: [] for c in (range(outcome.n_clusters) if clusters is None else clusters)}
    for row in outcome.order:
        cluster = outcome.labels[row]
        if cluster < 0:
            break  # noise comes last in the order
        bucket = picks.get(int(cluster))
        if bucket is None or len(bucket) >= limit or outcome.is_copy[row]:
            continue
        if keep is None or keep(int(row)):
            bucket.append(int(row))
    return picks


def top_outliers(outcome: Outcome, limit: int) -> list[int]:
    """The ``limit`` distinct images with the highest GLOSH outlier scores, highest first (ties: row order).

    Empty when nothing was swept: without a chosen setting there are no outlier scores.
    """
    if not outcome.swept:
        return []
    originals = np.flatnonzero(~outcome.is_copy)
    ranked = originals[np.argsort(-outcome.outlier_scores[originals], kind="stable")]
    return [int(r) for r in ranked[:limit]]


def cluster_means(outcome: Outcome, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (one per row) over each cluster's rows, in label order."""
    return level_means(outcome.labels, values, outcome.n_clusters)


def level_means(labels: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Mean of ``values`` (one per row) over the rows of each of the ``k`` clusters of ``labels`` (-1 noise)."""
    member = labels >= 0
    total = np.bincount(labels[member], weights=np.asarray(values, dtype=float)[member], minlength=k)
    return total / np.maximum(np.bincount(labels[member], minlength=k), 1)


def cluster_centroids(outcome: Outcome) -> tuple[np.ndarray, np.ndarray]:
    """Mean map position (x, y) of each cluster, in label order."""
    return cluster_means(outcome, outcome.coords[:, 0]), cluster_means(outcome, outcome.coords[:, 1])


def with_labels(outcome: Outcome, labels: np.ndarray, *, persistence: np.ndarray, **replaced) -> Outcome:
    """``outcome`` with other chosen labels (contiguous ids, e.g. kept from an earlier analysis or a person's review):
    the other levels re-nested around them, the row order, counts and noise share recomputed. ``replaced`` sets other
    fields (probabilities, coordinates, ...) of the same rows."""
    outcome = dataclasses.replace(outcome, **replaced) if replaced else outcome
    labels = np.asarray(labels, dtype=np.int32)
    n_clusters = _count_clusters(labels)
    tree = outcome.hierarchy
    if n_clusters and len(tree.levels) > 1:
        arrays = [labels if i == tree.chosen else level.labels for i, level in enumerate(tree.levels)]
        names = [level.name for level in tree.levels]
        sizes = [level.min_cluster_size for level in tree.levels]
        tree = build_hierarchy(arrays, names=names, chosen=tree.chosen, min_cluster_sizes=sizes)
        if tree.levels[-1].n_clusters == 0:
            tree = Hierarchy(tree.levels[:-1], tree.chosen)
        tree = _numbered_by_size(tree)
    else:
        tree = _flat(labels)
    rows = np.arange(len(labels))
    probabilities = outcome.probabilities
    order = np.lexsort((rows, -probabilities.astype(float), labels, labels < 0)) if len(labels) else rows
    return dataclasses.replace(
        outcome,
        labels=labels,
        persistence=np.asarray(persistence, dtype=float),
        hierarchy=tree,
        order=order,
        n_clusters=n_clusters,
        noise_fraction=float((labels < 0).mean()) if len(labels) else math.nan,
    )

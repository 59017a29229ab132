"""Pure functions from the sweep and its choice to the tables a run writes and shows.

:func:`assemble_outcome` spreads the chosen setting (and the runner-ups) from the clustered points back over every row;
:func:`assignments_table`, :func:`cluster_table` and :func:`metrics_document` are ``assignments.parquet``,
``clusters.csv`` and ``metrics.json``. :func:`ranked_rows` is the one ranking of rows within each cluster (exemplars,
montages, example texts) and :func:`top_outliers` the one choice of outliers. Nothing here reads or writes a file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clustering import schema
from clustering.analysis.metrics import METRIC_DOCS
from clustering.analysis.read import Duplicates, ShardData
from clustering.analysis.result import AnalysisRun, Clustering, Outcome
from clustering.config import to_dict

__all__ = [
    "CLUSTER_COLUMNS",
    "assemble_outcome",
    "assignments_table",
    "cluster_centroids",
    "cluster_means",
    "cluster_table",
    "clustered_points",
    "metrics_document",
    "ranked_rows",
    "relabel_by_size",
    "top_outliers",
]

EXEMPLARS_PER_CLUSTER = 8
CLUSTER_COLUMNS = ("cluster", "size", "mean_probability", "persistence", "exemplar_ids", "duplicates", "x", "y")


# ------------------------------------------------------------------------------------------------ the chosen labels
def clustered_points(duplicates: Duplicates, *, keep_duplicates: bool) -> tuple[np.ndarray, np.ndarray]:
    """The rows that are clustered (``points``) and the point of every row (``point_of_row``).

    By default each distinct image is clustered once and its copies take its point; with ``keep_duplicates`` every
    row is its own point.
    """
    if keep_duplicates:
        rows = np.arange(len(duplicates.inverse), dtype=np.int64)
        return rows, rows
    return duplicates.representatives, duplicates.inverse


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
        chosen_row, selection_info, runner_up_rows = None, None, []
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
        }
        runner_up_rows = [clustering.rows[i] for i in selection.runner_ups]
        entries.append(_alternative(schema.CLUSTER, chosen, labels, "chosen"))
        picked = [i for i in selection.runner_ups if i != selection.index][:alternatives]
        for rank, index in enumerate(picked, start=1):
            result = clustering.results[index]
            column = f"{schema.CLUSTER}_mcs{result.min_cluster_size}_ms{result.min_samples}"
            alternative_labels[column], _ = relabel_by_size(np.asarray(result.labels)[point_of_row])
            entries.append(_alternative(column, result, alternative_labels[column], f"runner-up {rank}"))

    n_clusters = _count_clusters(labels)
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
        chosen_row=chosen_row,
        selection_info=selection_info,
        runner_up_rows=runner_up_rows,
        n_clusters=n_clusters,
        noise_fraction=float((labels < 0).mean()) if n else math.nan,
        notes=_outcome_notes(n_clusters) if selection is not None and n else (),
    )


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


def _alternative(column: str, result, labels: np.ndarray, role: str) -> dict:
    setting = f"min_cluster_size={result.min_cluster_size}, min_samples={result.min_samples}"
    return {
        "column": column,
        "min_cluster_size": int(result.min_cluster_size),
        "min_samples": int(result.min_samples),
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


# -------------------------------------------------------------------------------------------------------- tables
def cluster_means(outcome: Outcome, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (one per row) over each cluster's rows, in label order."""
    member = outcome.labels >= 0
    labels = outcome.labels[member]
    size = np.bincount(labels, minlength=outcome.n_clusters)
    total = np.bincount(labels, weights=np.asarray(values, dtype=float)[member], minlength=outcome.n_clusters)
    return total / np.maximum(size, 1)


def cluster_centroids(outcome: Outcome) -> tuple[np.ndarray, np.ndarray]:
    """Mean map position (x, y) of each cluster, in label order."""
    return cluster_means(outcome, outcome.coords[:, 0]), cluster_means(outcome, outcome.coords[:, 1])


def cluster_table(run: AnalysisRun) -> list[dict]:
    """One dict per cluster of the chosen setting: the ``clusters.csv`` rows, then ``run.cluster_columns``."""
    outcome = run.outcome
    k = outcome.n_clusters
    if k == 0:
        return []
    member = outcome.labels >= 0
    size = np.bincount(outcome.labels[member], minlength=k)
    copies = np.bincount(outcome.labels[member], weights=outcome.is_copy[member].astype(float), minlength=k)
    probability = cluster_means(outcome, outcome.probabilities)
    x, y = cluster_centroids(outcome)
    ids = run.ids
    exemplars = ranked_rows(outcome, limit=EXEMPLARS_PER_CLUSTER)
    _check_lengths(run.cluster_columns, k, "cluster_columns", "clusters")
    return [
        {
            "cluster": c,
            "size": int(size[c]),
            "mean_probability": round(float(probability[c]), 6),
            "persistence": round(float(outcome.persistence[c]), 6) if c < len(outcome.persistence) else None,
            "exemplar_ids": ";".join(str(ids[r]) for r in exemplars[c]),
            "duplicates": int(copies[c]),
            "x": round(float(x[c]), 5),
            "y": round(float(y[c]), 5),
            **{name: values[c] for name, values in run.cluster_columns.items()},
        }
        for c in range(k)
    ]


def assignments_table(run: AnalysisRun) -> pa.Table:
    """``assignments.parquet``: the contract columns, the runner-up labels, ``run.row_columns``, then passthrough.

    Rows follow :attr:`Outcome.order`; a passthrough column whose name the analysis owns (e.g. ``duplicate_of``) is
    left out rather than overwrite it.
    """
    outcome, table = run.outcome, run.data.table
    n = table.num_rows
    ids = table[schema.ID].combine_chunks() if n else pa.array([], pa.string())
    duplicates = run.duplicates
    representative_ids = pc.take(ids, pa.array(duplicates.representatives[duplicates.inverse])) if n else ids
    duplicate_of = pc.if_else(pa.array(outcome.is_copy, pa.bool_()), representative_ids, pa.scalar(None, pa.string()))
    columns = {
        schema.ID: ids.cast(pa.string()),
        schema.URL: _column_or_nulls(run.data, schema.URL),
        schema.X: pa.array(outcome.coords[:, 0], pa.float32()),
        schema.Y: pa.array(outcome.coords[:, 1], pa.float32()),
        schema.CLUSTER: pa.array(outcome.labels, pa.int32()),
        schema.PROBABILITY: pa.array(outcome.probabilities, pa.float32()),
        schema.OUTLIER_SCORE: pa.array(outcome.outlier_scores, pa.float32()),
        schema.SHA256: _column_or_nulls(run.data, schema.SHA256),
        schema.DUPLICATE_OF: duplicate_of,
    }
    for name, labels in outcome.alternative_labels.items():
        columns[name] = pa.array(labels, pa.int32())
    _check_lengths(run.row_columns, n, "row_columns", "rows")
    columns.update(run.row_columns)
    for name in run.data.passthrough:
        columns.setdefault(name, table[name].combine_chunks())
    return pa.table(columns).take(pa.array(outcome.order, pa.int64()))


def _column_or_nulls(data: ShardData, name: str) -> pa.Array:
    if name in data.table.column_names:
        return data.table[name].combine_chunks().cast(pa.string())
    return pa.nulls(data.n_rows, pa.string())


def _check_lengths(columns: Mapping[str, Sequence], expected: int, field: str, unit: str) -> None:
    """Extra columns must line up with the table they join; a mismatch is a bug in the feature that made them."""
    for name, values in columns.items():
        if len(values) != expected:
            raise ValueError(f"{field}[{name!r}] has {len(values)} values for {expected} {unit}")


def metrics_document(run: AnalysisRun, *, notes: Sequence[str], timings: Mapping[str, float]) -> dict:
    """``metrics.json``: the input, the model, the counts, the parameters and the explained choice of a run."""
    data, outcome = run.data, run.outcome
    return {
        "input": run.input_uri,
        "model": data.model,
        "model_random_weights": bool(data.metadata.get("random_weights", False)),
        "n_total_rows": data.n_total,
        "status_counts": data.status_counts,
        "n_rows": data.n_rows,
        "n_unique": run.duplicates.n_unique,
        "n_duplicates": run.duplicates.n_copies,
        "keep_duplicates": run.config.keep_duplicates,
        "n_clusters": outcome.n_clusters,
        "noise_fraction": outcome.noise_fraction,
        "params": {**run.clustering.params, "config": to_dict(run.config)},
        "chosen": outcome.chosen_row,
        "selection": outcome.selection_info,
        "runner_ups": outcome.runner_up_rows,
        "alternatives": outcome.alternatives,
        "timings": dict(timings),
        "metric_docs": dict(METRIC_DOCS),
        "notes": list(notes),
        "shard_metadata": data.metadata,
    }

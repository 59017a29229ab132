"""The documents a run writes, from its outcome: ``assignments.parquet``, ``clusters.csv`` and ``metrics.json``.

:func:`assignments_table`, :func:`cluster_table`, :func:`metrics_document` and :func:`hierarchy_document` shape what
was computed into the files' columns and keys (``docs/analysis-outputs.md``). Each is built once per run. Nothing here
reads or writes a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clustering import schema
from clustering.analysis.cluster.hierarchy import CHOSEN_LEVEL, Level
from clustering.analysis.cluster.scores import METRIC_DOCS
from clustering.analysis.outcome import level_means
from clustering.analysis.run_data import AnalysisRun, Outcome
from clustering.analysis.shards import ShardData
from clustering.config import to_dict

EXEMPLARS_PER_CLUSTER = 8
CLUSTER_COLUMNS = ("level", "cluster", "parent", "size", "mean_probability", "persistence", "exemplar_ids",
                   "duplicates", "x", "y")  # fmt: skip


def cluster_table(run: AnalysisRun) -> list[dict]:
    """``clusters.csv``: one dict per cluster per hierarchy level, coarse to fine, then ``run.cluster_columns``.

    ``parent`` is the cluster's parent one level up (-1 at the top). ``mean_probability`` and ``persistence`` are
    HDBSCAN's for the chosen level and None at the others (their clusters are nested, not one setting's).
    """
    outcome = run.outcome
    rows: list[dict] = []
    for level in outcome.hierarchy.levels:
        extra = run.cluster_columns.get(level.name, {})
        _check_lengths(extra, level.n_clusters, f"cluster_columns[{level.name!r}]", "clusters")
        chosen = level.name == CHOSEN_LEVEL
        rows.extend(
            {**row, **{name: values[row["cluster"]] for name, values in extra.items()}}
            for row in _level_rows(run, level, chosen=chosen)
        )
    return rows


def _level_rows(run: AnalysisRun, level: Level, *, chosen: bool) -> list[dict]:
    outcome, labels, k = run.outcome, level.labels, level.n_clusters
    member = labels >= 0
    size = np.bincount(labels[member], minlength=k)
    copies = np.bincount(labels[member], weights=outcome.is_copy[member].astype(float), minlength=k)
    x, y = (level_means(labels, outcome.coords[:, axis], k) for axis in (0, 1))
    probability = level_means(labels, outcome.probabilities, k)
    ids = run.ids
    exemplars = _top_rows(labels, outcome, k, EXEMPLARS_PER_CLUSTER)
    return [
        {
            "level": level.name,
            "cluster": c,
            "parent": int(level.parents[c]),
            "size": int(size[c]),
            "mean_probability": round(float(probability[c]), 6) if chosen else None,
            "persistence": round(float(outcome.persistence[c]), 6) if chosen and c < len(outcome.persistence) else None,
            "exemplar_ids": ";".join(str(ids[r]) for r in exemplars[c]),
            "duplicates": int(copies[c]),
            "x": round(float(x[c]), 5),
            "y": round(float(y[c]), 5),
        }
        for c in range(k)
    ]


def _top_rows(labels: np.ndarray, outcome: Outcome, k: int, limit: int) -> list[np.ndarray]:
    """Per cluster of ``labels``, up to ``limit`` distinct images by probability descending (ties: row order); the
    chosen level gets exactly :func:`ranked_rows`'s picks, in one vectorised pass for any level."""
    rows = np.flatnonzero((labels >= 0) & ~outcome.is_copy)
    rows = rows[np.lexsort((rows, -outcome.probabilities[rows].astype(float), labels[rows]))]
    sorted_labels = labels[rows]
    rank = np.arange(len(rows)) - np.searchsorted(sorted_labels, sorted_labels)
    kept = rows[rank < limit]
    return np.split(kept, np.searchsorted(labels[kept], np.arange(1, k)))


def assignments_table(run: AnalysisRun) -> pa.Table:
    """``assignments.parquet``: the contract columns, the other hierarchy levels (``theme``, ``subcluster``), the
    runner-up labels, ``run.row_columns``, then passthrough.

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
    for level in outcome.hierarchy.levels:
        if level.name != CHOSEN_LEVEL:
            columns[schema.LEVEL_COLUMNS[level.name]] = pa.array(level.labels, pa.int32())
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
        "granularity": outcome.granularity,
        "timings": dict(timings),
        "metric_docs": dict(METRIC_DOCS),
        "notes": list(notes),
        "shard_metadata": data.metadata,
        "hierarchy": hierarchy_document(run),
        **_history_document(run),
        **(
            {
                "posts": run.posts.posts_summary(),
                "reposts": run.posts.reposts_summary(),
                "coordination": run.posts.coordination_summary(),
            }
            if run.posts
            else {}
        ),
    }


def hierarchy_document(run: AnalysisRun) -> dict:
    """``metrics.json["hierarchy"]``: the levels coarse to fine, each cluster with its parent, size, name, keywords."""
    levels = []
    for level in run.outcome.hierarchy.levels:
        extra = run.cluster_columns.get(level.name, {})
        size = np.bincount(level.labels[level.labels >= 0], minlength=level.n_clusters)

        def value(name: str, cluster: int, extra=extra):
            return extra[name][cluster] if name in extra else None

        clusters = [
            {
                "cluster": c,
                "parent": int(level.parents[c]),
                "size": int(size[c]),
                "name": value("name", c),
                "name_source": value("name_source", c),
                "uncertain": bool(value("name_uncertain", c)),
                "keywords": value("keywords", c).split(";") if value("keywords", c) else [],
                "mixed_keywords": value("mixed_keywords", c).split(" | ") if value("mixed_keywords", c) else [],
                **({"new": bool(value("new", c)), "reviewed": bool(value("reviewed", c))} if "new" in extra else {}),
            }
            for c in range(level.n_clusters)
        ]
        levels.append(
            {
                "name": level.name,
                "column": schema.LEVEL_COLUMNS[level.name],
                "min_cluster_size": level.min_cluster_size,
                "clusters": clusters,
            }
        )
    return {"chosen": CHOSEN_LEVEL, "levels": levels}


def _history_document(run: AnalysisRun) -> dict:
    """``metrics.json`` ``batches`` and, when they happened, ``review`` and ``changes`` (``docs/follow.md``)."""
    history = run.history
    if history is None:
        return {}
    found = {"batches": history.batches}
    if history.review is not None:
        found["review"] = history.review
    if history.changes:
        counts: dict[str, int] = {}
        for row in history.changes:
            counts[row["event"]] = counts.get(row["event"], 0) + 1
        found["changes"] = counts
    return found

"""The steps a followed analysis adds to a run: keep the previous analysis's cluster ids (``--previous``), apply a
person's review (``--review``), and put both into the run's tables (names, flags, ``batch``, ``label_source``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from clustering import schema
from clustering.analysis.cluster.hierarchy import CHOSEN_LEVEL
from clustering.analysis.follow import history as hist
from clustering.analysis.follow.matching import match_clusters
from clustering.analysis.follow.previous import PreviousAnalysis
from clustering.analysis.follow.review import Review, apply_review
from clustering.analysis.outcome import with_labels
from clustering.analysis.run_data import AnalysisRun, Outcome


def keep_ids(outcome: Outcome, history: hist.History, previous: PreviousAnalysis, ids: pa.Array):
    """A re-analysis numbered like ``previous``: matched clusters keep their ids, the changes listed, the rows it did
    not hold in a new batch, a person's names of matched clusters kept."""
    prev_row = previous.rows_of(ids)
    before = previous.column(schema.CLUSTER, prev_row, -1).astype(np.int64)
    matching = match_clusters(before, outcome.labels)
    labels = matching.relabel(outcome.labels)
    persistence = np.full(len(matching.new_id), np.nan)
    persistence[matching.new_id] = outcome.persistence[: len(matching.new_id)]
    outcome = with_labels(outcome, labels, persistence=persistence)
    last = previous.batches[-1]["batch"]
    added = int((prev_row < 0).sum())
    batches = [*previous.batches, {"batch": last + 1, "kind": "re-analysis", "created": hist.now(), "rows": added,
                                   "input": history.batches[-1]["input"]}]  # fmt: skip
    batch = np.where(prev_row >= 0, previous.column("batch", prev_row, 0), last + 1).astype(np.int32)
    names = {int(matching.new_id[c]): previous.reviewed_names()[p]
             for c, p in matching.matched.items() if p in previous.reviewed_names()}  # fmt: skip
    history = dataclasses.replace(history, batch=batch, batches=batches, new_clusters=frozenset(matching.born),
                                  changes=matching.changes, names=names, reviewed=frozenset(names))  # fmt: skip
    return outcome, history


def apply_person(outcome: Outcome, history: hist.History, review: Review, ids: list[str]):
    """``review`` applied to the chosen labels: the re-nested outcome and the history that records it."""
    reviewed = apply_review(review, outcome.labels, ids)
    k = int(reviewed.labels.max(initial=-1)) + 1
    persistence = np.full(k, np.nan)
    same = min(k, len(outcome.persistence))
    persistence[:same] = outcome.persistence[:same]
    outcome = with_labels(outcome, reviewed.labels, persistence=persistence)
    source = history.label_source.copy()
    source[reviewed.changed_rows] = hist.REVIEW
    history = dataclasses.replace(
        history,
        label_source=source,
        names={**{c: n for c, n in history.names.items() if c < k}, **reviewed.names},
        reviewed=frozenset(c for c in (*history.reviewed, *reviewed.reviewed) if c < k),
        new_clusters=frozenset(c for c in history.new_clusters if c < k),
        review=reviewed.document(review.source),
    )
    return outcome, history


def with_history(run: AnalysisRun) -> AnalysisRun:
    """The run's tables with a person's names, the ``new``/``reviewed`` flags, the ``batch``/``label_source`` rows."""
    history = run.history
    level = run.outcome.hierarchy.clusters
    chosen = dict(run.cluster_columns.get(CHOSEN_LEVEL, {}))
    k = level.n_clusters
    if history.names:
        names = list(chosen.get("name", [None] * k))
        sources = list(chosen.get("name_source", [None] * k))
        uncertain = list(chosen.get("name_uncertain", [False] * k))
        for cluster, name in history.names.items():
            if cluster < k:
                names[cluster], sources[cluster], uncertain[cluster] = name, hist.REVIEW, False
        chosen.update(name=names, name_source=sources, name_uncertain=uncertain)
    chosen.update(history.cluster_flags(k))
    rows = {
        "batch": pa.array(history.batch, pa.int32()),
        "label_source": pa.array(history.label_source.tolist(), pa.string()),
    }
    return dataclasses.replace(
        run,
        cluster_columns={**run.cluster_columns, CHOSEN_LEVEL: chosen},
        row_columns={**run.row_columns, **rows},
    )

"""``jobs/analyze.py --update PREVIOUS``: new shards placed into an earlier analysis, without clustering it again.

Every row the earlier analysis holds keeps its labels, coordinates and scores, so no cluster changes id. Each new
distinct image is placed by :func:`.assign.place` (a vote of its nearest images in the original space); the images
no cluster takes are clustered among themselves with the same sweep and selection, and each group found there is a
new cluster, numbered after the earlier ones and drawn beside the earlier map. The other label columns (themes,
sub-clusters, alternatives) follow: a placed image takes its cluster's theme and its neighbours' sub-cluster and
alternative labels; a new cluster is a new theme, sub-cluster and alternative cluster of its own.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pyarrow as pa

from clustering import schema
from clustering.analysis.cluster.cluster_points import cluster_points
from clustering.analysis.cluster.hierarchy import CHOSEN_LEVEL, Hierarchy, Level
from clustering.analysis.follow import history as hist
from clustering.analysis.follow.assign import UNPLACED, cluster_shape, place, plurality, unify
from clustering.analysis.follow.previous import PreviousAnalysis
from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.outcome import relabel_by_size, with_labels
from clustering.analysis.run_data import Clustering, Outcome
from clustering.analysis.shards import ShardData
from clustering.analysis.space.knn_graph import KnnGraph, unit_rows
from clustering.analysis.steps import Steps

log = logging.getLogger(__name__)

# Fewer unplaced images than this are left as noise: a sweep needs a few clusters' worth of points.
MIN_UNPLACED_TO_CLUSTER = 20
# The new clusters' map sits right of the earlier one, this share of its width away and this share wide.
NEW_MAP_GAP, NEW_MAP_WIDTH = 0.08, 0.35


@dataclasses.dataclass(frozen=True)
class CarriedSelection:
    """The earlier run's choice, as the report and the sweep figure read it."""

    index: int | None
    runner_ups: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Updated:
    clustering: Clustering
    outcome: Outcome
    history: hist.History
    notes: tuple[str, ...]


def update(previous: PreviousAnalysis, data: ShardData, config: AnalyzeConfig, steps: Steps) -> Updated:
    """Place the rows of ``data`` that ``previous`` does not hold (``data`` reads its shards first, then the new)."""
    ids = data.table[schema.ID].combine_chunks()
    prev_row = previous.rows_of(ids)
    points, point_of_row = data.points, data.point_of_row
    point_prev = np.full(len(points), -1, dtype=np.int64)
    old_rows = np.flatnonzero(prev_row >= 0)
    point_prev[point_of_row[old_rows]] = prev_row[old_rows]
    old, new = np.flatnonzero(point_prev >= 0), np.flatnonzero(point_prev < 0)
    X = unit_rows(data.embeddings)
    chosen_prev = previous.column(schema.CLUSTER, point_prev[old], -1).astype(np.int32)
    k_old = int(previous.column(schema.CLUSTER, np.arange(previous.assignments.num_rows), -1).max(initial=-1)) + 1
    with steps.step("assign"):
        shape = cluster_shape(X[old], chosen_prev)
        placement = place(X[new], X[old], shape, chosen_prev, k=config.n_neighbors, threads=config.threads)
    unplaced = new[placement.labels == UNPLACED]
    placed_n, noise_n = int((placement.labels >= 0).sum()), int((placement.labels == -1).sum())
    log.info(f"assign: of {len(new):,} new images, {placed_n:,} placed in earlier clusters by their neighbours, "
             f"{noise_n:,} noise, {len(unplaced):,} clustered among themselves ({steps.last('assign')})")  # fmt: skip
    fresh = _cluster_unplaced(X[unplaced], config, steps)
    fresh = dataclasses.replace(fresh, labels=unify(X[unplaced], fresh.labels, shape.cohesion))

    point = _PointColumns.of(len(points))
    point.cluster[old] = chosen_prev
    point.probability[old] = previous.column(schema.PROBABILITY, point_prev[old], 0.0)
    point.outlier[old] = previous.column(schema.OUTLIER_SCORE, point_prev[old], 0.0)
    point.coords[old, 0] = previous.column(schema.X, point_prev[old], 0.0)
    point.coords[old, 1] = previous.column(schema.Y, point_prev[old], 0.0)
    placed = placement.labels != UNPLACED
    point.cluster[new[placed]] = placement.labels[placed]
    point.probability[new[placed]] = placement.share[placed]
    point.cluster[unplaced] = np.where(fresh.labels >= 0, k_old + fresh.labels, -1)
    point.probability[unplaced] = fresh.probabilities
    point.outlier[unplaced] = fresh.outlier_scores
    point.coords[new] = _neighbour_coords(placement, point.coords[old])
    point.coords[unplaced] = _beside(fresh.coords, point.coords[old])

    reference = np.concatenate([old, new])  # placement.neighbours index this order
    split = _Split(point_prev, old, new, placement, fresh)
    columns = {name: _carry_column(previous, name, split) for name in previous.label_columns()}
    if schema.THEME in columns:
        columns[schema.THEME] = _themes_of_clusters(point.cluster, columns[schema.THEME], old, new)

    rows = _row_history(previous, prev_row, point_of_row, fresh_points=unplaced[fresh.labels >= 0])
    outcome = _outcome(previous, data, point, columns)
    new_ids = frozenset(range(k_old, outcome.n_clusters))
    batch = {"batch": previous.batches[-1]["batch"] + 1, "kind": "update", "created": hist.now(),
             "rows": int((prev_row < 0).sum()), "input": config.input}  # fmt: skip
    history = hist.History(
        batch=np.where(prev_row >= 0, previous.column("batch", prev_row, 0), batch["batch"]).astype(np.int32),
        label_source=rows,
        batches=[*previous.batches, batch],
        new_clusters=new_ids,
    )
    knn = _extended_graph(previous, data, placement, reference)
    clustering = Clustering(
        map_coords=point.coords,
        rows=previous.sweep_rows,
        selection=CarriedSelection((previous.metrics.get("selection") or {}).get("index")),
        params={**previous.metrics.get("params", {}), "update": _update_params(placement, new, unplaced, new_ids)},
        knn=knn,
    )
    notes = (
        f"update of {previous.uri}: {batch['rows']:,} new rows; {int(placed.sum()):,} new images placed in earlier "
        f"clusters or noise, {len(unplaced):,} clustered among themselves into {len(new_ids)} new cluster"
        f"{'s' if len(new_ids) != 1 else ''}",
    )
    if knn is None:
        notes += ("the earlier analysis has no neighbours.npz: repost groups were searched again over every image",)
    return Updated(clustering, outcome, history, notes)


@dataclasses.dataclass
class _PointColumns:
    cluster: np.ndarray
    probability: np.ndarray
    outlier: np.ndarray
    coords: np.ndarray

    @classmethod
    def of(cls, n: int) -> _PointColumns:
        return cls(
            np.full(n, -1, np.int32), np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros((n, 2), np.float32)
        )


@dataclasses.dataclass(frozen=True)
class _Fresh:
    """The unplaced images clustered among themselves."""

    labels: np.ndarray
    probabilities: np.ndarray
    outlier_scores: np.ndarray
    coords: np.ndarray


def _cluster_unplaced(X: np.ndarray, config: AnalyzeConfig, steps: Steps) -> _Fresh:
    n = len(X)
    if n < MIN_UNPLACED_TO_CLUSTER:
        return _Fresh(np.full(n, -1, np.int32), np.zeros(n, np.float32), np.zeros(n, np.float32),
                      np.zeros((n, 2), np.float32))  # fmt: skip
    found = cluster_points(X, config, steps)
    if found.selection is None:
        return _Fresh(np.full(n, -1, np.int32), np.zeros(n, np.float32), np.zeros(n, np.float32), found.map_coords)
    chosen = found.results[found.selection.index]
    labels, _ = relabel_by_size(np.asarray(chosen.labels))
    return _Fresh(labels, np.asarray(chosen.probabilities, np.float32), np.asarray(chosen.outlier_scores, np.float32),
                  np.asarray(found.map_coords, np.float32))  # fmt: skip


def _neighbour_coords(placement, old_coords: np.ndarray) -> np.ndarray:
    """Each new image at the similarity-weighted mean of its earlier neighbours on the map (the map's own transform
    would need the reducer; this keeps a point among the images it is like)."""
    neighbours, weights = placement.neighbours, np.maximum(placement.similarities, 0.0)
    earlier = neighbours < len(old_coords)
    weights = np.where(earlier, weights, 0.0) + 1e-9 * earlier
    xy = old_coords[np.where(earlier, neighbours, 0)] if len(old_coords) else np.zeros((*neighbours.shape, 2))
    total = weights.sum(axis=1, keepdims=True)
    return np.where(total > 0, (xy * weights[..., None]).sum(axis=1) / np.maximum(total, 1e-12), 0.0).astype(np.float32)


def _beside(coords: np.ndarray, old_coords: np.ndarray) -> np.ndarray:
    """The unplaced images' own map, scaled into a box right of the earlier map."""
    if not len(coords):
        return coords
    low, high = (old_coords.min(axis=0), old_coords.max(axis=0)) if len(old_coords) else (np.zeros(2), np.ones(2))
    span = np.maximum(high - low, 1e-6)
    own_low, own_span = coords.min(axis=0), np.maximum(np.ptp(coords, axis=0), 1e-6)
    scale = NEW_MAP_WIDTH * span[0] / own_span.max()
    origin = np.array([high[0] + NEW_MAP_GAP * span[0], low[1] + (span[1] - own_span[1] * scale) / 2])
    return (origin + (coords - own_low) * scale).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class _Split:
    """The images of an update: the earlier ones (with their row in the earlier analysis), the new, where they went."""

    point_prev: np.ndarray
    old: np.ndarray
    new: np.ndarray
    placement: object
    fresh: _Fresh


def _carry_column(previous: PreviousAnalysis, name: str, split: _Split) -> np.ndarray:
    """One label column per point: earlier images keep theirs, placed ones take their earlier neighbours' vote,
    a new cluster is a new cluster of this column too."""
    old, new, placement, fresh = split.old, split.new, split.placement, split.fresh
    values = np.full(len(split.point_prev), -1, dtype=np.int32)
    values[old] = previous.column(name, split.point_prev[old], -1)
    earlier = np.full(len(old) + len(new), -1, dtype=np.int32)
    earlier[: len(old)] = values[old]
    unplaced = placement.labels == UNPLACED
    placed = placement.labels >= 0
    if placed.any():  # the earlier neighbours' most frequent clustered label (noise votes only when nothing else)
        winner, count = plurality(earlier[placement.neighbours[placed]], low=0)
        values[new[placed]] = np.where(count > 0, winner, -1)
    values[new[~placed & ~unplaced]] = -1
    top = int(values.max(initial=-1)) + 1
    values[new[unplaced]] = np.where(fresh.labels >= 0, top + fresh.labels, -1)
    return values


def _themes_of_clusters(cluster: np.ndarray, theme: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """A placed image's theme is its cluster's (themes hold whole clusters): the theme most of the cluster's earlier
    images hold (ties: the smaller)."""
    member = old[(cluster[old] >= 0) & (theme[old] >= 0)]
    width = int(theme.max(initial=0)) + 1
    k = int(cluster.max(initial=-1)) + 1
    counts = np.bincount(cluster[member] * width + theme[member], minlength=k * width).reshape(k, width)
    out = theme.copy()
    known = new[cluster[new] >= 0]
    known = known[counts[cluster[known]].sum(axis=1) > 0]
    out[known] = np.argmax(counts[cluster[known]], axis=1)
    return out


def _row_history(previous, prev_row, point_of_row, *, fresh_points) -> np.ndarray:
    """``label_source`` per row: carried for the earlier rows, ``new_cluster`` or ``assigned`` for the new."""
    source = np.full(len(prev_row), hist.ASSIGNED, dtype=object)
    source[np.isin(point_of_row, fresh_points)] = hist.NEW_CLUSTER
    carried = previous.column("label_source", prev_row, hist.CLUSTERING)
    old = prev_row >= 0
    source[old] = np.where(carried[old] == None, hist.CLUSTERING, carried[old])  # noqa: E711 (object array)
    return source


def _outcome(previous: PreviousAnalysis, data: ShardData, point: _PointColumns, columns: dict) -> Outcome:
    """The row-level outcome: every column spread from the images to their rows, the levels nested around the
    chosen labels by :func:`~clustering.analysis.outcome.with_labels`, as a reviewed or renumbered run's are."""
    rows = data.point_of_row
    labels = point.cluster[rows]
    levels = [(name, column) for name, column in (("themes", schema.THEME), (CHOSEN_LEVEL, schema.CLUSTER),
                                                  ("subclusters", schema.SUBCLUSTER)) if column in columns or
              column == schema.CLUSTER]  # fmt: skip
    raw = Hierarchy(
        tuple(Level(name, labels if column == schema.CLUSTER else columns[column][rows], np.zeros(0, np.int32))
              for name, column in levels),
        [name for name, _ in levels].index(CHOSEN_LEVEL),
    )  # fmt: skip
    metrics, duplicates = previous.metrics, data.duplicates
    carried = Outcome(
        labels=labels.astype(np.int32),
        probabilities=point.probability[rows],
        outlier_scores=point.outlier[rows],
        coords=point.coords[rows],
        persistence=np.zeros(0),
        alternatives=list(metrics.get("alternatives") or []),
        alternative_labels={name: values[rows] for name, values in columns.items() if name.startswith("cluster_mcs")},
        order=np.arange(len(labels)),
        is_copy=duplicates.is_copy,
        group_size=np.bincount(duplicates.inverse, minlength=duplicates.n_unique)[duplicates.inverse],
        hierarchy=raw,
        chosen_row=metrics.get("chosen"),
        selection_info=metrics.get("selection"),
        runner_up_rows=list(metrics.get("runner_ups") or []),
        granularity=list(metrics.get("granularity") or []),
        n_clusters=0,
        noise_fraction=float("nan"),
    )
    return with_labels(carried, labels, persistence=np.full(int(labels.max(initial=-1)) + 1, np.nan))


def _extended_graph(previous: PreviousAnalysis, data: ShardData, placement, reference: np.ndarray) -> KnnGraph | None:
    """The earlier kNN graph (``neighbours.npz``) with the new images' neighbours added, over this run's images."""
    saved = previous.neighbours
    if saved is None:
        return None
    ids = np.asarray(data.table[schema.ID].combine_chunks().cast(pa.string()).to_pylist(), dtype=object)
    point_ids = ids[data.points]
    index_of = {key: i for i, key in enumerate(point_ids)}
    saved_points = np.array([index_of.get(str(key), -1) for key in saved["ids"]], dtype=np.int64)
    k = saved["indices"].shape[1]
    indices = np.full((len(point_ids), k), -1, dtype=np.int32)
    distances = np.ones((len(point_ids), k), dtype=np.float32)
    indices[:, 0], distances[:, 0] = np.arange(len(point_ids)), 0.0
    present = saved_points >= 0
    old_lists = saved["indices"][present]
    mapped = np.where(old_lists >= 0, saved_points[np.maximum(old_lists, 0)], -1)
    indices[saved_points[present]] = mapped
    distances[saved_points[present]] = saved["distances"][present]
    new_points = reference[len(reference) - len(placement.labels) :]
    width = min(k - 1, placement.neighbours.shape[1])
    indices[new_points, 1 : 1 + width] = reference[placement.neighbours[:, :width]]
    distances[new_points, 1 : 1 + width] = 1.0 - placement.similarities[:, :width]
    return KnnGraph(indices, distances, "exact")


def _update_params(placement, new, unplaced, new_ids) -> dict:
    return {"rule": "kNN vote in the original space, fit to the cluster's 1st percentile of member-to-centroid "
                    "similarity; the unplaced clustered among themselves",
            "new_images": len(new), "placed": int((placement.labels >= 0).sum()),
            "noise_by_vote": int((placement.labels == -1).sum()), "unplaced": len(unplaced),
            "new_clusters": sorted(new_ids)}  # fmt: skip

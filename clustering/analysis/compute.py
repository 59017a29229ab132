"""The compute of a run on its distinct images: reduction, HDBSCAN sweep, background test, scores, explained choice.

:func:`cluster_points` runs the compute stages in order (:mod:`.reduce`, :mod:`.sweep`, :mod:`.noise`,
:mod:`.metrics`, :mod:`.select`), times and logs each, and gathers what they found in one
:class:`~.result.Clustering`. Too few points still give a valid result (a PCA map, every point noise) with the
situation stated.
"""

from __future__ import annotations

import logging

import numpy as np

from clustering.analysis.config import AnalyzeConfig
from clustering.analysis.metrics import score_setting
from clustering.analysis.noise import core_distances, drop_background
from clustering.analysis.reduce import reduce
from clustering.analysis.result import Clustering
from clustering.analysis.select import select
from clustering.analysis.steps import Steps
from clustering.analysis.sweep import parse_grid, sweep

__all__ = ["MIN_CLUSTERS", "MIN_POINTS_TO_CLUSTER", "cluster_points"]

log = logging.getLogger("clustering.analysis.pipeline")  # one logger for the run's step lines

# Fewer distinct images than this cannot make a UMAP graph (reduce.py falls back to PCA there) nor a meaningful
# clustering; the run then maps them with PCA, labels them all noise and says so.
MIN_POINTS_TO_CLUSTER = 4
# The selection needs at least this many clusters for a setting to count as a clustering (select.py's default).
MIN_CLUSTERS = 2


def cluster_points(X: np.ndarray, config: AnalyzeConfig, steps: Steps) -> Clustering:
    """Reduce, sweep, drop the background, score and select on the distinct images ``X`` (float32, unit rows).

    Parameters
    ----------
    X : numpy.ndarray
        ``(n, d)`` embeddings of the distinct images, in point order.
    config : AnalyzeConfig
    steps : Steps
        Times "reduce" (and its parts), "sweep", "metrics" and "selection".

    Returns
    -------
    Clustering
        Empty results (and a note) when there are too few points to cluster.
    """
    n = len(X)
    if n == 0:  # nothing to reduce (the situation is stated by the input notes)
        return Clustering(map_coords=np.zeros((0, 2), np.float32))
    with steps.step("reduce"):
        reduction = reduce(  # below 4 points reduce() itself falls back to PCA and says so in params["fallback"]
            X,
            cluster_dims=config.cluster_dims,
            map_method=config.map_method,
            n_neighbors=config.n_neighbors,
            min_dist=config.min_dist,
            map_min_dist=config.map_min_dist,
            metric="cosine",
            seed=config.seed,
            n_epochs=config.n_epochs,
            progress=False,  # UMAP's verbose mode prints its whole repr; the step's log line says enough
            pack=config.pack_map,
        )
    for part, seconds in reduction.timings.items():  # the parts of "reduce", listed right after it
        steps.timings[f"reduce: {part}"] = float(seconds)
    detail = ", ".join(f"{k} {v:.1f} s" for k, v in reduction.timings.items()) or "-"
    log.info(
        f"reduce: {n:,} points to {config.cluster_dims}-D for clustering and 2-D ({config.map_method}) for the map: "
        f"{detail} ({steps.last('reduce')})"
    )
    params = {"reduction": dict(reduction.params)}
    if n < MIN_POINTS_TO_CLUSTER:
        note = (
            f"only {n} distinct image{'s' if n != 1 else ''} to analyse: too few to cluster "
            f"(at least {MIN_POINTS_TO_CLUSTER} are needed); every row is labelled noise"
        )
        return Clustering(map_coords=reduction.map_coords, params=params, knn=reduction.knn, notes=(note,))
    notes = [f"reduction: {reduction.params['fallback']}"] if reduction.params.get("fallback") else []

    sizes, samples = _grid(config, n)
    if min(sizes) > n:
        notes.append(
            f"only {n:,} distinct images, fewer than the smallest min_cluster_size ({min(sizes)}): no cluster can "
            "form, so every row is noise; pass smaller --min-cluster-sizes"
        )
    with steps.step("sweep"):
        results = sweep(reduction.cluster_coords, sizes, samples, progress=config.progress)
        # Diffuse images UMAP pulled into a cluster are far sparser in the original space: noise (noise.py).
        core = core_distances(reduction.knn.distances)
        results = [drop_background(r, core, z=config.noise_z) for r in results]
    log.info(
        f"sweep: {len(results)} settings (min_cluster_size {_span(sizes)}, min_samples {_span(samples)}), "
        f"background test z={config.noise_z} ({steps.last('sweep')})"
    )
    with steps.step("metrics"):
        scoring = {
            "sample_size": config.silhouette_sample_size,
            "seed": config.seed,
            "neighbours": reduction.knn.indices,
        }
        rows = [score_setting(r, reduction.cluster_coords, X, **scoring) for r in results]
    log.info("metrics: %d settings scored (%s)", len(rows), steps.last("metrics"))

    pins = {"pin_min_cluster_size": config.pin_min_cluster_size, "pin_min_samples": config.pin_min_samples}
    with steps.step("selection"):
        selection = select(rows, max_noise=config.max_noise, min_clusters=MIN_CLUSTERS, score=config.select_by, **pins)
    chosen = rows[selection.index]
    pinned = " (pinned)" if selection.pinned else ""
    log.info(
        f"selection: min_cluster_size={chosen['min_cluster_size']}, min_samples={chosen['min_samples']}{pinned}: "
        f"{selection.reason}"
    )
    params |= {
        "sweep": {"min_cluster_sizes": list(sizes), "min_samples": list(samples)},
        "selection": {"max_noise": config.max_noise, "min_clusters": MIN_CLUSTERS, "score": config.select_by, **pins},
        "noise_z": config.noise_z,
        "silhouette_sample_size": config.silhouette_sample_size,
    }
    return Clustering(
        map_coords=reduction.map_coords,
        results=results,
        rows=rows,
        selection=selection,
        params=params,
        knn=reduction.knn,
        notes=tuple(notes),
    )


def _grid(config: AnalyzeConfig, n_points: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    sizes = set(parse_grid(config.min_cluster_sizes, n_points))
    samples = set(config.min_samples)
    if config.pin_min_cluster_size is not None:  # a pinned setting must exist in the sweep to be chosen
        sizes.add(config.pin_min_cluster_size)
    if config.pin_min_samples is not None:
        samples.add(config.pin_min_samples)
    return tuple(sorted(sizes)), tuple(sorted(samples))


def _span(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]}..{values[-1]} ({len(values)} values)"

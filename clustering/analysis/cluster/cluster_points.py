"""The compute of a run on its distinct images: reduction, HDBSCAN sweep, background test, scores, explained choice.

:func:`cluster_points` runs the compute stages in order (:mod:`.reduce`, :mod:`.sweep`, :mod:`.noise`,
:mod:`.metrics`, :mod:`.select`), times and logs each, and gathers what they found in one
:class:`~.result.Clustering`. Every setting is scored with what the selection needs (cheap, from the kNN graph); the
separation scores (silhouettes, Calinski-Harabasz) only for the chosen setting and its runner-ups. Per-point arrays are
kept for the settings later steps read (the chosen one, the alternatives, the hierarchy levels) and dropped for the
rest. Too few points still give a valid result (a PCA map, every point noise) with the situation stated.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from clustering.analysis import gpu
from clustering.analysis.cluster.background import core_distances, drop_background, drop_diffuse_clusters
from clustering.analysis.cluster.hierarchy import levels_from_sweep
from clustering.analysis.cluster.ladder import resolution_ladder
from clustering.analysis.cluster.original_space import Refinement, refine, refined_setting
from clustering.analysis.cluster.scores import count_columns, score_setting, separation_scores
from clustering.analysis.cluster.select import partition_key, select
from clustering.analysis.cluster.setting import SettingResult
from clustering.analysis.cluster.sweep import sweep
from clustering.analysis.cluster.themes import MAX_THEMES, MIN_THEMES, overview_themes
from clustering.analysis.defaults import PARALLEL_LAYOUT_MIN_POINTS, RESOLUTION
from clustering.analysis.grid import parse_grid
from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.run_data import Clustering
from clustering.analysis.space.reduce import reduce
from clustering.analysis.steps import Steps
from clustering.analysis.threads import available_threads, machine_record, single_threaded_blas

__all__ = ["MIN_CLUSTERS", "MIN_POINTS_TO_CLUSTER", "cluster_points"]

log = logging.getLogger("clustering.analysis.run")  # one logger for the run's step lines

# Fewer distinct images than this cannot make a UMAP graph (reduce.py falls back to PCA there) nor a meaningful
# clustering; the run then maps them with PCA, labels them all noise and says so.
MIN_POINTS_TO_CLUSTER = 4
# The selection needs at least this many clusters for a setting to count as a clustering (select.py's default).
MIN_CLUSTERS = 2
# Selection scores that are separation scores: with one of them as --select-by, every setting needs them.
SEPARATION_SCORES = ("silhouette_reduced", "silhouette_cosine", "calinski_harabasz")


@single_threaded_blas()  # the same clusters at any --threads, whoever calls it (the job, a notebook, the bench)
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
    backend = gpu.detect(config.backend)
    threads = available_threads(config.threads)
    parallel, why = _parallel_layout(config.parallel_layout, n, threads)
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
            threads=threads,
            parallel_layout=parallel,
            use_gpu=backend.gpu,
        )
    for part, seconds in reduction.timings.items():  # the parts of "reduce", listed right after it
        steps.timings[f"reduce: {part}"] = float(seconds)
    detail = ", ".join(f"{k} {v:.1f} s" for k, v in reduction.timings.items()) or "-"
    log.info(
        f"reduce: {n:,} points to {config.cluster_dims}-D for clustering and 2-D ({config.map_method}) for the map "
        f"({backend.reason}; {threads} threads; layouts {reduction.params['layout'] or 'PCA'}): {detail} "
        f"({steps.last('reduce')})"
    )
    params = {"reduction": dict(reduction.params), "backend": backend.reason, "parallel_layout": why,
              "machine": machine_record()}  # fmt: skip
    notes = [f"layouts: {why}"] if parallel and not backend.gpu else []
    if n < MIN_POINTS_TO_CLUSTER:
        note = (
            f"only {n} distinct image{'s' if n != 1 else ''} to analyse: too few to cluster "
            f"(at least {MIN_POINTS_TO_CLUSTER} are needed); every row is labelled noise"
        )
        return Clustering(map_coords=reduction.map_coords, params=params, knn=reduction.knn, notes=(note,))
    if reduction.params.get("fallback"):
        notes.append(f"reduction: {reduction.params['fallback']}")

    sizes, samples = _grid(config, n)
    if min(sizes) > n:
        notes.append(
            f"only {n:,} distinct images, fewer than the smallest min_cluster_size ({min(sizes)}): no cluster can "
            "form, so every row is noise; pass smaller --min-cluster-sizes"
        )
    with steps.step("sweep"):
        hdbscan_results = sweep(reduction.cluster_coords, sizes, samples, progress=config.progress, use_gpu=backend.gpu,
                                selections=config.cluster_selection)  # fmt: skip
        # Diffuse images UMAP pulled into a cluster are far sparser in the original space: noise (background.py).
        core = core_distances(reduction.knn.distances)
        results = [drop_background(r, core, z=config.noise_z) for r in hdbscan_results]
    log.info(
        f"sweep: {len(results)} settings (min_cluster_size {_span(sizes)}, min_samples {_span(samples)}), "
        f"background test z={config.noise_z} ({steps.last('sweep')})"
    )
    with steps.step("metrics"):
        rows = [
            score_setting(r, reduction.cluster_coords, X, neighbours=reduction.knn.indices, silhouettes=False,
                          hdbscan_labels=h.labels, resolution=config.resolution,
                          sample_size=config.silhouette_sample_size, seed=config.seed)
            for r, h in zip(results, hdbscan_results, strict=True)
        ]  # fmt: skip
        del hdbscan_results  # only their labels were needed (modularity_filled)
        if config.select_by in SEPARATION_SCORES:  # the rule ranks by a separation score: every setting needs it
            _add_separation(rows, results, range(len(rows)), coords=reduction.cluster_coords, X=X, config=config)

    pins = {"pin_min_cluster_size": config.pin_min_cluster_size, "pin_min_samples": config.pin_min_samples}
    with steps.step("selection"):
        labellings = [partition_key(r.labels) for r in results]  # settings that select the same clusters
        selection = select(rows, max_noise=config.max_noise, min_clusters=MIN_CLUSTERS, score=config.select_by,
                           labellings=labellings, **pins)  # fmt: skip
        levels = levels_from_sweep(rows, selection.index)
        ladder = tuple(resolution_ladder(rows, selection.eligible))
        kept = {selection.index, *selection.runner_ups[: config.alternatives], *levels.values()}
        kept |= {rung.index for rung in ladder}
        if config.diffuse_clusters_as_noise and math.isfinite(config.noise_z):
            # Clusters of unrelated images UMAP laid out together, no more alike than the whole collection: noise.
            dropped = _drop_diffuse_clusters(results, rows, kept | set(selection.runner_ups), X)[selection.index]
            if dropped:
                notes.append(
                    f"background: {dropped} cluster{'s' if dropped != 1 else ''} of images no more alike than the "
                    f"collection as a whole labelled noise ({rows[selection.index]['noise_fraction']:.1%} noise now)"
                )
        refinement = None
        if config.original_space_tests and not selection.pinned:
            # The original space has the last word on the clusters a person sees: the choice and the ladder's (a
            # pinned setting is the person's own and stays as HDBSCAN made it).
            tested = [selection.index, *(rung.index for rung in ladder)]
            refinement = _refine(results, rows, tested, X=X, knn=reduction.knn, config=config)[selection.index]
    if config.resolution != RESOLUTION and config.select_by == "modularity_filled":
        lean = "more, smaller" if config.resolution > RESOLUTION else "fewer, larger"
        notes.append(f"selection at resolution {config.resolution:g} (default {RESOLUTION:g}): {lean} clusters")
    with steps.step("metrics"):
        compared = [selection.index, *selection.runner_ups]
        _add_separation(rows, results, compared, coords=reduction.cluster_coords, X=X, config=config)
    log.info(
        f"metrics: {len(rows)} settings scored, separation scores for {len(compared)} "
        f"(the chosen setting and its runner-ups) ({steps.last('metrics')})"
    )
    log.info(f"selection: {selection.reason}")  # the reason starts with the setting's name ("pinned by ..." if pinned)
    for decision in refinement.decisions if refinement else ():
        log.info(f"original space: {decision.sentence()}")
    overview = overview_themes(X, results[selection.index].labels)
    if overview is not None:
        n_chosen = rows[selection.index]["clusters"]
        log.info(f"overview: {overview.sentence(n_chosen)}")
        params["themes"] = {"method": "original space", "themes": overview.n_themes, "cut": overview.cut,
                            "jump": overview.jump, "min_themes": MIN_THEMES, "max_themes": MAX_THEMES}  # fmt: skip
    params |= {
        "sweep": {
            "min_cluster_sizes": list(sizes),
            "min_samples": list(samples),
            "cluster_selection": list(config.cluster_selection),
        },
        "selection": {
            "max_noise": config.max_noise,
            "min_clusters": MIN_CLUSTERS,
            "score": config.select_by,
            "resolution": config.resolution,
            **pins,
        },
        "noise_z": config.noise_z,
        "diffuse_clusters_as_noise": config.diffuse_clusters_as_noise,
        "original_space_tests": config.original_space_tests,
        "split_alpha": config.split_alpha,
        "split_min_effect": config.split_min_effect,
        "silhouette_sample_size": config.silhouette_sample_size,
    }
    return Clustering(
        map_coords=reduction.map_coords,
        results={i: results[i] for i in sorted(kept)},  # per-point arrays only where a later step reads them
        rows=rows,
        selection=selection,
        levels=levels,
        ladder=ladder,
        params=params,
        knn=reduction.knn,
        notes=tuple(notes),
        refinement=refinement,
        overview=overview,
    )


def _refine(results: list[SettingResult], rows: list[dict], indices, *, X: np.ndarray, knn, config) -> dict:
    """Apply the original-space tests to the settings at ``indices``, in place; their refinements by index."""
    found: dict[int, Refinement] = {}
    for i in dict.fromkeys(indices):
        found[i] = refine(
            results[i].labels, X, knn.indices, knn.distances, min_cluster_size=results[i].min_cluster_size,
            seed=config.seed or 0, alpha=config.split_alpha, min_effect=config.split_min_effect,
        )  # fmt: skip
        results[i] = refined_setting(results[i], found[i])
        rows[i] |= count_columns(results[i]) | {
            f"original_space_{column}": found[i].count(kind)
            for column, kind in (("merges", "merge"), ("splits", "split"), ("background", "background"))
        }
    return found


def _drop_diffuse_clusters(results: list[SettingResult], rows: list[dict], indices, X: np.ndarray) -> dict[int, int]:
    """Relabel the diffuse clusters of the settings at ``indices`` as noise and recount their rows; clusters dropped
    per index."""
    dropped = {}
    for i in sorted(indices):
        results[i], dropped[i] = drop_diffuse_clusters(results[i], X)
        rows[i] |= count_columns(results[i]) | {"diffuse_clusters": dropped[i]}
    return dropped


def _add_separation(rows: list[dict], results: list[SettingResult], indices, *, coords, X, config) -> None:
    """Silhouettes and Calinski-Harabasz of the settings at ``indices`` (one shared sample), into their rows."""
    todo = [i for i in dict.fromkeys(indices) if rows[i]["silhouette_sample_size"] == 0]
    if not todo:
        return
    labelings = [results[i].labels for i in todo]
    scores = separation_scores(labelings, coords, X, sample_size=config.silhouette_sample_size, seed=config.seed)
    for i, found in zip(todo, scores, strict=True):
        rows[i] |= found | {"metric_seconds": rows[i]["metric_seconds"] + found["metric_seconds"]}


def _parallel_layout(requested: str, n: int, threads: int) -> tuple[bool, str]:
    """Whether UMAP's SGD runs on every thread, and the reason ``metrics.json`` records."""
    if requested == "on":
        return True, "parallel (--parallel-layout on): faster, not reproducible run to run"
    if requested == "off":
        return False, "reproducible (--parallel-layout off)"
    if n > PARALLEL_LAYOUT_MIN_POINTS and threads > 2:
        return True, (
            f"parallel (auto: {n:,} points > {PARALLEL_LAYOUT_MIN_POINTS:,} with {threads} threads): faster, not "
            "reproducible run to run; --parallel-layout off makes it reproducible"
        )
    return False, f"reproducible (auto: parallel only above {PARALLEL_LAYOUT_MIN_POINTS:,} points with 3+ threads)"


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

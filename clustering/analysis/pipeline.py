"""The Analyze job: shards in, one output folder out (``docs/analysis-outputs.md``).

:func:`run_analysis` orchestrates and logs one timed line per step; the work lives elsewhere: reading in :mod:`.read`,
reduction in :mod:`.reduce`, the HDBSCAN sweep in :mod:`.sweep`, scoring in :mod:`.metrics`, the explained choice in
:mod:`.select`, the tables in :mod:`.tables`, the output folder in :mod:`.outputs`, figures in :mod:`.plots`, the report
and its montages in :mod:`.report`, the interactive page in :mod:`.explorer`. One :class:`~.result.AnalysisRun` carries
what was computed from step to step. Degenerate input (no ``ok`` row, a handful of images, all duplicates, everything
noise, no thumbnails) still produces every output, with the situation stated in the report, ``metrics.json`` and the
log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from clustering import schema
from clustering.analysis import plots, report, tables
from clustering.analysis.config import AnalyzeConfig
from clustering.analysis.explorer import Explorer, build_explorer, default_title
from clustering.analysis.metrics import score_setting
from clustering.analysis.outputs import OutputFolder, absolute
from clustering.analysis.read import InputError, ThumbnailTap, find_duplicates, input_notes, read_ok_rows
from clustering.analysis.reduce import reduce
from clustering.analysis.result import AnalysisResult, AnalysisRun, Clustering
from clustering.analysis.select import select
from clustering.analysis.sweep import parse_grid, sweep

__all__ = ["run_analysis"]

log = logging.getLogger(__name__)

# Fewer distinct images than this cannot make a UMAP graph (reduce.py falls back to PCA there) nor a meaningful
# clustering; the run then maps them with PCA, labels them all noise and says so.
MIN_POINTS_TO_CLUSTER = 4
# The selection needs at least this many clusters for a setting to count as a clustering (select.py's default).
MIN_CLUSTERS = 2


class _Steps:
    """Times named steps; ``timings`` keeps them in order."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def last(self, name: str) -> str:
        return f"{self.timings.get(name, 0.0):.1f} s"

    def so_far(self) -> dict[str, float]:
        return {**self.timings, "total": time.perf_counter() - self.started}

    def finish(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.so_far().items()}


# ------------------------------------------------------------------------------------------------------ the job
def run_analysis(config: AnalyzeConfig) -> AnalysisResult:
    """Run the Analyze job described by ``config`` and return what it wrote and chose.

    Raises
    ------
    ConfigError
        The output folder exists and is not empty (without ``overwrite``), or another fixable option problem.
    InputError
        The input holds no shards or an unreadable one.
    """
    if config.explorer_only:
        return _explorer_only(config)
    steps = _Steps()
    out = OutputFolder(config.output)
    out.check(overwrite=config.overwrite)
    run = _compute(config, steps)
    out.prepare()

    with steps.step("outputs"):
        assignments, clusters = _write_tables(out, run)
    written = (schema.ASSIGNMENTS, schema.ASSIGNMENTS_CSV, schema.CLUSTERS_CSV, schema.SWEEP_CSV, schema.SWEEP_JSON)
    log.info(f"outputs: {', '.join(written)} ({steps.last('outputs')})")
    with steps.step("plots"):
        _write_plots(out, run)
    log.info(f"plots: {schema.MAP_PNG}, {schema.SWEEP_PNG} ({steps.last('plots')})")

    # One pass over the thumbnails: the explorer streams them all and the montages keep theirs on the way.
    plan = report.plan_montages(run)
    thumbnails = ThumbnailTap(run.input_uri, plan.ids(run))
    explorer_html = None
    if config.explorer:
        with steps.step("explorer"):
            explorer = Explorer.from_result(run, assignments, title=default_title(out.root), thumbnails=thumbnails)
            built = explorer.save(out.path(schema.EXPLORER_HTML), filesystem=out.fs)
            explorer_html = out.display(schema.EXPLORER_HTML)
        log.info(f"explorer: {explorer_html}{f'; {built.notice}' if built.notice else ''} ({steps.last('explorer')})")
    with steps.step("montages"):
        montages = report.draw_montages(run, plan, thumbnails.kept())
        for name, image in montages.images.items():
            out.write_bytes(name, image)
    drawn = f"{len(montages.cluster_paths)} cluster montages{', outliers' if montages.outliers_path else ''}"
    log.info(f"montages: {drawn} ({steps.last('montages')})")
    run = dataclasses.replace(run, notes=run.notes + montages.notes)

    # The report comes last so it can show every step's time; metrics.json is written once, after it.
    with steps.step("report"):
        shown = report.report_data(
            run,
            clusters=clusters,
            montages=montages,
            timings=steps.so_far(),
            output=out.uri,
            explorer=bool(explorer_html),
        )
        rendered = report.render_report(shown)
        out.write_text(schema.REPORT_HTML, rendered.html)
        out.write_text(schema.REPORT_MD, rendered.markdown)
    timings = steps.finish()
    out.write_json(schema.METRICS_JSON, tables.metrics_document(run, notes=run.notes, timings=timings))
    log.info(f"report: {out.display(schema.REPORT_HTML)} ({steps.last('report')}); total {timings['total']:.1f} s")
    return AnalysisResult.from_run(run, out=out, explorer_html=explorer_html, timings=timings)


def _compute(config: AnalyzeConfig, steps: _Steps) -> AnalysisRun:
    """Read the shards, fold exact duplicates, cluster the distinct images and spread the labels over every row."""
    input_uri = absolute(config.input)
    with steps.step("read"):
        data = read_ok_rows(input_uri)
    log.info(
        f"read: {data.n_rows:,} ok rows of {data.n_total:,} ({data.n_total - data.n_rows:,} failed) from "
        f"{data.n_shards} shard{'s' if data.n_shards != 1 else ''}, {data.embeddings.shape[1]}-D embeddings, "
        f"model {data.model} ({steps.last('read')})"
    )

    with steps.step("duplicates"):
        hashes = data.table[schema.SHA256] if schema.SHA256 in data.table.column_names else pa.nulls(data.n_rows)
        duplicates = find_duplicates(hashes.to_pylist())
        points, point_of_row = tables.clustered_points(duplicates, keep_duplicates=config.keep_duplicates)
    log.info(
        f"duplicates: {duplicates.n_unique:,} distinct images, {duplicates.n_copies:,} exact reposts; clustering "
        f"{len(points):,} points{' (--keep-duplicates)' if config.keep_duplicates else ''} ({steps.last('duplicates')})"
    )

    clustering = _cluster(data.embeddings[points], config, steps)
    outcome = tables.assemble_outcome(clustering, duplicates, point_of_row, alternatives=config.alternatives)
    return AnalysisRun(
        config=config,
        input_uri=input_uri,
        data=data,
        duplicates=duplicates,
        clustering=clustering,
        outcome=outcome,
        post=schema.detect_post_columns(data.table, data.passthrough),
        notes=(*input_notes(data, duplicates), *clustering.notes, *outcome.notes),
    )


def _cluster(X: np.ndarray, config: AnalyzeConfig, steps: _Steps) -> Clustering:
    """Reduce, sweep, score and select on the distinct images ``X`` (float32, unit rows)."""
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
        return Clustering(map_coords=reduction.map_coords, params=params, notes=(note,))
    notes = [f"reduction: {reduction.params['fallback']}"] if reduction.params.get("fallback") else []

    sizes, samples = _grid(config, n)
    if min(sizes) > n:
        notes.append(
            f"only {n:,} distinct images, fewer than the smallest min_cluster_size ({min(sizes)}): no cluster can "
            "form, so every row is noise; pass smaller --min-cluster-sizes"
        )
    with steps.step("sweep"):
        results = sweep(reduction.cluster_coords, sizes, samples, progress=config.progress)
    log.info(
        f"sweep: {len(results)} settings (min_cluster_size {_span(sizes)}, min_samples {_span(samples)}) "
        f"({steps.last('sweep')})"
    )
    with steps.step("metrics"):
        sample, seed = config.silhouette_sample_size, config.seed
        rows = [score_setting(r, reduction.cluster_coords, X, sample_size=sample, seed=seed) for r in results]
    log.info("metrics: %d settings scored (%s)", len(rows), steps.last("metrics"))

    pins = {"pin_min_cluster_size": config.pin_min_cluster_size, "pin_min_samples": config.pin_min_samples}
    with steps.step("selection"):
        selection = select(rows, max_noise=config.max_noise, min_clusters=MIN_CLUSTERS, **pins)
    chosen = rows[selection.index]
    pinned = " (pinned)" if selection.pinned else ""
    log.info(
        f"selection: min_cluster_size={chosen['min_cluster_size']}, min_samples={chosen['min_samples']}{pinned}: "
        f"{selection.reason}"
    )
    params |= {
        "sweep": {"min_cluster_sizes": list(sizes), "min_samples": list(samples)},
        "selection": {"max_noise": config.max_noise, "min_clusters": MIN_CLUSTERS, **pins},
        "silhouette_sample_size": config.silhouette_sample_size,
    }
    return Clustering(
        map_coords=reduction.map_coords,
        results=results,
        rows=rows,
        selection=selection,
        params=params,
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


def _write_tables(out: OutputFolder, run: AnalysisRun) -> tuple[pa.Table, list[dict]]:
    """Write the assignments, cluster and sweep tables; return the first two for the steps that show them."""
    assignments, clusters = tables.assignments_table(run), tables.cluster_table(run)
    out.write_parquet(schema.ASSIGNMENTS, assignments)
    out.write_table_csv(schema.ASSIGNMENTS_CSV, assignments)
    out.write_rows_csv(schema.CLUSTERS_CSV, clusters, empty_columns=tables.CLUSTER_COLUMNS)
    out.write_rows_csv(schema.SWEEP_CSV, run.clustering.rows, empty_columns=("min_cluster_size", "min_samples"))
    out.write_json(schema.SWEEP_JSON, run.clustering.rows)
    return assignments, clusters


def _write_plots(out: OutputFolder, run: AnalysisRun) -> None:
    outcome, clustering = run.outcome, run.clustering
    centroids = dict(enumerate(zip(*tables.cluster_centroids(outcome), strict=True))) if outcome.n_clusters else None
    figure = plots.map_figure(outcome.coords, outcome.labels, title="Image map", centroids=centroids)
    out.write_bytes(schema.MAP_PNG, plots.figure_to_png(figure))
    chosen = clustering.selection.index if clustering.selection is not None else None
    out.write_bytes(schema.SWEEP_PNG, plots.figure_to_png(plots.sweep_figure(clustering.rows, chosen)))


def _explorer_only(config: AnalyzeConfig) -> AnalysisResult:
    """Rebuild explorer.html in an existing output folder, leaving every other file as it is."""
    out = OutputFolder(config.output)
    if not out.exists(schema.ASSIGNMENTS):
        raise InputError(
            f"--output {out.uri} holds no {schema.ASSIGNMENTS}; run the analysis first (without --explorer-only)"
        )
    steps = _Steps()
    with steps.step("explorer"):
        built = build_explorer(out.uri)
    log.info("explorer: %s%s (%s)", built.path, f"; {built.notice}" if built.notice else "", steps.last("explorer"))
    return AnalysisResult.from_metrics(out.read_json(schema.METRICS_JSON), out=out, timings=steps.finish())

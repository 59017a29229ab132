"""The Analyze job: shards in, one output folder out (``docs/analysis-outputs.md``).

:func:`run_analysis` orchestrates and logs one timed line per step; the work lives elsewhere: reading in :mod:`.read`,
the post columns in :mod:`.posts`, the clustering of the distinct images in :mod:`.compute` (reduction, sweep,
background test, scores, the explained choice), the hierarchy levels and the tables in :mod:`.tables`, names, keywords,
timelines, accounts and repost groups in :mod:`.post_analysis`, the output folder in :mod:`.outputs`, figures in
:mod:`.plots`, the report and its montages in :mod:`.report`, the interactive page in :mod:`.explorer`. One
:class:`~.result.AnalysisRun` carries what was computed from step to step. Degenerate input (no ``ok`` row, a handful
of images, all duplicates, everything noise, no thumbnails, no post columns) still produces every output, with the
situation stated in the report, ``metrics.json`` and the log.
"""

from __future__ import annotations

import dataclasses
import functools
import logging

import pyarrow as pa

from clustering import io, schema
from clustering.analysis import documents
from clustering.analysis.cluster.cluster_points import cluster_points
from clustering.analysis.cluster.hierarchy import CHOSEN_LEVEL
from clustering.analysis.explorer.build import Explorer, build_explorer, default_title
from clustering.analysis.follow.apply import apply_person, keep_ids, with_history
from clustering.analysis.follow.history import History
from clustering.analysis.follow.matching import CHANGE_COLUMNS
from clustering.analysis.follow.previous import NEIGHBOURS, PreviousAnalysis, neighbours_bytes, read_previous
from clustering.analysis.follow.review import load_review
from clustering.analysis.follow.update import update
from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.outcome import assemble_outcome, cluster_centroids
from clustering.analysis.output_folder import OutputFolder, absolute
from clustering.analysis.posts.columns import Posts, read_posts
from clustering.analysis.posts.describe import PostOptions, analyse_posts
from clustering.analysis.report import plots
from clustering.analysis.report.contents import report_data
from clustering.analysis.report.follow_section import follow_sections
from clustering.analysis.report.montages import draw_montages, plan_montages
from clustering.analysis.report.render import render_report
from clustering.analysis.report.timeline_figure import over_time_figure
from clustering.analysis.run_data import AnalysisResult, AnalysisRun
from clustering.analysis.shards import InputError, ThumbnailTap, input_notes, read_ok_rows, read_thumbnails
from clustering.analysis.steps import Steps
from clustering.analysis.threads import single_threaded_blas

__all__ = ["run_analysis"]

log = logging.getLogger(__name__)


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
    steps = Steps()
    out = OutputFolder(config.output)
    in_place = bool(config.update) and absolute(config.update) == out.uri  # an update may rewrite its own folder
    out.check(overwrite=config.overwrite or in_place)
    with single_threaded_blas():  # results independent of --threads (.threads)
        run = _compute(config, steps)
    out.prepare()

    with steps.step("outputs"):
        assignments, clusters = _write_tables(out, run)
        metrics = documents.metrics_document(run, notes=run.notes, timings={})  # completed and written last
    written = (schema.ASSIGNMENTS, schema.ASSIGNMENTS_CSV, schema.CLUSTERS_CSV, schema.REPOST_GROUPS_CSV,
               schema.COORDINATION_CSV, schema.COORDINATED_PAIRS_CSV, "sweep")  # fmt: skip
    log.info(f"outputs: {', '.join(written)} ({steps.last('outputs')})")
    with steps.step("plots"):
        _write_plots(out, run)
    log.info(f"plots: {schema.MAP_PNG}, {schema.SWEEP_PNG}, {schema.OVER_TIME_PNG} ({steps.last('plots')})")

    # One pass over the thumbnails: the explorer streams them all and the montages keep theirs on the way.
    plan = plan_montages(run)
    thumbnails = ThumbnailTap(run.input_uri, plan.ids(run))
    explorer_html = None
    if config.explorer:
        with steps.step("explorer"):
            explorer = Explorer.from_result(
                run, assignments, metrics, title=default_title(out.root), thumbnails=thumbnails
            )
            built = explorer.save(out.path(schema.EXPLORER_HTML), filesystem=out.fs)
            explorer_html = out.display(schema.EXPLORER_HTML)
        log.info(f"explorer: {explorer_html}{f'; {built.notice}' if built.notice else ''} ({steps.last('explorer')})")
    with steps.step("montages"):
        montages = draw_montages(run, plan, thumbnails.kept())
        for name, image in montages.images.items():
            out.write_bytes(name, image)
    drawn = f"{len(montages.cluster_paths)} cluster montages{', outliers' if montages.outliers_path else ''}"
    log.info(f"montages: {drawn} ({steps.last('montages')})")
    run = dataclasses.replace(run, notes=run.notes + montages.notes)

    # The report comes last so it can show every step's time; metrics.json is written once, after it.
    with steps.step("report"):
        shown = report_data(
            run,
            clusters=clusters,
            montages=montages,
            timings=steps.so_far(),
            output=out.uri,
            explorer=bool(explorer_html),
            sections=follow_sections(run),
        )
        rendered = render_report(shown)
        out.write_text(schema.REPORT_HTML, rendered.html)
        out.write_text(schema.REPORT_MD, rendered.markdown)
    timings = steps.finish()
    out.write_json(schema.METRICS_JSON, {**metrics, "timings": dict(timings), "notes": list(run.notes)})
    log.info(f"report: {out.display(schema.REPORT_HTML)} ({steps.last('report')}); total {timings['total']:.1f} s")
    return AnalysisResult.from_run(run, out=out, explorer_html=explorer_html, timings=timings)


def _compute(config: AnalyzeConfig, steps: Steps) -> AnalysisRun:
    """Read the shards, fold exact duplicates, cluster the distinct images (or place the new ones, for an update),
    spread the labels over every row and describe the posts of every hierarchy level."""
    options = PostOptions.from_config(config)  # a bad --label-prompts fails before any work
    review = load_review(config.review) if config.review else None
    previous = _previous(config)
    input_uri = absolute(config.input)
    if config.update:
        input_uri = [*previous.inputs, input_uri]
        gone = [uri for uri in previous.inputs if not io.list_shards(uri)]
        if gone:
            raise InputError(
                f"--update {previous.uri}: the shards it analysed are gone from {', '.join(gone)} (metrics.json input);"
                " an update reads them again for the earlier images' embeddings"
            )
    with steps.step("read"):
        data = read_ok_rows(input_uri, keep_duplicates=config.keep_duplicates)
        flags = {"text": config.text_column, "date": config.date_column, "account": config.account_column}
        posts = read_posts(data.table, schema.detect_post_columns(data.table, data.passthrough, **flags))
    duplicates = data.duplicates
    log.info(
        f"read: {data.n_rows:,} ok rows of {data.n_total:,} ({data.n_total - data.n_rows:,} failed) from "
        f"{data.n_shards} shard{'s' if data.n_shards != 1 else ''}, {data.embeddings.shape[1]}-D embeddings, "
        f"model {data.model}; {duplicates.n_unique:,} distinct images, {duplicates.n_copies:,} exact reposts; "
        f"{'updating' if config.update else 'clustering'} {len(data.points):,} points"
        f"{' (--keep-duplicates)' if config.keep_duplicates else ''} "
        f"({steps.last('read')})"
    )

    ids = data.table[schema.ID].combine_chunks()
    follow_notes: tuple[str, ...] = ()
    if config.update:
        updated = update(previous, data, config, steps)
        clustering, outcome, history, follow_notes = updated.clustering, updated.outcome, updated.history, updated.notes
    else:
        clustering = cluster_points(data.embeddings, config, steps)
        outcome = assemble_outcome(clustering, duplicates, data.point_of_row, alternatives=config.alternatives)
        history = History.first(data.n_rows, input_uri)
        if previous is not None:
            outcome, history = keep_ids(outcome, history, previous, ids)
    if review is not None:
        outcome, history = apply_person(outcome, history, review, ids.cast(pa.string()).to_pylist())
    run = AnalysisRun(
        config=config,
        input_uri=input_uri,
        data=data,
        duplicates=duplicates,
        clustering=clustering,
        outcome=outcome,
        post=posts.columns,
        notes=(
            *input_notes(data, duplicates),
            *clustering.notes,
            *outcome.notes,
            *follow_notes,
            *_review_notes(history),
        ),
        history=history,
    )
    with steps.step("posts"):
        run = _describe_posts(run, posts, options)
    levels = ", ".join(f"{level.n_clusters:,} {level.name}" for level in outcome.hierarchy.levels)
    groups = run.posts.reposts.n_groups
    found = run.posts.coordination
    together = (
        f"{found.n_groups:,} group{'s' if found.n_groups != 1 else ''} of accounts posted together"
        if found is not None
        else "posted together: not analysed"
    )
    log.info(
        f"posts: names, keywords, timelines, accounts of {levels}; {groups:,} repost groups; {together} "
        f"({steps.last('posts')})"
    )
    return run


def _previous(config: AnalyzeConfig) -> PreviousAnalysis | None:
    if config.update:
        return read_previous(config.update, flag="--update")
    return read_previous(config.previous, flag="--previous") if config.previous else None


def _review_notes(history: History) -> tuple[str, ...]:
    if history.review is None:
        return ()
    missed = history.review["not_applied"]
    line = f"a person's review ({history.review['file']}): {len(history.review['applied'])} action(s) applied"
    return (line, *(f"review action {m['action']} ({m['kind']}) no longer applies: {m['reason']}" for m in missed))


def _describe_posts(run: AnalysisRun, posts: Posts, options: PostOptions) -> AnalysisRun:
    """Names, keywords, timelines and accounts of every hierarchy level, and repost groups, merged into the run."""
    found = analyse_posts(
        {level.name: level.labels for level in run.outcome.hierarchy.levels},
        chosen=CHOSEN_LEVEL,
        posts=posts,
        embeddings=run.data.embeddings,
        ids=run.ids,
        metadata=run.data.metadata,
        points=run.data.points,
        point_of_row=run.data.point_of_row,
        knn=run.clustering.knn,
        thumbnails=functools.partial(read_thumbnails, run.input_uri) if run.data.has_thumbnails else None,
        options=options,
    )
    return with_history(run.with_posts(found))


def _write_tables(out: OutputFolder, run: AnalysisRun) -> tuple[pa.Table, list[dict]]:
    """Write the assignments, cluster and sweep tables; return the first two for the steps that show them."""
    assignments, clusters = documents.assignments_table(run), documents.cluster_table(run)
    out.write_parquet(schema.ASSIGNMENTS, assignments)
    out.write_table_csv(schema.ASSIGNMENTS_CSV, assignments)
    out.write_rows_csv(schema.CLUSTERS_CSV, clusters, empty_columns=documents.CLUSTER_COLUMNS)
    out.write_table_csv(schema.REPOST_GROUPS_CSV, run.posts.repost_table)
    groups, pairs = run.posts.coordination_tables(run.ids)
    out.write_table_csv(schema.COORDINATION_CSV, groups)
    out.write_table_csv(schema.COORDINATED_PAIRS_CSV, pairs)
    out.write_rows_csv(schema.SWEEP_CSV, run.clustering.rows, empty_columns=("min_cluster_size", "min_samples"))
    out.write_json(schema.SWEEP_JSON, run.clustering.rows)
    out.write_rows_csv(schema.CLUSTER_CHANGES_CSV, run.history.changes, empty_columns=CHANGE_COLUMNS)
    knn = run.clustering.knn
    if knn is not None and not run.config.keep_duplicates:
        point_ids = [run.ids[row] for row in run.data.points]
        out.write_bytes(NEIGHBOURS, neighbours_bytes(point_ids, knn.indices, knn.distances))
    return assignments, clusters


def _write_plots(out: OutputFolder, run: AnalysisRun) -> None:
    outcome, clustering = run.outcome, run.clustering
    centroids = dict(enumerate(zip(*cluster_centroids(outcome), strict=True))) if outcome.n_clusters else None
    figure = plots.map_figure(outcome.coords, outcome.labels, title="Image map", centroids=centroids)
    out.write_bytes(schema.MAP_PNG, plots.figure_to_png(figure))
    chosen = clustering.selection.index if clustering.selection is not None else None
    sweep = plots.sweep_figure(clustering.rows, chosen, score=run.config.select_by)
    out.write_bytes(schema.SWEEP_PNG, plots.figure_to_png(sweep))
    names = dict(enumerate(run.cluster_columns[CHOSEN_LEVEL].get("name", ())))
    out.write_bytes(schema.OVER_TIME_PNG, plots.figure_to_png(over_time_figure(run.posts.over_time(), names=names)))


def _explorer_only(config: AnalyzeConfig) -> AnalysisResult:
    """Rebuild explorer.html in an existing output folder, leaving every other file as it is."""
    out = OutputFolder(config.output)
    if not out.exists(schema.ASSIGNMENTS):
        raise InputError(
            f"--output {out.uri} holds no {schema.ASSIGNMENTS}; run the analysis first (without --explorer-only)"
        )
    steps = Steps()
    with steps.step("explorer"):
        built = build_explorer(out.uri)
    log.info("explorer: %s%s (%s)", built.path, f"; {built.notice}" if built.notice else "", steps.last("explorer"))
    return AnalysisResult.from_metrics(out.read_json(schema.METRICS_JSON), out=out, timings=steps.finish())

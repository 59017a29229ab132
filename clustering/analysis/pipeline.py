"""The Analyze job: shards in, one output folder out (``docs/analysis-outputs.md``).

:func:`run_analysis` orchestrates; the work lives elsewhere: reading in :mod:`.read`, reduction in :mod:`.reduce`,
the HDBSCAN sweep in :mod:`.sweep`, scoring in :mod:`.metrics`, the explained choice in :mod:`.select`, figures and
montages in :mod:`.plots`, the report in :mod:`.report` and the interactive page in :mod:`.explorer`. Every step is
timed and logged in one line. Degenerate input (no ``ok`` row, a handful of images, all duplicates, everything noise,
no thumbnails) still produces every output, with the situation stated in the report, ``metrics.json`` and the log.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import io as stdio
import json
import logging
import math
import os
import posixpath
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs

from clustering import io, schema
from clustering.analysis import plots
from clustering.analysis.config import AnalyzeConfig
from clustering.analysis.read import Duplicates, InputError, ShardData, find_duplicates, read_ok_rows, read_thumbnails
from clustering.analysis.report import ClusterSummary, ReportData, render_report
from clustering.config import ConfigError, to_dict

__all__ = ["AnalysisResult", "run_analysis"]

log = logging.getLogger(__name__)

ASSIGNMENTS = "assignments.parquet"
ASSIGNMENTS_CSV = "assignments.csv"
CLUSTERS_CSV = "clusters.csv"
SWEEP_CSV = "sweep.csv"
SWEEP_JSON = "sweep.json"
METRICS_JSON = "metrics.json"
MAP_PNG = "map.png"
SWEEP_PNG = "sweep.png"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
EXPLORER_HTML = "explorer.html"
MONTAGES = "montages"
OUTLIERS_JPG = "outliers.jpg"
# Files and folders this job owns in an output folder; --overwrite removes exactly these, nothing else.
OWNED_FILES = (
    ASSIGNMENTS,
    ASSIGNMENTS_CSV,
    CLUSTERS_CSV,
    SWEEP_CSV,
    SWEEP_JSON,
    METRICS_JSON,
    MAP_PNG,
    SWEEP_PNG,
    REPORT_MD,
    REPORT_HTML,
    EXPLORER_HTML,
)
OWNED_DIRS = (MONTAGES, "explorer_files")

# Fewer distinct images than this cannot make a UMAP graph (reduce.py falls back to PCA there) nor a meaningful
# clustering; the run then maps them with PCA, labels them all noise and says so.
MIN_POINTS_TO_CLUSTER = 4
# The selection needs at least this many clusters for a setting to count as a clustering (select.py's default).
MIN_CLUSTERS = 2
EXEMPLARS_PER_CLUSTER = 8
EXAMPLE_TEXTS_PER_CLUSTER = 3
EXAMPLE_TEXT_CHARS = 200
OUTLIER_ROWS_IN_REPORT = 20
# Sweep columns the report's table shows (sweep.csv has them all).
REPORT_SWEEP_COLUMNS = ("min_cluster_size", "min_samples", "clusters", "noise_fraction", "dbcv", "silhouette_reduced",
                        "silhouette_cosine", "calinski_harabasz", "mean_persistence", "largest_cluster_share",
                        "sweep_seconds")  # fmt: skip
# Text passthrough columns tried first for example texts in the report; otherwise the longest string column.
TEXT_COLUMN_NAMES = (
    "text",
    "post_text",
    "caption",
    "full_text",
    "tweet_text",
    "body",
    "content",
    "message",
    "description",
    "title",
)


@dataclasses.dataclass(frozen=True)
class AnalysisResult:
    """What a run wrote and chose.

    Attributes
    ----------
    output : str
        The output folder (absolute for local paths).
    report_html : str
        Path or URI of ``report.html``.
    explorer_html : str or None
        Path or URI of ``explorer.html``, None when it was not built.
    n_rows, n_unique : int
        Analysed rows (``ok`` rows, duplicates included) and distinct images among them.
    n_clusters : int
        Clusters of the chosen setting.
    noise_fraction : float
        Share of rows labelled noise (1.0 when nothing could be clustered, nan when there are no rows).
    chosen : dict or None
        The chosen sweep row; None when nothing was swept.
    selection : dict or None
        ``rule``, ``reason`` and ``pinned`` of the choice.
    notes : tuple of str
        Situations worth a reader's attention (too few points, everything noise, no thumbnails, ...).
    timings : dict
        Seconds per step, ``total`` last.
    """

    output: str
    report_html: str
    explorer_html: str | None
    n_rows: int
    n_unique: int
    n_clusters: int
    noise_fraction: float
    chosen: dict | None
    selection: dict | None
    notes: tuple[str, ...]
    timings: dict

    def summary_lines(self) -> list[str]:
        """The lines a user reads at the end of a run: the situation, the choice and where the report is."""
        lines = [f"note: {note}" for note in self.notes]
        if self.chosen:
            lines.append(
                f"chosen: min_cluster_size={self.chosen['min_cluster_size']}, "
                f"min_samples={self.chosen['min_samples']} -> {self.n_clusters} clusters, "
                f"{_fraction(self.noise_fraction)} noise, {self.n_rows:,} rows ({self.n_unique:,} distinct images)"
            )
        else:
            lines.append(f"chosen: nothing to choose ({self.n_rows:,} rows, {self.n_clusters} clusters)")
        if self.explorer_html:
            lines.append(f"explorer: {self.explorer_html}")
        lines.append(f"report: {self.report_html}")
        return lines


# --------------------------------------------------------------------------------------------------------- helpers
def _fraction(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.1%}"


def _absolute(uri: str) -> str:
    """Local paths made absolute (so metrics.json and log lines work from any folder); URIs unchanged."""
    return uri if "://" in uri else os.path.abspath(os.path.expanduser(uri))


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

    def finish(self) -> dict[str, float]:
        self.timings["total"] = time.perf_counter() - self.started
        return {k: round(v, 3) for k, v in self.timings.items()}


def _plain(value):
    """JSON-safe Python values: numpy scalars and arrays unwrapped, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class _Output:
    """The output folder: local path or URI, written through one pyarrow filesystem."""

    def __init__(self, uri: str) -> None:
        self.uri = _absolute(uri)
        self.fs, self.root = io.resolve(self.uri)

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def display(self, *parts: str) -> str:
        """How a user reaches a file: an absolute local path, or the URI."""
        return posixpath.join(self.uri, *parts)

    def check(self, *, overwrite: bool) -> None:
        """Refuse a file, or a non-empty folder without ``overwrite``, before any work is done."""
        info = self.fs.get_file_info(self.root)
        if info.type == pafs.FileType.File:
            raise ConfigError(f"--output {self.uri} is a file; give a folder")
        non_empty = info.type == pafs.FileType.Directory and self.fs.get_file_info(pafs.FileSelector(self.root))
        if non_empty and not overwrite:
            raise ConfigError(
                f"--output {self.uri} already exists and is not empty; pass --overwrite to replace its analysis"
            )

    def prepare(self) -> None:
        """Create the folder and remove this job's own files from an earlier run (nothing else is touched)."""
        if self.fs.get_file_info(self.root).type == pafs.FileType.Directory:
            for name in OWNED_FILES:
                if io.exists(self.fs, self.path(name)):
                    self.fs.delete_file(self.path(name))
            for name in OWNED_DIRS:
                if io.exists(self.fs, self.path(name)):
                    self.fs.delete_dir(self.path(name))
        self.fs.create_dir(self.root, recursive=True)

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.fs.open_output_stream(self.path(name)) as out:
            out.write(data)

    def write_text(self, name: str, text: str) -> None:
        io.write_text(self.fs, self.path(name), text)

    def write_json(self, name: str, value) -> None:
        self.write_text(name, json.dumps(_plain(value), indent=2, allow_nan=False) + "\n")


# --------------------------------------------------------------------------------------------------- computation
@dataclasses.dataclass(frozen=True)
class _Clustering:
    """Everything computed on the distinct images (the points that were clustered)."""

    map_coords: np.ndarray  # (n_points, 2)
    results: list  # SettingResult per sweep row
    rows: list[dict]  # sweep rows
    selection: object | None  # select.Selection
    params: dict
    notes: tuple[str, ...]


def _grid(config: AnalyzeConfig, n_points: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    from clustering.analysis.sweep import parse_grid

    sizes = set(parse_grid(config.min_cluster_sizes, n_points))
    samples = set(config.min_samples)
    if config.pin_min_cluster_size is not None:  # a pinned setting must exist in the sweep to be chosen
        sizes.add(config.pin_min_cluster_size)
    if config.pin_min_samples is not None:
        samples.add(config.pin_min_samples)
    return tuple(sorted(sizes)), tuple(sorted(samples))


def _cluster(X: np.ndarray, config: AnalyzeConfig, steps: _Steps) -> _Clustering:
    """Reduce, sweep, score and select on the distinct images ``X`` (float32, unit rows)."""
    from clustering.analysis.metrics import score_setting
    from clustering.analysis.reduce import reduce
    from clustering.analysis.select import select
    from clustering.analysis.sweep import sweep

    n = len(X)
    notes: list[str] = []
    if n == 0:  # nothing to reduce (the situation is stated by the caller)
        return _Clustering(np.zeros((0, 2), np.float32), [], [], None, {}, ())
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
    detail = ", ".join(f"{k} {v:.1f} s" for k, v in reduction.timings.items())
    log.info(
        "reduce: %s points to %d-D for clustering and 2-D (%s) for the map: %s (%s)",
        f"{n:,}",
        config.cluster_dims,
        config.map_method,
        detail or "-",
        steps.last("reduce"),
    )
    params = {"reduction": dict(reduction.params)}
    if n < MIN_POINTS_TO_CLUSTER:
        notes.append(
            f"only {n} distinct image{'s' if n != 1 else ''} to analyse: too few to cluster "
            f"(at least {MIN_POINTS_TO_CLUSTER} are needed); every row is labelled noise"
        )
        return _Clustering(reduction.map_coords, [], [], None, params, tuple(notes))
    if reduction.params.get("fallback"):
        notes.append(f"reduction: {reduction.params['fallback']}")

    sizes, samples = _grid(config, n)
    if min(sizes) > n:
        notes.append(
            f"only {n:,} distinct images, fewer than the smallest min_cluster_size ({min(sizes)}): no cluster can "
            "form, so every row is noise; pass smaller --min-cluster-sizes"
        )
    with steps.step("sweep"):
        results = sweep(reduction.cluster_coords, sizes, samples, progress=config.progress)
    log.info(
        "sweep: %d settings (min_cluster_size %s, min_samples %s) (%s)",
        len(results),
        _span(sizes),
        _span(samples),
        steps.last("sweep"),
    )

    with steps.step("metrics"):
        rows = [
            score_setting(r, reduction.cluster_coords, X, sample_size=config.silhouette_sample_size, seed=config.seed)
            for r in results
        ]
    log.info("metrics: %d settings scored (%s)", len(rows), steps.last("metrics"))

    with steps.step("selection"):
        selection = select(
            rows,
            max_noise=config.max_noise,
            min_clusters=MIN_CLUSTERS,
            pin_min_cluster_size=config.pin_min_cluster_size,
            pin_min_samples=config.pin_min_samples,
        )
    chosen = rows[selection.index]
    log.info(
        "selection: min_cluster_size=%d, min_samples=%d%s: %s",
        chosen["min_cluster_size"],
        chosen["min_samples"],
        " (pinned)" if selection.pinned else "",
        selection.reason,
    )
    params |= {
        "sweep": {"min_cluster_sizes": list(sizes), "min_samples": list(samples)},
        "selection": {
            "max_noise": config.max_noise,
            "min_clusters": MIN_CLUSTERS,
            "pin_min_cluster_size": config.pin_min_cluster_size,
            "pin_min_samples": config.pin_min_samples,
        },
        "silhouette_sample_size": config.silhouette_sample_size,
    }
    return _Clustering(reduction.map_coords, results, rows, selection, params, tuple(notes))


def _span(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]}..{values[-1]} ({len(values)} values)"


def _relabel_by_size(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _text_column(table: pa.Table, passthrough: list[str]) -> str | None:
    strings = [
        c
        for c in passthrough
        if pa.types.is_string(table.schema.field(c).type) or pa.types.is_large_string(table.schema.field(c).type)
    ]
    for name in TEXT_COLUMN_NAMES:
        if name in strings:
            return name
    best, best_len = None, 0.0
    for name in strings:
        mean = pc.mean(pc.utf8_length(table[name])).as_py() or 0.0
        if mean > best_len:
            best, best_len = name, mean
    return best


def _clip_text(value) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= EXAMPLE_TEXT_CHARS else text[: EXAMPLE_TEXT_CHARS - 1] + "…"


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
    out = _Output(config.output)
    input_uri = _absolute(config.input)
    out.check(overwrite=config.overwrite)

    with steps.step("read"):
        data = read_ok_rows(input_uri)
    out.prepare()
    failed = data.n_total - data.n_rows
    log.info(
        "read: %s ok rows of %s (%s failed) from %d shard%s, %d-D embeddings, model %s (%s)",
        f"{data.n_rows:,}",
        f"{data.n_total:,}",
        f"{failed:,}",
        data.n_shards,
        "s" if data.n_shards != 1 else "",
        data.embeddings.shape[1],
        _model(data.metadata),
        steps.last("read"),
    )

    with steps.step("duplicates"):
        ids = data.table[schema.ID].to_pylist()
        has_hash = schema.SHA256 in data.table.column_names
        hashes = data.table[schema.SHA256].to_pylist() if has_hash else [None] * len(ids)
        duplicates = find_duplicates(hashes)
        if config.keep_duplicates:
            points = np.arange(data.n_rows, dtype=np.int64)  # every row is its own point
            point_of_row = points
        else:
            points = duplicates.representatives
            point_of_row = duplicates.inverse
    log.info(
        "duplicates: %s distinct images, %s exact reposts; clustering %s points%s (%s)",
        f"{duplicates.n_unique:,}",
        f"{duplicates.n_copies:,}",
        f"{len(points):,}",
        " (--keep-duplicates)" if config.keep_duplicates else "",
        steps.last("duplicates"),
    )

    notes: list[str] = []
    if data.n_total == 0:
        notes.append("the shards hold no rows at all")
    elif data.n_rows == 0:
        notes.append(
            f"none of the {data.n_total:,} rows has status ok ({_status_text(data.status_counts)}); nothing to cluster"
        )
    if data.n_rows and duplicates.n_unique == 1 and data.n_rows > 1:
        notes.append(f"all {data.n_rows:,} rows are copies of one image")
    model_note = _model_note(data.metadata)
    if model_note:
        notes.append(model_note)

    X = data.embeddings[points]
    clustering = _cluster(X, config, steps)
    notes.extend(clustering.notes)
    with steps.step("outputs"):
        outcome = _assemble(data, duplicates, point_of_row, clustering, config, notes)
        _write_tables(out, outcome, clustering, data, duplicates, config, input_uri)
    log.info(
        "outputs: %s, %s, %s, %s, %s, %s (%s)",
        ASSIGNMENTS,
        ASSIGNMENTS_CSV,
        CLUSTERS_CSV,
        SWEEP_CSV,
        SWEEP_JSON,
        METRICS_JSON,
        steps.last("outputs"),
    )

    with steps.step("plots"):
        _write_plots(out, outcome, clustering)
    log.info("plots: %s, %s (%s)", MAP_PNG, SWEEP_PNG, steps.last("plots"))

    with steps.step("montages"):
        montages = _write_montages(out, outcome, data, config, input_uri)
    log.info(
        "montages: %d cluster montages%s (%s)",
        len(montages.cluster_paths),
        ", outliers" if montages.outliers_path else "",
        steps.last("montages"),
    )
    notes.extend(montages.notes)

    explorer_path = None
    if config.explorer:
        with steps.step("explorer"):
            explorer_path = _build_explorer(out)
        log.info("explorer: %s (%s)", explorer_path, steps.last("explorer"))

    # The report comes last so it can show every step's time; metrics.json is rewritten with the final timings.
    with steps.step("report"):
        timings = dict(steps.timings)
        timings["total"] = time.perf_counter() - steps.started
        _write_report(
            out,
            outcome,
            clustering,
            data,
            duplicates,
            config,
            input_uri,
            montages,
            notes,
            timings,
            explorer_path is not None,
        )
    timings = steps.finish()
    _write_metrics(out, outcome, clustering, data, duplicates, config, input_uri, notes, timings)
    log.info("report: %s (%s); total %.1f s", out.display(REPORT_HTML), steps.last("report"), timings["total"])

    return AnalysisResult(
        output=out.uri,
        report_html=out.display(REPORT_HTML),
        explorer_html=explorer_path,
        n_rows=data.n_rows,
        n_unique=duplicates.n_unique,
        n_clusters=outcome.n_clusters,
        noise_fraction=outcome.noise_fraction,
        chosen=_plain(outcome.chosen_row),
        selection=_plain(outcome.selection_info),
        notes=tuple(notes),
        timings=timings,
    )


def _status_text(counts: dict) -> str:
    return ", ".join(f"{status}: {count:,}" for status, count in counts.items())


def _model(metadata: dict) -> str:
    return str(metadata.get("model") or metadata.get("model_id") or "unknown (no model id in the shard metadata)")


def _model_note(metadata: dict) -> str | None:
    if metadata.get("random_weights"):
        return (
            f"the shards were embedded by a random-weight test model ({_model(metadata)}): clusters say nothing "
            "about image content"
        )
    return None


# -------------------------------------------------------------------------------------------------- assembling
@dataclasses.dataclass(frozen=True)
class _Outcome:
    """Row-level results of the chosen setting (and the alternatives), in shard row order."""

    labels: np.ndarray  # (n_rows,) int32, relabelled by size
    probabilities: np.ndarray  # float32
    outlier_scores: np.ndarray  # float32
    coords: np.ndarray  # (n_rows, 2) float32
    persistence: np.ndarray  # (n_clusters,) in new label order
    alternatives: list[dict]  # metrics.json entries, chosen first
    alternative_labels: dict[str, np.ndarray]  # column -> (n_rows,) int32
    order: np.ndarray  # row order of assignments: cluster, then probability descending, noise last
    is_copy: np.ndarray
    group_size: np.ndarray  # (n_rows,) copies of this row's image among the rows, itself included
    chosen_row: dict | None
    selection_info: dict | None
    runner_up_rows: list[dict]
    n_clusters: int
    noise_fraction: float


def _setting_label(result) -> str:
    return f"min_cluster_size={result.min_cluster_size}, min_samples={result.min_samples}"


def _assemble(
    data: ShardData,
    duplicates: Duplicates,
    point_of_row: np.ndarray,
    clustering: _Clustering,
    config: AnalyzeConfig,
    notes: list[str],
) -> _Outcome:
    n = data.n_rows
    coords = clustering.map_coords[point_of_row].astype(np.float32) if n else np.zeros((0, 2), np.float32)
    selection = clustering.selection
    alternatives: list[dict] = []
    alternative_labels: dict[str, np.ndarray] = {}
    if selection is None:
        labels = np.full(n, -1, dtype=np.int32)
        probabilities = np.zeros(n, dtype=np.float32)
        outlier_scores = np.zeros(n, dtype=np.float32)
        persistence = np.zeros(0)
        chosen_row, selection_info, runner_up_rows = None, None, []
    else:
        chosen = clustering.results[selection.index]
        labels, order = _relabel_by_size(np.asarray(chosen.labels)[point_of_row])
        probabilities = np.asarray(chosen.probabilities, dtype=np.float32)[point_of_row]
        outlier_scores = np.asarray(chosen.outlier_scores, dtype=np.float32)[point_of_row]
        persistence = np.asarray(chosen.persistence, dtype=float)[order] if len(order) else np.zeros(0)
        chosen_row = clustering.rows[selection.index]
        selection_info = {
            "index": selection.index,
            "rule": selection.rule,
            "reason": selection.reason,
            "pinned": bool(selection.pinned),
        }
        runner_up_rows = [clustering.rows[i] for i in selection.runner_ups]
        alternatives.append(_alternative("cluster", chosen, labels, "chosen"))
        picked = [i for i in selection.runner_ups if i != selection.index][: config.alternatives]
        for rank, index in enumerate(picked, start=1):
            result = clustering.results[index]
            column = f"cluster_mcs{result.min_cluster_size}_ms{result.min_samples}"
            alt_labels, _ = _relabel_by_size(np.asarray(result.labels)[point_of_row])
            alternative_labels[column] = alt_labels
            alternatives.append(_alternative(column, result, alt_labels, f"runner-up {rank}"))

    n_clusters = int(labels.max()) + 1 if n and labels.max() >= 0 else 0
    noise_fraction = float((labels < 0).mean()) if n else math.nan
    if selection is not None and n:
        if n_clusters == 0:
            notes.append(
                "the chosen setting labels every row as noise: no group is dense enough for these settings; "
                "try smaller --min-cluster-sizes or --min-samples"
            )
        elif n_clusters == 1:
            notes.append("only one cluster was found: the images may form one homogeneous group")
    # Row order of assignments.parquet: clusters in label order, each by probability descending, noise last (the
    # notebook's CSV order, with the noise block moved to the end as its comment intended).
    rows = np.arange(n)
    order = np.lexsort((rows, -probabilities.astype(float), labels, labels < 0)) if n else rows
    group_size = np.bincount(duplicates.inverse, minlength=duplicates.n_unique)[duplicates.inverse] if n else rows
    return _Outcome(
        labels=labels,
        probabilities=probabilities,
        outlier_scores=outlier_scores,
        coords=coords,
        persistence=persistence,
        alternatives=alternatives,
        alternative_labels=alternative_labels,
        order=order,
        is_copy=duplicates.is_copy,
        group_size=group_size,
        chosen_row=chosen_row,
        selection_info=selection_info,
        runner_up_rows=runner_up_rows,
        n_clusters=n_clusters,
        noise_fraction=noise_fraction,
    )


def _alternative(column: str, result, labels: np.ndarray, role: str) -> dict:
    n_clusters = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    return {
        "column": column,
        "min_cluster_size": int(result.min_cluster_size),
        "min_samples": int(result.min_samples),
        "clusters": n_clusters,
        "noise_fraction": float((labels < 0).mean()) if labels.size else None,
        "label": f"{role}: {_setting_label(result)}",
    }


def _cluster_table(outcome: _Outcome, ids: np.ndarray) -> list[dict]:
    """One dict per cluster: the clusters.csv rows."""
    k = outcome.n_clusters
    if k == 0:
        return []
    labels = outcome.labels
    member = labels >= 0
    lab = labels[member]
    size = np.bincount(lab, minlength=k)
    copies = np.bincount(lab, weights=outcome.is_copy[member].astype(float), minlength=k).astype(int)
    prob = np.bincount(lab, weights=outcome.probabilities[member].astype(float), minlength=k) / np.maximum(size, 1)
    x = np.bincount(lab, weights=outcome.coords[member, 0].astype(float), minlength=k) / np.maximum(size, 1)
    y = np.bincount(lab, weights=outcome.coords[member, 1].astype(float), minlength=k) / np.maximum(size, 1)
    exemplars: list[list[str]] = [[] for _ in range(k)]
    for row in outcome.order:  # clusters by probability descending
        c = labels[row]
        if c < 0:
            break  # noise comes last
        if not outcome.is_copy[row] and len(exemplars[c]) < EXEMPLARS_PER_CLUSTER:
            exemplars[c].append(str(ids[row]))
    return [
        {
            "cluster": c,
            "size": int(size[c]),
            "mean_probability": round(float(prob[c]), 6),
            "persistence": round(float(outcome.persistence[c]), 6) if c < len(outcome.persistence) else None,
            "exemplar_ids": ";".join(exemplars[c]),
            "duplicates": int(copies[c]),
            "x": round(float(x[c]), 5),
            "y": round(float(y[c]), 5),
        }
        for c in range(k)
    ]


def _assignments(outcome: _Outcome, data: ShardData, duplicates: Duplicates) -> pa.Table:
    table = data.table
    n = table.num_rows
    ids = table[schema.ID].combine_chunks() if n else pa.array([], pa.string())
    rep_ids = pc.take(ids, pa.array(duplicates.representatives[duplicates.inverse])) if n else ids
    duplicate_of = pc.if_else(pa.array(outcome.is_copy, pa.bool_()), rep_ids, pa.scalar(None, pa.string()))

    def column(name: str, type_: pa.DataType) -> pa.Array:
        if name in table.column_names:
            return table[name].combine_chunks().cast(type_)
        return pa.nulls(n, type_)

    columns = {
        schema.ID: ids.cast(pa.string()),
        schema.URL: column(schema.URL, pa.string()),
        "x": pa.array(outcome.coords[:, 0], pa.float32()),
        "y": pa.array(outcome.coords[:, 1], pa.float32()),
        "cluster": pa.array(outcome.labels, pa.int32()),
        "probability": pa.array(outcome.probabilities, pa.float32()),
        "outlier_score": pa.array(outcome.outlier_scores, pa.float32()),
        schema.SHA256: column(schema.SHA256, pa.string()),
        "duplicate_of": duplicate_of,
    }
    for name, labels in outcome.alternative_labels.items():
        columns[name] = pa.array(labels, pa.int32())
    for name in data.passthrough:
        if name not in columns:
            columns[name] = table[name].combine_chunks()
    assignments = pa.table(columns)
    return assignments.take(pa.array(outcome.order, pa.int64()))


def _csv_bytes(table: pa.Table) -> bytes:
    """CSV for spreadsheets: nested and binary columns dropped, text kept."""
    keep = [
        f.name
        for f in table.schema
        if not (pa.types.is_nested(f.type) or pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type))
    ]
    buffer = pa.BufferOutputStream()
    pacsv.write_csv(table.select(keep), buffer)
    return buffer.getvalue().to_pybytes()


def _rows_csv(rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in _plain(row).items()})
    return buffer.getvalue()


_CLUSTER_COLUMNS = ("cluster", "size", "mean_probability", "persistence", "exemplar_ids", "duplicates", "x", "y")


def _write_tables(
    out: _Output,
    outcome: _Outcome,
    clustering: _Clustering,
    data: ShardData,
    duplicates: Duplicates,
    config: AnalyzeConfig,
    input_uri: str,
) -> None:
    assignments = _assignments(outcome, data, duplicates)
    io.write_parquet_atomic(assignments, out.fs, out.path(ASSIGNMENTS))
    out.write_bytes(ASSIGNMENTS_CSV, _csv_bytes(assignments))
    ids = np.asarray(data.table[schema.ID].to_pylist(), dtype=object)
    clusters = _cluster_table(outcome, ids)
    out.write_text(CLUSTERS_CSV, _rows_csv(clusters) if clusters else ",".join(_CLUSTER_COLUMNS) + "\n")
    out.write_text(SWEEP_CSV, _rows_csv(clustering.rows) if clustering.rows else "min_cluster_size,min_samples\n")
    out.write_json(SWEEP_JSON, clustering.rows)
    # metrics.json now (so the explorer can read it), rewritten at the end with the final timings.
    _write_metrics(out, outcome, clustering, data, duplicates, config, input_uri, [], {})


def _metric_docs() -> dict:
    from clustering.analysis.metrics import METRIC_DOCS

    return dict(METRIC_DOCS)


def _write_metrics(
    out: _Output,
    outcome: _Outcome,
    clustering: _Clustering,
    data: ShardData,
    duplicates: Duplicates,
    config: AnalyzeConfig,
    input_uri: str,
    notes: list[str],
    timings: dict,
) -> None:
    metrics = {
        "input": input_uri,
        "model": _model(data.metadata),
        "model_random_weights": bool(data.metadata.get("random_weights", False)),
        "n_total_rows": data.n_total,
        "status_counts": data.status_counts,
        "n_rows": data.n_rows,
        "n_unique": duplicates.n_unique,
        "n_duplicates": duplicates.n_copies,
        "keep_duplicates": config.keep_duplicates,
        "n_clusters": outcome.n_clusters,
        "noise_fraction": outcome.noise_fraction,
        "params": {**clustering.params, "config": to_dict(config)},
        "chosen": outcome.chosen_row,
        "selection": outcome.selection_info,
        "runner_ups": outcome.runner_up_rows,
        "alternatives": outcome.alternatives,
        "timings": timings,
        "metric_docs": _metric_docs(),
        "notes": list(notes),
        "shard_metadata": data.metadata,
    }
    out.write_json(METRICS_JSON, metrics)


def _write_plots(out: _Output, outcome: _Outcome, clustering: _Clustering) -> None:
    centroids = None
    if outcome.n_clusters:
        member = outcome.labels >= 0
        lab = outcome.labels[member]
        size = np.maximum(np.bincount(lab, minlength=outcome.n_clusters), 1)
        cx = np.bincount(lab, weights=outcome.coords[member, 0].astype(float), minlength=outcome.n_clusters) / size
        cy = np.bincount(lab, weights=outcome.coords[member, 1].astype(float), minlength=outcome.n_clusters) / size
        centroids = {c: (float(cx[c]), float(cy[c])) for c in range(outcome.n_clusters)}
    figure = plots.map_figure(outcome.coords, outcome.labels, title="Image map", centroids=centroids)
    out.write_bytes(MAP_PNG, plots.figure_to_png(figure))
    chosen = clustering.selection.index if clustering.selection is not None else None
    out.write_bytes(SWEEP_PNG, plots.figure_to_png(plots.sweep_figure(clustering.rows, chosen)))


@dataclasses.dataclass(frozen=True)
class _Montages:
    cluster_paths: dict[int, str]  # cluster -> path relative to the output folder
    outliers_path: str | None
    notes: tuple[str, ...]
    montage_note: str | None


def _write_montages(
    out: _Output, outcome: _Outcome, data: ShardData, config: AnalyzeConfig, input_uri: str
) -> _Montages:
    if data.n_rows == 0:
        return _Montages({}, None, (), None)
    if not data.has_thumbnails:
        note = "the shards have no thumbnail column: no montages were drawn"
        return _Montages({}, None, (note,), note)
    ids = data.table[schema.ID].to_pylist()
    shown = min(outcome.n_clusters, config.max_montages) if config.montage_images else 0
    picks: dict[int, list[int]] = {c: [] for c in range(shown)}
    for row in outcome.order:
        c = outcome.labels[row]
        if c < 0:
            break
        if c < shown and not outcome.is_copy[row] and len(picks[c]) < config.montage_images:
            picks[c].append(int(row))
    originals = np.flatnonzero(~outcome.is_copy)
    outlier_rows: list[int] = []
    if outcome.alternatives and config.montage_images:  # GLOSH scores exist only when a sweep ran
        scores = outcome.outlier_scores[originals]
        outlier_rows = [int(r) for r in originals[np.argsort(-scores, kind="stable")][: config.montage_images]]
    wanted = {ids[r] for rows in picks.values() for r in rows} | {ids[r] for r in outlier_rows}
    thumbnails = read_thumbnails(input_uri, wanted)

    def caption(row: int, text: str) -> str:
        extra = f" x{outcome.group_size[row]}" if outcome.group_size[row] > 1 else ""
        return text + extra

    if picks or outlier_rows:
        out.fs.create_dir(out.path(MONTAGES), recursive=True)
    paths: dict[int, str] = {}
    for c, rows in picks.items():
        name = posixpath.join(MONTAGES, f"cluster_{c:03d}.jpg")
        blobs = [thumbnails.get(ids[r]) for r in rows]
        captions = [caption(r, f"p={outcome.probabilities[r]:.2f}") for r in rows]
        out.write_bytes(name, plots.montage(blobs, captions=captions))
        paths[c] = name
    outliers_path = None
    if outlier_rows:
        outliers_path = posixpath.join(MONTAGES, OUTLIERS_JPG)
        blobs = [thumbnails.get(ids[r]) for r in outlier_rows]
        captions = [caption(r, f"glosh={outcome.outlier_scores[r]:.2f}") for r in outlier_rows]
        out.write_bytes(outliers_path, plots.montage(blobs, captions=captions))
    notes: list[str] = []
    montage_note = None
    if outcome.n_clusters > shown and config.montage_images:
        montage_note = (
            f"montages are drawn for the {shown} largest of {outcome.n_clusters} clusters "
            "(--max-montages); every cluster is in the table above and in the explorer"
        )
    missing = len(wanted - set(thumbnails))
    if missing:
        notes.append(f"{missing:,} of the {len(wanted):,} images chosen for montages have no thumbnail in the shards")
    return _Montages(paths, outliers_path, tuple(notes), montage_note)


def _write_report(
    out: _Output,
    outcome: _Outcome,
    clustering: _Clustering,
    data: ShardData,
    duplicates: Duplicates,
    config: AnalyzeConfig,
    input_uri: str,
    montages: _Montages,
    notes: list[str],
    timings: dict,
    has_explorer: bool,
) -> None:
    ids = data.table[schema.ID].to_pylist()
    text_column = _text_column(data.table, data.passthrough) if data.n_rows else None
    texts = data.table[text_column].to_pylist() if text_column else None
    clusters_csv = _cluster_table(outcome, np.asarray(ids, dtype=object))
    summaries = []
    examples: dict[int, list[str]] = {}
    if texts is not None:
        for row in outcome.order:
            c = int(outcome.labels[row])
            if c < 0:
                break
            bucket = examples.setdefault(c, [])
            wanted = c in montages.cluster_paths and len(bucket) < EXAMPLE_TEXTS_PER_CLUSTER
            if wanted and not outcome.is_copy[row] and texts[row]:
                bucket.append(_clip_text(texts[row]))
    for row in clusters_csv:
        c = row["cluster"]
        summaries.append(
            ClusterSummary(
                cluster=c,
                size=row["size"],
                unique=row["size"] - row["duplicates"],
                duplicates=row["duplicates"],
                mean_probability=row["mean_probability"],
                persistence=row["persistence"] if row["persistence"] is not None else math.nan,
                montage=montages.cluster_paths.get(c),
                examples=tuple(examples.get(c, ())),
            )
        )
    outliers = []
    if outcome.alternatives and data.n_rows:
        originals = np.flatnonzero(~outcome.is_copy)
        top = originals[np.argsort(-outcome.outlier_scores[originals], kind="stable")][:OUTLIER_ROWS_IN_REPORT]
        outliers = [
            {
                "id": ids[r],
                "outlier_score": float(outcome.outlier_scores[r]),
                "cluster": int(outcome.labels[r]),
                "text": _clip_text(texts[r]) if texts is not None and texts[r] is not None else "",
            }
            for r in top
        ]
    present = {k for row in clustering.rows for k in row}
    sweep_columns = [c for c in REPORT_SWEEP_COLUMNS if c in present]
    params = {**_flatten(clustering.params), **{f"config.{k}": v for k, v in to_dict(config).items()}}
    selection = clustering.selection
    report = ReportData(
        title="Image clusters",
        created=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        input=input_uri,
        output=out.uri,
        model=_model(data.metadata),
        model_note=_model_note(data.metadata),
        n_total=data.n_total,
        status_counts=data.status_counts,
        n_rows=data.n_rows,
        n_unique=duplicates.n_unique,
        n_copies=duplicates.n_copies,
        keep_duplicates=config.keep_duplicates,
        n_clusters=outcome.n_clusters,
        noise_fraction=outcome.noise_fraction,
        notes=tuple(n for n in notes if n != _model_note(data.metadata)),
        params={k: _param_text(v) for k, v in params.items()},
        timings=timings,
        sweep_columns=tuple(sweep_columns),
        sweep_rows=tuple(_plain(r) for r in clustering.rows),
        chosen_index=selection.index if selection is not None else None,
        runner_up_indices=tuple(selection.runner_ups) if selection is not None else (),
        selection=outcome.selection_info,
        alternatives=tuple(outcome.alternatives),
        metric_docs=_metric_docs(),
        clusters=tuple(summaries),
        montage_note=montages.montage_note,
        outliers_montage=montages.outliers_path,
        outliers=tuple(outliers),
        text_column=text_column,
        map_png=MAP_PNG,
        sweep_png=SWEEP_PNG if clustering.rows else None,
        explorer=EXPLORER_HTML if has_explorer else None,
    )
    rendered = render_report(report)
    out.write_text(REPORT_HTML, rendered.html)
    out.write_text(REPORT_MD, rendered.markdown)


def _flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _param_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "–" if value is None else str(value)


# ---------------------------------------------------------------------------------------------------- explorer
def _build_explorer(out: _Output) -> str:
    """Build explorer.html (and explorer_files/ when needed) from the files written so far; returns its path."""
    from clustering.analysis import explorer  # lazily: the page's templates and JSON encoding load only when used

    result = explorer.build_explorer(out.uri)
    if result.notice:
        log.info("explorer: %s", result.notice)
    return out.display(EXPLORER_HTML)


def _explorer_only(config: AnalyzeConfig) -> AnalysisResult:
    """Rebuild explorer.html in an existing output folder, leaving every other file as it is."""
    out = _Output(config.output)
    if not io.exists(out.fs, out.path(ASSIGNMENTS)):
        raise InputError(f"--output {out.uri} holds no {ASSIGNMENTS}; run the analysis first (without --explorer-only)")
    steps = _Steps()
    with steps.step("explorer"):
        _build_explorer(out)
    metrics = {}
    if io.exists(out.fs, out.path(METRICS_JSON)):
        metrics = json.loads(io.read_text(out.fs, out.path(METRICS_JSON)))
    log.info("explorer: %s (%s)", out.display(EXPLORER_HTML), steps.last("explorer"))
    noise = metrics.get("noise_fraction")
    return AnalysisResult(
        output=out.uri,
        report_html=out.display(REPORT_HTML),
        explorer_html=out.display(EXPLORER_HTML),
        n_rows=int(metrics.get("n_rows") or 0),
        n_unique=int(metrics.get("n_unique") or 0),
        n_clusters=int(metrics.get("n_clusters") or 0),
        noise_fraction=float(noise) if noise is not None else math.nan,
        chosen=metrics.get("chosen"),
        selection=metrics.get("selection"),
        notes=(),
        timings=steps.finish(),
    )

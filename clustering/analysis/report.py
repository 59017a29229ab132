"""The report (``report.html`` and ``report.md``): what it shows, computed from a run, and its rendering.

:func:`plan_montages` and :func:`draw_montages` pick and draw the thumbnail grids; :func:`report_data` gathers
everything the report shows into :class:`ReportData`; :func:`render_report` renders it with the Jinja2 templates in
``templates/``. The HTML environment autoescapes everything, so text taken from the data (post text, ids, URLs) can
never inject markup; the Markdown template escapes the same text with the ``md`` filter. Images are referenced by
relative paths, so the output folder can be moved or synced as a whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import jinja2

from clustering import schema
from clustering.analysis import plots, tables
from clustering.analysis.metrics import METRIC_DOCS
from clustering.analysis.outputs import OUTLIERS_MONTAGE, montage_name
from clustering.analysis.result import AnalysisRun
from clustering.config import to_dict

__all__ = [
    "ClusterSummary",
    "MontagePlan",
    "Montages",
    "RenderedReport",
    "ReportData",
    "ReportSection",
    "draw_montages",
    "plan_montages",
    "render_report",
    "report_data",
]

TEMPLATES = Path(__file__).parent / "templates"
EXAMPLE_TEXTS_PER_CLUSTER = 3
EXAMPLE_TEXT_CHARS = 200
OUTLIER_ROWS_IN_REPORT = 20
# Sweep columns the report's table shows (sweep.csv has them all).
REPORT_SWEEP_COLUMNS = ("min_cluster_size", "min_samples", "clusters", "noise_fraction", "dbcv", "silhouette_reduced",
                        "silhouette_cosine", "calinski_harabasz", "mean_persistence", "largest_cluster_share",
                        "sweep_seconds")  # fmt: skip


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterSummary:
    """One cluster of the chosen setting as the report shows it.

    ``size`` counts every row (reposts included), ``unique`` the distinct images, ``duplicates`` the reposts;
    ``montage`` is a path relative to the report or None when no montage was drawn; ``examples`` are short texts of
    the highest-probability members (from the first text passthrough column).
    """

    cluster: int
    size: int
    unique: int
    duplicates: int
    mean_probability: float
    persistence: float
    montage: str | None = None
    examples: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ReportSection:
    """An optional section a feature adds to the report (a timeline, top accounts, the hierarchy tree, ...).

    Every part is optional: ``paragraphs`` of text, a ``figure`` (path relative to the report) and a table of
    ``columns`` x ``rows``. Text and cells are data: escaped like everything else.
    """

    title: str
    paragraphs: tuple[str, ...] = ()
    figure: str | None = None
    columns: tuple[str, ...] = ()
    rows: tuple[tuple, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReportData:
    """Everything the report shows; built by the pipeline, rendered by :func:`render_report`."""

    title: str
    created: str
    input: str
    output: str
    model: str
    model_note: str | None
    n_total: int
    status_counts: dict
    n_rows: int
    n_unique: int
    n_copies: int
    keep_duplicates: bool
    n_clusters: int
    noise_fraction: float
    notes: tuple[str, ...]
    params: dict
    timings: dict
    sweep_columns: tuple[str, ...]
    sweep_rows: tuple[dict, ...]
    chosen_index: int | None
    runner_up_indices: tuple[int, ...]
    selection: dict | None
    alternatives: tuple[dict, ...]
    metric_docs: dict
    clusters: tuple[ClusterSummary, ...]
    montage_note: str | None
    outliers_montage: str | None
    outliers: tuple[dict, ...]
    text_column: str | None
    map_png: str | None
    sweep_png: str | None
    explorer: str | None
    sections: tuple[ReportSection, ...] = ()


@dataclasses.dataclass(frozen=True)
class RenderedReport:
    html: str
    markdown: str


# ------------------------------------------------------------------------------------------------------- montages
@dataclasses.dataclass(frozen=True)
class MontagePlan:
    """Which rows the montages show: the most typical distinct images of the largest clusters, and the outliers."""

    clusters: dict[int, list[int]]
    outliers: list[int]

    def ids(self, run: AnalysisRun) -> set[str]:
        """The ids whose thumbnails the montages need."""
        rows = [r for picked in self.clusters.values() for r in picked] + self.outliers
        return {run.ids[r] for r in rows}


@dataclasses.dataclass(frozen=True)
class Montages:
    """Drawn montages: JPEG bytes by path inside the output folder, and what the report says about them."""

    images: dict[str, bytes] = dataclasses.field(default_factory=dict)
    cluster_paths: dict[int, str] = dataclasses.field(default_factory=dict)
    outliers_path: str | None = None
    note: str | None = None  # shown under the cluster table
    notes: tuple[str, ...] = ()  # for the run's notes


def plan_montages(run: AnalysisRun) -> MontagePlan:
    """``--montage-images`` rows for each of the ``--max-montages`` largest clusters, and as many outliers."""
    config = run.config
    if not run.data.n_rows or not run.data.has_thumbnails or not config.montage_images:
        return MontagePlan(clusters={}, outliers=[])
    shown = min(run.outcome.n_clusters, config.max_montages)
    picks = tables.ranked_rows(run.outcome, limit=config.montage_images, clusters=range(shown))
    return MontagePlan(clusters=picks, outliers=tables.top_outliers(run.outcome, config.montage_images))


def draw_montages(run: AnalysisRun, plan: MontagePlan, thumbnails: Mapping[str, bytes]) -> Montages:
    """Draw the planned montages from ``thumbnails`` (id -> JPEG); missing ones become labelled grey tiles."""
    if not run.data.n_rows:
        return Montages()
    if not run.data.has_thumbnails:
        note = "the shards have no thumbnail column: no montages were drawn"
        return Montages(note=note, notes=(note,))
    outcome, ids = run.outcome, run.ids

    def draw(rows: Sequence[int], caption: str) -> bytes:
        blobs = [thumbnails.get(ids[r]) for r in rows]
        captions = [
            caption.format(p=outcome.probabilities[r], glosh=outcome.outlier_scores[r])
            + (f" x{outcome.group_size[r]}" if outcome.group_size[r] > 1 else "")
            for r in rows
        ]
        return plots.montage(blobs, captions=captions)

    images = {montage_name(c): draw(rows, "p={p:.2f}") for c, rows in plan.clusters.items()}
    cluster_paths = {c: montage_name(c) for c in plan.clusters}
    if plan.outliers:
        images[OUTLIERS_MONTAGE] = draw(plan.outliers, "glosh={glosh:.2f}")
    note = None
    if outcome.n_clusters > len(plan.clusters) and run.config.montage_images:
        note = (
            f"montages are drawn for the {len(plan.clusters)} largest of {outcome.n_clusters} clusters "
            "(--max-montages); every cluster is in the table above and in the explorer"
        )
    wanted = plan.ids(run)
    missing = len(wanted - set(thumbnails))
    notes = (f"{missing:,} of the {len(wanted):,} images chosen for montages have no thumbnail in the shards",)
    return Montages(
        images=images,
        cluster_paths=cluster_paths,
        outliers_path=OUTLIERS_MONTAGE if plan.outliers else None,
        note=note,
        notes=notes if missing else (),
    )


# ---------------------------------------------------------------------------------------------------- report data
def report_data(
    run: AnalysisRun,
    *,
    clusters: Sequence[dict],
    montages: Montages,
    timings: Mapping[str, float],
    output: str,
    explorer: bool,
    sections: Sequence[ReportSection] = (),
) -> ReportData:
    """Everything the report shows about ``run``.

    Parameters
    ----------
    run : AnalysisRun
    clusters : sequence of dict
        The ``clusters.csv`` rows (:func:`tables.cluster_table`).
    montages : Montages
        What :func:`draw_montages` drew.
    timings : mapping
        Seconds per step so far.
    output : str
        The output folder as a user reaches it.
    explorer : bool
        Whether ``explorer.html`` was built (the report links it).
    sections : sequence of ReportSection, default ()
        Extra sections, shown after the outliers.
    """
    data, outcome, clustering = run.data, run.outcome, run.clustering
    selection = clustering.selection
    present = {k for row in clustering.rows for k in row}
    params = {**_flatten(clustering.params), **{f"config.{k}": v for k, v in to_dict(run.config).items()}}
    return ReportData(
        title="Image clusters",
        created=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        input=run.input_uri,
        output=output,
        model=data.model,
        model_note=data.model_note,
        n_total=data.n_total,
        status_counts=data.status_counts,
        n_rows=data.n_rows,
        n_unique=run.duplicates.n_unique,
        n_copies=run.duplicates.n_copies,
        keep_duplicates=run.config.keep_duplicates,
        n_clusters=outcome.n_clusters,
        noise_fraction=outcome.noise_fraction,
        notes=tuple(n for n in run.notes if n != data.model_note),
        params={k: _param_text(v) for k, v in params.items()},
        timings=dict(timings),
        sweep_columns=tuple(c for c in REPORT_SWEEP_COLUMNS if c in present),
        sweep_rows=tuple(schema.plain(r) for r in clustering.rows),
        chosen_index=selection.index if selection is not None else None,
        runner_up_indices=tuple(selection.runner_ups) if selection is not None else (),
        selection=outcome.selection_info,
        alternatives=tuple(outcome.alternatives),
        metric_docs=dict(METRIC_DOCS),
        clusters=_summaries(run, clusters, montages),
        montage_note=montages.note,
        outliers_montage=montages.outliers_path,
        outliers=_outliers(run),
        text_column=run.post.text,
        map_png=schema.MAP_PNG,
        sweep_png=schema.SWEEP_PNG if clustering.rows else None,
        explorer=schema.EXPLORER_HTML if explorer else None,
        sections=tuple(sections),
    )


def _summaries(run: AnalysisRun, clusters: Sequence[dict], montages: Montages) -> tuple[ClusterSummary, ...]:
    texts = run.texts
    examples: dict[int, list[int]] = {}
    if texts is not None:
        examples = tables.ranked_rows(
            run.outcome,
            limit=EXAMPLE_TEXTS_PER_CLUSTER,
            clusters=montages.cluster_paths,
            keep=lambda row: bool(texts[row]),
        )
    return tuple(
        ClusterSummary(
            cluster=row["cluster"],
            size=row["size"],
            unique=row["size"] - row["duplicates"],
            duplicates=row["duplicates"],
            mean_probability=row["mean_probability"],
            persistence=row["persistence"] if row["persistence"] is not None else math.nan,
            montage=montages.cluster_paths.get(row["cluster"]),
            examples=tuple(_clip_text(texts[r]) for r in examples.get(row["cluster"], ())),
        )
        for row in clusters
    )


def _outliers(run: AnalysisRun) -> tuple[dict, ...]:
    texts, outcome = run.texts, run.outcome
    return tuple(
        {
            "id": run.ids[r],
            "outlier_score": float(outcome.outlier_scores[r]),
            "cluster": int(outcome.labels[r]),
            "text": _clip_text(texts[r]) if texts is not None and texts[r] is not None else "",
        }
        for r in tables.top_outliers(outcome, OUTLIER_ROWS_IN_REPORT)
    )


def _clip_text(value) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= EXAMPLE_TEXT_CHARS else text[: EXAMPLE_TEXT_CHARS - 1] + "…"


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


# ------------------------------------------------------------------------------------------------------ rendering
def _number(value, digits: int = 3) -> str:
    """Numbers for tables: integers with thousands separators, floats to ``digits`` significant places."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


# Characters that start Markdown markup mid-line: code, emphasis, links/images, table cells, strikethrough. Intraword
# underscores (http_error) are left alone: CommonMark never reads them as emphasis.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~])")


def _markdown_escape(value) -> str:
    """Data-derived text made inert in Markdown: one line, HTML special characters as entities, markup escaped."""
    text = " ".join(str(value).split())
    text = html.escape(text, quote=False)
    return _MD_SPECIAL.sub(r"\\\1", text)


def _percent(value) -> str:
    try:
        return "–" if value is None or math.isnan(float(value)) else f"{float(value):.1%}"
    except (TypeError, ValueError):
        return str(value)


def _seconds(value) -> str:
    value = float(value)
    return f"{value:.2f} s" if value < 60 else f"{int(value // 60)} min {value % 60:.0f} s"


def _environment(*, autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(number=_number, percent=_percent, seconds=_seconds, md=_markdown_escape)
    return env


def render_report(data: ReportData) -> RenderedReport:
    """Render ``data`` to a self-contained HTML page (images referenced relatively) and a Markdown twin."""
    context = {"r": data}
    page = _environment(autoescape=True).get_template("report.html.j2").render(**context)
    markdown = _environment(autoescape=False).get_template("report.md.j2").render(**context)
    return RenderedReport(html=page, markdown=markdown)

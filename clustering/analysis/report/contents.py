"""What the report shows, computed from a run: :func:`report_data` gathers it into :class:`ReportData`, plain values
a template only has to lay out (the clusters with their names, keywords, montages and post facts, the choice and its
reasons, the hierarchy tree, the outliers, the parameters)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence

from clustering import schema
from clustering.analysis.cluster.hierarchy import CHOSEN_LEVEL
from clustering.analysis.cluster.scores import METRIC_DOCS
from clustering.analysis.cluster.setting import setting_name
from clustering.analysis.outcome import ranked_rows, top_outliers
from clustering.analysis.report.montages import Montages
from clustering.analysis.report.sections import (
    ReportSection,
    TreeNode,
    hierarchy_tree,
    post_sections,
    posts_line,
)
from clustering.analysis.run_data import AnalysisRun
from clustering.config import to_dict

EXAMPLE_TEXTS_PER_CLUSTER = 3
EXAMPLE_TEXT_CHARS = 200
OUTLIER_ROWS_IN_REPORT = 20
KEYWORDS_IN_REPORT = 6
# A cluster whose top account made at least this share of its posts, over at least HIGH_SHARE_MIN_POSTS posts, is
# flagged: one account pushing a cluster is the coordinated-posting signal researchers look for. A reading aid, not
# a measured threshold: every share is in clusters.csv.
HIGH_SHARE = 0.5
HIGH_SHARE_MIN_POSTS = 10
# Sweep columns the report's table shows (sweep.csv has them all).
REPORT_SWEEP_COLUMNS = ("min_cluster_size", "min_samples", "selection", "clusters", "noise_fraction",
                        "modularity_filled", "modularity", "dbcv", "silhouette_reduced", "silhouette_cosine",
                        "calinski_harabasz", "mean_persistence", "largest_cluster_share", "sweep_seconds")  # fmt: skip


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClusterSummary:
    """One cluster of the chosen setting as the report shows it.

    ``size`` counts every row (reposts included), ``unique`` the distinct images, ``duplicates`` the reposts;
    ``montage`` is a path relative to the report or None when no montage was drawn; ``examples`` are short texts of
    the highest-probability members (from the text column). The post analysis adds the ``name`` (with its
    ``name_source``, "zero-shot" or "keywords", and whether a zero-shot name is ``uncertain``), the first
    ``keywords``, when the cluster circulated (ISO 8601 UTC instants, the peak period) and who posted it
    (``accounts``, the ``top_account`` and its ``top_account_share``; ``high_share`` flags a coordinated-posting
    signal, see :data:`HIGH_SHARE`); ``mixed_keywords`` are hashtags of its posts that never meet (mixed_topics.py).
    """

    cluster: int
    size: int
    unique: int
    duplicates: int
    mean_probability: float
    persistence: float
    montage: str | None = None
    examples: tuple[str, ...] = ()
    name: str | None = None
    name_source: str | None = None
    uncertain: bool = False
    keywords: tuple[str, ...] = ()
    first_seen: str | None = None
    last_seen: str | None = None
    peak_period: str | None = None
    accounts: int | None = None
    top_account: str | None = None
    top_account_share: float | None = None
    high_share: bool = False
    mixed_keywords: tuple[str, ...] = ()


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
    granularity: tuple[dict, ...]
    selection_resolution: str
    metric_docs: dict
    clusters: tuple[ClusterSummary, ...]
    montage_note: str | None
    outliers_montage: str | None
    outliers: tuple[dict, ...]
    text_column: str | None
    map_png: str | None
    sweep_png: str | None
    explorer: str | None
    posts_line: str | None = None
    names_note: str | None = None
    high_share: float = HIGH_SHARE
    tree: tuple[TreeNode, ...] = ()
    tree_levels: tuple[tuple[str, str], ...] = ()  # (level, its assignments column), coarse to fine
    themes: tuple[dict, ...] = ()  # the overview: theme, name, size, clusters, example (a montage), largest first
    themes_note: str | None = None  # how the themes were made
    sections: tuple[ReportSection, ...] = ()


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
        The ``clusters.csv`` rows of every level (:func:`documents.cluster_table`).
    montages : Montages
        What :func:`draw_montages` drew.
    timings : mapping
        Seconds per step so far.
    output : str
        The output folder as a user reaches it.
    explorer : bool
        Whether ``explorer.html`` was built (the report links it).
    sections : sequence of ReportSection, default ()
        Extra sections, shown after the outliers and the post analysis's own sections.
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
        granularity=tuple(
            rung | {"setting": setting_name(rung["min_cluster_size"], rung["min_samples"], rung["selection"])}
            for rung in outcome.granularity
        ),
        selection_resolution=f"{run.config.resolution:g}",
        metric_docs=dict(METRIC_DOCS),
        clusters=_summaries(run, [row for row in clusters if row["level"] == CHOSEN_LEVEL], montages),
        montage_note=montages.note,
        outliers_montage=montages.outliers_path,
        outliers=_outliers(run),
        text_column=run.post.text,
        map_png=schema.MAP_PNG,
        sweep_png=schema.SWEEP_PNG if clustering.rows else None,
        explorer=schema.EXPLORER_HTML if explorer else None,
        posts_line=posts_line(run.posts.posts_summary()) if run.posts is not None else None,
        names_note=run.posts.clusters.names.note if run.posts is not None else None,
        tree=hierarchy_tree(clusters, anchors={c: f"#cluster-{c}" for c in montages.cluster_paths}),
        tree_levels=tuple((lv.name, schema.LEVEL_COLUMNS[lv.name]) for lv in outcome.hierarchy.levels),
        themes=_themes(clusters, montages),
        themes_note=_themes_note(clustering),
        sections=(*post_sections(run, reposts_montage=montages.reposts_path), *sections),
    )


def _themes(clusters: Sequence[dict], montages: Montages) -> tuple[dict, ...]:
    """The theme level's rows, each with its clusters (largest first) and the montage of its largest one."""
    themes = [row for row in clusters if row["level"] == "themes"]
    inside: dict[int, list[dict]] = {}
    for row in clusters:
        if row["level"] == CHOSEN_LEVEL:
            inside.setdefault(row["parent"], []).append(row)
    found = []
    for theme in themes:
        members = sorted(inside.get(theme["cluster"], []), key=lambda row: (-row["size"], row["cluster"]))
        drawn = [montages.cluster_paths[m["cluster"]] for m in members if m["cluster"] in montages.cluster_paths]
        found.append({"theme": theme["cluster"], "name": theme.get("name"), "size": theme["size"],
                      "keywords": _shown_keywords(theme),
                      "clusters": [m["cluster"] for m in members], "example": drawn[0] if drawn else None})  # fmt: skip
    return tuple(found)


def _themes_note(clustering) -> str | None:
    overview = clustering.overview
    if overview is not None:
        return (
            f"The {overview.n_themes} themes join clusters whose images are alike in the original embeddings "
            f"(complete linkage of the cluster centroids, cut where the next join would be farthest: cosine "
            f"{overview.cut:.3f} + {overview.jump:.3f}); a theme is a union of whole clusters."
        )
    if "themes" in clustering.levels:
        return (
            "A theme groups the clusters that merge at a larger min_cluster_size (a cluster that joins none is its "
            "own theme)."
        )
    return None


def _summaries(run: AnalysisRun, clusters: Sequence[dict], montages: Montages) -> tuple[ClusterSummary, ...]:
    texts = run.texts
    examples: dict[int, list[int]] = {}
    if texts is not None:
        examples = ranked_rows(
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
            **_post_facts(row),
        )
        for row in clusters
    )


def _shown_keywords(row: Mapping) -> tuple[str, ...]:
    """The first keywords of a ``clusters.csv`` row (``;``-separated there), as many as the report shows."""
    return tuple(row["keywords"].split(";")[:KEYWORDS_IN_REPORT]) if row.get("keywords") else ()


def _source_words(row: Mapping) -> str | None:
    """Where a cluster's name comes from, as the report says it; a cluster new in this batch is marked."""
    source = "named by a person" if row.get("name_source") == "review" else row.get("name_source")
    return ", ".join(part for part in (source, "new" if row.get("new") else None) if part) or None


def _post_facts(row: Mapping) -> dict:
    """What the post analysis says of one cluster (its ``clusters.csv`` row), as :class:`ClusterSummary` fields."""
    share = row.get("top_account_share")
    return {
        "name": row.get("name"),
        "name_source": _source_words(row),
        "uncertain": bool(row.get("name_uncertain")),
        "keywords": _shown_keywords(row),
        "first_seen": row.get("first_seen"),
        "last_seen": row.get("last_seen"),
        "peak_period": row.get("peak_period"),
        "accounts": row.get("accounts"),
        "top_account": row.get("top_account"),
        "top_account_share": share,
        "high_share": share is not None and share >= HIGH_SHARE and row["size"] >= HIGH_SHARE_MIN_POSTS,
        "mixed_keywords": tuple(row["mixed_keywords"].split(" | ")) if row.get("mixed_keywords") else (),
    }


def _outliers(run: AnalysisRun) -> tuple[dict, ...]:
    texts, outcome = run.texts, run.outcome
    return tuple(
        {
            "id": run.ids[r],
            "outlier_score": float(outcome.outlier_scores[r]),
            "cluster": int(outcome.labels[r]),
            "text": _clip_text(texts[r]) if texts is not None and texts[r] is not None else "",
        }
        for r in top_outliers(outcome, OUTLIER_ROWS_IN_REPORT)
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

"""What an analysis run computed, held in memory and handed from step to step.

:class:`Clustering` is the sweep on the distinct images, :class:`Outcome` the chosen setting spread back over every
analysed row, :class:`AnalysisRun` everything a writer, the report or the explorer needs, and :class:`AnalysisResult`
what :func:`~clustering.analysis.run_analysis` returns to its caller. The dataclasses hold data only; the functions that
build tables from them live in :mod:`.tables`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from clustering import schema
from clustering.analysis.cluster.hierarchy import Hierarchy
from clustering.analysis.cluster.setting import setting_name
from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.output_folder import OutputFolder
from clustering.analysis.shards import Duplicates, ShardData

if TYPE_CHECKING:  # the post analysis loads its models' libraries; the run only carries its result
    from clustering.analysis.posts.describe import PostAnalysis

__all__ = ["AnalysisResult", "AnalysisRun", "Clustering", "Outcome"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Clustering:
    """Everything computed on the distinct images (the points that were clustered).

    Attributes
    ----------
    map_coords : numpy.ndarray
        (n_points, 2) float32 coordinates of the 2-D map.
    results : dict of int to sweep.SettingResult
        Per-point results of the settings later steps read, by sweep-row index: the chosen one, the runner-ups kept
        as alternatives, the ladder's settings and the hierarchy levels (the other settings' arrays are dropped);
        empty when nothing could be swept.
    rows : list of dict
        The scored sweep rows (``sweep.csv``), one per setting.
    selection : select.Selection or None
        The explained choice; None when nothing was swept.
    levels : dict of str to int
        Sweep-row index of each hierarchy level, coarse to fine (``hierarchy.levels_from_sweep``); empty when nothing
        was swept.
    ladder : tuple of granularity.Rung
        The settings the rule would choose at other resolutions, coarse to fine (``granularity.resolution_ladder``);
        empty when nothing was swept.
    params : dict
        Reduction, sweep and selection parameters as recorded in ``metrics.json``.
    knn : knn.KnnGraph or None
        The reduction's cosine kNN graph over the points (repost candidates reuse it); None when none was built.
    notes : tuple of str
        Situations worth a reader's attention (too few points, a PCA fallback, ...).
    refinement : original_space.Refinement or None
        The original-space tests' decisions on the chosen setting; None when they did not run.
    overview : themes.Overview or None
        The chosen clusters joined into the theme level (8 to 30 themes); None with 8 clusters or fewer, where the
        theme level is the sweep's coarser setting (``levels["themes"]``).
    """

    map_coords: np.ndarray
    results: dict = dataclasses.field(default_factory=dict)
    rows: list[dict] = dataclasses.field(default_factory=list)
    selection: object | None = None
    levels: dict[str, int] = dataclasses.field(default_factory=dict)
    ladder: tuple = ()
    params: dict = dataclasses.field(default_factory=dict)
    knn: object | None = None
    notes: tuple[str, ...] = ()
    refinement: object | None = None
    overview: object | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
    """Row-level results of the chosen setting (and the alternatives), in shard row order.

    Attributes
    ----------
    labels : numpy.ndarray
        (n_rows,) int32 cluster per row, renumbered from the largest cluster down; -1 is noise.
    probabilities, outlier_scores : numpy.ndarray
        (n_rows,) float32 membership probability and GLOSH outlier score (zeros when nothing was swept).
    coords : numpy.ndarray
        (n_rows, 2) float32 map coordinates (copies share their image's point).
    persistence : numpy.ndarray
        (n_clusters,) persistence of each cluster, in the new label order.
    alternatives : list of dict
        ``metrics.json`` entries of the label columns, the chosen setting first.
    alternative_labels : dict
        Column name -> (n_rows,) int32 labels of a runner-up setting.
    order : numpy.ndarray
        Row order of ``assignments.parquet``: clusters in label order, each by probability descending, noise last.
    is_copy : numpy.ndarray
        (n_rows,) bool, True for exact reposts of an earlier row.
    group_size : numpy.ndarray
        (n_rows,) copies of this row's image among the rows, itself included.
    hierarchy : hierarchy.Hierarchy
        Every level over the rows, coarse to fine (themes, clusters, subclusters where the sweep holds them), each
        numbered from its largest cluster down; the "clusters" level is ``labels``, unchanged.
    chosen_row, selection_info : dict or None
        The chosen sweep row, and the ``rule``, ``reason``, ``pinned`` and ``index`` of the choice.
    runner_up_rows : list of dict
        The runner-up sweep rows.
    granularity : list of dict
        The resolution ladder (``metrics.json`` ``granularity``): per rung the resolutions it wins over, its setting,
        clusters, noise and label column, coarse to fine.
    n_clusters : int
    noise_fraction : float
        Share of rows labelled noise; nan when there are no rows.
    notes : tuple of str
        What the chosen setting found that a reader should know (everything noise, one cluster).
    """

    labels: np.ndarray
    probabilities: np.ndarray
    outlier_scores: np.ndarray
    coords: np.ndarray
    persistence: np.ndarray
    alternatives: list[dict]
    alternative_labels: dict[str, np.ndarray]
    order: np.ndarray
    is_copy: np.ndarray
    group_size: np.ndarray
    hierarchy: Hierarchy
    chosen_row: dict | None
    selection_info: dict | None
    runner_up_rows: list[dict]
    granularity: list[dict]
    n_clusters: int
    noise_fraction: float
    notes: tuple[str, ...] = ()

    @property
    def swept(self) -> bool:
        """Whether a setting was chosen, so probabilities and GLOSH outlier scores exist."""
        return self.chosen_row is not None


@dataclasses.dataclass(frozen=True, kw_only=True)
class AnalysisRun:
    """One run in memory: the options, the input, what was computed, and the columns later features add.

    Attributes
    ----------
    config : AnalyzeConfig
    input_uri : str or list of str
        The shards, absolute for local paths (an update reads the earlier analysis's shards, then the new).
    data : read.ShardData
        The ``ok`` rows, in shard order; every per-row array below follows this order.
    duplicates : read.Duplicates
    clustering : Clustering
    outcome : Outcome
    post : schema.PostColumns
        Which passthrough columns hold the post text, date and account (one detector for report and explorer).
    notes : tuple of str
        Every situation stated so far, in the order found.
    posts : post_analysis.PostAnalysis or None
        Names, keywords, timelines and accounts per level, and repost groups; None until analysed.
    cluster_columns : mapping of str to mapping of str to sequence
        Extra ``clusters.csv`` columns per hierarchy level name: one value per cluster of that level, in label order
        (names, keywords, time spans, ...).
    row_columns : mapping of str to pyarrow.Array
        Extra ``assignments`` columns, one value per row in shard order (repost groups, post times, ...).
    """

    config: AnalyzeConfig
    input_uri: str | list[str]
    data: ShardData
    duplicates: Duplicates
    clustering: Clustering
    outcome: Outcome
    post: schema.PostColumns
    notes: tuple[str, ...] = ()
    posts: PostAnalysis | None = None
    cluster_columns: Mapping[str, Mapping[str, Sequence]] = dataclasses.field(default_factory=dict)
    row_columns: Mapping[str, pa.Array] = dataclasses.field(default_factory=dict)
    history: object | None = None  # follow.history.History: batches, label sources, new and reviewed clusters

    @functools.cached_property
    def ids(self) -> list[str]:
        """Row ids in shard order."""
        return self.data.table[schema.ID].to_pylist()

    @functools.cached_property
    def texts(self) -> list | None:
        """Post texts in shard order, or None when no passthrough column holds text."""
        return self.data.table[self.post.text].to_pylist() if self.post.text else None

    def with_posts(self, found: PostAnalysis) -> AnalysisRun:
        """This run with its post analysis: the per-level ``clusters.csv`` columns, the ``repost_group`` and
        ``post_time`` row columns, and the analysis's notes."""
        levels = self.outcome.hierarchy.levels
        return dataclasses.replace(
            self,
            posts=found,
            cluster_columns={level.name: found.cluster_columns(level.name, level.n_clusters) for level in levels},
            row_columns=found.row_columns(),
            notes=(*self.notes, *found.notes),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
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

    @classmethod
    def from_run(
        cls, run: AnalysisRun, *, out: OutputFolder, explorer_html: str | None, timings: dict
    ) -> AnalysisResult:
        """What ``run`` wrote into ``out`` and chose."""
        outcome = run.outcome
        return cls(
            output=out.uri,
            report_html=out.display(schema.REPORT_HTML),
            explorer_html=explorer_html,
            n_rows=run.data.n_rows,
            n_unique=run.duplicates.n_unique,
            n_clusters=outcome.n_clusters,
            noise_fraction=outcome.noise_fraction,
            chosen=schema.plain(outcome.chosen_row),
            selection=schema.plain(outcome.selection_info),
            notes=run.notes,
            timings=timings,
        )

    @classmethod
    def from_metrics(cls, metrics: dict, *, out: OutputFolder, timings: dict) -> AnalysisResult:
        """What an earlier run of the output folder ``out`` chose, as its ``metrics.json`` records it."""
        noise = metrics.get("noise_fraction")
        return cls(
            output=out.uri,
            report_html=out.display(schema.REPORT_HTML),
            explorer_html=out.display(schema.EXPLORER_HTML),
            n_rows=int(metrics.get("n_rows") or 0),
            n_unique=int(metrics.get("n_unique") or 0),
            n_clusters=int(metrics.get("n_clusters") or 0),
            noise_fraction=float(noise) if noise is not None else math.nan,
            chosen=metrics.get("chosen"),
            selection=metrics.get("selection"),
            notes=(),
            timings=timings,
        )

    def summary_lines(self) -> list[str]:
        """The lines a user reads at the end of a run: the situation, the choice and where the report is."""
        lines = [f"note: {note}" for note in self.notes]
        if self.chosen:
            setting = setting_name(*(self.chosen.get(k) for k in ("min_cluster_size", "min_samples", "selection")))
            lines.append(
                f"chosen: {setting} -> {self.n_clusters} clusters, "
                f"{_fraction(self.noise_fraction)} noise, {self.n_rows:,} rows ({self.n_unique:,} distinct images)"
            )
        else:
            lines.append(f"chosen: nothing to choose ({self.n_rows:,} rows, {self.n_clusters} clusters)")
        if self.explorer_html:
            lines.append(f"explorer: {self.explorer_html}")
        lines.append(f"report: {self.report_html}")
        return lines


def _fraction(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.1%}"

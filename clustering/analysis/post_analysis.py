"""The post analysis of one clustering in one call: keywords, names, timelines, accounts and repost groups.

Pure compute over what the job already holds in memory (labels, embeddings, the distinct images and the kNN graph of
the reduction); thumbnails are fetched through a function the caller passes, for the repost candidates only. The
result hands the job its extra ``clusters.csv`` columns (label order), its extra ``assignments`` column (row order),
the ``repost_groups.csv`` table and the data of the "clusters over time" figure. See docs/post-analysis.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from clustering.analysis.accounts import AccountStats, cluster_accounts
from clustering.analysis.keywords import TOP_KEYWORDS, Keywords, cluster_keywords
from clustering.analysis.names import BUILTIN_LABELS, NAME_MARGIN, Names, label_vocabulary, name_clusters
from clustering.analysis.posts import Posts
from clustering.analysis.reposts import (
    MIN_HASH_SIMILARITY,
    MIN_SIMILARITY,
    RepostGroups,
    find_repost_groups,
    repost_group_table,
)
from clustering.analysis.timeline import OverTime, Timelines, cluster_timelines, largest_over_time

__all__ = ["REPOST_GROUP", "PostAnalysis", "PostOptions", "analyse_posts"]

REPOST_GROUP = "repost_group"  # the assignments column
# Thumbnails by row id, e.g. ``functools.partial(clustering.analysis.read.read_thumbnails, shards_uri)``.
ThumbnailReader = Callable[[Sequence[str]], Mapping[str, bytes]]


@dataclasses.dataclass(frozen=True)
class PostOptions:
    """Options of the post analysis (see :class:`~clustering.analysis.config.AnalyzeConfig` for their flags)."""

    keywords: int = TOP_KEYWORDS
    vocabulary: tuple[str, ...] = BUILTIN_LABELS
    name_margin: float = NAME_MARGIN
    period: str = "auto"
    repost_similarity: float = MIN_SIMILARITY
    repost_hash_similarity: float = MIN_HASH_SIMILARITY
    seed: int | None = 42

    @classmethod
    def from_config(cls, config) -> PostOptions:
        """The options of an ``AnalyzeConfig``; reads ``--label-prompts`` (``ConfigError`` when unusable)."""
        return cls(
            keywords=config.keywords,
            vocabulary=label_vocabulary(config.label_prompts, replace=config.replace_label_prompts),
            name_margin=config.name_margin,
            period=config.period,
            repost_similarity=config.repost_similarity,
            repost_hash_similarity=config.repost_hash_similarity,
            seed=config.seed,
        )


@dataclasses.dataclass(frozen=True)
class PostAnalysis:
    """Everything the post analysis found for one clustering.

    Attributes
    ----------
    posts : Posts
    keywords, names, timelines, accounts
        Per-cluster results (clusters: every non-negative label present).
    reposts : RepostGroups
        Per-row repost groups.
    repost_table : pyarrow.Table
        ``repost_groups.csv``: one row per group.
    notes : tuple of str
        What was missing or how names were made, one line each, for the report and the log.
    """

    posts: Posts
    keywords: Keywords
    names: Names
    timelines: Timelines
    accounts: AccountStats
    reposts: RepostGroups
    repost_table: pa.Table
    notes: tuple[str, ...]

    def cluster_table(self) -> pa.Table:
        """One row per cluster: ``cluster`` then name, keyword, time and account columns (docs/post-analysis.md)."""
        table = self.names.table()
        for part in (self.keywords.table().drop_columns(["texts"]), self.timelines.table(), self.accounts.table()):
            table = table.join(part, "cluster")
        return table.sort_by("cluster")

    def cluster_columns(self, n_clusters: int) -> dict[str, list]:
        """The extra ``clusters.csv`` columns for clusters ``0 .. n_clusters - 1``, in label order (None where a
        label has no rows)."""
        table = self.cluster_table()
        position = {c: i for i, c in enumerate(table.column("cluster").to_pylist())}
        columns = {}
        for name in table.column_names[1:]:
            values = table.column(name).to_pylist()
            columns[name] = [values[position[c]] if c in position else None for c in range(n_clusters)]
        return columns

    def row_columns(self) -> dict[str, pa.Array]:
        """The extra ``assignments`` column, in row order: ``repost_group`` (int64, -1 when none)."""
        return {REPOST_GROUP: pa.array(self.reposts.group, pa.int64())}

    def over_time(self, *, top: int = 15) -> OverTime:
        """Data of the "clusters over time" figure (:func:`clustering.analysis.timeline_plot.over_time_figure`)."""
        return largest_over_time(self.timelines, top=top)


def analyse_posts(
    labels,
    *,
    posts: Posts,
    embeddings: np.ndarray,
    ids: Sequence[str],
    metadata: dict,
    points: np.ndarray | None = None,
    point_of_row: np.ndarray | None = None,
    knn=None,
    thumbnails: ThumbnailReader | None = None,
    options: PostOptions = PostOptions(),  # frozen: one shared default is safe
) -> PostAnalysis:
    """Run the post analysis for per-row ``labels``.

    Parameters
    ----------
    labels : array-like of int
        Per-row cluster labels, -1 for noise (any clustering or hierarchy level), in the order of ``posts``.
    posts : Posts
        :func:`clustering.analysis.posts.read_posts` of the same rows.
    embeddings : numpy.ndarray
        ``(n, d)`` L2-normalised embeddings of the rows.
    ids : sequence of str
        Row ids (repost tables name posts by id; thumbnails are read by id).
    metadata : dict
        Shard metadata (model id, ``random_weights``) for zero-shot names.
    points, point_of_row : numpy.ndarray, optional
        The distinct images the reduction ran on (row indices) and each row's point
        (``clustering.analysis.tables.clustered_points``). Default: every row is its own image.
    knn : clustering.analysis.reduce.KnnGraph, optional
        The reduction's graph over ``points`` (``Reduction.knn``); computed here when None.
    thumbnails : callable, optional
        ``reader(ids) -> {id: JPEG bytes}``; without it repost candidates are not confirmed by perceptual hashes.
    options : PostOptions

    Returns
    -------
    PostAnalysis
    """
    labels = np.asarray(labels, dtype=np.int64)
    points = np.arange(len(labels)) if points is None else np.asarray(points, dtype=np.int64)
    point_of_row = np.arange(len(labels)) if point_of_row is None else np.asarray(point_of_row, dtype=np.int64)
    dates = posts.dates.values if posts.dates is not None else None
    keywords = cluster_keywords(labels, posts.texts, top_n=options.keywords)
    names = name_clusters(
        embeddings,
        labels,
        metadata=metadata,
        keywords=keywords,
        vocabulary=options.vocabulary,
        margin=options.name_margin,
    )
    point_ids = np.asarray(ids, dtype=object)[points]
    reposts = find_repost_groups(
        np.asarray(embeddings)[points],
        inverse=point_of_row,
        knn=knn,
        thumbnails=_point_thumbnails(thumbnails, point_ids) if thumbnails is not None else None,
        min_similarity=options.repost_similarity,
        min_hash_similarity=options.repost_hash_similarity,
        seed=options.seed,
    )
    notes = [*posts.notes(), *([names.note] if names.note else []), _repost_note(reposts, thumbnails is not None)]
    return PostAnalysis(
        posts=posts,
        keywords=keywords,
        names=names,
        timelines=cluster_timelines(labels, dates, period=options.period),
        accounts=cluster_accounts(labels, posts.accounts),
        reposts=reposts,
        repost_table=repost_group_table(reposts, ids, dates=dates, accounts=posts.accounts, labels=labels),
        notes=tuple(notes),
    )


def _point_thumbnails(reader: ThumbnailReader, point_ids: np.ndarray):
    def load(indices: np.ndarray) -> list[bytes | None]:
        wanted = [str(i) for i in point_ids[indices]]
        found = reader(wanted)
        return [found.get(i) for i in wanted]

    return load


def _repost_note(reposts: RepostGroups, hashed: bool) -> str:
    checked = (
        f"{reposts.rejected_pairs:,} rejected by the perceptual hash, {reposts.unconfirmed_pairs:,} without thumbnails"
        if hashed
        else "not confirmed by perceptual hashes (no thumbnails)"
    )
    return (
        f"repost groups: {reposts.n_groups:,} images or near-duplicates posted more than once "
        f"({reposts.candidate_pairs:,} candidate pairs, {checked})"
    )

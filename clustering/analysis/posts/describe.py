"""The post analysis of a run in one call: keywords, names, timelines and accounts per level, repost groups with their
lineage, and accounts that posted the same images together (coordinated image sharing).

Pure compute over what the job already holds in memory (per-row labels of every hierarchy level, embeddings, the
distinct images and the kNN graph of the reduction); thumbnails are fetched through a function the caller passes, for
the repost candidates only. Work shared by the levels is done once: the posts are tokenised once, the text tower is
loaded once, repost groups do not depend on the clustering. The result hands the job its extra ``clusters.csv``
columns per level (label order), its extra ``assignments`` columns (row order), the ``repost_groups.csv`` table, the
data of the "clusters over time" figure and the ``metrics.json`` summaries. See docs/post-analysis.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from clustering import schema
from clustering.analysis.defaults import MIN_HASH_SIMILARITY, MIN_SIMILARITY, NAME_MARGIN, TOP_KEYWORDS
from clustering.analysis.posts.accounts import AccountActivity, AccountStats, cluster_accounts, most_active_accounts
from clustering.analysis.posts.columns import Posts, cluster_index
from clustering.analysis.posts.concentration import ClusterCoordination, cluster_coordination
from clustering.analysis.posts.coordination import Coordination, CoordinationOptions, find_coordination
from clustering.analysis.posts.keywords import Keywords, cluster_keywords, post_terms
from clustering.analysis.posts.lineage import Lineage, repost_lineage
from clustering.analysis.posts.mixed_topics import MixedTopics, mixed_topics
from clustering.analysis.posts.names import (
    BUILTIN_LABELS,
    EncodedVocabulary,
    Names,
    encode_vocabulary,
    label_vocabulary,
    name_clusters,
)
from clustering.analysis.posts.reposts import RepostGroups, find_repost_groups, repost_group_table
from clustering.analysis.posts.timeline import OverTime, Timelines, cluster_timelines, largest_over_time

__all__ = ["LevelPosts", "PostAnalysis", "PostOptions", "analyse_posts"]

# Thumbnails by row id, e.g. ``functools.partial(clustering.analysis.shards.read_thumbnails, shards_uri)``.
ThumbnailReader = Callable[[Sequence[str]], Mapping[str, bytes]]


@dataclasses.dataclass(frozen=True)
class PostOptions:
    """Options of the post analysis (see :class:`~clustering.analysis.options.AnalyzeConfig` for their flags)."""

    keywords: int = TOP_KEYWORDS
    vocabulary: tuple[str, ...] = BUILTIN_LABELS
    name_margin: float = NAME_MARGIN
    period: str = "auto"
    repost_similarity: float = MIN_SIMILARITY
    repost_hash_similarity: float = MIN_HASH_SIMILARITY
    seed: int | None = 42
    coordination: CoordinationOptions = dataclasses.field(default_factory=CoordinationOptions)

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
            coordination=CoordinationOptions(
                window=float(config.coordination_window),
                min_repetition=config.min_repetition,
                null_rounds=config.coordination_rounds,
                max_followers=config.coordination_burst_cap,
                seed=config.seed,  # the run's seed
            ),
        )


@dataclasses.dataclass(frozen=True)
class LevelPosts:
    """What the posts say about the clusters of one labelling (a hierarchy level).

    Attributes
    ----------
    keywords, names, timelines, accounts
        Per-cluster results (clusters: every non-negative label present).
    mixed : MixedTopics
        Per cluster, the top hashtags that avoid each other ("possibly mixed": advisory).
    """

    keywords: Keywords
    names: Names
    timelines: Timelines
    accounts: AccountStats
    mixed: MixedTopics

    def table(self) -> pa.Table:
        """One row per cluster: ``cluster`` then name, keyword, time and account columns (docs/post-analysis.md)."""
        table = self.names.table()
        parts = (self.keywords.table().drop_columns(["texts"]), self.mixed.table(), self.timelines.table(),
                 self.accounts.table())  # fmt: skip
        for part in parts:
            table = table.join(part, "cluster")
        return table.sort_by("cluster")

    def columns(self, n_clusters: int) -> dict[str, list]:
        """The extra ``clusters.csv`` columns for clusters ``0 .. n_clusters - 1``, in label order (None where a
        label has no rows)."""
        return _by_label(self.table(), n_clusters)


@dataclasses.dataclass(frozen=True)
class PostAnalysis:
    """Everything the post analysis found for a run.

    Attributes
    ----------
    posts : Posts
    levels : dict of str to LevelPosts
        Per labelling, by level name (e.g. "themes", "clusters", "subclusters").
    chosen : str
        The level of the chosen clustering (repost groups and the over-time figure use it).
    reposts : RepostGroups
        Per-row repost groups.
    repost_table : pyarrow.Table
        ``repost_groups.csv``: one row per group.
    period : str or None
        The timeline period ("day" or "week"); None without any dated post.
    notes : tuple of str
        What was missing or how names were made, one line each, for the report and the log.
    active_accounts : AccountActivity or None
        The accounts with the most posts over the chosen level; None without an account column.
    lineage : Lineage or None
        Per repost group, its first post, order, delays, spread and variants (``repost_groups.csv`` columns).
    coordination : Coordination or None
        Groups of accounts that posted the same repost groups within the window, repeatedly (``coordination.csv``,
        ``coordinated_pairs.csv``); None without an account column or dated posts (a note says which).
    concentration : ClusterCoordination or None
        Per cluster of the chosen level: posts by coordinated accounts and the Herfindahl index of its accounts;
        None where ``coordination`` is.
    """

    posts: Posts
    levels: dict[str, LevelPosts]
    chosen: str
    reposts: RepostGroups
    repost_table: pa.Table
    period: str | None
    notes: tuple[str, ...]
    active_accounts: AccountActivity | None = None
    lineage: Lineage | None = None
    coordination: Coordination | None = None
    concentration: ClusterCoordination | None = None

    @property
    def clusters(self) -> LevelPosts:
        """The chosen level."""
        return self.levels[self.chosen]

    def cluster_columns(self, level: str, n_clusters: int) -> dict[str, list]:
        """The extra ``clusters.csv`` columns of ``level`` (:meth:`LevelPosts.columns`); the chosen level also gets
        ``coordinated_posts``, ``coordinated_share`` and ``account_herfindahl`` when coordination was analysed."""
        columns = self.levels[level].columns(n_clusters)
        if level == self.chosen and self.concentration is not None:
            columns |= _by_label(self.concentration.table(), n_clusters)
        return columns

    def row_columns(self) -> dict[str, pa.Array]:
        """The extra ``assignments`` columns, in row order: ``repost_group`` (int32, -1 when none) and
        ``post_time`` (timestamp[ms, UTC], null where the date is unknown or there is no date column)."""
        dates = self.posts.dates
        if dates is None:
            post_time = pa.nulls(self.posts.n_rows, pa.timestamp("ms", tz="UTC"))
        else:
            values = dates.values.astype("datetime64[ms]")
            post_time = pa.array(values.astype(np.int64), pa.int64(), mask=np.isnat(values)).cast(
                pa.timestamp("ms", tz="UTC")
            )
        columns = {schema.REPOST_GROUP: pa.array(self.reposts.group, pa.int32()), schema.POST_TIME: post_time}
        if self.lineage is not None:
            lineage = self.lineage.row_columns()
            columns[schema.REPOST_ORDER] = lineage["repost_order"]
            columns[schema.REPOST_DELAY] = lineage["repost_delay_s"]
            columns[schema.REPOST_VARIANT] = lineage["repost_variant"]
        group = self.coordination.row_group if self.coordination is not None else np.full(self.posts.n_rows, -1)
        columns[schema.COORDINATED_GROUP] = pa.array(group, pa.int32())
        return columns

    def coordination_tables(self, ids: Sequence[str]) -> tuple[pa.Table, pa.Table]:
        """``coordination.csv`` and ``coordinated_pairs.csv`` (``ids``: row ids, in row order); header only when
        nothing was analysed or found."""
        found = self.coordination
        if found is None:
            empty = find_coordination(np.zeros(0, np.int64), None, None)
            return empty.groups_table(), empty.pairs_table()
        return found.groups_table(self.posts.accounts, ids=ids), found.pairs_table(self.posts.accounts)

    def coordination_summary(self) -> dict:
        """``metrics.json["coordination"]``: :meth:`Coordination.summary`, or why there is none."""
        if self.coordination is None:
            return {"analysed": False, "reason": _coordination_missing(self.posts)}
        return {"analysed": True, **self.coordination.summary()}

    def over_time(self, *, top: int = 15) -> OverTime:
        """Data of the "clusters over time" figure (:func:`.report.timeline_figure.over_time_figure`)."""
        return largest_over_time(self.clusters.timelines, top=top)

    def posts_summary(self) -> dict:
        """``metrics.json["posts"]``: the post columns used, the kinds missing, the dates that could not be read."""
        columns, dates = self.posts.columns, self.posts.dates
        return {
            "text": columns.text,
            "date": columns.date,
            "account": columns.account,
            "missing": [kind for kind in ("text", "date", "account") if getattr(columns, kind) is None],
            "dates_unparseable": dates.n_unparseable if dates is not None else 0,
            "dates_missing": dates.n_missing if dates is not None else 0,
            "period": self.period,
        }

    def reposts_summary(self) -> dict:
        """``metrics.json["reposts"]``: how many groups, how many rows they hold, the largest, how pairs fared."""
        found = self.reposts
        sizes = np.bincount(found.group[found.group >= 0], minlength=found.n_groups)
        return {
            "groups": found.n_groups,
            "rows_in_groups": int(sizes.sum()),
            "largest": int(sizes.max()) if found.n_groups else 0,
            "candidate_pairs": found.candidate_pairs,
            "rejected_pairs": found.rejected_pairs,
            "unconfirmed_pairs": found.unconfirmed_pairs,
        }


def analyse_posts(
    levels: Mapping[str, np.ndarray],
    *,
    chosen: str,
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
    """Run the post analysis for every labelling in ``levels``.

    Parameters
    ----------
    levels : mapping of str to array-like of int
        Per-row cluster labels, -1 for noise, in the order of ``posts``, by level name (one entry is enough).
    chosen : str
        The key of ``levels`` holding the chosen clustering (repost groups record its clusters).
    posts : Posts
        :func:`clustering.analysis.posts.columns.read_posts` of the same rows.
    embeddings : numpy.ndarray
        ``(m, d)`` L2-normalised embeddings of the images: row ``i`` is the image of row ``points[i]`` (every row's
        own when ``points`` is None), as :class:`clustering.analysis.shards.ShardData` holds them. Exact copies share
        their image's row: names come from the centroids of a cluster's distinct images.
    ids : sequence of str
        Row ids (repost tables name posts by id; thumbnails are read by id).
    metadata : dict
        Shard metadata (model id, ``random_weights``) for zero-shot names.
    points, point_of_row : numpy.ndarray, optional
        The table row of each image (row of ``embeddings``) and each row's image (``ShardData.points`` and
        ``ShardData.point_of_row``). Default: every row is its own image.
    knn : clustering.analysis.space.knn_graph.KnnGraph, optional
        The reduction's graph over ``points`` (``Reduction.knn``); computed here when None.
    thumbnails : callable, optional
        ``reader(ids) -> {id: JPEG bytes}``; without it repost candidates are not confirmed by perceptual hashes.
    options : PostOptions

    Returns
    -------
    PostAnalysis
    """
    if chosen not in levels:
        raise ValueError(f"chosen must name one of the levels {list(levels)}, got {chosen!r}")
    labels = {name: np.asarray(values, dtype=np.int64) for name, values in levels.items()}
    n = len(labels[chosen])
    points = np.arange(n) if points is None else np.asarray(points, dtype=np.int64)
    point_of_row = np.arange(n) if point_of_row is None else np.asarray(point_of_row, dtype=np.int64)
    dates = posts.dates.values if posts.dates is not None else None
    terms = post_terms(posts.texts) if posts.texts is not None else None
    # The text tower is loaded once for every level, and only when some level has a cluster to name.
    if any(len(cluster_index(values)[0]) for values in labels.values()):
        vocabulary = encode_vocabulary(metadata, options.vocabulary, dim=embeddings.shape[1])
    else:
        vocabulary = EncodedVocabulary(options.vocabulary, None, None)

    def describe(values: np.ndarray) -> LevelPosts:
        keywords = cluster_keywords(values, terms, top_n=options.keywords)
        image_labels = values[points]  # a copy is labelled as its image is
        return LevelPosts(
            keywords=keywords,
            names=name_clusters(
                embeddings, image_labels, vocabulary=vocabulary, keywords=keywords, margin=options.name_margin
            ),
            timelines=cluster_timelines(values, dates, period=options.period),
            accounts=cluster_accounts(values, posts.accounts),
            mixed=mixed_topics(values, terms, keywords),
        )

    described = {name: describe(values) for name, values in labels.items()}
    reposts = find_repost_groups(
        embeddings,
        inverse=point_of_row,
        knn=knn,
        thumbnails=_point_thumbnails(thumbnails, np.asarray(ids, dtype=object)[points]) if thumbnails else None,
        min_similarity=options.repost_similarity,
        min_hash_similarity=options.repost_hash_similarity,
        seed=options.seed,
    )
    note = described[chosen].names.note
    notes = [*posts.notes(), *([note] if note else []), _repost_note(reposts, thumbnails is not None)]
    has_dates = posts.dates is not None and posts.dates.n_dated > 0
    lineage = repost_lineage(
        reposts,
        dates=dates,
        accounts=posts.accounts,
        embeddings=embeddings,
        min_similarity=options.repost_similarity,
        min_hash_similarity=options.repost_hash_similarity,
    )
    coordination = concentration = None
    missing = _coordination_missing(posts)
    if missing is None:
        coordination = find_coordination(
            reposts.group, posts.accounts, dates, labels=labels[chosen], options=options.coordination
        )
        concentration = cluster_coordination(labels[chosen], posts.accounts, coordination)
        notes.append(_coordination_note(coordination))
    else:
        notes.append(f"posted together: not analysed ({missing})")
    return PostAnalysis(
        posts=posts,
        levels=described,
        chosen=chosen,
        reposts=reposts,
        repost_table=_with_lineage(
            repost_group_table(reposts, ids, dates=dates, accounts=posts.accounts, labels=labels[chosen]), lineage
        ),
        period=described[chosen].timelines.period if has_dates else None,
        notes=tuple(notes),
        active_accounts=most_active_accounts(labels[chosen], posts.accounts) if posts.accounts is not None else None,
        lineage=lineage,
        coordination=coordination,
        concentration=concentration,
    )


def _by_label(table: pa.Table, n_clusters: int) -> dict[str, list]:
    """A per-cluster table (``cluster`` first) as columns for clusters ``0 .. n_clusters - 1``, None where a label has
    no row."""
    position = {c: i for i, c in enumerate(table.column("cluster").to_pylist())}
    columns = {}
    for name in table.column_names[1:]:
        values = table.column(name).to_pylist()
        columns[name] = [values[position[c]] if c in position else None for c in range(n_clusters)]
    return columns


def _point_thumbnails(reader: ThumbnailReader, point_ids: np.ndarray):
    def load(indices: np.ndarray) -> list[bytes | None]:
        wanted = [str(i) for i in point_ids[indices]]
        found = reader(wanted)
        return [found.get(i) for i in wanted]

    return load


def _with_lineage(table: pa.Table, lineage: Lineage) -> pa.Table:
    """``repost_groups.csv``: the group table with the lineage's columns beside it (both one row per group, in group
    order)."""
    columns = lineage.table()
    for name in columns.column_names[1:]:
        table = table.append_column(name, columns.column(name))
    return table


def _coordination_missing(posts: Posts) -> str | None:
    """Why coordinated sharing cannot be looked for, or None when it can: it needs accounts and dated posts."""
    if posts.accounts is None:
        return "no account column; name one with --account-column"
    if posts.dates is None:
        return "no date column; name one with --date-column"
    if posts.dates.n_dated == 0:
        return "no value of the date column could be read as a date"
    return None


def _coordination_note(found: Coordination) -> str:
    window = f"{found.options.window:g} seconds"
    if not found.n_groups:
        return (
            f"posted together: no accounts posted the same images within {window} in "
            f"{found.options.min_repetition} or more repost groups"
        )
    accounts = sum(len(a) for a in found.accounts)
    return (
        f"posted together: {found.n_groups:,} group{'s' if found.n_groups != 1 else ''} of accounts ({accounts:,} "
        f"accounts) posted the same images within {window}, in {found.options.min_repetition} or more repost groups"
    )


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

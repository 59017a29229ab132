"""Lineage of each repost group: who posted it first, and how it spread.

Per repost group (:mod:`.reposts`): the first post (its row, account and time), every post in time
order with its delay from the first, the distinct accounts, and how many of them had posted it 1 hour, 1 day and 1
week after the first post. "First" follows the rule of ``repost_groups.csv``: the earliest dated post, ties and
undated posts by row order, undated posts after dated ones.

Each post of a group is also given a variant, against the group's first post:

- ``first``: the first post itself;
- ``exact``: the same file (same sha256);
- ``same_picture``: another file whose perceptual hash is close to the first's (re-encoded, resized, lightly
  cropped or recaptioned), or, without hashes for the pair, whose embedding is close;
- ``template``: hash-far but CLIP-close to the first: the same template with new content (a meme format reused with
  another caption or picture), reached through copies in between;
- ``indirect``: neither: joined to the group only through chains of copies.

Repost groups only join hash-close pairs, so most reuses of a template with new content are other groups or single
posts. Those come from the candidate pairs the hash rejected (``RepostGroups.template_pairs``): per group, the posts
outside it whose image is CLIP-close but hash-far to one of its images (``template_posts``) and their groups
(``template_groups``). With random CLIP weights (tests, demo) nearly every kNN pair is a candidate, so these links
mean something only with real weights.

Pure compute: numpy in, a dataclass of numpy arrays out, Arrow tables on demand; no I/O.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from clustering.analysis.defaults import MIN_HASH_SIMILARITY, MIN_SIMILARITY
from clustering.analysis.posts.columns import Accounts
from clustering.analysis.posts.reposts import ImageHashes, RepostGroups, hash_similarity

__all__ = ["REACH_HORIZONS", "VARIANTS", "Lineage", "repost_lineage"]

# Variant names, indexed by the codes of ``Lineage.variant`` (-1: the row is in no group).
VARIANTS = ("first", "exact", "same_picture", "template", "indirect")
FIRST, EXACT, SAME_PICTURE, TEMPLATE, INDIRECT = range(len(VARIANTS))
# How far the spread is measured: distinct accounts that had posted the group this long after its first post.
REACH_HORIZONS = (("1h", 3600), ("1d", 86_400), ("1w", 7 * 86_400))
_UNDATED = np.iinfo(np.int64).max
_CHUNK_PAIRS = 16_384  # (copy, first) image pairs compared at once: two 32 MiB float32 blocks at 512-D


@dataclasses.dataclass(frozen=True)
class Lineage:
    """Lineage of ``n_groups`` repost groups over ``n`` rows.

    Attributes
    ----------
    n_groups : int
    rows : numpy.ndarray
        int64: the rows of every group, group after group, each group in lineage order (first post first).
    starts : numpy.ndarray
        int64 ``(n_groups + 1,)``: group ``g``'s rows are ``rows[starts[g]:starts[g + 1]]``.
    order : numpy.ndarray
        int64 per row: its place in its group's lineage (0: the first post); -1 outside any group.
    delay : numpy.ndarray
        float64 per row: seconds after its group's first post; NaN when either is undated or outside any group.
    variant : numpy.ndarray
        int8 per row: an index into ``VARIANTS``; -1 outside any group.
    first_row : numpy.ndarray
        int64 per group: the row of its first post.
    first_time : numpy.ndarray
        ``datetime64[s]`` per group: the time of its first post (NaT when undated).
    first_account : numpy.ndarray
        int64 per group: the account code of its first post (-1 when unknown).
    accounts : numpy.ndarray or None
        int64 distinct accounts per group; None without accounts.
    reach : numpy.ndarray or None
        int64 ``(n_groups, len(REACH_HORIZONS))``: distinct accounts that had posted the group 1 h, 1 d, 1 w after
        its first post (dated posts only; -1 when its first post is undated); None without dates or accounts.
    median_delay : numpy.ndarray
        float64 per group: median delay of its later dated posts (NaN when none).
    variant_counts : numpy.ndarray
        int64 ``(n_groups, len(VARIANTS))``: posts of each variant.
    template_posts : numpy.ndarray
        int64 per group: posts outside the group whose image is CLIP-close but hash-far to one of its images.
    template_groups : tuple of tuple of int
        Per group, the other repost groups among those posts, ascending.
    """

    n_groups: int
    rows: np.ndarray
    starts: np.ndarray
    order: np.ndarray
    delay: np.ndarray
    variant: np.ndarray
    first_row: np.ndarray
    first_time: np.ndarray
    first_account: np.ndarray
    accounts: np.ndarray | None
    reach: np.ndarray | None
    median_delay: np.ndarray
    variant_counts: np.ndarray
    template_posts: np.ndarray
    template_groups: tuple[tuple[int, ...], ...]

    def group_rows(self, group: int) -> np.ndarray:
        """The rows of ``group`` in lineage order."""
        if not 0 <= group < self.n_groups:
            raise ValueError(f"group must be in 0..{self.n_groups - 1}, got {group}")
        return self.rows[self.starts[group] : self.starts[group + 1]]

    def table(self) -> pa.Table:
        """One row per group: the lineage columns of ``repost_groups.csv`` (join on ``repost_group``).

        ``accounts_1h``, ``accounts_1d``, ``accounts_1w`` (null without dates or accounts, or when the first post
        is undated), ``median_delay_s``, ``exact_copies``, ``same_picture``, ``same_template`` (posts that reuse
        the template with new content: in the group, and outside it through ``template_pairs``), ``indirect`` and
        ``template_groups`` (``;``-separated group numbers, empty when none).
        """
        g = self.n_groups
        columns: dict[str, pa.Array] = {"repost_group": pa.array(np.arange(g), pa.int64())}
        for index, (name, _) in enumerate(REACH_HORIZONS):
            values = self.reach[:, index] if self.reach is not None else np.full(g, -1)
            columns[f"accounts_{name}"] = pa.array(values, pa.int64(), mask=values < 0)
        columns["median_delay_s"] = pa.array(self.median_delay, pa.float64(), mask=np.isnan(self.median_delay))
        counts = self.variant_counts
        columns["exact_copies"] = pa.array(counts[:, EXACT], pa.int64())
        columns["same_picture"] = pa.array(counts[:, SAME_PICTURE], pa.int64())
        columns["same_template"] = pa.array(counts[:, TEMPLATE] + self.template_posts, pa.int64())
        columns["indirect"] = pa.array(counts[:, INDIRECT], pa.int64())
        columns["template_groups"] = pa.array([";".join(map(str, t)) for t in self.template_groups], pa.string())
        return pa.table(columns)

    def row_columns(self) -> dict[str, pa.Array]:
        """Per-row columns for ``assignments``: ``repost_order`` (int32), ``repost_delay_s`` (int64) and
        ``repost_variant`` (string); null outside any group (and the delay when undated)."""
        outside = self.order < 0
        delay = np.nan_to_num(self.delay, nan=0.0).astype(np.int64)
        names = np.asarray(VARIANTS, dtype=object)[np.maximum(self.variant, 0)]
        return {
            "repost_order": pa.array(self.order, pa.int32(), mask=outside),
            "repost_delay_s": pa.array(delay, pa.int64(), mask=np.isnan(self.delay)),
            "repost_variant": pa.array(names, pa.string(), mask=outside),
        }

    def posts(self, group: int, *, ids=None, accounts: Accounts | None = None, dates=None) -> pa.Table:
        """The posts of one group in lineage order, for its timeline: ``row``, ``id``, ``account``, ``time`` (ISO
        8601 UTC), ``delay_s``, ``order``, ``variant``; ``id``, ``account`` and ``time`` null when not given."""
        rows = self.group_rows(group)
        n = len(rows)
        times = (
            [None if np.isnat(t) else f"{t}Z" for t in np.asarray(dates, dtype="datetime64[s]")[rows]]
            if dates is not None
            else [None] * n
        )
        return pa.table(
            {
                "row": pa.array(rows, pa.int64()),
                "id": pa.array([str(ids[r]) for r in rows] if ids is not None else [None] * n, pa.string()),
                "account": pa.array(
                    [accounts.name_of(int(accounts.codes[r])) for r in rows] if accounts is not None else [None] * n,
                    pa.string(),
                ),
                "time": pa.array(times, pa.string()),
                "delay_s": pa.array(self.delay[rows], pa.float64(), mask=np.isnan(self.delay[rows])),
                "order": pa.array(self.order[rows], pa.int64()),
                "variant": pa.array([VARIANTS[v] for v in self.variant[rows]], pa.string()),
            }
        )


def repost_lineage(
    groups: RepostGroups,
    *,
    dates: np.ndarray | None = None,
    accounts: Accounts | None = None,
    embeddings: np.ndarray | None = None,
    images: np.ndarray | None = None,
    hashes: ImageHashes | None = None,
    min_similarity: float = MIN_SIMILARITY,
    min_hash_similarity: float = MIN_HASH_SIMILARITY,
) -> Lineage:
    """The lineage of every repost group: first post, order and delays, spread over accounts, variants.

    Parameters
    ----------
    groups : RepostGroups
        From :func:`clustering.analysis.posts.reposts.find_repost_groups`, over ``n`` rows.
    dates : numpy.ndarray, optional
        ``datetime64`` per row (``ParsedDates.values``), NaT unknown. Without dates, "first" means first in row
        order and there are no delays.
    accounts : Accounts, optional
        Per-row account codes; without them there are no account counts.
    embeddings : numpy.ndarray, optional
        L2-normalised embeddings of the distinct images (``groups.image`` indexes them), or of rows with ``images``
        naming each image's row, as :func:`~clustering.analysis.posts.reposts.find_repost_groups` takes them. Without
        them, a copy whose hash is far from the first's counts as ``template``.
    images : numpy.ndarray, optional
        The row of ``embeddings`` holding each distinct image. Default: image ``i`` is row ``i``.
    hashes : ImageHashes, optional
        Perceptual hashes of the grouped images. Default: ``groups.hashes``.
    min_similarity : float, default MIN_SIMILARITY
        Embedding cosine similarity from which two images are CLIP-close (the repost candidates' threshold).
    min_hash_similarity : float, default MIN_HASH_SIMILARITY
        Hash similarity from which two images are the same picture (the repost confirmation's threshold).

    Returns
    -------
    Lineage
    """
    group = np.asarray(groups.group, dtype=np.int64)
    n, g = len(group), groups.n_groups
    seconds = _seconds(dates, n)
    codes = _codes(accounts, n)
    member = np.flatnonzero(group >= 0)
    rows = member[np.lexsort((member, seconds[member], group[member]))]
    row_group = group[rows]
    starts = np.searchsorted(row_group, np.arange(g + 1))
    rank = np.arange(len(rows)) - starts[row_group]
    order = np.full(n, -1, dtype=np.int64)
    order[rows] = rank
    first_row = rows[starts[:-1]]
    first_seconds = seconds[first_row]
    dated = (seconds[rows] != _UNDATED) & (first_seconds[row_group] != _UNDATED)
    delay = np.full(n, np.nan)
    delay[rows[dated]] = (seconds[rows] - first_seconds[row_group])[dated]
    variant = np.full(n, -1, dtype=np.int8)
    variant[rows] = _variants(
        groups,
        rows,
        row_group,
        first_row,
        rank,
        embeddings=embeddings,
        images=images,
        hashes=hashes,
        min_similarity=min_similarity,
        min_hash_similarity=min_hash_similarity,
    )
    kinds = len(VARIANTS)
    variant_counts = np.bincount(row_group * kinds + variant[rows], minlength=g * kinds).reshape(g, kinds)
    template_posts, template_groups = _template_links(groups, g)
    has_reach = accounts is not None and dates is not None
    return Lineage(
        n_groups=g,
        rows=rows,
        starts=starts,
        order=order,
        delay=delay,
        variant=variant,
        first_row=first_row,
        first_time=np.where(
            first_seconds == _UNDATED, np.datetime64("NaT", "s"), first_seconds.astype("datetime64[s]")
        ),
        first_account=codes[first_row],
        accounts=_distinct_accounts(row_group, codes[rows], g) if accounts is not None else None,
        reach=_reach(rows, row_group, codes, delay=delay, first=first_seconds, g=g) if has_reach else None,
        median_delay=_median_delay(rows, row_group, rank, delay, g),
        variant_counts=variant_counts.astype(np.int64),
        template_posts=template_posts,
        template_groups=template_groups,
    )


def _seconds(dates: np.ndarray | None, n: int) -> np.ndarray:
    if dates is None:
        return np.full(n, _UNDATED)
    values = np.asarray(dates, dtype="datetime64[s]")
    if len(values) != n:
        raise ValueError(f"dates has {len(values)} rows but the repost groups cover {n}")
    return np.where(np.isnat(values), _UNDATED, values.astype(np.int64))


def _codes(accounts: Accounts | None, n: int) -> np.ndarray:
    if accounts is None:
        return np.full(n, -1, dtype=np.int64)
    codes = np.asarray(accounts.codes, dtype=np.int64)
    if len(codes) != n:
        raise ValueError(f"accounts has {len(codes)} rows but the repost groups cover {n}")
    return codes


def _variants(
    groups: RepostGroups,
    rows: np.ndarray,
    row_group: np.ndarray,
    first_row: np.ndarray,
    rank: np.ndarray,
    *,
    embeddings: np.ndarray | None,
    images: np.ndarray | None,
    hashes: ImageHashes | None,
    min_similarity: float,
    min_hash_similarity: float,
) -> np.ndarray:
    """The variant code of each grouped row against its group's first post."""
    image = np.asarray(groups.image, dtype=np.int64)
    own, first = image[rows], image[first_row][row_group]
    variant = np.full(len(rows), INDIRECT, dtype=np.int8)
    copy = own != first
    width = int(image.max()) + 1 if len(image) else 1
    keys, inverse = np.unique(own[copy] * width + first[copy], return_inverse=True)  # each image pair compared once
    pairs = np.stack([keys // width, keys % width], axis=1)
    hashes = groups.hashes if hashes is None else hashes
    if hashes is not None:
        own_hash, own_valid = hashes.lookup(pairs[:, 0])
        first_hash, first_valid = hashes.lookup(pairs[:, 1])
        hashed = own_valid & first_valid
        close_hash = hashed & (hash_similarity(own_hash, first_hash) >= min_hash_similarity)
    else:
        hashed = close_hash = np.zeros(len(pairs), dtype=bool)
    close_clip = (
        _cosine(embeddings, images, pairs) >= min_similarity
        if embeddings is not None
        else np.ones(len(pairs), dtype=bool)  # unknown: a group's copies were CLIP-close to their neighbours
    )
    kind = np.full(len(pairs), INDIRECT, dtype=np.int8)
    kind[close_clip & ~hashed] = SAME_PICTURE  # as repost groups keep unconfirmed candidates
    kind[close_clip & hashed & ~close_hash] = TEMPLATE
    kind[close_hash] = SAME_PICTURE
    variant[copy] = kind[inverse]
    variant[~copy] = EXACT
    variant[rank == 0] = FIRST
    return variant


def _cosine(embeddings: np.ndarray, images: np.ndarray | None, pairs: np.ndarray) -> np.ndarray:
    """Cosine similarity of the image pairs, gathered chunk by chunk (bounded memory, whatever the groups' size)."""
    rows = np.asarray(images, dtype=np.int64)[pairs] if images is not None else pairs
    out = np.empty(len(pairs), dtype=np.float32)
    for start in range(0, len(pairs), _CHUNK_PAIRS):
        chunk = rows[start : start + _CHUNK_PAIRS]
        a = np.asarray(embeddings[chunk[:, 0]], dtype=np.float32)
        b = np.asarray(embeddings[chunk[:, 1]], dtype=np.float32)
        out[start : start + len(chunk)] = np.einsum("ij,ij->i", a, b)
    return out


def _distinct_accounts(row_group: np.ndarray, codes: np.ndarray, g: int) -> np.ndarray:
    known = codes >= 0
    width = int(codes.max()) + 1 if known.any() else 1
    pairs = np.unique(row_group[known] * width + codes[known])
    return np.bincount(pairs // width, minlength=g).astype(np.int64)


def _reach(
    rows: np.ndarray, row_group: np.ndarray, codes: np.ndarray, *, delay: np.ndarray, first: np.ndarray, g: int
) -> np.ndarray:
    """Distinct accounts per group whose first dated post came at most each horizon after the group's first post."""
    account = codes[rows]
    delays = delay[rows]
    known = (account >= 0) & ~np.isnan(delays)
    width = int(account.max()) + 1 if (account >= 0).any() else 1
    # ``rows`` is in time order within each group: an account's first occurrence is its earliest post there.
    _, first_index = np.unique(row_group[known] * width + account[known], return_index=True)
    arrival_group, arrival = row_group[known][first_index], delays[known][first_index]
    reach = np.stack(
        [np.bincount(arrival_group[arrival <= horizon], minlength=g) for _, horizon in REACH_HORIZONS], axis=1
    ).astype(np.int64)
    reach[first == _UNDATED] = -1
    return reach


def _median_delay(rows: np.ndarray, row_group: np.ndarray, rank: np.ndarray, delay: np.ndarray, g: int) -> np.ndarray:
    """Median delay of each group's later dated posts; delays rise within a group, so the middle one of its run."""
    later = (rank > 0) & ~np.isnan(delay[rows])
    later_group, later_delay = row_group[later], delay[rows][later]
    counts = np.bincount(later_group, minlength=g)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    median = np.full(g, np.nan)
    has = counts > 0
    low = starts[has] + (counts[has] - 1) // 2
    high = starts[has] + counts[has] // 2
    median[has] = (later_delay[low] + later_delay[high]) / 2
    return median


def _template_links(groups: RepostGroups, g: int) -> tuple[np.ndarray, tuple[tuple[int, ...], ...]]:
    """Per group, the posts outside it that reuse one of its images' templates, and their groups."""
    pairs = np.asarray(groups.template_pairs, dtype=np.int64).reshape(-1, 2)
    image = np.asarray(groups.image, dtype=np.int64)
    m = int(image.max()) + 1 if len(image) else 0
    m = max(m, int(pairs.max()) + 1 if len(pairs) else 0)
    image_group = np.full(m, -1, dtype=np.int64)
    image_group[image] = groups.group
    posts_of_image = np.bincount(image, minlength=m)
    # Both directions: the group of one image gains the other image, when that image lies outside it.
    owner = np.concatenate([image_group[pairs[:, 0]], image_group[pairs[:, 1]]])
    other = np.concatenate([pairs[:, 1], pairs[:, 0]])
    linked = (owner >= 0) & (image_group[other] != owner)
    keys = np.unique(owner[linked] * max(m, 1) + other[linked])
    link_group, link_image = keys // max(m, 1), keys % max(m, 1)
    template_posts = np.bincount(link_group, weights=posts_of_image[link_image], minlength=g).astype(np.int64)
    other_group = image_group[link_image]
    keyed = np.unique(link_group[other_group >= 0] * max(g, 1) + other_group[other_group >= 0])
    listed: list[list[int]] = [[] for _ in range(g)]
    for owner_group, linked_group in zip((keyed // max(g, 1)).tolist(), (keyed % max(g, 1)).tolist(), strict=True):
        listed[owner_group].append(linked_group)
    return template_posts, tuple(tuple(t) for t in listed)

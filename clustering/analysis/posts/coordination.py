"""Coordinated image sharing: accounts that post the same repost groups within seconds of each other, repeatedly.

The method of CooRnet's coordinated image sharing, CooRTweet and QUT's Coordination Network Toolkit, on repost
groups instead of identical URLs, so re-encoded, resized and recaptioned copies of one picture count as one object:

1. **Pairs** (time-sorted windows): within each repost group, posts sorted by time; each post is paired with the
   later posts of other accounts at most ``window`` seconds after it. A pair of accounts counts once per repost
   group. Only pairs inside a window are ever formed, never all pairs of a group: a group of 50,000 posts spread
   over days forms about as many pairs as it has posts times the posts per window.
2. **Burst bound**: a post is paired with its ``max_followers`` next posts in the group at most. Where thousands of
   accounts post one image within one window, the work stays at most ``posts x max_followers`` (the pairs those
   posts would form are quadratic in the burst); such posts are counted (``capped_posts``). A burst's accounts are
   then paired with their nearest neighbours in time only, so a pair that met inside bursts of more than
   ``max_followers`` posts can be under-counted.
3. **Edges**: pairs that posted together in at least ``min_repetition`` different repost groups. Their counts are
   then recounted exactly (no burst bound; at most ``MAX_POSTS_PER_ACCOUNT_GROUP`` earliest posts of one account in
   one repost group), as the null model counts them.
4. **Coordinated groups**: connected components of the edges, ranked by their score against the null model.

**Null model** (``null_rounds`` seeded rounds): every post of the accounts in edges gets a new time, then every
edge's meetings are recounted.

- A post of a repost group that other accounts also posted (accounts in no edge, with at least as many posts there
  as the paired accounts made) takes the time of one of those other posts, drawn without replacement: the image's
  own circulation decides how close two of its posts fall by chance. A viral image's first minutes bring thousands
  of accounts within seconds of each other, and two busy accounts that both posted it meet there by chance.
- Any other post (an image that only the paired accounts posted) takes a time shuffled among its own account's
  dated posts (a random permutation per account and round): every account keeps its exact activity times (its
  active days, hours and bursts) and the images it posted; only which image went out at which of its times is
  random.

A group's statistic is the sum of its edges' counts (``meetings``); its score is the z-score ``(observed - mean) /
sd`` over the rounds (the sd floored at ``sqrt(3 / rounds)``: when no round met, the rule of three bounds the chance
rate by ``3 / rounds``) and the empirical p-value ``(1 + rounds >= observed) / (1 + rounds)``. Pairs get the same
p-value. Seeded and deterministic: the same inputs and seed give the same scores. The p-values are not corrected for
the many pairs that met once (``formed_pairs``): the pairs that reach ``min_repetition`` are the tail of those, so a
p-value near 0.01 from two busy accounts is to be expected in a large collection; read them with ``expected``.

**Wording**: the data says that accounts "posted together within N seconds, M times"; it cannot tell intent. Text
produced here never calls accounts automated or inauthentic.

Pure compute: numpy in, dataclasses and Arrow tables out; no I/O.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pyarrow as pa

from clustering.analysis.defaults import MAX_FOLLOWERS, MIN_REPETITION, NULL_ROUNDS, WINDOW_SECONDS
from clustering.analysis.posts.columns import Accounts
from clustering.analysis.posts.coordination_kernels import (
    distinct_per_segment,
    segment_min_gaps,
    shared_kernel,
    window_pairs,
)
from clustering.analysis.posts.coordination_null import Background, NullModel, null_model
from clustering.config import ConfigError

__all__ = [
    "CoordinatedPairs",
    "Coordination",
    "CoordinationOptions",
    "find_coordination",
]

# Posts of one account in one repost group that the exact recount and the null model compare (its earliest): an
# account posting one image hundreds of times would otherwise cost hundreds squared per pair.
MAX_POSTS_PER_ACCOUNT_GROUP = 16


@dataclasses.dataclass(frozen=True)
class CoordinationOptions:
    """Options of the coordination analysis; each names its proposed command-line flag.

    Attributes
    ----------
    window : float, default WINDOW_SECONDS
        ``--coordination-window``: seconds within which two accounts' posts of one repost group are "together".
    min_repetition : int, default MIN_REPETITION
        ``--min-repetition``: distinct repost groups a pair of accounts must post together to be linked.
    null_rounds : int, default NULL_ROUNDS
        ``--coordination-rounds``: rounds of the null model (0: no scores).
    max_followers : int, default MAX_FOLLOWERS
        ``--coordination-burst-cap``: later posts one post is paired with at most (the burst bound).
    seed : int, default 42
        ``--seed``: the null model's random seed.
    """

    window: float = WINDOW_SECONDS
    min_repetition: int = MIN_REPETITION
    null_rounds: int = NULL_ROUNDS
    max_followers: int = MAX_FOLLOWERS
    seed: int = 42

    def __post_init__(self) -> None:
        if not (isinstance(self.window, (int, float)) and math.isfinite(self.window) and self.window >= 0):
            raise ConfigError(f"--coordination-window must be a number of seconds, 0 or more, got {self.window!r}")
        checks = (
            ("--min-repetition", self.min_repetition, 1),
            ("--coordination-rounds", self.null_rounds, 0),
            ("--coordination-burst-cap", self.max_followers, 1),
            ("--seed", self.seed, 0),
        )
        for flag, value, minimum in checks:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ConfigError(f"{flag} must be an integer >= {minimum}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class CoordinatedPairs:
    """Pairs of accounts that posted together in at least ``min_repetition`` repost groups (the edges).

    Attributes
    ----------
    a, b : numpy.ndarray
        int64 account codes, ``a < b``.
    together : numpy.ndarray
        int64 distinct repost groups both posted within the window.
    median_gap, max_gap : numpy.ndarray
        float64 seconds: per repost group, the closest two posts of the pair; their median and maximum.
    expected : numpy.ndarray
        float64 mean of ``together`` over the null model's rounds (NaN without rounds).
    p_value : numpy.ndarray
        float64 empirical p-value of ``together`` under the null model (NaN without rounds).
    group : numpy.ndarray
        int64 the coordinated group the pair belongs to.
    """

    a: np.ndarray
    b: np.ndarray
    together: np.ndarray
    median_gap: np.ndarray
    max_gap: np.ndarray
    expected: np.ndarray
    p_value: np.ndarray
    group: np.ndarray

    def __len__(self) -> int:
        return len(self.a)


@dataclasses.dataclass(frozen=True)
class Coordination:
    """Coordinated groups of accounts, numbered by rank: 0 is the least likely by chance.

    Attributes
    ----------
    options : CoordinationOptions
    pairs : CoordinatedPairs
    n_groups : int
    accounts : tuple of numpy.ndarray
        Per group, its account codes (ascending).
    repost_groups : tuple of numpy.ndarray
        Per group, the repost groups in which two or more of its accounts posted together (ascending).
    first_rows : tuple of numpy.ndarray
        Per group, aligned with ``repost_groups``: the row of the group's earliest post of each.
    together : numpy.ndarray
        int64 per group: ``len(repost_groups[g])``, the M of "posted together within N seconds, M times".
    meetings : numpy.ndarray
        int64 per group: the sum of its pairs' ``together`` (the statistic the null model tests).
    expected, null_sd, z, p_value : numpy.ndarray
        float64 per group: the null model's mean and standard deviation of ``meetings``, the z-score and the
        empirical p-value (NaN without rounds).
    median_gap, max_gap : numpy.ndarray
        float64 per group: over its pairs' meetings, the median and largest gap in seconds.
    clusters : tuple of tuple of (int, int)
        Per group, the clusters of its shared posts with their post counts, most first (when labels were given).
    account_group : numpy.ndarray
        int64 per account code: its coordinated group, -1 for none.
    row_group : numpy.ndarray
        int64 per row: the coordinated group whose account made this post in one of the group's shared repost
        groups (the posts an explorer filter shows), -1 otherwise.
    formed_pairs : int
        (repost group, account pair) meetings formed by the windows, before ``min_repetition``.
    capped_posts : int
        Posts whose window held more than ``max_followers`` later posts (the burst bound cut their pairs).
    """

    options: CoordinationOptions
    pairs: CoordinatedPairs
    n_groups: int
    accounts: tuple[np.ndarray, ...]
    repost_groups: tuple[np.ndarray, ...]
    first_rows: tuple[np.ndarray, ...]
    together: np.ndarray
    meetings: np.ndarray
    expected: np.ndarray
    null_sd: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    median_gap: np.ndarray
    max_gap: np.ndarray
    clusters: tuple[tuple[tuple[int, int], ...], ...]
    account_group: np.ndarray
    row_group: np.ndarray
    formed_pairs: int
    capped_posts: int

    def describe(self, group: int, accounts: Accounts | None = None) -> str:
        """One careful sentence about a group: "3 accounts (a, b, c) posted together within 60 seconds, 12 times"."""
        if not 0 <= group < self.n_groups:
            raise ValueError(f"group must be in 0..{self.n_groups - 1}, got {group}")
        members = self.accounts[group]
        named = f" ({', '.join(_names(members, accounts))})" if accounts is not None else ""
        times = int(self.together[group])
        text = (
            f"{len(members)} accounts{named} posted together within {self.options.window:g} seconds, "
            f"{times} time{'s' if times != 1 else ''}"
        )
        if not math.isnan(self.expected[group]):
            text += (
                f" ({int(self.meetings[group])} pair meetings, about {self.expected[group]:.1f} expected by chance;"
                f" p = {self.p_value[group]:.3g})"
            )
        return text

    def groups_table(self, accounts: Accounts | None = None, *, ids=None) -> pa.Table:
        """``coordination.csv``: one row per coordinated group, by rank.

        ``coordinated_group``, ``accounts`` (count), ``account_names`` (``;``-separated), ``together`` (M: repost
        groups posted together), ``repost_groups`` (``;``-separated numbers, as in ``repost_groups.csv``),
        ``first_ids`` (per shared repost group, the id of the group's earliest post of it; when ``ids`` is given),
        ``posts`` (rows of the group's shared posts), ``meetings``, ``expected``, ``null_sd``, ``z``, ``p_value``,
        ``median_gap_s``, ``max_gap_s``, ``clusters`` (``cluster (posts)`` items), ``description``.
        """
        g = self.n_groups
        posts = np.bincount(self.row_group[self.row_group >= 0], minlength=g)
        return pa.table(
            {
                "coordinated_group": pa.array(np.arange(g), pa.int64()),
                "accounts": pa.array([len(a) for a in self.accounts], pa.int64()),
                "account_names": pa.array(
                    [";".join(_names(a, accounts)) if accounts is not None else None for a in self.accounts],
                    pa.string(),
                ),
                "together": pa.array(self.together, pa.int64()),
                "repost_groups": pa.array([";".join(map(str, r)) for r in self.repost_groups], pa.string()),
                "first_ids": pa.array(
                    [";".join(str(ids[r]) for r in rows) for rows in self.first_rows]
                    if ids is not None
                    else [None] * g,
                    pa.string(),
                ),
                "posts": pa.array(posts, pa.int64()),
                "meetings": pa.array(self.meetings, pa.int64()),
                "expected": arrow_floats(self.expected),
                "null_sd": arrow_floats(self.null_sd),
                "z": arrow_floats(self.z),
                "p_value": arrow_floats(self.p_value),
                "median_gap_s": arrow_floats(self.median_gap),
                "max_gap_s": arrow_floats(self.max_gap),
                "clusters": pa.array([";".join(f"{c} ({n})" for c, n in cs) for cs in self.clusters], pa.string()),
                "description": pa.array([self.describe(i, accounts) for i in range(g)], pa.string()),
            }
        )

    def pairs_table(self, accounts: Accounts | None = None) -> pa.Table:
        """``coordinated_pairs.csv``: ``account_a``, ``account_b`` (names, or codes as text without ``accounts``),
        ``coordinated_group``, ``together``, ``median_gap_s``, ``max_gap_s``, ``expected``, ``p_value``; by group,
        then most together first."""
        p = self.pairs
        order = np.lexsort((p.b, p.a, -p.together, p.group))
        return pa.table(
            {
                "account_a": pa.array(_names(p.a[order], accounts), pa.string()),
                "account_b": pa.array(_names(p.b[order], accounts), pa.string()),
                "coordinated_group": pa.array(p.group[order], pa.int64()),
                "together": pa.array(p.together[order], pa.int64()),
                "median_gap_s": arrow_floats(p.median_gap[order]),
                "max_gap_s": arrow_floats(p.max_gap[order]),
                "expected": arrow_floats(p.expected[order]),
                "p_value": arrow_floats(p.p_value[order]),
            }
        )

    def summary(self) -> dict:
        """``metrics.json["coordination"]``: options, counts and the null model in words."""
        return {
            "window_seconds": self.options.window,
            "min_repetition": self.options.min_repetition,
            "null_rounds": self.options.null_rounds,
            "max_followers": self.options.max_followers,
            "seed": self.options.seed,
            "formed_pairs": self.formed_pairs,
            "capped_posts": self.capped_posts,
            "pairs": len(self.pairs),
            "groups": self.n_groups,
            "accounts": int(sum(len(a) for a in self.accounts)),
            "null_model": NULL_MODEL,
        }


NULL_MODEL = (
    "per round, each post of the paired accounts takes the time of a post of the same repost group by accounts in no "
    "pair (drawn without replacement) where the group has enough of those, otherwise a time shuffled among its own "
    "account's posts; score: z-score and empirical p-value of the pairs' meetings over the rounds"
)


def _names(codes: np.ndarray, accounts: Accounts | None) -> list[str]:
    if accounts is None:
        return [str(int(c)) for c in codes]
    return [str(accounts.names[int(c)]) for c in codes]


def arrow_floats(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=np.float64)
    return pa.array(np.round(values, 6), pa.float64(), mask=~np.isfinite(values))


def find_coordination(
    repost_group,
    accounts: Accounts | None,
    dates: np.ndarray | None,
    *,
    labels=None,
    options: CoordinationOptions = CoordinationOptions(),  # frozen: one shared default is safe
) -> Coordination:
    """Find pairs and groups of accounts that posted the same repost groups together, repeatedly.

    Parameters
    ----------
    repost_group : array-like of int
        Per row, its repost group (``RepostGroups.group``), -1 for a post of an image posted once.
    accounts : Accounts or None
        Per-row account codes (``Posts.accounts``), -1 unknown. None: nothing can be found (an empty result).
    dates : numpy.ndarray or None
        Per-row ``datetime64`` (``ParsedDates.values``), NaT unknown. None: an empty result. Rows without a group,
        an account or a date take no part.
    labels : array-like of int, optional
        Per-row cluster labels, -1 for noise: each group lists the clusters of its shared posts.
    options : CoordinationOptions

    Returns
    -------
    Coordination
    """
    group = np.asarray(repost_group, dtype=np.int64).ravel()
    n = len(group)
    n_accounts = len(accounts.names) if accounts is not None else 0
    if accounts is None or dates is None or not n_accounts:
        return _nothing(options, n, n_accounts, 0, 0)
    codes = checked_rows(np.asarray(accounts.codes, dtype=np.int64), n, "accounts")
    seconds, dated = _epoch_seconds(checked_rows(np.asarray(dates, dtype="datetime64[s]"), n, "dates"))
    a, b, formed, capped = _edges(group, codes, seconds, dated, n_accounts=n_accounts, options=options)
    if not len(a):
        return _nothing(options, n, n_accounts, formed, capped)
    posts = CandidatePosts.build(np.union1d(a, b), group, codes, seconds, dated)
    edges = _recounted(posts, a, b, options)
    if not len(edges.a):
        return _nothing(options, n, n_accounts, formed, capped)
    background = Background.build(posts, edges.shared, group=group, codes=codes, dated=dated, seconds=seconds)
    null = null_model(posts, edges, background, options)
    return _assemble(
        posts, edges, null, group=group, labels=labels, n_accounts=n_accounts, counts=(formed, capped), options=options
    )


# --- inputs ----------------------------------------------------------------------------------------------------------


def checked_rows(values: np.ndarray, n: int, name: str) -> np.ndarray:
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} rows, expected {n} (one per row)")
    return values


def _epoch_seconds(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dated = ~np.isnat(dates)
    return np.where(dated, dates.astype(np.int64), 0), dated


def _edges(
    group: np.ndarray,
    codes: np.ndarray,
    seconds: np.ndarray,
    dated: np.ndarray,
    *,
    n_accounts: int,
    options: CoordinationOptions,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Account pairs (a < b) that posted together in at least ``min_repetition`` repost groups, by the windows; with
    the meetings formed and the posts the burst bound capped."""
    rows = np.flatnonzero((group >= 0) & (codes >= 0) & dated)
    rows = rows[np.lexsort((codes[rows], seconds[rows], group[rows]))]
    posts = (group[rows], codes[rows], seconds[rows])
    keys, owners, capped = window_pairs(posts, float(options.window), int(options.max_followers), n_accounts)
    distinct = distinct_per_segment(keys, owners)  # one meeting per (repost group, pair)
    pairs, counts = np.unique(distinct, return_counts=True)
    kept = pairs[counts >= options.min_repetition]
    return kept // n_accounts, kept % n_accounts, len(distinct), int(capped)


@dataclasses.dataclass(frozen=True)
class CandidatePosts:
    """Every dated post of the accounts in edges, account by account (then repost group, time, row): what the null
    model permutes."""

    accounts: np.ndarray  # account codes, ascending (local index = position)
    starts: np.ndarray  # posts of local account i: [starts[i], starts[i + 1])
    rows: np.ndarray
    groups: np.ndarray  # repost group of each post, -1 for none
    times: np.ndarray  # int64 epoch seconds

    @classmethod
    def build(cls, accounts, group, codes, seconds, dated) -> CandidatePosts:
        rows = np.flatnonzero(dated & np.isin(codes, accounts))
        local = np.searchsorted(accounts, codes[rows])
        order = np.lexsort((rows, seconds[rows], group[rows], local))
        rows, local = rows[order], local[order]
        starts = np.searchsorted(local, np.arange(len(accounts) + 1))
        return cls(accounts, starts, rows, group[rows], seconds[rows])

    def local(self, codes: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.accounts, codes)


@dataclasses.dataclass(frozen=True)
class SharedPosts:
    """For every edge and repost group both accounts posted: the pairs of their posts, as one segment."""

    entry_a: np.ndarray  # indices into CandidatePosts
    entry_b: np.ndarray
    seg_start: np.ndarray  # entries of segment s: [seg_start[s], seg_start[s + 1])
    seg_edge: np.ndarray
    seg_group: np.ndarray


def _shared_posts(posts: CandidatePosts, la: np.ndarray, lb: np.ndarray) -> SharedPosts:
    return SharedPosts(*shared_kernel(posts.starts, posts.groups, la, lb, MAX_POSTS_PER_ACCOUNT_GROUP))


def _components(la: np.ndarray, lb: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Connected components of the edges over local accounts; accounts left without an edge get -1."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(la)), (la, lb)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    linked = np.zeros(n, dtype=bool)
    linked[la] = linked[lb] = True
    used, dense = np.unique(label[linked], return_inverse=True)
    component = np.full(n, -1, dtype=np.int64)
    component[linked] = dense
    return component, len(used)


@dataclasses.dataclass(frozen=True)
class Edges:
    """The kept pairs (codes ``a < b``, local indices ``la``, ``lb``), recounted exactly, and their components."""

    a: np.ndarray
    b: np.ndarray
    la: np.ndarray
    lb: np.ndarray
    observed: np.ndarray  # distinct repost groups posted together
    shared: SharedPosts
    gaps: np.ndarray  # per segment of ``shared``: the closest two posts, seconds
    component: np.ndarray  # per local account, -1 without an edge
    n_components: int


def _recounted(posts: CandidatePosts, a: np.ndarray, b: np.ndarray, options: CoordinationOptions) -> Edges:
    """Recount the windows' edges exactly; those that fall below ``min_repetition`` (the post cap) are dropped."""
    la, lb = posts.local(a), posts.local(b)
    shared = _shared_posts(posts, la, lb)
    gaps = segment_min_gaps(posts.times, shared.entry_a, shared.entry_b, shared.seg_start)
    observed = np.bincount(shared.seg_edge[gaps <= options.window], minlength=len(a))
    keep = observed >= options.min_repetition
    if not keep.all():
        a, b, la, lb, observed = a[keep], b[keep], la[keep], lb[keep], observed[keep]
        shared = _shared_posts(posts, la, lb)
        gaps = segment_min_gaps(posts.times, shared.entry_a, shared.entry_b, shared.seg_start)
    component, n_components = _components(la, lb, len(posts.accounts))
    return Edges(a, b, la, lb, observed.astype(np.int64), shared, gaps, component, n_components)


# --- null model ------------------------------------------------------------------------------------------------------

# --- assembly --------------------------------------------------------------------------------------------------------


def _rank(posts: CandidatePosts, edges: Edges, null: NullModel, meetings: np.ndarray) -> np.ndarray:
    """Components in rank order: lowest p-value, highest z, most meetings, most accounts, then lowest account code."""
    component, k = edges.component, edges.n_components
    linked = component >= 0
    sizes = np.bincount(component[linked], minlength=k)
    smallest = np.full(k, np.iinfo(np.int64).max)
    np.minimum.at(smallest, component[linked], posts.accounts[linked])
    p_rank = np.where(np.isnan(null.p), 2.0, null.p)
    z_rank = np.where(np.isnan(null.z), 0.0, null.z)
    return np.lexsort((smallest, -sizes, -meetings, -z_rank, p_rank))


def _assemble(
    posts: CandidatePosts,
    edges: Edges,
    null: NullModel,
    *,
    group: np.ndarray,
    labels,
    n_accounts: int,
    counts: tuple[int, int],
    options: CoordinationOptions,
) -> Coordination:
    """Number the components by rank and gather what each coordinated group and pair reports."""
    k, component = edges.n_components, edges.component
    edge_component = component[edges.la]
    hit = edges.gaps <= options.window
    hit_edge, hit_group = edges.shared.seg_edge[hit], edges.shared.seg_group[hit]
    hit_gap = edges.gaps[hit].astype(np.float64)
    meetings = np.bincount(edge_component, weights=edges.observed, minlength=k).astype(np.int64)
    ranked = _rank(posts, edges, null, meetings)  # group i of the result is component ranked[i]
    rank = np.empty(k, dtype=np.int64)
    rank[ranked] = np.arange(k)
    edge_rank = rank[edge_component]
    account_rank = np.where(component >= 0, rank[np.maximum(component, 0)], -1)
    width = int(group.max()) + 1
    shared_keys = np.unique(edge_rank[hit_edge] * width + hit_group)
    post_rank = account_rank[np.searchsorted(posts.starts, np.arange(len(posts.rows)), side="right") - 1]
    shared_post = (post_rank >= 0) & (posts.groups >= 0) & np.isin(post_rank * width + posts.groups, shared_keys)
    row_group = np.full(len(group), -1, dtype=np.int64)
    row_group[posts.rows[shared_post]] = post_rank[shared_post]
    account_group = np.full(n_accounts, -1, dtype=np.int64)
    account_group[posts.accounts] = account_rank
    pair_median, pair_max = _median_and_max(hit_edge, hit_gap, len(edges.a))
    group_median, group_max = _median_and_max(edge_rank[hit_edge], hit_gap, k)
    pairs = CoordinatedPairs(
        a=edges.a,
        b=edges.b,
        together=edges.observed,
        median_gap=pair_median,
        max_gap=pair_max,
        expected=null.edge_expected,
        p_value=null.edge_p,
        group=edge_rank,
    )
    repost_groups, first_rows = _shared_repost_groups(
        shared_keys, width, k, posts=posts, shared_post=shared_post, post_rank=post_rank
    )
    return Coordination(
        options=options,
        pairs=pairs,
        n_groups=k,
        accounts=tuple(np.sort(posts.accounts[component == c]) for c in ranked),
        repost_groups=repost_groups,
        first_rows=first_rows,
        together=np.array([len(r) for r in repost_groups], dtype=np.int64),
        meetings=meetings[ranked],
        expected=null.expected[ranked],
        null_sd=null.sd[ranked],
        z=null.z[ranked],
        p_value=null.p[ranked],
        median_gap=group_median,
        max_gap=group_max,
        clusters=_clusters_of(row_group, labels, k),
        account_group=account_group,
        row_group=row_group,
        formed_pairs=counts[0],
        capped_posts=counts[1],
    )


def _shared_repost_groups(shared_keys, width, k, *, posts, shared_post, post_rank):
    """Per coordinated group, its shared repost groups and the row of its earliest post of each."""
    owner, repost = shared_keys // width, shared_keys % width
    starts = np.searchsorted(owner, np.arange(k + 1))
    # posts are in (account, group, time, row) order: the earliest per (coordinated group, repost group) by time.
    index = np.flatnonzero(shared_post)
    index = index[np.lexsort((posts.rows[index], posts.times[index], posts.groups[index], post_rank[index]))]
    keys = post_rank[index] * width + posts.groups[index]
    _, first = np.unique(keys, return_index=True)  # ascending keys: the same order as shared_keys
    first_rows = posts.rows[index[first]]
    return (
        tuple(repost[starts[c] : starts[c + 1]] for c in range(k)),
        tuple(first_rows[starts[c] : starts[c + 1]] for c in range(k)),
    )


def _median_and_max(owner: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per owner 0..k-1, the median and the largest of its values (NaN for an owner without any); vectorised, as
    there can be millions of owners (every pair an edge with ``min_repetition`` 1)."""
    order = np.lexsort((values, owner))
    values = values[order]
    counts = np.bincount(owner, minlength=k)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    median, largest = np.full(k, np.nan), np.full(k, np.nan)
    has = counts > 0
    low, high = starts[has] + (counts[has] - 1) // 2, starts[has] + counts[has] // 2
    median[has] = (values[low] + values[high]) / 2
    largest[has] = values[starts[has] + counts[has] - 1]
    return median, largest


def _clusters_of(row_group: np.ndarray, labels, k: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    if labels is None:
        return tuple(() for _ in range(k))
    labels = checked_rows(np.asarray(labels, dtype=np.int64).ravel(), len(row_group), "labels")
    rows = np.flatnonzero((row_group >= 0) & (labels >= 0))
    if not len(rows):
        return tuple(() for _ in range(k))
    width = int(labels.max()) + 1
    keys, counts = np.unique(row_group[rows] * width + labels[rows], return_counts=True)
    owner, label = keys // width, keys % width
    listed: list[list[tuple[int, int]]] = [[] for _ in range(k)]
    for i in np.lexsort((label, -counts, owner)):
        listed[owner[i]].append((int(label[i]), int(counts[i])))
    return tuple(tuple(x) for x in listed)


def _nothing(options: CoordinationOptions, n: int, n_accounts: int, formed: int, capped: int) -> Coordination:
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    pairs = CoordinatedPairs(empty_i, empty_i, empty_i, empty_f, empty_f, empty_f, empty_f, empty_i)
    return Coordination(
        options=options,
        pairs=pairs,
        n_groups=0,
        accounts=(),
        repost_groups=(),
        first_rows=(),
        together=empty_i,
        meetings=empty_i,
        expected=empty_f,
        null_sd=empty_f,
        z=empty_f,
        p_value=empty_f,
        median_gap=empty_f,
        max_gap=empty_f,
        clusters=(),
        account_group=np.full(n_accounts, -1, dtype=np.int64),
        row_group=np.full(n, -1, dtype=np.int64),
        formed_pairs=formed,
        capped_posts=capped,
    )

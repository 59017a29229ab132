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

import numba
import numpy as np
import pyarrow as pa

from clustering.analysis.posts import Accounts, cluster_index
from clustering.config import ConfigError

__all__ = [
    "ClusterCoordination",
    "CoordinatedPairs",
    "Coordination",
    "CoordinationOptions",
    "cluster_coordination",
    "find_coordination",
]

# Seconds within which two posts of one repost group count as posted together. CooRTweet's default is 10 s for
# retweets and shared URLs, one click each; an image repost is a download and a re-upload (the copies are
# re-encoded), which takes longer. 60 s holds the 30 s of the planted chains in tests/test_coordination.py; under
# activity spread evenly over a day, two given posts fall within 60 s of each other with probability 120/86,400.
WINDOW_SECONDS = 60.0
# Distinct repost groups a pair must post together to be an edge. CooRTweet's min_repetition default was 2. Among
# bench/coordination.py's 1,000,000 posts (organic part, seed 0: Zipf-like accounts, a 50,000-post viral group) chance
# alone made 1,601,440 pairs meet once, 3 twice and 1 three times (the two busiest accounts, 17,729 and 7,330 posts):
# 3 keeps nearly all chance meetings of busy accounts out, and the null model scores the rest.
MIN_REPETITION = 3
# Seeded rounds of the null model: the smallest p-value is 1/201 ~ 0.005.
NULL_ROUNDS = 200
# Later posts one post is paired with at most (the burst bound): a coordinated group of up to 100 accounts posting
# within one window is paired in full; bench/coordination.py's burst of 5,000 posts in 60 s costs 5,000 x 100 pairs
# instead of 12.5 million.
MAX_FOLLOWERS = 100
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
        ``--coordination-null-rounds``: rounds of the null model (0: no scores).
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
            ("--coordination-null-rounds", self.null_rounds, 0),
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
                "expected": _floats(self.expected),
                "null_sd": _floats(self.null_sd),
                "z": _floats(self.z),
                "p_value": _floats(self.p_value),
                "median_gap_s": _floats(self.median_gap),
                "max_gap_s": _floats(self.max_gap),
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
                "median_gap_s": _floats(p.median_gap[order]),
                "max_gap_s": _floats(p.max_gap[order]),
                "expected": _floats(p.expected[order]),
                "p_value": _floats(p.p_value[order]),
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


def _floats(values: np.ndarray) -> pa.Array:
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
    codes = _checked_rows(np.asarray(accounts.codes, dtype=np.int64), n, "accounts")
    seconds, dated = _epoch_seconds(_checked_rows(np.asarray(dates, dtype="datetime64[s]"), n, "dates"))
    a, b, formed, capped = _edges(group, codes, seconds, dated, n_accounts, options)
    if not len(a):
        return _nothing(options, n, n_accounts, formed, capped)
    posts = _CandidatePosts.build(np.union1d(a, b), group, codes, seconds, dated)
    edges = _recounted(posts, a, b, options)
    if not len(edges.a):
        return _nothing(options, n, n_accounts, formed, capped)
    background = _Background.build(posts, edges.shared, group, codes, dated, seconds)
    null = _null_model(posts, edges, background, options)
    return _assemble(
        posts, edges, null, group=group, labels=labels, n_accounts=n_accounts, counts=(formed, capped), options=options
    )


def cluster_coordination(
    labels, accounts: Accounts | None, coordination: Coordination | None = None
) -> ClusterCoordination:
    """Per cluster: the share of its posts made by accounts of a coordinated group, and the Herfindahl index of its
    accounts.

    Parameters
    ----------
    labels : array-like of int
        Per-row cluster labels, -1 for noise (any level).
    accounts : Accounts or None
        Per-row account codes; None: only ``posts`` is filled.
    coordination : Coordination, optional
        Without it no account counts as coordinated (``coordinated_posts`` is 0).

    Returns
    -------
    ClusterCoordination
    """
    ids, position = cluster_index(labels)
    k = len(ids)
    posts = np.bincount(position[position >= 0], minlength=k).astype(np.int64)
    if accounts is None:
        nothing = np.full(k, np.nan)
        return ClusterCoordination(ids, posts, np.zeros(k, np.int64), nothing, nothing.copy())
    codes = _checked_rows(np.asarray(accounts.codes, dtype=np.int64), len(position), "accounts")
    known = (position >= 0) & (codes >= 0)
    with_account = np.bincount(position[known], minlength=k)
    coordinated_account = (
        coordination.account_group >= 0 if coordination is not None else np.zeros(len(accounts.names), dtype=bool)
    )
    by_coordinated = known & coordinated_account[np.where(codes >= 0, codes, 0)]
    coordinated = np.bincount(position[by_coordinated], minlength=k).astype(np.int64)
    width = max(len(accounts.names), 1)
    pairs, counts = np.unique(position[known] * width + codes[known], return_counts=True)
    owner = pairs // width
    # Herfindahl index: the sum of the squared shares of each account in the cluster's posts (1/accounts .. 1).
    squares = np.bincount(owner, weights=counts.astype(np.float64) ** 2, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(with_account > 0, coordinated / with_account, np.nan)
        herfindahl = np.where(with_account > 0, squares / with_account.astype(np.float64) ** 2, np.nan)
    return ClusterCoordination(ids, posts, coordinated, share, herfindahl)


@dataclasses.dataclass(frozen=True)
class ClusterCoordination:
    """Coordinated posting and account concentration per cluster.

    Attributes
    ----------
    clusters : numpy.ndarray
        int64 cluster ids (every non-negative label present), ascending.
    posts : numpy.ndarray
        int64 rows per cluster.
    coordinated_posts : numpy.ndarray
        int64 posts made by accounts of a coordinated group (all their posts, not only the shared ones).
    coordinated_share : numpy.ndarray
        float64 ``coordinated_posts`` / posts with a known account; NaN when none has one.
    herfindahl : numpy.ndarray
        float64 Herfindahl index of the cluster's accounts: the sum of each account's squared share of the posts
        with a known account (1/accounts when all post equally, 1 for one account); NaN when none has one.
    """

    clusters: np.ndarray
    posts: np.ndarray
    coordinated_posts: np.ndarray
    coordinated_share: np.ndarray
    herfindahl: np.ndarray

    def table(self) -> pa.Table:
        """``cluster``, ``coordinated_posts``, ``coordinated_share``, ``account_herfindahl``: ``clusters.csv``
        columns (join on ``cluster``)."""
        return pa.table(
            {
                "cluster": pa.array(self.clusters, pa.int32()),
                "coordinated_posts": pa.array(self.coordinated_posts, pa.int64()),
                "coordinated_share": _floats(self.coordinated_share),
                "account_herfindahl": _floats(self.herfindahl),
            }
        )


# --- inputs ----------------------------------------------------------------------------------------------------------


def _checked_rows(values: np.ndarray, n: int, name: str) -> np.ndarray:
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
    n_accounts: int,
    options: CoordinationOptions,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Account pairs (a < b) that posted together in at least ``min_repetition`` repost groups, by the windows; with
    the meetings formed and the posts the burst bound capped."""
    rows = np.flatnonzero((group >= 0) & (codes >= 0) & dated)
    rows = rows[np.lexsort((codes[rows], seconds[rows], group[rows]))]
    keys, owners, capped = _window_pairs(
        group[rows], codes[rows], seconds[rows], float(options.window), int(options.max_followers), n_accounts
    )
    distinct = _distinct_per_segment(keys, owners)  # one meeting per (repost group, pair)
    pairs, counts = np.unique(distinct, return_counts=True)
    kept = pairs[counts >= options.min_repetition]
    return kept // n_accounts, kept % n_accounts, len(distinct), int(capped)


@dataclasses.dataclass(frozen=True)
class _CandidatePosts:
    """Every dated post of the accounts in edges, account by account (then repost group, time, row): what the null
    model permutes."""

    accounts: np.ndarray  # account codes, ascending (local index = position)
    starts: np.ndarray  # posts of local account i: [starts[i], starts[i + 1])
    rows: np.ndarray
    groups: np.ndarray  # repost group of each post, -1 for none
    times: np.ndarray  # int64 epoch seconds

    @classmethod
    def build(cls, accounts, group, codes, seconds, dated) -> _CandidatePosts:
        rows = np.flatnonzero(dated & np.isin(codes, accounts))
        local = np.searchsorted(accounts, codes[rows])
        order = np.lexsort((rows, seconds[rows], group[rows], local))
        rows, local = rows[order], local[order]
        starts = np.searchsorted(local, np.arange(len(accounts) + 1))
        return cls(accounts, starts, rows, group[rows], seconds[rows])

    def local(self, codes: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.accounts, codes)


@dataclasses.dataclass(frozen=True)
class _SharedPosts:
    """For every edge and repost group both accounts posted: the pairs of their posts, as one segment."""

    entry_a: np.ndarray  # indices into _CandidatePosts
    entry_b: np.ndarray
    seg_start: np.ndarray  # entries of segment s: [seg_start[s], seg_start[s + 1])
    seg_edge: np.ndarray
    seg_group: np.ndarray


def _shared_posts(posts: _CandidatePosts, la: np.ndarray, lb: np.ndarray) -> _SharedPosts:
    return _SharedPosts(*_shared_kernel(posts.starts, posts.groups, la, lb, MAX_POSTS_PER_ACCOUNT_GROUP))


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
class _Edges:
    """The kept pairs (codes ``a < b``, local indices ``la``, ``lb``), recounted exactly, and their components."""

    a: np.ndarray
    b: np.ndarray
    la: np.ndarray
    lb: np.ndarray
    observed: np.ndarray  # distinct repost groups posted together
    shared: _SharedPosts
    gaps: np.ndarray  # per segment of ``shared``: the closest two posts, seconds
    component: np.ndarray  # per local account, -1 without an edge
    n_components: int


def _recounted(posts: _CandidatePosts, a: np.ndarray, b: np.ndarray, options: CoordinationOptions) -> _Edges:
    """Recount the windows' edges exactly; those that fall below ``min_repetition`` (the post cap) are dropped."""
    la, lb = posts.local(a), posts.local(b)
    shared = _shared_posts(posts, la, lb)
    gaps = _segment_min_gaps(posts.times, shared.entry_a, shared.entry_b, shared.seg_start)
    observed = np.bincount(shared.seg_edge[gaps <= options.window], minlength=len(a))
    keep = observed >= options.min_repetition
    if not keep.all():
        a, b, la, lb, observed = a[keep], b[keep], la[keep], lb[keep], observed[keep]
        shared = _shared_posts(posts, la, lb)
        gaps = _segment_min_gaps(posts.times, shared.entry_a, shared.entry_b, shared.seg_start)
    component, n_components = _components(la, lb, len(posts.accounts))
    return _Edges(a, b, la, lb, observed.astype(np.int64), shared, gaps, component, n_components)


# --- null model ------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Null:
    edge_expected: np.ndarray
    edge_p: np.ndarray
    expected: np.ndarray
    sd: np.ndarray
    z: np.ndarray
    p: np.ndarray


@dataclasses.dataclass(frozen=True)
class _Background:
    """The circulation of each shared repost group without the paired accounts: the times of its posts by accounts in
    no edge, for the repost groups that have at least as many such posts as the paired accounts made there."""

    post_start: np.ndarray  # candidate posts of eligible group i: post_index[post_start[i]:post_start[i + 1]]
    post_index: np.ndarray  # indices into _CandidatePosts
    time_start: np.ndarray  # background times of eligible group i: times[time_start[i]:time_start[i + 1]]
    times: np.ndarray

    @classmethod
    def build(cls, posts, shared, group, codes, dated, seconds) -> _Background:
        shared_groups = np.unique(shared.seg_group)
        in_shared = (posts.groups >= 0) & np.isin(posts.groups, shared_groups)
        candidate_index = np.flatnonzero(in_shared)
        candidate_group = posts.groups[candidate_index]
        outside_rows = np.flatnonzero(
            dated & (group >= 0) & np.isin(group, shared_groups) & ~np.isin(codes, posts.accounts)
        )
        outside_rows = outside_rows[np.argsort(group[outside_rows], kind="stable")]
        outside_group = group[outside_rows]
        seats = np.searchsorted(np.sort(candidate_group), shared_groups, side="right") - np.searchsorted(
            np.sort(candidate_group), shared_groups
        )
        pool = np.searchsorted(outside_group, shared_groups, side="right") - np.searchsorted(
            outside_group, shared_groups
        )
        eligible = shared_groups[(pool >= seats) & (pool > 0)]
        index = candidate_index[np.isin(candidate_group, eligible)]
        index = index[np.argsort(posts.groups[index], kind="stable")]
        times_rows = outside_rows[np.isin(outside_group, eligible)]
        return cls(
            post_start=np.searchsorted(posts.groups[index], np.append(eligible, np.iinfo(np.int64).max)),
            post_index=index,
            time_start=np.searchsorted(group[times_rows], np.append(eligible, np.iinfo(np.int64).max)),
            times=seconds[times_rows],
        )


def _null_model(posts: _CandidatePosts, edges: _Edges, background: _Background, options: CoordinationOptions) -> _Null:
    """``null_rounds`` rounds of new times for the paired accounts' posts (the module's null model); every edge's
    meetings recounted each round."""
    rounds, shared, observed, k = options.null_rounds, edges.shared, edges.observed, edges.n_components
    edge_component = edges.component[edges.la]
    group_observed = np.bincount(edge_component, weights=observed, minlength=k)
    if not rounds:
        nan_edges, nan_groups = np.full(len(observed), np.nan), np.full(k, np.nan)
        return _Null(nan_edges, nan_edges.copy(), nan_groups, nan_groups.copy(), nan_groups.copy(), nan_groups.copy())
    rng = np.random.default_rng(options.seed)
    edge_sum = np.zeros(len(observed))
    edge_at_least = np.zeros(len(observed))
    group_sum, group_squares, group_at_least = np.zeros(k), np.zeros(k), np.zeros(k)
    shuffled = np.empty_like(posts.times)
    seats = np.arange(len(background.times), dtype=np.int64)  # reshuffled in place: any order is a valid start
    for _ in range(rounds):
        _shuffle_within(posts.times, posts.starts, rng.random(len(posts.times)), shuffled)
        _seat_in_background(shuffled, background.post_start, background.post_index, background.time_start,
                            background.times, seats, rng.random(len(background.post_index)))  # fmt: skip
        gaps = _segment_min_gaps(shuffled, shared.entry_a, shared.entry_b, shared.seg_start)
        counts = np.bincount(shared.seg_edge[gaps <= options.window], minlength=len(observed))
        edge_sum += counts
        edge_at_least += counts >= observed
        per_group = np.bincount(edge_component, weights=counts, minlength=k)
        group_sum += per_group
        group_squares += per_group**2
        group_at_least += per_group >= group_observed
    expected = group_sum / rounds
    sd = np.sqrt(np.maximum(group_squares / rounds - expected**2, 0.0))
    # Rule of three: with no chance meeting in ``rounds`` rounds, the chance rate is below 3/rounds (95 %).
    floor = math.sqrt(3.0 / rounds)
    return _Null(
        edge_expected=edge_sum / rounds,
        edge_p=(1 + edge_at_least) / (1 + rounds),
        expected=expected,
        sd=sd,
        z=(group_observed - expected) / np.maximum(sd, floor),
        p=(1 + group_at_least) / (1 + rounds),
    )


# --- assembly --------------------------------------------------------------------------------------------------------


def _rank(posts: _CandidatePosts, edges: _Edges, null: _Null, meetings: np.ndarray) -> np.ndarray:
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
    posts: _CandidatePosts,
    edges: _Edges,
    null: _Null,
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
    repost_groups, first_rows = _shared_repost_groups(shared_keys, width, k, posts, shared_post, post_rank)
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


def _shared_repost_groups(shared_keys, width, k, posts, shared_post, post_rank):
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
    labels = _checked_rows(np.asarray(labels, dtype=np.int64).ravel(), len(row_group), "labels")
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


# --- kernels ---------------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _window_pairs(group, account, seconds, window, max_followers, n_accounts):  # pragma: no cover - numba
    """Pair keys ``low * n_accounts + high`` of posts of one repost group at most ``window`` seconds apart (each post
    with at most ``max_followers`` later posts), the repost group of each, and how many posts the bound capped.
    Rows are sorted by (group, time). Two passes: count, then fill, so memory is exactly the pairs formed."""
    n = len(group)
    total = 0
    capped = 0
    for i in range(n):
        stop = min(n, i + 1 + max_followers)
        j = i + 1
        while j < stop and group[j] == group[i] and seconds[j] - seconds[i] <= window:
            if account[j] != account[i]:
                total += 1
            j += 1
        if j == stop and j < n and group[j] == group[i] and seconds[j] - seconds[i] <= window:
            capped += 1
    keys = np.empty(total, np.int64)
    owners = np.empty(total, np.int64)
    k = 0
    for i in range(n):
        stop = min(n, i + 1 + max_followers)
        j = i + 1
        while j < stop and group[j] == group[i] and seconds[j] - seconds[i] <= window:
            if account[j] != account[i]:
                low, high = min(account[i], account[j]), max(account[i], account[j])
                keys[k] = low * n_accounts + high
                owners[k] = group[i]
                k += 1
            j += 1
    return keys, owners, capped


@numba.njit(cache=True)
def _distinct_per_segment(keys, owners):  # pragma: no cover - numba
    """The distinct keys of each run of equal ``owners`` (runs are contiguous), concatenated."""
    n = len(keys)
    out = np.empty(n, np.int64)
    m = 0
    start = 0
    while start < n:
        stop = start
        while stop < n and owners[stop] == owners[start]:
            stop += 1
        run = np.sort(keys[start:stop])
        out[m] = run[0]
        m += 1
        for i in range(1, len(run)):
            if run[i] != run[i - 1]:
                out[m] = run[i]
                m += 1
        start = stop
    return out[:m]


@numba.njit(cache=True)
def _shared_kernel(starts, groups, la, lb, cap):  # pragma: no cover - numba
    """Merge each edge's two accounts' posts by repost group; per shared group, every pair of their posts (at most
    ``cap`` earliest of each account). Two passes: count, then fill."""
    n_entries = 0
    n_segments = 0
    entry_a = entry_b = seg_edge = seg_group = np.empty(0, np.int64)
    seg_start = np.zeros(1, np.int64)
    for phase in range(2):
        if phase == 1:
            entry_a = np.empty(n_entries, np.int64)
            entry_b = np.empty(n_entries, np.int64)
            seg_start = np.zeros(n_segments + 1, np.int64)
            seg_edge = np.empty(n_segments, np.int64)
            seg_group = np.empty(n_segments, np.int64)
        e = 0
        s = 0
        for edge in range(len(la)):
            ia, ea = starts[la[edge]], starts[la[edge] + 1]
            ib, eb = starts[lb[edge]], starts[lb[edge] + 1]
            while ia < ea and ib < eb:
                ga, gb = groups[ia], groups[ib]
                if ga < 0 or ga < gb:
                    ia += 1
                    continue
                if gb < 0 or gb < ga:
                    ib += 1
                    continue
                ra = ia
                while ra < ea and groups[ra] == ga:
                    ra += 1
                rb = ib
                while rb < eb and groups[rb] == gb:
                    rb += 1
                for x in range(ia, min(ra, ia + cap)):
                    for y in range(ib, min(rb, ib + cap)):
                        if phase == 1:
                            entry_a[e] = x
                            entry_b[e] = y
                        e += 1
                if phase == 1:
                    seg_edge[s] = edge
                    seg_group[s] = ga
                    seg_start[s + 1] = e
                s += 1
                ia, ib = ra, rb
        n_entries, n_segments = e, s
    return entry_a, entry_b, seg_start, seg_edge, seg_group


@numba.njit(cache=True)
def _segment_min_gaps(times, entry_a, entry_b, seg_start):  # pragma: no cover - numba
    """Per segment, the smallest |time difference| of its post pairs."""
    out = np.empty(len(seg_start) - 1, np.int64)
    for s in range(len(seg_start) - 1):
        best = np.iinfo(np.int64).max
        for e in range(seg_start[s], seg_start[s + 1]):
            gap = abs(times[entry_a[e]] - times[entry_b[e]])
            if gap < best:
                best = gap
        out[s] = best
    return out


@numba.njit(cache=True)
def _seat_in_background(out, post_start, post_index, time_start, times, seats, uniforms):  # pragma: no cover
    """Give the paired accounts' posts of each eligible repost group distinct times drawn from the group's background
    posts: a partial Fisher-Yates over ``seats`` (indices into ``times``; group g's stay in its own range), driven by
    numpy's seeded uniforms."""
    for g in range(len(post_start) - 1):
        low, high = time_start[g], time_start[g + 1]
        for i in range(post_start[g + 1] - post_start[g]):
            u = uniforms[post_start[g] + i]
            j = low + i + int(u * (high - low - i))
            seats[low + i], seats[j] = seats[j], seats[low + i]
            out[post_index[post_start[g] + i]] = times[seats[low + i]]


@numba.njit(cache=True)
def _shuffle_within(times, starts, uniforms, out):  # pragma: no cover - numba
    """Fisher-Yates shuffle of each account's run of ``times`` into ``out``, driven by numpy's seeded uniforms."""
    out[:] = times
    for account in range(len(starts) - 1):
        low, high = starts[account], starts[account + 1]
        for i in range(high - 1, low, -1):
            j = low + int(uniforms[i] * (i - low + 1))
            out[i], out[j] = out[j], out[i]

"""Time the coordination step (pairs in time-sorted windows, edges, groups, the null model) on synthetic posts.

``--rows`` posts (default 1,000,000) from 200,000 accounts of Zipf-like activity: one viral repost group of 50,000
posts by 20,000 accounts over 3 days, 5,000 of them in one 60-second burst; small organic repost groups (2-20 posts
over hours) holding 30 % of the rows; single posts for the rest; 1 % of dates and accounts missing. 20 coordinated
groups are planted, each 10 accounts drawn like any other (busy ones included) posting 20 images within 30 s of each
other. The whole call (``find_coordination`` with its 200 null rounds, then ``cluster_coordination``) runs at
``--rows`` and at a tenth of it (viral group a tenth too) in the same process, best of three: the ratio says how the
cost grows (about 10: linear). ``repost_lineage`` is timed beside it. Peak RSS is the process's (``ru_maxrss``),
printed before and after the steps.

The peer is CooRTweet's method as its documentation describes it, written plainly with pandas: a self-join of the
posts on the object (here the repost group), every time difference, the pairs within the window kept, one per
(object, account pair), counted per pair. It runs on the first ``--peer-posts`` posts of the viral group only (a
self-join of all 50,000 would form 2.5 billion rows), beside this module's windows on the same slice (burst bound
lifted, so both must find the same pairs).

``python bench/coordination.py [--rows 1000000] [--peer-posts 3000]``
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from clustering.analysis.posts.columns import Accounts
from clustering.analysis.posts.concentration import cluster_coordination
from clustering.analysis.posts.coordination import CoordinationOptions, find_coordination
from clustering.analysis.posts.lineage import repost_lineage
from clustering.analysis.posts.reposts import RepostGroups

ACCOUNTS = 200_000
VIRAL_POSTS, VIRAL_ACCOUNTS, BURST_POSTS = 50_000, 20_000, 5_000
PLANTED_GROUPS, PLANTED_ACCOUNTS, PLANTED_IMAGES = 20, 10, 20
N_PLANTED = PLANTED_GROUPS * PLANTED_IMAGES  # repost groups 1..N_PLANTED are the planted ones
DAY = 86_400


def synthetic(n: int, *, viral_posts: int = VIRAL_POSTS, seed: int = 0) -> dict:
    """Per-row arrays as the pipeline holds them: repost group, account codes, datetime64[s] dates, labels."""
    rng = np.random.default_rng(seed)
    n_accounts = max(ACCOUNTS * n // 1_000_000, 1000)
    weights = 1.0 / np.arange(1, n_accounts + 1) ** 0.8  # Zipf-like: a few accounts post thousands of times
    weights /= weights.sum()
    viral_accounts = max(viral_posts * VIRAL_ACCOUNTS // VIRAL_POSTS, 2)
    burst = viral_posts * BURST_POSTS // VIRAL_POSTS
    planted = PLANTED_GROUPS * PLANTED_ACCOUNTS * PLANTED_IMAGES
    grouped = int(0.3 * n)
    singles = n - viral_posts - planted - grouped
    group = np.full(n, -1, dtype=np.int64)
    seconds = np.empty(n, dtype=np.int64)
    codes = rng.choice(n_accounts, size=n, p=weights).astype(np.int64)
    # The viral group (group 0): every one of its accounts posts it at least once, most in the first day.
    viral = slice(0, viral_posts)
    group[viral] = 0
    members = rng.choice(n_accounts, viral_accounts, replace=False)
    codes[viral] = np.concatenate([members, rng.choice(members, viral_posts - viral_accounts)])
    start = 10 * DAY
    spread = (3 * DAY * rng.beta(0.7, 2.5, viral_posts)).astype(np.int64)
    spread[:burst] = 2 * 3600 + rng.integers(0, 60, burst)  # thousands of accounts within one minute
    seconds[viral] = start + spread
    # The planted coordinated groups: 10 accounts each, 20 images each (groups 1..400), within 30 s each time.
    offset = viral_posts
    planted_groups = rng.choice(n_accounts, size=(PLANTED_GROUPS, PLANTED_ACCOUNTS), replace=False, p=weights)
    for members_of_group in planted_groups:
        for _ in range(PLANTED_IMAGES):
            rows = slice(offset, offset + PLANTED_ACCOUNTS)
            group[rows] = 1 + (offset - viral_posts) // PLANTED_ACCOUNTS
            codes[rows] = members_of_group
            seconds[rows] = rng.integers(0, 30 * DAY) + rng.integers(0, 31, PLANTED_ACCOUNTS)
            offset += PLANTED_ACCOUNTS
    # Small organic repost groups: sizes 2-20, each over a few hours around its own moment.
    sizes = np.minimum(rng.zipf(2.0, grouped) + 1, 20)
    sizes = sizes[np.cumsum(sizes) <= grouped]
    sizes = np.append(sizes, grouped - sizes.sum()) if grouped > sizes.sum() else sizes
    small = np.repeat(np.arange(len(sizes)) + 1 + N_PLANTED, sizes)
    rows = slice(offset, offset + grouped)
    group[rows] = small
    centre = rng.integers(0, 30 * DAY, len(sizes))
    seconds[rows] = centre[small - 1 - N_PLANTED] + rng.exponential(6 * 3600, grouped).astype(np.int64)
    offset += grouped
    seconds[offset:] = rng.integers(0, 30 * DAY, singles)
    dates = np.datetime64("2025-01-01T00:00:00", "s") + seconds.astype("timedelta64[s]")
    dates[rng.uniform(size=n) < 0.01] = np.datetime64("NaT")
    codes[rng.uniform(size=n) < 0.01] = -1
    order = rng.permutation(n)  # rows in no telling order
    names = np.array([f"user{i}" for i in range(n_accounts)], dtype=object)
    labels = np.where(rng.uniform(size=n) < 0.3, -1, rng.integers(0, 300, n))
    return {
        "group": group[order],
        "accounts": Accounts(codes=codes[order], names=names),
        "dates": dates[order],
        "labels": labels,
        "planted": [set(m.tolist()) for m in planted_groups],
    }


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def timed(step, repeats: int = 1) -> tuple[float, object]:
    """Best time of ``repeats`` runs, and the result."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = step()
        best = min(best, time.perf_counter() - start)
    return best, result


def recovered(found, planted: list[set]) -> tuple[int, float, float]:
    """Planted groups matched by a reported group with precision and recall >= 0.9, and the overall precision and
    recall over the planted accounts."""
    reported = [set(a.tolist()) for a in found.accounts]
    matched = sum(any(len(r & p) >= 0.9 * len(r) and len(r & p) >= 0.9 * len(p) for r in reported) for p in planted)
    everyone, truth = set().union(*reported), set().union(*planted)
    return matched, len(everyone & truth) / max(len(everyone), 1), len(everyone & truth) / len(truth)


def coordination_step(data: dict, options: CoordinationOptions):
    result = find_coordination(data["group"], data["accounts"], data["dates"], labels=data["labels"], options=options)
    cluster_coordination(data["labels"], data["accounts"], result)
    return result


def lineage_step(data: dict):
    group = data["group"]
    groups = RepostGroups(group, np.arange(len(group)), int(group.max()) + 1, 0, 0, 0)
    return repost_lineage(groups, dates=data["dates"], accounts=data["accounts"])


def coortweet_pairs(group, codes, seconds, window: float, min_repetition: int) -> set[tuple[int, int]]:
    """CooRTweet's detect_groups, plainly: self-join on the object, time differences, pairs within the window."""
    posts = pd.DataFrame({"object": group, "account": codes, "t": seconds})
    joined = posts.merge(posts, on="object", suffixes=("", "_y"))
    near = joined[(joined.account < joined.account_y) & ((joined.t - joined.t_y).abs() <= window)]
    distinct = near[["object", "account", "account_y"]].drop_duplicates()
    counts = distinct.groupby(["account", "account_y"]).size()
    return set(counts[counts >= min_repetition].index)


def peer(data: dict, n_posts: int) -> tuple[float, float, bool]:
    """Seconds of the self-join and of this module's windows on the first ``n_posts`` viral posts (and the planted
    posts, so some pairs repeat), and whether both found the same pairs."""
    group, codes, dates = data["group"], data["accounts"].codes, data["dates"]
    usable = (codes >= 0) & ~np.isnat(dates)
    rows = np.concatenate([np.flatnonzero((group == 0) & usable)[:n_posts],
                           np.flatnonzero((group >= 1) & (group <= N_PLANTED) & usable)])  # fmt: skip
    seconds = dates[rows].astype(np.int64)
    options = CoordinationOptions(null_rounds=0, max_followers=n_posts)  # no burst bound: the same pairs
    ours_s, ours = timed(lambda: find_coordination(group[rows], Accounts(codes[rows], data["accounts"].names),
                                                   dates[rows], options=options))  # fmt: skip
    theirs_s, theirs = timed(lambda: coortweet_pairs(group[rows], codes[rows], seconds, options.window,
                                                     options.min_repetition))  # fmt: skip
    same = theirs == set(zip(ours.pairs.a.tolist(), ours.pairs.b.tolist(), strict=True))
    return ours_s, theirs_s, same


def chance_meetings(data: dict, options: CoordinationOptions) -> dict[int, int]:
    """Pairs meeting exactly 1, 2, 3, ... times among the organic posts (the planted groups left out)."""
    organic = (data["group"] == 0) | (data["group"] > N_PLANTED)
    loose = CoordinationOptions(window=options.window, min_repetition=1, null_rounds=0)
    found = find_coordination(np.where(organic, data["group"], -1), data["accounts"], data["dates"], options=loose)
    times, counts = np.unique(found.pairs.together, return_counts=True)
    return dict(zip(times.tolist(), counts.tolist(), strict=True))


def every_pair_an_edge(data: dict) -> tuple[float, int]:
    """The null model's worst case: ``min_repetition`` 1 makes every pair that met once an edge, scored in full."""
    options = CoordinationOptions(min_repetition=1)
    seconds, found = timed(lambda: coordination_step(data, options))
    return seconds, len(found.pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--peer-posts", type=int, default=3000)
    args = parser.parse_args()
    options = CoordinationOptions()
    coordination_step(synthetic(20_000, viral_posts=1000), options)  # warm-up: numba's cache, first calls
    small = synthetic(args.rows // 10, viral_posts=VIRAL_POSTS // 10, seed=1)
    large = synthetic(args.rows)
    print(f"data generated; peak RSS so far {peak_rss_mib():.0f} MiB")
    small_s, _ = timed(lambda: coordination_step(small, options), repeats=3)
    large_s, found = timed(lambda: coordination_step(large, options), repeats=3)
    rss = peak_rss_mib()
    lineage_s, _ = timed(lambda: lineage_step(large))
    print(f"coordination step: {args.rows // 10:,} rows {small_s:.2f} s, {args.rows:,} rows {large_s:.2f} s "
          f"(ratio {large_s / small_s:.1f}); peak RSS {rss:.0f} MiB")  # fmt: skip
    print(f"  {found.formed_pairs:,} (repost group, pair) meetings formed, {found.capped_posts:,} posts capped by "
          f"the burst bound, {len(found.pairs):,} pairs kept, {found.n_groups} groups")  # fmt: skip
    matched, precision, recall = recovered(found, large["planted"])
    print(f"  planted groups found: {matched} of {PLANTED_GROUPS}; over their accounts precision {precision:.3f}, "
          f"recall {recall:.3f}; top: {found.describe(0) if found.n_groups else 'none'}")  # fmt: skip
    print(f"repost_lineage at {args.rows:,} rows: {lineage_s:.2f} s; peak RSS {peak_rss_mib():.0f} MiB")
    ours_s, theirs_s, same = peer(large, args.peer_posts)
    print(f"peer on {args.peer_posts:,} viral posts + the planted ones: self-join (CooRTweet's method) "
          f"{theirs_s:.2f} s, windows {ours_s:.2f} s (ratio {theirs_s / ours_s:.1f}); same pairs: {same}")  # fmt: skip
    print(f"chance meetings among organic pairs (times: pairs): {chance_meetings(large, options)}")
    worst_s, edges = every_pair_an_edge(large)
    print(f"--min-repetition 1 at {args.rows:,} rows ({edges:,} edges, each scored over 200 rounds): {worst_s:.1f} s; "
          f"peak RSS {peak_rss_mib():.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()

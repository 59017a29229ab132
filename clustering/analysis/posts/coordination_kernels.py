"""numba kernels of the coordination search (:mod:`clustering.analysis.posts.coordination`) and of its null model
(:mod:`clustering.analysis.posts.coordination_null`): array loops over posts sorted by repost group and time."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def window_pairs(posts, window, max_followers, n_accounts):  # pragma: no cover - numba
    """Pair keys ``low * n_accounts + high`` of posts of one repost group at most ``window`` seconds apart (each post
    with at most ``max_followers`` later posts), the repost group of each, and how many posts the bound capped.
    ``posts`` is (group, account, seconds), sorted by (group, time). Two passes: count, then fill, so memory is exactly
    the pairs formed."""
    group, account, seconds = posts
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
def distinct_per_segment(keys, owners):  # pragma: no cover - numba
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
def shared_kernel(starts, groups, la, lb, cap):  # pragma: no cover - numba
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
def segment_min_gaps(times, entry_a, entry_b, seg_start):  # pragma: no cover - numba
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
def seat_in_background(out, background, seats, uniforms):  # pragma: no cover - numba
    """Give the paired accounts' posts of each eligible repost group distinct times drawn from the group's background
    posts: a partial Fisher-Yates over ``seats`` (indices into ``times``; group g's stay in its own range), driven by
    numpy's seeded uniforms. ``background`` is (post_start, post_index, time_start, times) of ``Background``."""
    post_start, post_index, time_start, times = background
    for g in range(len(post_start) - 1):
        low, high = time_start[g], time_start[g + 1]
        for i in range(post_start[g + 1] - post_start[g]):
            u = uniforms[post_start[g] + i]
            j = low + i + int(u * (high - low - i))
            seats[low + i], seats[j] = seats[j], seats[low + i]
            out[post_index[post_start[g] + i]] = times[seats[low + i]]


@numba.njit(cache=True)
def shuffle_within(times, starts, uniforms, out):  # pragma: no cover - numba
    """Fisher-Yates shuffle of each account's run of ``times`` into ``out``, driven by numpy's seeded uniforms."""
    out[:] = times
    for account in range(len(starts) - 1):
        low, high = starts[account], starts[account + 1]
        for i in range(high - 1, low, -1):
            j = low + int(uniforms[i] * (i - low + 1))
            out[i], out[j] = out[j], out[i]

"""The null model of coordinated image sharing: how often the paired accounts would meet by chance.

Per round, every post of the accounts in edges gets a new time (the module docstring of
:mod:`clustering.analysis.posts.coordination` states the model), then every edge's meetings are recounted; a group's
score is the z-score and the empirical p-value of its meetings over the rounds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from clustering.analysis.posts.coordination_kernels import seat_in_background, segment_min_gaps, shuffle_within

if TYPE_CHECKING:
    from clustering.analysis.posts.coordination import CandidatePosts, CoordinationOptions, Edges


@dataclasses.dataclass(frozen=True)
class NullModel:
    edge_expected: np.ndarray
    edge_p: np.ndarray
    expected: np.ndarray
    sd: np.ndarray
    z: np.ndarray
    p: np.ndarray


@dataclasses.dataclass(frozen=True)
class Background:
    """The circulation of each shared repost group without the paired accounts: the times of its posts by accounts in
    no edge, for the repost groups that have at least as many such posts as the paired accounts made there."""

    post_start: np.ndarray  # candidate posts of eligible group i: post_index[post_start[i]:post_start[i + 1]]
    post_index: np.ndarray  # indices into CandidatePosts
    time_start: np.ndarray  # background times of eligible group i: times[time_start[i]:time_start[i + 1]]
    times: np.ndarray

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.post_start, self.post_index, self.time_start, self.times

    @classmethod
    def build(cls, posts, shared, *, group, codes, dated, seconds) -> Background:
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


def null_model(posts: CandidatePosts, edges: Edges, background: Background, options: CoordinationOptions) -> NullModel:
    """``null_rounds`` rounds of new times for the paired accounts' posts (the module's null model); every edge's
    meetings recounted each round."""
    rounds, shared, observed, k = options.null_rounds, edges.shared, edges.observed, edges.n_components
    edge_component = edges.component[edges.la]
    group_observed = np.bincount(edge_component, weights=observed, minlength=k)
    if not rounds:
        nan_edges, nan_groups = np.full(len(observed), np.nan), np.full(k, np.nan)
        nan = nan_groups.copy
        return NullModel(nan_edges, nan_edges.copy(), nan_groups, nan(), nan(), nan())
    rng = np.random.default_rng(options.seed)
    edge_sum = np.zeros(len(observed))
    edge_at_least = np.zeros(len(observed))
    group_sum, group_squares, group_at_least = np.zeros(k), np.zeros(k), np.zeros(k)
    shuffled = np.empty_like(posts.times)
    seats = np.arange(len(background.times), dtype=np.int64)  # reshuffled in place: any order is a valid start
    for _ in range(rounds):
        shuffle_within(posts.times, posts.starts, rng.random(len(posts.times)), shuffled)
        seat_in_background(shuffled, background.arrays(), seats, rng.random(len(background.post_index)))
        gaps = segment_min_gaps(shuffled, shared.entry_a, shared.entry_b, shared.seg_start)
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
    return NullModel(
        edge_expected=edge_sum / rounds,
        edge_p=(1 + edge_at_least) / (1 + rounds),
        expected=expected,
        sd=sd,
        z=(group_observed - expected) / np.maximum(sd, floor),
        p=(1 + group_at_least) / (1 + rounds),
    )

"""When each cluster circulated: first and last post, posts per day or week, the peak period; the data of the
"clusters over time" figure (rendered by :mod:`clustering.analysis.report.timeline_figure`).

Counting is one ``np.bincount`` over (cluster, period) cells. Periods are calendar days or ISO weeks (Monday to
Sunday) in UTC, consecutive from the first post to the last, so a gap in posting shows as zeros.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from clustering.analysis.defaults import PERIODS
from clustering.analysis.posts.columns import cluster_index

__all__ = ["PERIODS", "OverTime", "Timelines", "choose_period", "cluster_timelines", "largest_over_time"]

# "auto" counts per day up to this span and per week beyond: a quarter of daily columns is still readable in a
# heatmap, and a September-10-style collection (a few weeks around one event) keeps its daily bursts.
DAILY_MAX_SPAN_DAYS = 92
# 1970-01-01 was a Thursday: shifting by 3 days makes integer division by 7 start weeks on Mondays (ISO 8601).
_MONDAY_SHIFT = 3


def choose_period(dates: np.ndarray) -> str:
    """``"day"`` when the dated posts span at most DAILY_MAX_SPAN_DAYS days, else ``"week"``."""
    days = _days(dates)
    days = days[days != _NO_DAY]
    if not len(days):
        return "day"
    return "day" if days.max() - days.min() < DAILY_MAX_SPAN_DAYS else "week"


_NO_DAY = np.iinfo(np.int64).min


def _days(dates: np.ndarray) -> np.ndarray:
    """Whole days since 1970-01-01 (UTC) per row; _NO_DAY for NaT."""
    values = np.asarray(dates, dtype="datetime64[s]")
    return np.where(np.isnat(values), _NO_DAY, values.astype("datetime64[D]").astype(np.int64))


@dataclasses.dataclass(frozen=True)
class Timelines:
    """Posts over time per cluster.

    Attributes
    ----------
    period : str
        ``"day"`` or ``"week"``.
    starts : numpy.ndarray
        ``datetime64[D]`` first day of each period, consecutive, covering every dated post; empty without dates.
    clusters : numpy.ndarray
        int64 cluster ids (every non-negative label present), ascending.
    counts : numpy.ndarray
        int32 ``(len(clusters), len(starts))`` posts per cluster and period.
    first_seen, last_seen : numpy.ndarray
        ``datetime64[s]`` per cluster, NaT for a cluster without a dated post.
    peak : numpy.ndarray
        int64 period index of each cluster's busiest period (ties: the earliest), -1 without dates.
    dated : numpy.ndarray
        int64 dated posts per cluster.
    """

    period: str
    starts: np.ndarray
    clusters: np.ndarray
    counts: np.ndarray
    first_seen: np.ndarray
    last_seen: np.ndarray
    peak: np.ndarray
    dated: np.ndarray

    def period_label(self, index: int) -> str:
        """A period as text: ``2024-09-10`` for a day, ``2024-09-09/2024-09-15`` (first/last day) for a week."""
        start = self.starts[index]
        if self.period == "day":
            return str(start)
        return f"{start}/{start + np.timedelta64(6, 'D')}"

    def table(self) -> pa.Table:
        """``cluster``, ``first_seen`` and ``last_seen`` (ISO 8601 UTC, e.g. ``2024-09-10T08:00:00Z``),
        ``peak_period`` (see :meth:`period_label`), ``peak_posts`` and ``dated_posts``; nulls without dates."""
        has = self.peak >= 0
        peak_posts = self.counts[np.arange(len(self.peak)), np.maximum(self.peak, 0)] if self.counts.size else self.peak
        return pa.table(
            {
                "cluster": pa.array(self.clusters, pa.int32()),
                "first_seen": pa.array(_iso(self.first_seen), pa.string()),
                "last_seen": pa.array(_iso(self.last_seen), pa.string()),
                "peak_period": pa.array([self.period_label(p) if p >= 0 else None for p in self.peak], pa.string()),
                "peak_posts": pa.array(peak_posts, pa.int64(), mask=~has),
                "dated_posts": pa.array(self.dated, pa.int64()),
            }
        )


def _iso(values: np.ndarray) -> list[str | None]:
    return [None if np.isnat(v) else f"{v}Z" for v in values.astype("datetime64[s]")]


def cluster_timelines(labels, dates, *, period: str = "auto") -> Timelines:
    """Per-period post counts, first and last post, and peak period of every cluster.

    Parameters
    ----------
    labels : array-like of int
        Per-row cluster labels, -1 for noise (any clustering or hierarchy level).
    dates : numpy.ndarray or None
        Per-row ``datetime64`` (UTC), NaT where unknown (:func:`.columns.parse_dates`). None (no
        date column) gives every cluster an empty timeline.
    period : {"auto", "day", "week"}, default "auto"
        "auto" picks by :func:`choose_period`.

    Returns
    -------
    Timelines
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, got {period!r}")
    ids, position = cluster_index(labels)
    k = len(ids)
    if dates is None:
        dates = np.full(len(position), np.datetime64("NaT", "s"))
    dates = np.asarray(dates, dtype="datetime64[s]")
    if len(dates) != len(position):
        raise ValueError(f"dates has {len(dates)} rows but labels has {len(position)}")
    chosen = choose_period(dates) if period == "auto" else period
    days = _days(dates)
    use = (position >= 0) & (days != _NO_DAY)
    dated_days = days[days != _NO_DAY]
    if not len(dated_days):  # no date at all: no periods
        low, high = 0, -1
    else:
        low, high = _period_index(dated_days.min(), chosen), _period_index(dated_days.max(), chosen)
    n_bins = int(high - low) + 1
    cells = np.bincount(position[use] * n_bins + _period_index(days[use], chosen) - low, minlength=k * n_bins)
    counts = cells.reshape(k, n_bins).astype(np.int32)
    seconds = dates.astype(np.int64)
    first_seen = np.full(k, np.iinfo(np.int64).max)
    last_seen = np.full(k, np.iinfo(np.int64).min)
    np.minimum.at(first_seen, position[use], seconds[use])
    np.maximum.at(last_seen, position[use], seconds[use])
    dated = counts.sum(axis=1).astype(np.int64)
    return Timelines(
        period=chosen,
        starts=_period_start(np.arange(low, high + 1), chosen),
        clusters=ids,
        counts=counts,
        first_seen=_instants(first_seen, dated > 0),
        last_seen=_instants(last_seen, dated > 0),
        peak=np.where(dated > 0, counts.argmax(axis=1) if n_bins else -1, -1).astype(np.int64),
        dated=dated,
    )


def _period_index(days, period: str):
    """Days since the epoch -> day number, or ISO week number (weeks counted from the Monday 1969-12-29)."""
    return days if period == "day" else (days + _MONDAY_SHIFT) // 7


def _period_start(index: np.ndarray, period: str) -> np.ndarray:
    days = index if period == "day" else index * 7 - _MONDAY_SHIFT
    return days.astype("datetime64[D]")


def _instants(seconds: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.full(len(seconds), np.datetime64("NaT", "s"))
    out[valid] = seconds[valid].astype("datetime64[s]")
    return out


@dataclasses.dataclass(frozen=True)
class OverTime:
    """Data of the "clusters over time" figure: the largest clusters' posts per period, the rest summed.

    Attributes
    ----------
    period : str
        ``"day"`` or ``"week"``.
    starts : numpy.ndarray
        ``datetime64[D]`` first day of each period.
    clusters : numpy.ndarray
        int64 ids of the clusters shown, most dated posts first.
    counts : numpy.ndarray
        int32 ``(len(clusters), len(starts))``.
    other : numpy.ndarray
        int32 per period: posts of every other cluster.
    """

    period: str
    starts: np.ndarray
    clusters: np.ndarray
    counts: np.ndarray
    other: np.ndarray


def largest_over_time(timelines: Timelines, *, top: int = 15) -> OverTime:
    """The ``top`` clusters with the most dated posts (ties: lower id first) and the rest as ``other``."""
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    order = np.lexsort((timelines.clusters, -timelines.dated))
    shown = order[timelines.dated[order] > 0][:top]
    rest = np.setdiff1d(np.arange(len(timelines.clusters)), shown)
    return OverTime(
        period=timelines.period,
        starts=timelines.starts,
        clusters=timelines.clusters[shown],
        counts=timelines.counts[shown],
        other=timelines.counts[rest].sum(axis=0).astype(np.int32),
    )

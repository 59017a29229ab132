"""Timelines per cluster: burst inside the peak period, the period picked from the span, the figure."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from clustering.analysis.posts.timeline import choose_period, cluster_timelines, largest_over_time
from clustering.analysis.report.plots import figure_to_png
from clustering.analysis.report.timeline_figure import over_time_figure

START = np.datetime64("2025-08-25T00:00:00", "s")  # a Monday


def posts_with_a_burst(rng, *, span_days: int, burst_day: int, n_background: int = 200, n_burst: int = 60):
    """Background posts spread over ``span_days`` plus a burst on ``burst_day``, as datetime64[s]."""
    background = START + (rng.uniform(0, span_days * 86400, n_background)).astype("timedelta64[s]")
    burst = START + np.timedelta64(burst_day, "D") + rng.uniform(0, 86400, n_burst).astype("timedelta64[s]")
    return np.concatenate([background, burst])


@pytest.mark.parametrize(("span_days", "period"), [(28, "day"), (400, "week")])
def test_a_burst_day_falls_inside_the_peak_period(span_days, period):
    rng = np.random.default_rng(1)
    burst_day = 17 if period == "day" else 200
    dates = posts_with_a_burst(rng, span_days=span_days, burst_day=burst_day)
    labels = np.zeros(len(dates), int)
    timelines = cluster_timelines(labels, dates)
    assert timelines.period == period
    start = timelines.starts[timelines.peak[0]]
    length = np.timedelta64(1 if period == "day" else 7, "D")
    burst = (START + np.timedelta64(burst_day, "D")).astype("datetime64[D]")
    assert start <= burst < start + length
    label = timelines.table().column("peak_period")[0].as_py()
    assert label == str(burst) if period == "day" else label == f"{start}/{start + np.timedelta64(6, 'D')}"


def test_period_is_picked_from_the_span_and_a_flag_overrides_it():
    short = START + np.array([0, 91], "timedelta64[D]")
    long = START + np.array([0, 92], "timedelta64[D]")
    assert choose_period(short) == "day" and choose_period(long) == "week"
    assert choose_period(np.array(["NaT"], "datetime64[s]")) == "day"
    assert cluster_timelines([0, 0], long, period="day").counts.shape == (1, 93)


def test_weeks_start_on_monday_and_counts_cover_every_period():
    dates = np.array(["2025-08-31T23:00", "2025-09-01T01:00", "2025-09-20"], "datetime64[s]")  # Sun, Mon, Sat
    timelines = cluster_timelines([0, 0, 1], dates, period="week")
    assert timelines.starts.astype(str).tolist() == ["2025-08-25", "2025-09-01", "2025-09-08", "2025-09-15"]
    assert timelines.counts.tolist() == [[1, 1, 0, 0], [0, 0, 0, 1]]


def test_first_and_last_seen_ignore_noise_and_undated_rows():
    dates = np.array(["2025-09-03T10:00", "NaT", "2025-09-01T08:30", "2025-08-01", "2025-09-02"], "datetime64[s]")
    timelines = cluster_timelines([4, 4, 4, -1, 9], dates)
    rows = timelines.table().to_pylist()
    assert [r["cluster"] for r in rows] == [4, 9]
    assert (rows[0]["first_seen"], rows[0]["last_seen"]) == ("2025-09-01T08:30:00Z", "2025-09-03T10:00:00Z")
    assert rows[0]["dated_posts"] == 2 and rows[1]["peak_period"] == "2025-09-02"
    assert timelines.starts[0] == np.datetime64("2025-08-01")  # the axis covers every dated post, noise too


def test_clusters_without_dates_get_empty_timelines():
    timelines = cluster_timelines([0, 1, 1], np.array(["NaT", "2025-09-01", "NaT"], "datetime64[s]"))
    rows = timelines.table().to_pylist()
    assert rows[0] == {
        "cluster": 0,
        "first_seen": None,
        "last_seen": None,
        "peak_period": None,
        "peak_posts": None,
        "dated_posts": 0,
    }
    assert rows[1]["peak_posts"] == 1
    empty = cluster_timelines([0, 1], None)
    assert empty.counts.shape == (2, 0) and empty.table().column("first_seen").null_count == 2
    with pytest.raises(ValueError, match="period must be one of"):
        cluster_timelines([0], None, period="month")


def test_largest_over_time_keeps_the_biggest_clusters_and_sums_the_rest():
    dates = np.repeat(np.array(["2025-09-01", "2025-09-02", "2025-09-03"], "datetime64[s]"), [5, 3, 2])
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3])
    data = largest_over_time(cluster_timelines(labels, dates), top=2)
    assert data.clusters.tolist() == [0, 2]  # 3 dated posts each: the lower id first
    assert data.other.tolist() == [2, 0, 2]


@pytest.mark.filterwarnings("error::UserWarning")  # emoji the font lacks must be left out, not drawn as boxes
def test_the_figure_renders_names_with_dollars_and_emoji_and_says_when_empty():
    rng = np.random.default_rng(2)
    dates = posts_with_a_burst(rng, span_days=20, burst_day=5)
    labels = rng.integers(0, 4, len(dates))
    data = largest_over_time(cluster_timelines(labels, dates), top=3)
    names = {0: "a $5 meme ✊ about <b>prices</b> and a name far longer than the forty characters kept"}
    png = figure_to_png(over_time_figure(data, names=names))
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and img.width > 400
        pixels = np.asarray(img.convert("L"))
    assert pixels.std() > 10  # a drawn heatmap, not a blank canvas
    empty = largest_over_time(cluster_timelines([0], None))
    assert over_time_figure(empty).axes[0].texts[0].get_text() == "no dated posts"

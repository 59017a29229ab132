"""Lineage and coordinated image sharing through the Analyze job: a small planted set in, the files of
docs/coordination.md out (``repost_groups.csv``'s lineage columns, ``coordination.csv``, ``coordinated_pairs.csv``,
the ``clusters.csv`` and ``assignments`` columns, ``metrics.json["coordination"]``) and the report's section.

Planted: three accounts post the same four pictures within 25 seconds of each other (each copy re-encoded and
resized), on four different days; one other picture is reposted organically by eight accounts hours apart.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from clustering.analysis import run_analysis
from tests.test_analyze_job import MIN_SAMPLES, fast_config, jpeg, patterned
from tests.test_shards import blobs, write_shards

N_TOPICS, PER_TOPIC = 4, 60
PLANTED = (5, 66, 127, 188)  # originals of the pictures the three accounts post together
TOGETHER = ("amp_a", "amp_b", "amp_c")
GAPS = (0, 12, 25)  # seconds after the first post
VIRAL, VIRAL_COPIES = 30, 8  # organic: eight accounts, hours apart
HOSTILE_ACCOUNT = '<img src=x onerror="window.__xss=1">amp_c'
START = dt.datetime(2025, 9, 1, tzinfo=dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def planted_posts(*, hostile: bool = False) -> dict:
    """Embeddings, thumbnails, accounts and dates of the planted set; row numbers of the planted and viral posts."""
    rng = np.random.default_rng(3)
    together = (*TOGETHER[:2], HOSTILE_ACCOUNT) if hostile else TOGETHER
    base = N_TOPICS * PER_TOPIC
    X, topics = blobs(base, dim=32, clusters=N_TOPICS, spread=0.08)
    accounts = [f"user{int(rng.integers(0, 40))}" for _ in range(base)]
    dates = [_iso(START + dt.timedelta(days=int(rng.integers(0, 20)), seconds=int(rng.integers(0, 86400))))
             for _ in range(base)]  # fmt: skip
    thumbnails = [jpeg(patterned(i)) for i in range(base)]
    copies, planted_rows, viral_rows = [], [], [VIRAL]
    extra_accounts, extra_dates, extra_thumbs = [], [], []
    for k, source in enumerate(PLANTED):
        moment = START + dt.timedelta(days=2 + 4 * k, hours=9)
        accounts[source], dates[source] = together[0], _iso(moment)
        planted_rows.append(source)
        for j in (1, 2):
            copies.append(source)
            extra_accounts.append(together[j])
            extra_dates.append(_iso(moment + dt.timedelta(seconds=GAPS[j])))
            extra_thumbs.append(jpeg(patterned(source), quality=60 + 10 * j, scale=0.8 + 0.05 * j))
            planted_rows.append(base + len(copies) - 1)
    viral_moment = START + dt.timedelta(days=1)
    dates[VIRAL] = _iso(viral_moment)
    for j in range(VIRAL_COPIES):
        copies.append(VIRAL)
        extra_accounts.append(f"fan{j}")
        extra_dates.append(_iso(viral_moment + dt.timedelta(hours=2 + 5 * j)))
        extra_thumbs.append(jpeg(patterned(VIRAL), quality=50 + 4 * j, scale=0.6 + 0.04 * j))
        viral_rows.append(base + len(copies) - 1)
    noise = 0.01 * rng.standard_normal((len(copies), 32)) / np.sqrt(32)
    near = X[copies] + noise
    X = np.vstack([X, near / np.linalg.norm(near, axis=1, keepdims=True)]).astype(np.float32)
    return {
        "X": X,
        "topics": np.concatenate([topics, topics[copies]]),
        "accounts": accounts + extra_accounts,
        "dates": dates + extra_dates,
        "thumbnails": thumbnails + extra_thumbs,
        "planted": planted_rows,
        "viral": viral_rows,
        "together": together,
    }


def run_planted(root, model_dir: str, *, hostile: bool = False, dated: bool = True, **overrides):
    posts = planted_posts(hostile=hostile)
    written = write_shards(
        root / "shards",
        posts["X"],
        labels=posts["topics"],
        thumbnails=posts["thumbnails"],
        accounts=posts["accounts"],
        columns={"created_at": posts["dates"]} if dated else None,
        metadata={"model": model_dir, "random_weights": False},
    )
    config = fast_config(
        root / "shards", root / "out", **{"min_cluster_sizes": "8,30", "min_samples": (5,), **overrides}
    )
    result = run_analysis(config)
    return result, root / "out", written, posts


@pytest.fixture(scope="module")
def planted(tmp_path_factory, tiny_model_dir):
    return run_planted(tmp_path_factory.mktemp("coordination"), tiny_model_dir, hostile=True, explorer=True)


def test_the_planted_accounts_are_one_group_posted_together_four_times(planted):
    _, out, _, posts = planted
    groups = pd.read_csv(out / "coordination.csv", keep_default_na=False)
    assert len(groups) == 1
    group = groups.iloc[0]
    assert sorted(group.account_names.split(";")) == sorted(posts["together"])
    assert (group.accounts, group.together, group.posts) == (3, len(PLANTED), 3 * len(PLANTED))
    assert group.max_gap_s <= GAPS[-1] and 0 < float(group.p_value) < 0.05
    assert "posted together within 60 seconds, 4 times" in group.description
    pairs = pd.read_csv(out / "coordinated_pairs.csv")
    assert len(pairs) == 3 and (pairs.together == len(PLANTED)).all() and (pairs.coordinated_group == 0).all()
    metrics = json.loads((out / "metrics.json").read_text())["coordination"]
    assert metrics["analysed"] is True and metrics["groups"] == 1 and metrics["window_seconds"] == 60
    assert metrics["min_repetition"] == 3 and metrics["null_rounds"] == 200


def test_the_viral_images_accounts_are_not_a_group_and_only_the_planted_posts_carry_it(planted):
    _, out, written, posts = planted
    frame = pq.read_table(out / "assignments.parquet").to_pandas().set_index("id")
    assert str(frame.coordinated_group.dtype) == "int32"
    planted_ids = [written["ids"][i] for i in posts["planted"]]
    assert (frame.loc[planted_ids].coordinated_group == 0).all()
    assert (frame.drop(index=planted_ids).coordinated_group == -1).all()


def test_repost_groups_carry_the_lineage_first_poster_spread_and_variants(planted):
    _, out, written, posts = planted
    groups = pd.read_csv(out / "repost_groups.csv", keep_default_na=False, na_values=[""])
    for column in ("first_poster", "accounts_1h", "accounts_1d", "accounts_1w", "median_delay_s", "exact_copies",
                   "same_picture", "same_template", "indirect", "template_groups"):  # fmt: skip
        assert column in groups.columns, column
    frame = pq.read_table(out / "assignments.parquet").to_pandas().set_index("id")
    for source in PLANTED:
        number = frame.loc[written["ids"][source]].repost_group
        row = groups.set_index("repost_group").loc[number]
        assert row.first_poster == posts["together"][0] and row.first_id == written["ids"][source]
        assert (row.accounts_1h, row.accounts_1d, row.posts) == (3, 3, 3)
        assert row.median_delay_s == pytest.approx((GAPS[1] + GAPS[2]) / 2)
        assert row.same_picture + row.exact_copies == 2
    viral = groups.set_index("repost_group").loc[frame.loc[written["ids"][VIRAL]].repost_group]
    assert viral.accounts_1h == 1 and viral.accounts_1w == VIRAL_COPIES + 1
    members = frame.loc[[written["ids"][i] for i in posts["viral"]]]
    assert members.repost_order.tolist() == list(range(VIRAL_COPIES + 1))  # written in time order
    assert members.repost_delay_s.tolist() == [0] + [3600 * (2 + 5 * j) for j in range(VIRAL_COPIES)]
    assert members.repost_variant.iloc[0] == "first" and set(members.repost_variant.iloc[1:]) <= {"same_picture"}


def test_clusters_csv_gives_the_coordinated_share_and_the_herfindahl_index(planted):
    _, out, _, posts = planted
    clusters = pd.read_csv(out / "clusters.csv")
    chosen = clusters[clusters.level == "clusters"].set_index("cluster")
    assert {"coordinated_posts", "coordinated_share", "account_herfindahl"} <= set(chosen.columns)
    frame = pq.read_table(out / "assignments.parquet").to_pandas()
    by_account = frame[frame.account.isin(posts["together"])]
    expected = by_account[by_account.cluster >= 0].groupby("cluster").size()
    assert chosen.coordinated_posts.sum() == expected.sum() > 0
    for cluster, count in expected.items():
        assert chosen.loc[cluster, "coordinated_posts"] == count
        size = (frame.cluster == cluster).sum()
        assert chosen.loc[cluster, "coordinated_share"] == pytest.approx(count / size, abs=1e-6)
    shares = frame[frame.cluster == 0].account.value_counts(normalize=True)
    assert chosen.loc[0, "account_herfindahl"] == pytest.approx((shares**2).sum(), abs=1e-6)
    assert (chosen.account_herfindahl > 0).all() and (chosen.account_herfindahl <= 1).all()


def test_without_dates_the_coordination_files_are_headers_and_metrics_say_why(tmp_path, tiny_model_dir):
    result, out, written, posts = run_planted(tmp_path, tiny_model_dir, dated=False, min_samples=MIN_SAMPLES)
    assert written["n_ok"] == len(posts["X"])
    groups = (out / "coordination.csv").read_text().splitlines()
    pairs = (out / "coordinated_pairs.csv").read_text().splitlines()
    assert len(groups) == 1 and groups[0].startswith('"coordinated_group","accounts"')
    assert len(pairs) == 1 and pairs[0].startswith('"account_a","account_b"')
    metrics = json.loads((out / "metrics.json").read_text())["coordination"]
    assert metrics == {"analysed": False, "reason": "no date column; name one with --date-column"}
    assert any(note.startswith("posted together: not analysed (no date column") for note in result.notes)
    frame = pq.read_table(out / "assignments.parquet").to_pandas()
    assert (frame.coordinated_group == -1).all() and "repost_order" in frame.columns
    assert "Not analysed: no date column; name one with --date-column." in (out / "report.html").read_text()


def test_the_report_ranks_the_group_in_careful_words_with_account_names_escaped(planted):
    _, out, _, _ = planted
    html = (out / "report.html").read_text()
    assert "<h2>Posted together</h2>" in html
    section = html.split("<h2>Posted together</h2>", 1)[1].split("<h2>", 1)[0]
    assert "within 60 seconds, 4 times" in section and "expected by chance" in section
    assert "amp_a" in section and "amp_b" in section
    assert "&lt;img src=x onerror=" in section and "<img src=x" not in html  # the hostile account name is text
    lowered = section.lower()
    assert not any(word in lowered for word in ("bot", "inauthentic", "campaign", "troll", "automated"))
    markdown = (out / "report.md").read_text()
    assert "## Posted together" in markdown and "<img" not in markdown

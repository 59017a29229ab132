"""Coordinated image sharing: a planted coordinated group found through the real repost path, windows, repetition,
the null model, the burst bound, per-cluster concentration, wording and degenerate inputs."""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image, ImageDraw

from clustering.analysis.posts.columns import parse_accounts
from clustering.analysis.posts.concentration import cluster_coordination
from clustering.analysis.posts.coordination import CoordinationOptions, find_coordination
from clustering.analysis.posts.lineage import VARIANTS, repost_lineage
from clustering.analysis.posts.reposts import find_repost_groups, repost_group_table
from clustering.config import ConfigError, DecodeOptions
from clustering.ingest.decode import make_thumbnail
from tests.test_reposts import jpeg, poster

START = np.datetime64("2025-03-01T00:00:00", "s")
DAY = 86_400
DIM = 64  # CLIP-like unit vectors: random bases are far apart (cosine ~ N(0, 1/64)), copies sit at ~0.99
PLANTED_ACCOUNTS = 5
PLANTED_IMAGES = 12
PLANTED_SPREAD = 30  # seconds between a planted chain's first and last post
ORGANIC_POSTS = 5_000
ORGANIC_ACCOUNTS = 2_000
VIRAL_ACCOUNTS = 300
VIRAL_FILES = 60  # distinct files among the viral posts; the other posts are exact copies of them
TEMPLATE_REUSES = 3  # posts of the viral image's template with new content (hash-far, CLIP-close)
FIRST_CHAIN_POSTER = "coord3"  # the true first poster of planted chain 0


# --- images -------------------------------------------------------------------------------------------------------


def variant_file(family: int, kind: str, seed: int) -> bytes:
    """One posted file of picture ``family``: re-encoded, resized, recaptioned (text drawn on the picture, as a
    repost with a caption does) or the template with new content (half of it replaced: hash-far)."""
    rng = np.random.default_rng(seed)
    img = poster(family, "APPEL")
    if kind == "resized":
        scale = rng.uniform(0.5, 0.9)
        img = img.resize((int(img.width * scale), int(img.height * scale)), Image.Resampling.LANCZOS)
    elif kind == "recaptioned":
        draw = ImageDraw.Draw(img)
        draw.text((12, 12), f"share before they delete it {seed}", fill=(255, 255, 255))
    elif kind == "new_content":
        draw = ImageDraw.Draw(img)
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.rectangle((0, img.height // 2, img.width, img.height), fill=fill)
        draw.text((10, img.height // 2 + 10), f"NEW CAPTION {seed}", fill=(255, 255, 255))
    return jpeg(img, quality=int(rng.integers(40, 91)))


def thumbnail(blob: bytes) -> bytes:
    """The thumbnail ingest would store for these bytes (the same function)."""
    with Image.open(io.BytesIO(blob)) as img:
        return make_thumbnail(img.convert("RGB"), DecodeOptions())


# --- the planted set ----------------------------------------------------------------------------------------------


@dataclass
class PlantedSet:
    embeddings: np.ndarray  # one per distinct file
    inverse: np.ndarray  # per post, its file
    files: list  # per file: (family, kind, seed), generated on demand
    accounts: list
    dates: np.ndarray
    labels: np.ndarray
    role: np.ndarray  # per post: "planted", "viral", "template", "organic"
    chain: np.ndarray  # per post: planted chain number, -1 otherwise
    planted_accounts: set
    viral_accounts: set


def build_planted_set(seed: int = 0) -> PlantedSet:
    """5 accounts post the same 12 images within 30 s of each other (each copy re-encoded, resized or
    recaptioned) among 5,000 organic posts from 2,000 accounts, one of which is an image that goes viral organically
    (300 accounts over 3 days), plus a few reuses of the viral image's template with new content."""
    rng = np.random.default_rng(seed)
    posts: list[dict] = []
    files: list[tuple[int, str, int]] = []
    bases: list[np.ndarray] = []

    def new_file(family: int, kind: str, base: np.ndarray, noise: float) -> int:
        files.append((family, kind, len(files)))
        vector = base + noise * rng.standard_normal(DIM) / np.sqrt(DIM)
        bases.append(vector / np.linalg.norm(vector))
        return len(files) - 1

    def add(file: int, account: str, time: int, label: int, role: str, chain: int = -1) -> None:
        posts.append({"file": file, "account": account, "time": time, "label": label, "role": role, "chain": chain})

    def unit() -> np.ndarray:
        v = rng.standard_normal(DIM)
        return v / np.linalg.norm(v)

    organic = [f"user{i:04d}" for i in range(ORGANIC_ACCOUNTS)]
    planted = [f"coord{i}" for i in range(PLANTED_ACCOUNTS)]
    kinds = ("reencoded", "resized", "recaptioned")
    # Planted chains: one base per picture, one file per post, 5 accounts within 30 s, in a shuffled order.
    for chain in range(PLANTED_IMAGES):
        base, start = unit(), int(rng.integers(0, 28 * DAY))
        order = rng.permutation(PLANTED_ACCOUNTS)
        if chain == 0:  # a known first poster for the lineage test
            order = np.array([3, *[i for i in rng.permutation(PLANTED_ACCOUNTS) if i != 3]])
        offsets = np.sort(rng.integers(1, PLANTED_SPREAD + 1, PLANTED_ACCOUNTS))
        offsets[0] = 0
        for account, offset in zip(order, offsets, strict=True):
            file = new_file(1000 + chain, kinds[int(rng.integers(0, 3))], base, 0.15)
            add(file, planted[account], start + int(offset), 7, "planted", chain)
    # Their own everyday posts.
    for account in planted:
        for _ in range(4):
            file = new_file(-1, "unique", unit(), 0.0)
            add(file, account, int(rng.integers(0, 30 * DAY)), int(rng.integers(0, 7)), "organic")
    # The organic viral image: 300 distinct accounts over 3 days, most posts early (a fast start, then a tail).
    viral_base = unit()
    viral_files = [new_file(2000, kinds[i % 3], viral_base, 0.15) for i in range(VIRAL_FILES)]
    viral_accounts = rng.choice(organic, VIRAL_ACCOUNTS, replace=False)
    viral_start = int(rng.integers(0, 20 * DAY))
    viral_times = viral_start + np.sort((3 * DAY * rng.beta(0.7, 2.5, VIRAL_ACCOUNTS)).astype(np.int64))
    for index, (account, time) in enumerate(zip(viral_accounts, viral_times, strict=True)):
        file = viral_files[index] if index < VIRAL_FILES else viral_files[int(rng.integers(0, VIRAL_FILES))]
        add(file, str(account), int(time), 3, "viral")
    for _ in range(TEMPLATE_REUSES):  # the viral template with new content: CLIP-close, hash-far
        file = new_file(2000, "new_content", viral_base, 0.25)
        add(file, str(rng.choice(organic)), viral_start + int(rng.integers(DAY, 5 * DAY)), 3, "template")
    # Small organic repost groups, then single posts, by random accounts at random times over 30 days.
    while len(posts) < PLANTED_ACCOUNTS * (PLANTED_IMAGES + 4) + ORGANIC_POSTS:
        if rng.uniform() < 0.05:
            family, base = len(files) + 3000, unit()
            copies = [new_file(family, kinds[int(rng.integers(0, 3))], base, 0.15) for _ in range(rng.integers(2, 5))]
        else:
            copies = [new_file(-1, "unique", unit(), 0.0)]
        label = int(rng.integers(-1, 7))
        for file in copies:
            add(file, str(rng.choice(organic)), int(rng.integers(0, 30 * DAY)), label, "organic")
    order = rng.permutation(len(posts))  # rows in no telling order
    posts = [posts[i] for i in order]
    return PlantedSet(
        embeddings=np.asarray(bases, dtype=np.float32),
        inverse=np.array([p["file"] for p in posts]),
        files=files,
        accounts=[p["account"] for p in posts],
        dates=START + np.array([p["time"] for p in posts]).astype("timedelta64[s]"),
        labels=np.array([p["label"] for p in posts]),
        role=np.array([p["role"] for p in posts]),
        chain=np.array([p["chain"] for p in posts]),
        planted_accounts=set(planted),
        viral_accounts={str(a) for a in viral_accounts},
    )


@pytest.fixture(scope="module")
def planted():
    """The planted set through the real repost path: kNN candidates, perceptual hashes of real JPEG thumbnails."""
    data = build_planted_set()

    def thumbnails(images: np.ndarray) -> list[bytes]:  # only the candidates' files are ever drawn
        return [thumbnail(variant_file(*data.files[i])) for i in images]

    groups = find_repost_groups(data.embeddings, inverse=data.inverse, thumbnails=thumbnails)
    accounts = parse_accounts(data.accounts)
    coordination = find_coordination(groups.group, accounts, data.dates, labels=data.labels)
    lineage = repost_lineage(groups, dates=data.dates, accounts=accounts, embeddings=data.embeddings)
    return data, groups, accounts, coordination, lineage


def test_the_repost_path_groups_every_planted_chain_and_the_viral_image(planted):
    data, groups, *_ = planted
    for chain in range(PLANTED_IMAGES):
        assert len(set(groups.group[data.chain == chain].tolist())) == 1 and groups.group[data.chain == chain][0] >= 0
    viral = groups.group[data.role == "viral"]
    assert viral.min() >= 0 and len(set(viral.tolist())) == 1
    assert not np.isin(groups.group[data.role == "template"], viral).any()  # new content is not the same picture


def precision_recall(found: set, truth: set) -> tuple[float, float]:
    hit = len(found & truth)
    return hit / max(len(found), 1), hit / len(truth)


def test_the_planted_group_is_found_with_precision_and_recall_at_least_0_9(planted):
    data, _, accounts, coordination, _ = planted
    reported = [set(accounts.names[a].tolist()) for a in coordination.accounts]
    best = max(reported, key=lambda found: len(found & data.planted_accounts))
    precision, recall = precision_recall(best, data.planted_accounts)
    assert precision >= 0.9 and recall >= 0.9
    everyone = set().union(*reported)
    assert precision_recall(everyone, data.planted_accounts)[0] >= 0.9  # no other account reported either
    top = reported.index(best)
    assert top == 0  # ranked first
    assert coordination.together[top] == PLANTED_IMAGES
    assert coordination.p_value[top] <= 2 / (coordination.options.null_rounds + 1)
    assert coordination.z[top] > 5
    assert coordination.max_gap[top] <= PLANTED_SPREAD
    assert coordination.clusters[top][0] == (7, PLANTED_ACCOUNTS * PLANTED_IMAGES)


def test_the_organic_viral_images_accounts_are_not_a_coordinated_group(planted):
    data, _, accounts, coordination, _ = planted
    for members in coordination.accounts:
        assert len(set(accounts.names[members].tolist()) & data.viral_accounts) < 2
    assert coordination.formed_pairs > 0  # viral posts did meet within the window, once per pair: not repeatedly


def test_the_lineage_names_the_true_first_poster_of_a_planted_chain(planted):
    data, groups, accounts, _, lineage = planted
    group = int(groups.group[data.chain == 0][0])
    first = lineage.first_row[group]
    assert accounts.names[lineage.first_account[group]] == FIRST_CHAIN_POSTER == data.accounts[first]
    assert data.dates[first] == data.dates[data.chain == 0].min()
    rows = lineage.group_rows(group)
    assert (np.diff(data.dates[rows].astype(np.int64)) >= 0).all()
    assert lineage.delay[rows].max() <= PLANTED_SPREAD and lineage.accounts[group] == PLANTED_ACCOUNTS
    assert lineage.reach[group].tolist() == [PLANTED_ACCOUNTS] * 3
    table = repost_group_table(groups, [f"r{i}" for i in range(len(data.inverse))], dates=data.dates,
                               accounts=accounts)  # fmt: skip
    assert table.column("first_poster")[group].as_py() == FIRST_CHAIN_POSTER  # the same first as repost_groups.csv
    assert {VARIANTS[v] for v in lineage.variant[rows]} <= {"first", "same_picture"}


def test_the_viral_lineage_counts_its_spread_and_the_templates_new_content(planted):
    data, groups, _, _, lineage = planted
    group = int(groups.group[data.role == "viral"][0])
    times = data.dates[data.role == "viral"].astype(np.int64)
    start = times.min()
    expected = [int((times <= start + horizon).sum()) for horizon in (3600, 86_400, 7 * 86_400)]
    assert lineage.reach[group].tolist() == expected  # one post per account: accounts reached = posts by then
    assert expected[0] < expected[1] < expected[2] == VIRAL_ACCOUNTS
    counts = dict(zip(VARIANTS, lineage.variant_counts[group].tolist(), strict=True))
    assert counts["first"] == 1 and counts["exact"] > 0 and counts["same_picture"] > 0
    assert counts["template"] == counts["indirect"] == 0
    assert lineage.template_posts[group] == TEMPLATE_REUSES
    assert lineage.table().column("same_template")[group].as_py() == TEMPLATE_REUSES


# --- windows, repetition, bursts ------------------------------------------------------------------------------------


def posts_of(rows: list[tuple[int, str, int]]):
    """(repost group, account, seconds after START) rows as the pipeline's per-row arrays."""
    group = np.array([r[0] for r in rows], dtype=np.int64)
    accounts = parse_accounts([r[1] for r in rows])
    dates = START + np.array([r[2] for r in rows], dtype=np.int64).astype("timedelta64[s]")
    return group, accounts, dates


def together_rows(groups, accounts, gap: int, spacing: int = 10 * DAY) -> list[tuple[int, str, int]]:
    return [(g, a, g * spacing + i * gap) for g in groups for i, a in enumerate(accounts)]


def test_window_bounds_are_inclusive_and_later_posts_do_not_count():
    group, accounts, dates = posts_of(together_rows(range(3), ["a", "b"], gap=60))
    assert find_coordination(group, accounts, dates).n_groups == 1
    group, accounts, dates = posts_of(together_rows(range(3), ["a", "b"], gap=61))
    assert find_coordination(group, accounts, dates).n_groups == 0
    narrow = find_coordination(group, accounts, dates, options=CoordinationOptions(window=61))
    assert narrow.n_groups == 1 and narrow.pairs.median_gap.tolist() == [61.0]


def test_min_repetition_counts_distinct_repost_groups_not_posts():
    rows = together_rows(range(2), ["a", "b"], gap=5)
    rows += [(0, "a", 100), (0, "b", 104), (0, "a", 200), (0, "b", 203)]  # more meetings in group 0: still one
    group, accounts, dates = posts_of(rows)
    assert find_coordination(group, accounts, dates).n_groups == 0  # 2 groups < 3
    two = find_coordination(group, accounts, dates, options=CoordinationOptions(min_repetition=2))
    assert two.n_groups == 1 and two.together.tolist() == [2] and two.pairs.together.tolist() == [2]


def test_an_account_reposting_alone_is_no_pair():
    group, accounts, dates = posts_of(together_rows(range(5), ["a", "a", "a"], gap=1))
    result = find_coordination(group, accounts, dates)
    assert result.n_groups == 0 and result.formed_pairs == 0


def naive_pairs(group, codes, seconds, window) -> dict[tuple[int, int], int]:
    """Every pair of posts of each group compared (the quadratic peer): distinct groups per account pair."""
    met: set = set()
    for g in np.unique(group[group >= 0]):
        rows = np.flatnonzero(group == g)
        for i, j in itertools.combinations(rows, 2):
            if codes[i] != codes[j] and abs(seconds[i] - seconds[j]) <= window:
                met.add((g, min(codes[i], codes[j]), max(codes[i], codes[j])))
    counts: dict[tuple[int, int], int] = {}
    for _, a, b in met:
        counts[(a, b)] = counts.get((a, b), 0) + 1
    return counts


def test_windows_find_exactly_the_pairs_of_the_all_pairs_comparison():
    rng = np.random.default_rng(5)
    n = 3000
    group = rng.integers(-1, 40, n)
    names = [f"u{int(i)}" for i in rng.integers(0, 25, n)]
    seconds = rng.integers(0, 3 * 3600, n)
    accounts = parse_accounts(names)
    dates = START + seconds.astype("timedelta64[s]")
    options = CoordinationOptions(window=60, min_repetition=2, null_rounds=0, max_followers=10_000)
    result = find_coordination(group, accounts, dates, options=options)
    expected = {pair: count for pair, count in naive_pairs(group, accounts.codes, seconds, 60).items() if count >= 2}
    found = dict(zip(zip(result.pairs.a.tolist(), result.pairs.b.tolist(), strict=True),
                     result.pairs.together.tolist(), strict=True))  # fmt: skip
    assert found == expected and len(found) > 10
    assert result.formed_pairs == sum(naive_pairs(group, accounts.codes, seconds, 60).values())


def test_a_burst_is_bounded_and_still_finds_its_repeated_pairs():
    burst = [f"b{i}" for i in range(300)]
    rows = [(g, a, g * 10 * DAY + i // 30) for g in range(3) for i, a in enumerate(burst)]  # 300 accounts in 10 s
    group, accounts, dates = posts_of(rows)
    full = find_coordination(group, accounts, dates, options=CoordinationOptions(max_followers=1000, null_rounds=0))
    assert full.formed_pairs == 3 * 300 * 299 // 2 and full.capped_posts == 0
    bounded = find_coordination(group, accounts, dates, options=CoordinationOptions(max_followers=20, null_rounds=0))
    assert bounded.formed_pairs <= 3 * 300 * 20 and bounded.capped_posts > 0
    # Time order inside the burst repeats, so neighbours in time meet three times: one connected group of all 300.
    assert bounded.n_groups == 1 and len(bounded.accounts[0]) == 300


# --- the null model -------------------------------------------------------------------------------------------------


def test_the_null_model_gives_the_known_chance_rate_of_two_posts_each():
    # a and b both posted images X and Y, 5 s apart each time. Shuffled, each account's two times fall on X and Y
    # in one of two orders: both in the same order (probability 1/2) meets twice, otherwise never. Mean 1, p 1/2.
    rows = [(0, "a", 0), (0, "b", 5), (1, "a", 5 * DAY), (1, "b", 5 * DAY + 5)]
    group, accounts, dates = posts_of(rows)
    options = CoordinationOptions(min_repetition=2, null_rounds=4000, seed=1)
    result = find_coordination(group, accounts, dates, options=options)
    assert result.meetings.tolist() == [2]
    assert result.expected[0] == pytest.approx(1.0, abs=0.06)
    assert result.null_sd[0] == pytest.approx(1.0, abs=0.03)
    assert result.p_value[0] == pytest.approx(0.5, abs=0.03)
    assert result.pairs.p_value[0] == result.p_value[0]


def test_two_accounts_meeting_inside_bursts_of_other_accounts_are_expected_by_chance():
    # Images X, Y, Z each go out in a one-minute burst of 50 other accounts (different ones each time); a and b post
    # inside all three bursts. Drawn from each image's own posts, their times meet nearly always: no signal. Their
    # own times shuffled (the fallback, had the images no other posters) would call the three meetings unlikely.
    rows = [(g, f"other{g}_{i}", g * 10 * DAY + i) for g in range(3) for i in range(50)]
    rows += [(g, a, g * 10 * DAY + 20 + offset) for g in range(3) for a, offset in (("a", 0), ("b", 7))]
    rows += [(-1, a, 40 * DAY + i * DAY) for a in "ab" for i in range(3)]  # their everyday posts
    group, accounts, dates = posts_of(rows)
    result = find_coordination(group, accounts, dates, options=CoordinationOptions(max_followers=1000))
    assert result.n_groups == 1 and result.meetings.tolist() == [3]
    assert result.expected[0] > 2.5 and result.p_value[0] > 0.5 and result.z[0] < 1
    alone = [r for r in rows if not r[1].startswith("other")]
    group, accounts, dates = posts_of(alone)
    unlikely = find_coordination(group, accounts, dates)
    assert unlikely.meetings.tolist() == [3] and unlikely.expected[0] < 1 and unlikely.p_value[0] < 0.1


def test_the_null_model_is_seeded_and_deterministic():
    rng = np.random.default_rng(2)
    rows = together_rows(range(4), ["a", "b", "c"], gap=20)
    rows += [(int(g), a, int(t)) for g, a, t in zip(rng.integers(-1, 4, 40), rng.choice(["a", "b", "c"], 40),
                                                   rng.integers(0, 40 * DAY, 40), strict=True)]  # fmt: skip
    group, accounts, dates = posts_of(rows)
    one = find_coordination(group, accounts, dates, options=CoordinationOptions(seed=7))
    again = find_coordination(group, accounts, dates, options=CoordinationOptions(seed=7))
    other = find_coordination(group, accounts, dates, options=CoordinationOptions(seed=8))
    assert one.n_groups == 1
    assert one.expected.tolist() == again.expected.tolist()
    assert one.pairs.p_value.tolist() == again.pairs.p_value.tolist()
    assert one.pairs.expected.tolist() != other.pairs.expected.tolist()  # the seed is used
    no_null = find_coordination(group, accounts, dates, options=CoordinationOptions(null_rounds=0))
    assert np.isnan(no_null.p_value).all() and no_null.together.tolist() == one.together.tolist()


# --- per cluster, wording, tables -----------------------------------------------------------------------------------


def test_herfindahl_and_coordinated_share_per_cluster():
    rows = together_rows(range(3), ["a", "b"], gap=5)  # a and b coordinated
    labels = [0] * len(rows)
    rows += [(-1, "a", 1), (-1, "c", 2), (-1, "d", 3), (-1, "d", 4), (-1, "", 5)]  # cluster 1: a, c, d, d, none
    labels += [1, 1, 1, 1, 1]
    group, accounts, dates = posts_of(rows)
    coordination = find_coordination(group, accounts, dates)
    stats = cluster_coordination(labels, accounts, coordination)
    assert stats.clusters.tolist() == [0, 1] and stats.posts.tolist() == [6, 5]
    assert stats.coordinated_posts.tolist() == [6, 1]
    assert stats.coordinated_share.tolist() == [1.0, 0.25]  # of the posts with a known account
    assert stats.herfindahl.tolist() == [0.5, 0.25**2 + 0.25**2 + 0.5**2]
    without = cluster_coordination(labels, None)
    assert without.posts.tolist() == [6, 5] and np.isnan(without.herfindahl).all()
    assert cluster_coordination(labels, accounts).coordinated_posts.tolist() == [0, 0]
    assert stats.table().column_names == ["cluster", "coordinated_posts", "coordinated_share", "account_herfindahl"]


FORBIDDEN = re.compile(r"\b(bots?|inauthentic|trolls?|fake)\b", re.IGNORECASE)


def test_wording_says_posted_together_within_n_seconds_m_times_and_never_judges_intent(planted):
    _, _, accounts, coordination, _ = planted
    sentence = coordination.describe(0, accounts)
    assert re.search(r"posted together within 60 seconds, 12 times", sentence), sentence
    texts = [sentence, *coordination.groups_table(accounts).column("description").to_pylist()]
    assert not any(FORBIDDEN.search(t) for t in texts)
    group, accounts, dates = posts_of(together_rows(range(1), ["a", "b"], gap=1))
    once = find_coordination(group, accounts, dates, options=CoordinationOptions(min_repetition=1, window=10))
    assert "posted together within 10 seconds, 1 time" in once.describe(0) and "1 times" not in once.describe(0)


def test_tables_name_accounts_images_and_gaps(planted):
    data, groups, accounts, coordination, _ = planted
    ids = [f"r{i}" for i in range(len(data.inverse))]
    table = coordination.groups_table(accounts, ids=ids).to_pylist()[0]
    assert set(table["account_names"].split(";")) == data.planted_accounts
    shared = [int(g) for g in table["repost_groups"].split(";")]
    assert sorted(shared) == sorted({int(groups.group[data.chain == c][0]) for c in range(PLANTED_IMAGES)})
    assert len(table["first_ids"].split(";")) == PLANTED_IMAGES and table["posts"] == 60
    rows = np.flatnonzero(coordination.row_group == 0)
    assert set(data.role[rows].tolist()) == {"planted"} and len(rows) == 60
    pairs = coordination.pairs_table(accounts)
    assert pairs.num_rows >= 10 and set(pairs.column("coordinated_group").to_pylist()) >= {0}
    assert pairs.column_names == ["account_a", "account_b", "coordinated_group", "together", "median_gap_s",
                                  "max_gap_s", "expected", "p_value"]  # fmt: skip
    summary = coordination.summary()
    assert summary["groups"] == coordination.n_groups and "same repost group" in summary["null_model"]


# --- options and degenerate input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("window", -1, "--coordination-window"),
        ("window", float("nan"), "--coordination-window"),
        ("min_repetition", 0, "--min-repetition"),
        ("null_rounds", -1, "--coordination-rounds"),
        ("max_followers", 0, "--coordination-burst-cap"),
        ("min_repetition", 2.5, "--min-repetition"),
        ("seed", -3, "--seed"),
    ],
)
def test_options_are_checked_and_name_their_flag(field, value, flag):
    with pytest.raises(ConfigError, match=re.escape(flag)):
        CoordinationOptions(**{field: value})


def test_degenerate_inputs_give_valid_empty_results():
    group, accounts, dates = posts_of(together_rows(range(4), ["a", "b"], gap=1))
    for result in (
        find_coordination(group, None, dates),  # no account column
        find_coordination(group, accounts, None),  # no date column
        find_coordination(np.full(len(group), -1), accounts, dates),  # no repost group
        find_coordination(group, parse_accounts([None] * len(group)), dates),  # no known account
        find_coordination(group, accounts, np.full(len(group), np.datetime64("NaT"), "datetime64[s]")),  # no date
        find_coordination(group[:1], parse_accounts(["a"]), dates[:1]),  # one post
        find_coordination(np.zeros(0, np.int64), parse_accounts([]), dates[:0]),  # no rows
    ):
        assert result.n_groups == 0 and len(result.pairs) == 0
        assert result.groups_table().num_rows == 0 and result.pairs_table().num_rows == 0
        assert (result.row_group == -1).all()
    assert len(find_coordination(group, None, dates).row_group) == len(group)
    with pytest.raises(ValueError, match="accounts has 1 rows"):
        find_coordination(group, parse_accounts(["a"]), dates)
    empty = cluster_coordination([], parse_accounts([]))
    assert empty.table().num_rows == 0

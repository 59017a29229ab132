"""The generated demo sample: deterministic, every kind present, near-duplicates, reposts and broken files where
promised, and posts (text, date, account) that give the post analysis something true to find."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from clustering.analysis.posts.columns import parse_dates
from clustering.analysis.posts.keywords import tokenize
from clustering.config import DecodeOptions, PreprocessSpec
from clustering.devtools.sample import (
    BROKEN,
    KINDS,
    MANIFEST_COLUMNS,
    TOGETHER_IMAGES,
    VIRAL_KINDS,
    main,
    make_sample,
)
from clustering.devtools.sample_posts import RELAY_ACCOUNT, START, THEMES, TOGETHER_ACCOUNTS
from clustering.ingest.decode import decode_image

N = 60  # 45 originals (7-8 per kind), 6 near-duplicates, 6 reposts, 3 broken files: seconds, not minutes


def read_manifest(info) -> list[dict]:
    with info.manifest.open(newline="") as handle:
        return list(csv.DictReader(handle))


def digest_tree(root) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    info = make_sample(tmp_path_factory.mktemp("sample"), n_images=N, seed=0)
    return info, read_manifest(info)


def test_same_seed_same_bytes(sample, tmp_path):
    info, _ = sample
    again = make_sample(tmp_path / "again", n_images=N, seed=0)
    assert digest_tree(again.outdir) == digest_tree(info.outdir)


def test_other_seed_other_images(sample, tmp_path):
    info, _ = sample
    other = make_sample(tmp_path / "other", n_images=N, seed=1)
    assert digest_tree(other.outdir) != digest_tree(info.outdir)


def test_manifest_columns_and_rows(sample):
    info, rows = sample
    assert info.n_rows == N == len(rows)
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    assert len({r["post_id"] for r in rows}) == N
    assert info.together == 0 and not any(r["posted_with"] for r in rows)
    assert all(r["post_text"].strip() and r["account"] for r in rows)
    assert all((info.outdir / r["path"]).is_file() and r["url"] == r["path"] for r in rows)


def test_every_kind_is_present_and_balanced(sample):
    info, rows = sample
    originals = [r for r in rows if not r["duplicate_of"] and not r["repost_of"] and not r["posted_with"]]
    counts = {kind: sum(r["kind"] == kind for r in originals) for kind in KINDS}
    assert min(counts.values()) >= 7 and max(counts.values()) - min(counts.values()) <= 1
    assert info.counts == {**Counter(r["kind"] for r in rows if r["kind"] != BROKEN), BROKEN: 3}


def test_images_decode_with_sizes_in_range(sample):
    info, rows = sample
    for row in rows:
        if row["kind"] == BROKEN:
            continue
        with Image.open(info.outdir / row["path"]) as img:
            assert img.format in ("PNG", "JPEG")
            # Originals are 64-256 px; near-duplicates lose at most 8 % per side to their crop.
            assert min(img.size) >= 54 and max(img.size) <= 256


def test_broken_files_fail_as_expected(sample):
    info, rows = sample
    options, spec = DecodeOptions(), PreprocessSpec()
    broken = {r["path"].split("_", 1)[1]: r for r in rows if r["kind"] == BROKEN}
    statuses = {
        name: decode_image((info.outdir / r["path"]).read_bytes(), options, spec).status for name, r in broken.items()
    }
    assert statuses == {"truncated.jpg": "decode_error", "html.jpg": "not_image", "empty.jpg": "not_image"}


def box_colours(info, row) -> np.ndarray:
    """4x4 box-averaged colours: robust to a small crop, brightness change and JPEG re-encoding."""
    with Image.open(info.outdir / row["path"]) as img:
        return np.asarray(img.convert("RGB").resize((4, 4), Image.Resampling.BOX), float)


def test_near_duplicates_are_nearest_to_their_original_but_not_copies(sample):
    info, rows = sample
    originals = [r for r in rows if r["kind"] != BROKEN and not r["duplicate_of"] and not r["repost_of"]]
    dups = [r for r in rows if r["duplicate_of"]]
    assert len(dups) == info.near_duplicates == N // 10
    for dup in dups:
        colours = box_colours(info, dup)
        ranked = sorted(originals, key=lambda r: np.abs(box_colours(info, r) - colours).mean())
        # Among ~45 originals, the source is one of the two nearest by crude box colours (a 2-8 % crop and a
        # brightness change can bring a plain look-alike of another kind level with it).
        assert dup["duplicate_of"] in [r["post_id"] for r in ranked[:2]]
        source = next(r for r in originals if r["post_id"] == dup["duplicate_of"])
        assert dup["kind"] == source["kind"]
        assert (info.outdir / dup["path"]).read_bytes() != (info.outdir / source["path"]).read_bytes()


def test_kinds_are_visually_distinct(sample):
    """A nearest-centroid classifier on crude image statistics separates the kinds: they are not all alike."""
    info, rows = sample
    feats, labels = [], []
    for row in rows:
        if row["kind"] == BROKEN or row["duplicate_of"] or row["repost_of"]:
            continue
        grey = np.asarray(Image.open(info.outdir / row["path"]).convert("L").resize((64, 64)), float) / 255
        edges = np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()
        hist = np.histogram(grey, bins=8, range=(0, 1))[0] / grey.size
        feats.append([edges * 10, grey.std() * 4, (hist > 0.02).sum() / 8])
        labels.append(row["kind"])
    feats, labels = np.array(feats), np.array(labels)
    centroids = {k: feats[labels == k].mean(axis=0) for k in KINDS}
    predicted = [min(centroids, key=lambda k: np.linalg.norm(f - centroids[k])) for f in feats]
    accuracy = np.mean(np.array(predicted) == labels)
    assert accuracy > 0.5  # chance is 1/6


def test_viral_images_are_reposted_as_exact_and_resized_copies_mostly_by_the_relay(sample):
    info, rows = sample
    by_id = {r["post_id"]: r for r in rows}
    reposts = [r for r in rows if r["repost_of"]]
    assert len(reposts) == info.reposts == N // 10
    exact = resized = 0
    for repost in reposts:
        source = by_id[repost["repost_of"]]
        assert source["kind"] in VIRAL_KINDS and not source["repost_of"] and repost["kind"] == source["kind"]
        copy, original = (info.outdir / repost["path"]).read_bytes(), (info.outdir / source["path"]).read_bytes()
        if copy == original:
            exact += 1
            continue
        resized += 1
        with Image.open(info.outdir / repost["path"]) as small, Image.open(info.outdir / source["path"]) as big:
            assert small.format == "JPEG" and small.width < big.width and small.height < big.height
    assert exact and resized
    assert Counter(r["account"] for r in reposts).most_common(1)[0][0] == RELAY_ACCOUNT
    for repost in reposts:  # a repost follows its original
        source = by_id[repost["repost_of"]]
        if source["created_at"]:
            assert parse_dates([repost["created_at"]]).values[0] > parse_dates([source["created_at"]]).values[0]


def test_posts_are_french_and_english_with_hashtags_mentions_emoji_and_links(sample):
    _, rows = sample
    texts = [r["post_text"] for r in rows]
    tokens = [t for text in texts for t in tokenize(text)]
    assert any("#" in t for t in tokens) and any(t.startswith("@") for t in tokens)
    assert any(not t[0].isalnum() and t[0] not in "#@" for t in tokens)  # emoji
    assert any("https://" in text for text in texts)
    assert any(w in text.split() for text in texts for w in ("et", "de", "du", "regardez"))
    assert any(w in text.split() for text in texts for w in ("and", "the", "what", "look"))
    for kind, theme in THEMES.items():  # each kind's own hashtag is its most common one
        kind_tags = Counter(t for r in rows if r["kind"] == kind for t in tokenize(r["post_text"]) if t[0] == "#")
        assert kind_tags.most_common(1)[0][0] == theme.hashtag


def test_dates_span_four_weeks_with_a_burst_day_per_kind(sample):
    _, rows = sample
    parsed = parse_dates([r["created_at"] for r in rows])
    assert parsed.n_unparseable == 0 and parsed.n_dated >= 0.9 * len(rows)
    days = parsed.values[~np.isnat(parsed.values)].astype("datetime64[D]")
    start = np.datetime64(START.date())
    assert days.min() >= start and days.max() <= start + np.timedelta64(31, "D")
    for kind, theme in THEMES.items():
        kind_days = [d for r, d in zip(rows, parsed.values, strict=True) if r["kind"] == kind and not np.isnat(d)]
        busiest = Counter(np.datetime64(d, "D") for d in kind_days).most_common(1)[0][0]
        assert busiest == start + np.timedelta64(theme.burst_day, "D")


def test_url_prefix_and_cli(tmp_path, capsys):
    main([str(tmp_path), "--n-images", "12", "--seed", "3", "--url-prefix", "http://127.0.0.1:8000/"])
    assert "wrote 12 rows" in capsys.readouterr().out
    with (tmp_path / "urls.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(r["url"] == "http://127.0.0.1:8000/" + r["path"] for r in rows)


def test_too_few_images_is_refused(tmp_path):
    with pytest.raises(ValueError, match="n_images must be at least 11"):
        make_sample(tmp_path, n_images=5)
    assert make_sample(tmp_path, n_images=11).reposts == 1


def test_three_accounts_post_three_pictures_together_within_seconds(sample, tmp_path):
    info = make_sample(tmp_path, n_images=N, seed=0, together=True)
    rows = read_manifest(info)
    assert info.n_rows == N + 2 * TOGETHER_IMAGES == len(rows)
    _, plain = sample
    firsts = {r["posted_with"] for r in rows if r["posted_with"]}
    assert [r for r in rows[:N] if r["post_id"] not in firsts] == [r for r in plain if r["post_id"] not in firsts]
    by_id = {r["post_id"]: r for r in rows}
    copies = [r for r in rows if r["posted_with"]]
    firsts = sorted({r["posted_with"] for r in copies})
    assert len(firsts) == TOGETHER_IMAGES and len(copies) == 2 * TOGETHER_IMAGES
    assert info.together == 3 * TOGETHER_IMAGES
    days = set()
    for first in firsts:
        group = [by_id[first], *sorted((r for r in copies if r["posted_with"] == first), key=lambda r: r["created_at"])]
        assert [r["account"] for r in group] == list(TOGETHER_ACCOUNTS)
        times = [dt.datetime.fromisoformat(r["created_at"]) for r in group]
        assert times == sorted(times) and (times[-1] - times[0]).total_seconds() < 60
        assert (info.outdir / group[1]["path"]).read_bytes() == (info.outdir / group[0]["path"]).read_bytes()
        assert group[0]["kind"] in VIRAL_KINDS and not group[0]["repost_of"]
        days.add(times[0].date())
    assert len(days) == TOGETHER_IMAGES

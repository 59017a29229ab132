"""Post columns: tolerant date parsing, accounts as codes, the per-row cluster index, detection and its flags."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.posts.columns import cluster_index, parse_accounts, parse_dates, read_posts
from clustering.config import ConfigError
from clustering.schema import PostColumns, detect_post_columns


def utc(text: str) -> np.datetime64:
    return np.datetime64(text, "s")


def test_iso_strings_with_and_without_offsets_become_utc():
    parsed = parse_dates(["2024-09-10", "2024-09-10T12:00:00Z", "2024-09-10 14:30:00+02:00", "2024-09-10T08:00"])
    expected = [utc("2024-09-10T00:00"), utc("2024-09-10T12:00"), utc("2024-09-10T12:30"), utc("2024-09-10T08:00")]
    assert parsed.values.tolist() == [e.item() for e in expected]
    assert (parsed.n_missing, parsed.n_unparseable, parsed.n_dated) == (0, 0, 4)


def test_twitter_format_and_epoch_strings():
    parsed = parse_dates(["Tue Sep 10 08:00:00 +0000 2024", "1725955200", "1725955200000"])
    assert (parsed.values == utc("2024-09-10T08:00")).all()


def test_epoch_numbers_are_read_by_magnitude_value_by_value():
    seconds = 1725955200  # 2024-09-10T08:00:00Z
    parsed = parse_dates(pa.array([seconds, seconds * 1000, seconds * 1_000_000, seconds * 10**9, None]))
    assert (parsed.values[:4] == utc("2024-09-10T08:00")).all()
    assert np.isnat(parsed.values[4]) and parsed.n_missing == 1
    floats = parse_dates(np.array([seconds + 0.7, np.nan]))
    assert floats.values[0] == utc("2024-09-10T08:00") and floats.n_missing == 1


def test_arrow_timestamps_keep_their_instant_whatever_the_zone():
    paris = dt.timezone(dt.timedelta(hours=2))
    aware = pa.array([dt.datetime(2024, 9, 10, 10, 0, tzinfo=paris)], pa.timestamp("ms", tz="Europe/Paris"))
    naive = pa.array([dt.datetime(2024, 9, 10, 8, 0)], pa.timestamp("us"))
    days = pa.array([dt.date(2024, 9, 10)], pa.date32())
    assert parse_dates(aware).values[0] == utc("2024-09-10T08:00")
    assert parse_dates(naive).values[0] == utc("2024-09-10T08:00")
    assert parse_dates(days).values[0] == utc("2024-09-10T00:00")
    chunked = pa.chunked_array([pa.array(["2024-09-10"]), pa.array(["not a date"])])
    assert parse_dates(chunked).n_unparseable == 1


def test_bad_values_are_counted_never_raised():
    parsed = parse_dates(["2024-09-10", "", None, "  ", "garbage", "31/02/2024 99:99", "0", "2300-01-01"])
    assert parsed.n_dated == 1
    assert parsed.n_missing == 3  # null and blank
    assert parsed.n_unparseable == 4  # text, impossible date, epoch 0 and a year-2300 placeholder
    assert np.isnat(parsed.values[1:]).all()
    assert parse_dates([True, False]).n_unparseable == 2  # a boolean column is present but holds no date


def test_accounts_become_codes_in_order_of_appearance():
    accounts = parse_accounts(["bob", " alice ", None, "", "bob", 42])
    assert accounts.codes.tolist() == [0, 1, -1, -1, 0, 2]
    assert accounts.names.tolist() == ["bob", "alice", "42"]
    assert accounts.name_of(1) == "alice" and accounts.name_of(-1) is None


def test_cluster_index_maps_any_labels_to_dense_positions():
    ids, position = cluster_index([7, -1, 3, 7, 12, -1])
    assert ids.tolist() == [3, 7, 12]
    assert position.tolist() == [1, -1, 0, 1, 2, -1]
    ids, position = cluster_index(np.full(3, -1))
    assert ids.size == 0 and position.tolist() == [-1, -1, -1]


def test_read_posts_says_what_is_missing():
    table = pa.table({"caption": ["a", None], "when": ["2024-09-10", "soon"], "other": [1, 2]})
    posts = read_posts(table, PostColumns(text="caption", date="when"))
    assert posts.texts.tolist() == ["a", None]
    assert posts.dates.n_unparseable == 1 and posts.accounts is None
    notes = posts.notes()
    assert len(notes) == 2
    assert "'when': 1 unparseable" in notes[0]
    assert notes[1].startswith("no account column") and "--account-column" in notes[1]
    bare = read_posts(table, PostColumns())
    assert [n.split(" (")[0] for n in bare.notes()] == ["no text column", "no date column", "no account column"]


def test_detection_finds_common_names_and_flags_override():
    table = pa.table({"full_text": ["hello world"], "Created_At": ["2024-09-10"], "screen_name": ["bob"], "who": ["u"]})
    found = detect_post_columns(table, table.column_names)
    assert found == PostColumns(text="full_text", date="Created_At", account="screen_name")
    chosen = detect_post_columns(table, table.column_names, account="who", text="screen_name")
    assert chosen == PostColumns(text="screen_name", date="Created_At", account="who")


def test_nested_columns_are_not_detected_and_named_ones_get_one_line():
    user = pa.array([{"id": 1, "name": "bob"}])
    table = pa.table({"user": user, "author_name": ["bob"], "text": ["hello"]})
    assert detect_post_columns(table, table.column_names).account == "author_name"  # not the "user" object
    with pytest.raises(ConfigError, match=r"^--account-column: column 'user' cannot be read as post data \(struct"):
        read_posts(table, PostColumns(account="user"))
    listed = pa.table({"tags": pa.array([["a", "b"]])})
    with pytest.raises(ConfigError, match=r"^--text-column: column 'tags' cannot be read"):
        read_posts(listed, PostColumns(text="tags"))
    numbers = read_posts(pa.table({"n": [7, None]}), PostColumns(text="n", account="n"))
    assert numbers.texts.tolist() == ["7", None] and numbers.accounts.names.tolist() == ["7"]


def test_a_flag_naming_a_missing_column_is_one_line():
    table = pa.table({"text": ["x"]})
    with pytest.raises(ConfigError, match=r"^--date-column: no column 'posted' in the data") as info:
        detect_post_columns(table, ["text"], date="posted")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"period": "month"}, "--period must be one of auto, day, week"),
        ({"keywords": 0}, "--keywords must be at least 1"),
        ({"repost_similarity": 1.5}, "--repost-similarity must be in 0..1"),
        ({"repost_hash_similarity": -0.1}, "--repost-hash-similarity must be in 0..1"),
        ({"name_margin": 2.0}, "--name-margin must be in 0..1"),
        ({"label_prompts": "/nonexistent/labels.txt"}, "--label-prompts: no file"),
        ({"replace_label_prompts": True}, "--replace-label-prompts needs --label-prompts FILE"),
    ],
)
def test_post_options_are_validated_up_front(options, message):
    with pytest.raises(ConfigError, match=message):
        AnalyzeConfig(input="shards", output="out", **options)

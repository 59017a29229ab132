"""Lineage of repost groups: the first post, order and delays, spread over accounts, variants, template links."""

from __future__ import annotations

import re

import numpy as np
import pytest

from clustering.analysis.posts.columns import parse_accounts
from clustering.analysis.posts.lineage import VARIANTS, repost_lineage
from clustering.analysis.posts.reposts import ImageHashes, RepostGroups, repost_group_table

START = np.datetime64("2025-03-01T00:00:00", "s")


def dated(*offsets) -> np.ndarray:
    """Seconds after START as datetime64[s]; None is NaT."""
    return np.array([START + np.timedelta64(o, "s") if o is not None else np.datetime64("NaT") for o in offsets],
                    dtype="datetime64[s]")  # fmt: skip


def groups_of(group, image=None, **extra) -> RepostGroups:
    group = np.asarray(group, dtype=np.int64)
    image = np.arange(len(group)) if image is None else np.asarray(image, dtype=np.int64)
    n_groups = int(group.max()) + 1 if len(group) and group.max() >= 0 else 0
    return RepostGroups(group, image, n_groups, 0, 0, 0, **extra)


def test_first_post_is_the_earliest_dated_one_as_in_repost_groups_csv():
    groups = groups_of([0, 0, 0, 0, -1, 1, 1])
    dates = dated(500, None, 100, 100, 0, None, None)  # a tie at 100 goes to the lower row; undated last
    accounts = parse_accounts(["late", "nodate", "tie_first", "tie_second", "solo", "x", "y"])
    lineage = repost_lineage(groups, dates=dates, accounts=accounts)
    assert lineage.first_row.tolist() == [2, 5]  # group 1 has no date: row order
    assert lineage.group_rows(0).tolist() == [2, 3, 0, 1]
    assert lineage.order.tolist() == [2, 3, 0, 1, -1, 0, 1]
    assert np.array_equal(lineage.delay, [400, np.nan, 0, 0, np.nan, np.nan, np.nan], equal_nan=True)
    assert accounts.names[lineage.first_account[0]] == "tie_first"
    assert lineage.first_time[0] == START + np.timedelta64(100, "s") and np.isnat(lineage.first_time[1])
    table = repost_group_table(groups, [f"r{i}" for i in range(7)], dates=dates, accounts=accounts)
    assert table.column("first_id").to_pylist() == [f"r{r}" for r in lineage.first_row]
    assert lineage.median_delay[0] == 200.0 and np.isnan(lineage.median_delay[1])  # delays 0 and 400
    assert lineage.accounts.tolist() == [4, 2]


def test_reach_counts_distinct_accounts_by_one_hour_one_day_one_week():
    offsets = [0, 30, 3599, 3601, 3700, 86_400, 86_401, 604_800, 604_801, 10]
    names = ["a", "b", "c", "d", "d", "e", "f", "g", "h", "a"]  # d twice, a twice: counted once
    groups = groups_of([0] * len(offsets))
    lineage = repost_lineage(groups, dates=dated(*offsets), accounts=parse_accounts(names))
    assert lineage.reach.tolist() == [[3, 5, 7]]
    table = lineage.table().to_pylist()[0]
    assert (table["accounts_1h"], table["accounts_1d"], table["accounts_1w"]) == (3, 5, 7)


def test_without_dates_or_accounts_the_lineage_is_row_order_and_reach_is_null():
    groups = groups_of([0, -1, 0, 0])
    bare = repost_lineage(groups)
    assert bare.first_row.tolist() == [0] and bare.group_rows(0).tolist() == [0, 2, 3]
    assert bare.accounts is None and bare.reach is None and np.isnan(bare.delay).all()
    assert bare.table().column("accounts_1h").to_pylist() == [None]
    no_accounts = repost_lineage(groups, dates=dated(3, 0, 2, 1))
    assert no_accounts.group_rows(0).tolist() == [3, 2, 0] and no_accounts.reach is None
    undated = repost_lineage(groups, dates=dated(None, None, None, None), accounts=parse_accounts(["a", "b", "c", "d"]))
    assert undated.reach.tolist() == [[-1, -1, -1]] and undated.table().column("accounts_1d").to_pylist() == [None]


def unit(*values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_variants_tell_the_same_picture_from_the_same_template_with_new_content():
    # Images: 0 the first; 1 hash-close; 2 hash-far but CLIP-close (new content); 3 far in both (joined by a chain);
    # 4 without a hash but CLIP-close; rows: image 0 twice (the second an exact copy), then 1, 2, 3, 4.
    image = np.array([0, 0, 1, 2, 3, 4])
    hashes = ImageHashes(
        images=np.arange(4),
        vectors=np.stack([unit(1, 0, 0), unit(1, 0.1, 0), unit(0, 1, 0), unit(0, 0, 1)]),
        valid=np.array([True, True, True, True]),
    )
    embeddings = np.stack([unit(1, 0), unit(1, 0.05), unit(1, 0.2), unit(0, 1), unit(1, 0.1)])
    groups = groups_of([0] * 6, image=image, hashes=hashes)
    lineage = repost_lineage(groups, dates=dated(0, 5, 10, 20, 30, 40), embeddings=embeddings)
    names = [VARIANTS[v] for v in lineage.variant]
    assert names == ["first", "exact", "same_picture", "template", "indirect", "same_picture"]
    row = lineage.table().to_pylist()[0]
    assert (row["exact_copies"], row["same_picture"], row["same_template"], row["indirect"]) == (1, 2, 1, 1)
    # Images named by row of a larger embedding matrix give the same answer.
    by_row = repost_lineage(groups, embeddings=np.concatenate([embeddings[::-1], embeddings]), images=np.arange(5) + 5)
    assert by_row.variant.tolist() == repost_lineage(groups, embeddings=embeddings).variant.tolist()
    # Without embeddings a hash-far copy counts as the template; without hashes a copy is the same picture.
    assert [VARIANTS[v] for v in repost_lineage(groups).variant][3:5] == ["template", "template"]
    plain = repost_lineage(groups_of([0] * 6, image=image), embeddings=embeddings)
    assert [VARIANTS[v] for v in plain.variant] == ["first", "exact", "same_picture", "same_picture", "indirect",
                                                    "same_picture"]  # fmt: skip


def test_template_pairs_link_a_group_to_posts_of_its_template_with_new_content():
    # Group 0: images 0, 1. Group 1: image 2 (posted twice). Image 3: three posts left out of any group by the
    # caller's grouping. Image 4: one post, linked to nothing.
    image = np.array([0, 1, 2, 2, 3, 3, 3, 4])
    group = np.array([0, 0, 1, 1, -1, -1, -1, -1])
    pairs = np.array([[1, 2], [0, 3], [1, 3], [0, 1]])  # 0-1 inside group 0: not a template link
    lineage = repost_lineage(groups_of(group, image=image, template_pairs=pairs))
    assert lineage.template_posts.tolist() == [2 + 3, 1]  # group 0: image 2 (2 posts) and image 3 (3 posts, once)
    assert lineage.template_groups == ((1,), (0,))
    assert lineage.table().column("template_groups").to_pylist() == ["1", "0"]
    assert lineage.table().column("same_template").to_pylist() == [5, 1]


def test_row_columns_and_a_groups_posts_for_its_timeline():
    groups = groups_of([0, -1, 0])
    dates, accounts = dated(100, 0, 40), parse_accounts(["b", "c", "a"])
    lineage = repost_lineage(groups, dates=dates, accounts=accounts)
    columns = lineage.row_columns()
    assert columns["repost_order"].to_pylist() == [1, None, 0]
    assert columns["repost_delay_s"].to_pylist() == [60, None, 0]
    assert columns["repost_variant"].to_pylist() == ["same_picture", None, "first"]
    posts = lineage.posts(0, ids=["r0", "r1", "r2"], accounts=accounts, dates=dates).to_pylist()
    assert [(p["id"], p["account"], p["time"], p["delay_s"], p["variant"]) for p in posts] == [
        ("r2", "a", "2025-03-01T00:00:40Z", 0.0, "first"),
        ("r0", "b", "2025-03-01T00:01:40Z", 60.0, "same_picture"),
    ]
    with pytest.raises(ValueError, match=re.escape("group must be in 0..0")):
        lineage.group_rows(1)


def test_degenerate_inputs_give_valid_lineages():
    none = repost_lineage(groups_of([-1, -1]), dates=dated(0, 1), accounts=parse_accounts(["a", "b"]))
    assert none.n_groups == 0 and none.table().num_rows == 0 and (none.order == -1).all()
    assert none.row_columns()["repost_variant"].to_pylist() == [None, None]
    empty = repost_lineage(groups_of([]), dates=dated(), accounts=parse_accounts([]))
    assert empty.n_groups == 0 and len(empty.order) == 0 and empty.reach.shape == (0, 3)
    one = repost_lineage(groups_of([0]), dates=dated(None), accounts=parse_accounts([None]))
    assert one.first_row.tolist() == [0] and one.accounts.tolist() == [0] and one.first_account.tolist() == [-1]
    with pytest.raises(ValueError, match="dates has 1 rows"):
        repost_lineage(groups_of([0, 0]), dates=dated(0))

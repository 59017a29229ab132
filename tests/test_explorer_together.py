"""The explorer's "Posted together" filter and lineage view, driven in a real Chromium: the filter keeps exactly one
group's posts, the lineage lists a repost group's posts in time order with their delays, a click on a lineage row
shows that post, and an HTML payload in an account name stays text."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clustering.analysis.explorer.build import build_explorer
from tests.browser import assert_inert, open_point
from tests.test_explorer import XSS_ACCOUNT, write_output_folder

N = 300
# Repost group 0's posts get these delays (seconds after its first post), assigned out of row order.
DELAYS = (300, 0, 30, 7200, 2 * 86400, 45)
DELAY_TEXT = ["first", "+30 s", "+45 s", "+5 min", "+2.0 h", "+2.0 d"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> dict:
    info = write_output_folder(tmp_path_factory.mktemp("together"), n=N, n_clusters=6, seed=7, xss_row=True)
    out = info["output"]
    table = pq.read_table(out / "assignments.parquet")
    repost = info["repost"]
    group_rows = np.flatnonzero(repost == 0)
    assert len(group_rows) == len(DELAYS)
    post_time = info["post_time"].copy()
    first = post_time[group_rows].min()
    post_time[group_rows] = first + np.asarray(DELAYS).astype("timedelta64[s]")
    accounts = list(info["accounts"])
    in_time = group_rows[np.argsort(DELAYS, kind="stable")]
    for k, row in enumerate(in_time):
        accounts[row] = XSS_ACCOUNT if k == 1 else f"@relay{k}"
    order = np.full(N, -1)
    order[in_time] = np.arange(len(in_time))
    delay = np.full(N, -1)
    delay[group_rows] = DELAYS
    variant = [None] * N
    for k, row in enumerate(in_time):
        variant[row] = "first" if k == 0 else ("exact" if k % 2 else "same_picture")
    together = np.full(N, -1)
    together[np.flatnonzero(repost >= 0)] = 0  # both repost groups' posts: one group of accounts
    columns = {
        "post_time": pa.array(post_time.astype("datetime64[ms]"), pa.timestamp("ms", tz="UTC")),
        "account": pa.array(accounts, pa.string()),
        "repost_order": pa.array(order, pa.int32(), mask=order < 0),
        "repost_delay_s": pa.array(delay, pa.int64(), mask=delay < 0),
        "repost_variant": pa.array(variant, pa.string()),
        "coordinated_group": pa.array(together, pa.int32()),
    }
    for name, values in columns.items():
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, values) if index >= 0 else table.append_column(name, values)
    pq.write_table(table, out / "assignments.parquet")
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["coordination"] = {"analysed": True, "window_seconds": 60, "min_repetition": 3, "groups": 1}
    (out / "metrics.json").write_text(json.dumps(metrics))
    info.update(result=build_explorer(out), in_time=in_time, together=np.flatnonzero(together == 0), accounts=accounts)
    return info


def test_the_posted_together_filter_keeps_only_the_groups_posts(page, folder):
    page, log = page
    e = "window.explorer"
    assert page.locator("#together-box").is_visible()
    options = page.locator("#together option").all_text_contents()
    assert options[0] == "All posts" and len(options) == 2 and options[1].startswith("Group 0 · ")
    page.select_option("#together", "0")
    members = folder["together"].tolist()
    page.wait_for_function(f"n => {e}.together === 0 && {e}.counts.shown === n", arg=len(members))
    shown = page.evaluate(f"n => Array.from({{length: n}}, (_, i) => i).filter(i => {e}.isShown(i))", N)
    assert shown == members
    assert page.locator("#panel-title").text_content() == "Posted together · group 0"
    panel = page.locator("#panel-body").text_content()
    assert "within 60 seconds, 2 times" in panel and XSS_ACCOUNT in panel  # two images; the name as text
    assert page.locator("#panel-body .gallery button").count() == len(members)
    page.select_option("#together", "-1")
    page.wait_for_function(f"n => {e}.together === null && {e}.counts.shown === n", arg=N)
    assert_inert(page, log)
    assert log.console_errors == []


def test_the_lineage_lists_a_repost_groups_posts_in_time_order_by_account(page, folder):
    page, log = page
    e = "window.explorer"
    in_time = folder["in_time"]
    open_point(page, folder["ids"][int(in_time[3])], int(in_time[3]))
    assert page.locator("#panel-together").text_content() == "Posted together · group 0"
    rows = page.locator("#lineage .lineage-row")
    assert rows.count() == len(in_time)
    assert [int(p) for p in rows.evaluate_all("rs => rs.map(r => r.dataset.point)")] == in_time.tolist()
    accounts = page.locator("#lineage .lineage-account").all_text_contents()
    assert accounts == [folder["accounts"][r] for r in in_time] and accounts[1] == XSS_ACCOUNT
    assert page.locator("#lineage .lineage-delay").all_text_contents() == DELAY_TEXT
    assert page.locator("#lineage .lineage-row.current").get_attribute("data-point") == str(in_time[3])
    # the dots sit on one time axis: the first at its left end, the last at its right end
    lefts = page.locator("#lineage .lineage-dot").evaluate_all("ds => ds.map(d => d.style.left)")
    assert lefts[0] == "0%" and lefts[-1] == "100%"
    page.locator("#lineage .lineage-row button").nth(0).click()
    page.wait_for_function(f"i => {e}.current === i", arg=int(in_time[0]))
    assert page.locator("#lineage .lineage-row.current").get_attribute("data-point") == str(in_time[0])
    assert_inert(page, log)
    assert log.console_errors == []


def test_without_groups_the_menu_stays_hidden(browser, tmp_path):
    from tests.browser import open_page

    info = write_output_folder(tmp_path, n=120, n_clusters=3, seed=2)
    page, log = open_page(browser, build_explorer(info["output"]).path)
    try:
        assert page.locator("#together-box").is_hidden()
        assert page.evaluate("window.explorer.together") is None
        assert log.page_errors == [] and log.console_errors == []
    finally:
        page.context.close()

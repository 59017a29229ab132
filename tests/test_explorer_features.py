"""The explorer on the full output contract (hierarchy, post columns, repost groups), driven in a real Chromium:
levels and drill-down, names and keywords, the timeline brush, the account filter, the layout at three window sizes,
and HTML payloads in names, keywords, account names and hashtags staying inert."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clustering.analysis.explorer.build import build_explorer
from tests.browser import assert_inert, open_page, open_point, wait_idle
from tests.test_explorer import XSS_ACCOUNT, XSS_HASHTAG, XSS_KEYWORD, XSS_NAME, cluster_names, write_output_folder

N = 300


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> dict:
    info = write_output_folder(tmp_path_factory.mktemp("features"), n=N, n_clusters=6, seed=7, xss_row=True)
    info["result"] = build_explorer(info["output"])
    return info


def _listed_names(page) -> list[str]:
    return page.locator(".cluster-item .cl-name").evaluate_all("ns => ns.map(n => n.firstChild.textContent)")


# ------------------------------------------------------------------------------------------------ levels
def test_levels_switch_and_show_names_and_keywords(page, folder):
    page, log = page
    e = "window.explorer"
    assert page.evaluate(f"{e}.levels") == ["themes", "clusters", "subclusters"]
    assert page.evaluate(f"{e}.level") == "clusters"  # the chosen clustering is the level shown first
    assert page.locator("#levels button").all_text_contents() == ["Themes", "Clusters", "Subclusters"]
    names = set(_listed_names(page))
    assert {cluster_names("clusters", k)[0] for k in range(1, 6)} <= names
    keywords = page.locator(".cluster-item .cl-kw").all_text_contents()
    assert any(XSS_KEYWORD in k for k in keywords)  # shown as text
    page.locator("#levels button", has_text="Themes").click()
    page.wait_for_function(f"() => {e}.level === 'themes'")
    themes = set(folder["theme"].tolist()) - {-1}
    assert page.evaluate(f"{e}.counts.clusters") == len(themes)
    listed = set(_listed_names(page)) - {"Noise"}
    assert listed == {XSS_NAME} | {cluster_names("themes", t)[0] for t in themes - {0}}
    i = int(np.flatnonzero(folder["theme"] >= 0)[0])
    assert page.evaluate(f"i => {e}.clusterOf(i)", i) == folder["theme"][i]
    page.locator("#levels button", has_text="Subclusters").click()
    page.wait_for_function(f"() => {e}.level === 'subclusters'")
    assert page.evaluate(f"{e}.counts.clusters") == len(set(folder["finer"].tolist()) - {-1})
    assert page.evaluate(f"i => {e}.clusterOf(i)", i) == folder["finer"][i]
    assert_inert(page, log)


def test_a_theme_drills_down_into_its_clusters_and_back(page, folder):
    page, log = page
    e = "window.explorer"
    page.locator("#levels button", has_text="Themes").click()
    theme = 1
    members = int((folder["theme"] == theme).sum())
    page.locator(f'.cluster-item[data-label="{theme}"]').click()
    page.wait_for_function(f"() => {e}.level === 'clusters'")
    assert page.evaluate(f"{e}.path") == [{"level": "themes", "cluster": theme}]
    page.wait_for_function(f"n => {e}.counts.shown === n", arg=members)
    children = sorted(set(folder["cluster"][folder["theme"] == theme].tolist()))
    assert sorted(page.evaluate(f"{e}.clusterLabels()")) == children == [2, 3]
    assert page.locator("#panel-title").text_content() == f"Theme {theme} · {cluster_names('themes', theme)[0]}"
    assert page.locator(".keywords span").all_text_contents() == cluster_names("themes", theme)[1]
    assert page.locator("#crumbs button").all_text_contents() == ["All themes", cluster_names("themes", theme)[0]]
    # one level further: a cluster of the theme into its subclusters; Esc backs out one level at a time
    page.locator('.cluster-item[data-label="3"]').click()
    page.wait_for_function(f"() => {e}.level === 'subclusters'")
    assert [p["cluster"] for p in page.evaluate(f"{e}.path")] == [theme, 3]
    page.wait_for_function(f"n => {e}.counts.shown === n", arg=int((folder["cluster"] == 3).sum()))
    assert page.locator(".uncertain").count() == 0
    sub = page.evaluate(f"{e}.clusterLabels()[0]")
    page.locator(f'.cluster-item[data-label="{sub}"]').click()  # the finest level: a click focuses
    page.wait_for_function(f"s => {e}.focus === s", arg=sub)
    page.wait_for_function(f"n => {e}.counts.shown === n", arg=int((folder["finer"] == sub).sum()))
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => {e}.focus === null")
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => {e}.level === 'clusters' && {e}.path.length === 1")
    page.locator("#crumbs button", has_text="All themes").click()
    page.wait_for_function(f"() => {e}.level === 'themes' && {e}.path.length === 0")
    page.wait_for_function(f"n => {e}.counts.shown === n", arg=N)
    assert_inert(page, log)


def test_point_panel_shows_its_theme_time_account_and_repost_group(page, folder):
    page, log = page
    e = "window.explorer"
    i = int(np.flatnonzero(folder["repost"] == 0)[0])
    open_point(page, folder["ids"][i], i)
    chips = page.locator("#panel-body .chips").first.text_content()
    theme = folder["theme"][i]
    assert f"Theme {theme}: " in chips
    assert str(folder["post_time"][i]).replace("T", " ")[:16] + " UTC" in chips
    assert page.locator("#panel-account").text_content() == f"Posts by {folder['accounts'][i]}"
    assert page.locator("#panel-reposts").text_content() == "Repost group 0 · 6 posts"
    page.fill("#search", "")
    page.locator("#panel-reposts").click()
    page.wait_for_function(f"() => {e}.counts.selected === 6")
    page.wait_for_function(f"() => {e}.counts.shown === 6")  # once the cleared search has run too
    assert_inert(page, log)


# ------------------------------------------------------------------------------------------------ timeline
def _bins(folder) -> np.ndarray:
    days = folder["post_time"].astype("datetime64[D]").astype(np.int64)
    return days - days.min()


def _drag_timeline(page, first: int, last: int, n_bins: int) -> None:
    box = page.locator("#tl-canvas").bounding_box()
    width = box["width"] - 16  # the plot's padding, 8 px each side

    def x(b):
        return box["x"] + 8 + (b + 0.5) * width / n_bins

    y = box["y"] + box["height"] / 2
    page.mouse.move(x(first), y)
    page.mouse.down()
    page.mouse.move(x(last), y, steps=5)
    page.mouse.up()


def test_timeline_counts_per_day_and_its_brush_filters_by_time(page, folder):
    page, log = page
    e = "window.explorer"
    bins = _bins(folder)
    timeline = page.evaluate(f"{e}.timeline")
    assert timeline["period"] == "day" and timeline["bins"] == bins.max() + 1
    assert timeline["all"] == np.bincount(bins).tolist()
    assert page.locator("#tl-title").text_content() == "Posts per day"
    _drag_timeline(page, 9, 12, timeline["bins"])
    page.wait_for_function(f"() => {e}.timeRange !== null")
    assert page.evaluate(f"{e}.timeRange") == [9, 12]
    expected = int(((bins >= 9) & (bins <= 12)).sum())
    page.wait_for_function(f"n => {e}.counts.shown === n", arg=expected)
    assert "shown" in page.locator("#tl-range").text_content()
    # the brush combines with the other filters: cluster 1 (posted on days 10-11) keeps all of its points
    page.locator('.cluster-item[data-label="1"]').click()
    page.wait_for_function(f"n => {e}.counts.shown === n", arg=int((folder["cluster"] == 1).sum()))
    counts = page.evaluate(f"{e}.timeline")["counts"]
    assert sum(counts) == int((folder["cluster"] == 1).sum()) and set(np.flatnonzero(counts)) <= {10, 11}
    page.keyboard.press("Escape")  # drill-down or focus first
    page.wait_for_function(f"n => {e}.counts.shown === n", arg=expected)
    page.click("#tl-clear")
    page.wait_for_function(f"n => {e}.counts.shown === n", arg=N)
    assert page.evaluate(f"{e}.timeRange") is None
    _drag_timeline(page, 3, 3, timeline["bins"])  # a click keeps one day
    page.wait_for_function(f"n => {e}.counts.shown === n", arg=int((bins == 3).sum()))
    assert log.page_errors == [] and log.console_errors == []


def test_without_dates_the_timeline_is_one_line_saying_why(browser, tmp_path):
    info = write_output_folder(tmp_path, n=60, n_clusters=2, seed=8, hierarchy=False)
    table_path = info["output"] / "assignments.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(table_path).drop_columns(["date"]), table_path)
    page, log = open_page(browser, build_explorer(info["output"]).path)
    try:
        assert page.evaluate("window.explorer.timeline") is None
        assert not page.locator("#tl-plot").is_visible()
        assert "no date column" in page.locator("#tl-note").text_content()
        assert page.locator("#timeline").bounding_box()["height"] < 60
        assert log.page_errors == [] and log.console_errors == []
    finally:
        page.context.close()


# ------------------------------------------------------------------------------------------------ accounts
def test_account_filter_finds_and_keeps_one_accounts_posts(page, folder):
    page, log = page
    e = "window.explorer"
    accounts = folder["accounts"]
    page.click("#account")
    page.keyboard.type("user1")
    options = page.locator("#account-list li[data-code]")
    names = options.locator(".name").all_text_contents()
    counts = [int(c.replace(",", "")) for c in options.locator(".count").all_text_contents()]
    assert names and all("user1" in name for name in names) and counts == sorted(counts, reverse=True)
    assert counts == [accounts.count(name) for name in names]
    options.first.dispatch_event("pointerdown")
    page.wait_for_function(f"a => {e}.account === a", arg=names[0])
    page.wait_for_function(f"n => {e}.counts.shown === n", arg=counts[0])
    assert page.evaluate(f"{e}.panel") == "account"
    assert page.locator("#panel-title").text_content() == f"Account · {names[0]}"
    assert page.locator(".gallery button").count() == counts[0]
    page.keyboard.press("Escape")  # leaves the input
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => {e}.account === null && {e}.counts.shown === {N}")
    # an account name that is an HTML payload is listed as text, and filters like any other
    page.click("#account")
    page.keyboard.type("iframe")
    assert page.locator("#account-list li[data-code] .name").all_text_contents() == [XSS_ACCOUNT]
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => {e}.counts.shown === 2")
    assert page.locator("#panel-title").text_content() == f"Account · {XSS_ACCOUNT}"
    assert_inert(page, log)


def test_hashtag_and_name_payloads_show_as_text_in_card_and_panel(page, folder):
    page, log = page
    e = "window.explorer"
    page.fill("#search", "__xss=9")
    page.wait_for_function(f"() => {e}.counts.shown === 1")
    page.keyboard.press("Enter")
    wait_idle(page)
    pos = page.evaluate(f"i => {e}.screenPosition(i)", 1)
    page.mouse.move(pos["x"], pos["y"], steps=2)
    page.wait_for_function(f"() => {e}.hovered === 1")
    assert XSS_HASHTAG in page.locator("#tt-text").text_content()
    page.mouse.click(pos["x"], pos["y"])
    page.wait_for_function(f"() => {e}.current === 1")
    assert XSS_HASHTAG in page.locator(".post-text").text_content()
    page.fill("#search", "")
    page.locator("#levels button", has_text="Themes").click()
    page.locator('.cluster-item[data-label="0"]').click()
    page.wait_for_function(f"() => {e}.level === 'clusters'")
    assert page.locator("#panel-title").text_content() == f"Theme 0 · {XSS_NAME}"
    assert page.locator("#crumbs button").nth(1).get_attribute("title") == f"Theme 0: {XSS_NAME}"
    assert_inert(page, log)


# ------------------------------------------------------------------------------------------------ layout
@pytest.mark.parametrize("size", [(1400, 900), (1920, 1080), (1280, 720)])
def test_the_app_fills_the_window(browser, folder, size, tmp_path):
    width, height = size
    page, log = open_page(browser, folder["result"].path, viewport=size)
    try:
        box = page.evaluate(
            """() => {
                const r = (id) => document.getElementById(id).getBoundingClientRect();
                const doc = document.documentElement;
                return { layout: r('layout'), map: r('map'), timeline: r('timeline'), panel: r('panel'),
                         scrollH: doc.scrollHeight, scrollW: doc.scrollWidth };
            }"""
        )
        assert abs(box["layout"]["bottom"] - height) <= 1 and abs(box["timeline"]["bottom"] - height) <= 1
        assert abs(box["panel"]["bottom"] - height) <= 1 and abs(box["panel"]["right"] - width) <= 1
        assert box["scrollH"] <= height and box["scrollW"] <= width  # nothing spills out of the window
        assert box["map"]["height"] >= 0.5 * height and box["map"]["bottom"] == box["timeline"]["top"]
        shot = tmp_path / f"explorer-{width}x{height}.png"
        page.screenshot(path=str(shot))
        bottom = Image.open(shot).convert("RGB").crop((0, height - 40, width, height))
        assert len(bottom.getcolors(maxcolors=1 << 16)) > 20  # the timeline's bars and dates, not an empty band
        assert log.page_errors == [] and log.console_errors == []
    finally:
        page.context.close()


# ------------------------------------------------------------------------------------------------ labels


def test_labels_sit_on_clusters_a_person_can_see_and_zooming_in_reveals_finer_ones(browser, tmp_path):
    """Issue 27: at the default zoom every label belongs to a cluster whose points cover enough screen; the small
    clusters' labels wait for a zoom, and zooming in never hides a label that stays on screen."""
    info = write_output_folder(tmp_path, n=2000, n_clusters=150, seed=3, hierarchy=False)
    page, log = open_page(browser, build_explorer(info["output"]).path)
    try:
        wait_idle(page)
        labels = page.evaluate("window.explorer.labels")
        drawn = labels["drawn"]
        assert drawn and all(label["covered"] >= labels["visiblePx"] for label in drawn)
        assert len(drawn) < page.evaluate("window.explorer.counts.clusters"), "the smallest clusters wait for a zoom"
        before = {label["label"] for label in drawn}
        for _ in range(3):
            page.click("#zoom-in")
            wait_idle(page)
        zoomed = page.evaluate("window.explorer.labels")["drawn"]
        assert all(label["covered"] >= labels["visiblePx"] for label in zoomed)
        assert {label["label"] for label in zoomed} - before, "zooming in reveals finer labels"
        assert log.page_errors == [] and log.console_errors == []
    finally:
        page.context.close()

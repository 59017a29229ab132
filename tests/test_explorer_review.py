"""The explorer's review mode and the history of a followed collection (issue 25, docs/follow.md), in a real Chromium:
a person renames, merges, splits and sends to noise through the page's controls and downloads review.json; undo and
a reload; the "New since" filter and the markers of new and reviewed clusters; a folder without history columns."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from clustering.analysis.explorer.build import build_explorer
from clustering.analysis.explorer.payload import page_payload
from clustering.analysis.follow.review import apply_review, load_review
from tests.browser import lasso_rectangle, open_page, open_point, wait_idle
from tests.test_explorer import write_output_folder

N = 300
E = "window.explorer"
# Two ids whose order differs between Python's sorted (code points) and JavaScript's default sort (UTF-16 units).
ODD_IDS = ("post-\uff21-fullwidth", "post-\U0001f600-emoji")
SCREENSHOT = Path("/tmp/explorer-review.png")


def _add_history(info: dict) -> dict:
    """The fixture folder as an update leaves it: cluster 5 born in batch 1 (new), a few posts of batch 1 placed by
    the nearest neighbours, cluster 3 renamed by an earlier review, two ids that sort differently in JS and Python."""
    out, cluster = info["output"], info["cluster"]
    ids = list(info["ids"])
    odd_rows = np.flatnonzero(cluster == 2)[:2]
    renamed = {ids[r]: new for r, new in zip(odd_rows, ODD_IDS, strict=True)}
    for r, new in zip(odd_rows, ODD_IDS, strict=True):
        ids[r] = new
    for shard in sorted(info["shards"].glob("*.parquet")):  # the thumbnails join on id
        table = pq.read_table(shard)
        column = [renamed.get(v, v) for v in table.column("id").to_pylist()]
        pq.write_table(table.set_column(table.schema.get_field_index("id"), "id", pa.array(column)), shard)
    batch = np.where((cluster == 5) | (np.arange(N) % 15 == 0), 1, 0).astype(np.int32)
    source = np.where(batch == 0, "clustering", np.where(cluster == 5, "new_cluster", "assigned"))
    source[np.flatnonzero(cluster == 3)[:3]] = "review"
    table = pq.read_table(out / "assignments.parquet")
    table = table.set_column(0, "id", pa.array(ids))
    table = table.append_column("batch", pa.array(batch, pa.int32()))
    table = table.append_column("label_source", pa.array(source.tolist(), pa.string()))
    pq.write_table(table, out / "assignments.parquet")
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["batches"] = [
        {"batch": 0, "kind": "analysis", "created": "2024-10-01T09:00:00Z", "rows": int((batch == 0).sum()),
         "input": str(info["shards"])},
        {"batch": 1, "kind": "update", "created": "2024-11-05T18:30:00Z", "rows": int((batch == 1).sum()),
         "input": str(info["shards"])},
    ]  # fmt: skip
    for level in metrics["hierarchy"]["levels"]:
        for entry in level["clusters"]:
            if level["name"] == "clusters":
                entry["new"] = entry["cluster"] == 5
                entry["reviewed"] = entry["cluster"] == 3
                if entry["cluster"] == 3:
                    entry.update(name="Reviewed street food", name_source="review", uncertain=False)
    (out / "metrics.json").write_text(json.dumps(metrics))
    return {**info, "ids": ids, "batch": batch, "source": source, "metrics": metrics}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> dict:
    info = write_output_folder(tmp_path_factory.mktemp("review"), n=N, n_clusters=6, seed=11)
    info = _add_history(info)
    info["result"] = build_explorer(info["output"])
    return info


# ------------------------------------------------------------------------------------------------ helpers
def _members(labels: np.ndarray, ids: list[str], label: int) -> list[str]:
    """What review.json lists for a cluster: its ids in Python's sorted order, the first 1,000."""
    return sorted(ids[i] for i in np.flatnonzero(labels == label))[:1000]


def _lasso_around(page, rows) -> list[str]:
    """Lasso the screen box around `rows`; the ids the selection's gallery shows (every selected image)."""
    pts = [p for p in (page.evaluate(f"i => {E}.screenPosition(i)", int(i)) for i in rows) if p]
    xs, ys = [p["x"] for p in pts], [p["y"] for p in pts]
    lasso_rectangle(page, min(xs) - 3, min(ys) - 3, max(xs) + 3, max(ys) + 3)
    selected = page.evaluate(f"{E}.counts.selected")
    assert 0 < selected <= 120, "the gallery shows every selected image"
    shown = page.locator("#panel-body .gallery button").evaluate_all("bs => bs.map(b => b.title)")
    assert len(shown) == selected
    return shown


def _listed(page) -> dict[int, tuple[str, int]]:
    """The cluster list as a person reads it: label -> (name, size)."""
    rows = page.locator(".cluster-item").evaluate_all(
        "bs => bs.map(b => [Number(b.dataset.label), b.querySelector('.cl-name').firstChild.textContent,"
        " b.querySelector('.cl-count').textContent])"
    )
    return {label: (name, int(size.replace(",", ""))) for label, name, size in rows}


def _pick(page, label: int) -> None:
    page.locator(f'#cluster-list li:has(.cluster-item[data-label="{label}"]) .pick input').check()


# ------------------------------------------------------------------------------------------------ review
def test_review_actions_through_the_page_export_exactly_as_shown(page, folder):
    page, log = page
    ids, labels = folder["ids"], folder["cluster"].copy()
    page.click("#review-toggle")
    page.wait_for_function(f"() => {E}.reviewing")
    assert page.locator("#review-bar").is_visible() and page.evaluate(f"{E}.panel") == "review"
    expected = []

    # rename: a click on cluster 2 opens its panel; type the name, Enter
    page.locator('.cluster-item[data-label="2"]').click()
    page.wait_for_function(f"() => {E}.panel === 'cluster'")
    page.fill("#rename-input", "  Flags at the border  ")
    page.press("#rename-input", "Enter")
    page.wait_for_function(f"() => {E}.review.actions.length === 1")
    rename = {"kind": "rename", "cluster": 2, "members": _members(labels, ids, 2), "name": "Flags at the border"}
    expected.append(rename)
    assert set(ODD_IDS) <= set(expected[0]["members"])
    assert _listed(page)[2] == ("Flags at the border", int((labels == 2).sum()))
    assert page.locator(".named-by-person").text_content() == "named by a person"
    page.keyboard.press("Escape")  # leaves the input, then the focus on cluster 2
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => {E}.focus === null")

    # merge: tick cluster 2, then 4 (2 keeps its label), name it in the merge panel
    _pick(page, 2)
    _pick(page, 4)
    assert page.locator(".pick-order").all_text_contents().count("1") == 1
    assert page.locator("#merge-go").text_content() == "Merge 2 clusters"
    page.screenshot(path=str(SCREENSHOT))
    page.fill("#merge-name", "Flags")
    page.click("#merge-go")
    page.wait_for_function(f"() => {E}.review.actions.length === 2")
    expected.append({"kind": "merge", "clusters": [2, 4], "name": "Flags",
                     "members": [_members(labels, ids, 2), _members(labels, ids, 4)]})  # fmt: skip
    labels[labels == 4] = 2
    listed = _listed(page)
    assert 4 not in listed and listed[2] == ("Flags", int((labels == 2).sum()))

    # split: a lasso around cluster 0's left half becomes a new cluster, named
    wait_idle(page)
    zero = np.flatnonzero(labels == 0)
    xs = [page.evaluate(f"i => {E}.screenPosition(i)", int(i))["x"] for i in zero]
    shown = _lasso_around(page, zero[np.array(xs) < np.median(xs)])
    page.fill("#split-name", "Burning flags")
    page.click("#split-go")
    page.wait_for_function(f"() => {E}.review.actions.length === 3")
    expected.append({"kind": "split", "ids": sorted(shown), "name": "Burning flags"})
    rows = [ids.index(i) for i in shown]
    labels[rows] = 6  # one past every label of the analysis
    assert _listed(page)[6] == ("Burning flags", len(shown))
    assert [page.evaluate(f"i => {E}.clusterOf(i)", r) for r in rows] == [6] * len(rows)

    # noise: a lasso around the top of cluster 1
    wait_idle(page)
    one = np.flatnonzero(labels == 1)
    ys = [page.evaluate(f"i => {E}.screenPosition(i)", int(i))["y"] for i in one]
    noise_before = page.evaluate(f"{E}.counts.noise")
    shown = _lasso_around(page, one[np.array(ys) < np.median(ys)])
    page.click("#noise-go")
    page.wait_for_function(f"() => {E}.review.actions.length === 4")
    expected.append({"kind": "noise", "ids": sorted(shown)})
    rows = [ids.index(i) for i in shown]
    assert page.evaluate(f"{E}.counts.noise") == noise_before + int((labels[rows] >= 0).sum())
    labels[rows] = -1
    assert {label: size for label, (_, size) in _listed(page).items()} == {
        int(k): int((labels == k).sum()) for k in np.unique(labels)
    }
    assert page.locator("#review-list li").count() == 4

    with page.expect_download() as download:
        page.click("#review-export")
    assert download.value.suggested_filename == "review.json"
    review = json.loads(Path(download.value.path()).read_text())
    created = review.pop("created")
    assert created.endswith("Z") and abs(dt.datetime.fromisoformat(created) - dt.datetime.now(dt.UTC)).seconds < 600
    assert review == {
        "format": "clipcluster-review",
        "version": 1,
        "level": "clusters",
        "analysis": {"input": folder["metrics"]["input"], "title": page.title()},
        "actions": expected,
    }
    assert log.page_errors == [] and log.console_errors == [] and log.network_requests() == []

    # The round trip: the analysis applies the downloaded file to the same rows and gets the page's clusters and names.
    done = apply_review(load_review(download.value.path()), folder["cluster"], ids)
    assert done.not_applied == [] and len(done.applied) == 4
    assert ((done.labels < 0) == (labels < 0)).all()
    pairs = set(zip(done.labels[labels >= 0].tolist(), labels[labels >= 0].tolist(), strict=True))
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})  # the same groups, renumbered
    page_of = dict(pairs)
    assert {page_of[c]: name for c, name in done.names.items()} == {2: "Flags", 6: "Burning flags"}


def test_undo_takes_back_the_last_action_and_a_reload_keeps_the_rest(page, folder):
    page, log = page
    labels = folder["cluster"]
    page.click("#review-toggle")
    page.locator('.cluster-item[data-label="1"]').click()
    page.fill("#rename-input", "Sunsets, reviewed")
    page.click("#rename-go")
    page.wait_for_function(f"() => {E}.review.actions.length === 1")
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => {E}.focus === null")
    wait_idle(page)
    shown = _lasso_around(page, np.flatnonzero(labels == 3))
    rows = [folder["ids"].index(i) for i in shown]
    page.click("#noise-go")
    page.wait_for_function(f"() => {E}.review.actions.length === 2")
    assert page.evaluate(f"rows => rows.map(i => {E}.clusterOf(i))", rows) == [-1] * len(rows)
    assert 3 not in _listed(page)

    page.click("#review-undo")
    page.wait_for_function(f"() => {E}.review.actions.length === 1")
    assert [a["kind"] for a in page.evaluate(f"{E}.review.actions")] == ["rename"]
    assert page.evaluate(f"rows => rows.map(i => {E}.clusterOf(i))", rows) == labels[rows].tolist()
    assert _listed(page)[3][1] == int((labels == 3).sum())
    described = [f"Renamed Cluster 1 \u201cSunsets, reviewed\u201d ({int((labels == 1).sum())} images)"]
    assert page.locator("#review-list li").all_text_contents() == described

    page.reload()  # the actions are kept in this browser for this analysis
    page.wait_for_function(f"() => {E} && {E}.ready")
    assert page.evaluate(f"{E}.reviewing") and len(page.evaluate(f"{E}.review.actions")) == 1
    assert _listed(page)[1][0] == "Sunsets, reviewed"
    assert page.locator("#review-toggle").text_content() == "Review · 1"
    assert page.locator("#review-list li").all_text_contents() == described  # the review panel, as it was
    assert log.page_errors == [] and log.console_errors == []


# ------------------------------------------------------------------------------------------------ history
def test_new_since_keeps_the_update_and_new_and_reviewed_clusters_are_marked(page, folder):
    page, log = page
    batch, labels = folder["batch"], folder["cluster"]
    new = int((batch == 1).sum())
    assert page.locator("#since-box").is_visible()
    assert page.locator("#since-count").text_content() == f"{new} new" and page.evaluate(f"{E}.counts.new") == new
    options = page.locator("#since option").all_text_contents()
    assert options == ["All posts", f"New in update 1 · 2024-11-05 · {new} posts"]
    page.select_option("#since", "1")
    page.wait_for_function(f"n => {E}.counts.shown === n", arg=new)
    assert page.evaluate(f"{E}.since") == 1
    shown = page.evaluate(f"n => [...Array(n).keys()].filter(i => {E}.isShown(i))", N)
    assert shown == np.flatnonzero(batch == 1).tolist()
    page.keyboard.press("Escape")
    page.wait_for_function(f"n => {E}.counts.shown === n", arg=N)
    assert page.evaluate(f"{E}.since") is None

    # cluster 5 was born in the update: a badge in the list, a line in its panel, a tag on its map label
    assert page.locator('.cluster-item[data-label="5"] .badge-new').text_content() == "new"
    assert page.locator(".cluster-item .badge-new").count() == 1
    assert [d["label"] for d in page.evaluate(f"{E}.labels.drawn") if d["new"]] == [5]
    page.locator('.cluster-item[data-label="5"]').click()  # the chosen level drills into its subclusters
    page.wait_for_function(f"() => {E}.panel === 'cluster'")
    assert "appeared in the latest batch" in page.locator(".marker-new").text_content()
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => {E}.path.length === 0")
    # cluster 3 was renamed by an earlier review
    assert page.locator('.cluster-item[data-label="3"] .badge-reviewed').count() == 1
    assert page.locator('.cluster-item[data-label="5"] .badge-reviewed').count() == 0

    # a point of the update placed by its nearest neighbours, and one of the first analysis
    i = int(np.flatnonzero((folder["source"] == "assigned") & (labels >= 0))[0])
    open_point(page, folder["ids"][i], i)
    assert page.locator("#panel-batch").text_content() == "Added by update 1 · 2024-11-05"
    assert page.locator("#panel-source").text_content() == "Cluster placed by the update\u2019s nearest neighbours."
    j = int(np.flatnonzero(folder["source"] == "review")[0])
    open_point(page, folder["ids"][j], j)
    assert page.locator("#panel-batch").text_content() == "Added by the first analysis · 2024-10-01"
    assert page.locator("#panel-source").text_content() == "Cluster set by a person\u2019s review."
    assert log.page_errors == [] and log.console_errors == []


def test_the_payload_shows_history_columns_in_their_places(folder):
    header = json.loads(Path(folder["result"].path).read_text().split('id="explorer-data">')[1].split("</script>")[0])
    history = header["history"]
    assert history["latest"] == 1 and history["batch"] and history["label_source"]["size"] == 4
    assert [b["batch"] for b in history["batches"]] == [0, 1] and history["batches"][1]["kind"] == "update"
    assert {c["name"] for c in header["columns"]}.isdisjoint({"batch", "label_source"})  # not passthrough
    clusters = {c["cluster"]: c for lv in header["levels"] if lv["column"] == "cluster" for c in lv["clusters"]}
    assert [k for k, c in clusters.items() if c["new"]] == [5]
    assert [k for k, c in clusters.items() if c["reviewed"]] == [3]
    assert history["input"] == folder["metrics"]["input"]  # review.json's analysis.input: metrics.json's, as it is
    table = pq.read_table(folder["output"] / "assignments.parquet")
    assert page_payload(table, {"input": ["first", "second"]}).header["history"]["input"] == ["first", "second"]


def test_a_folder_without_history_has_no_new_since_and_still_reviews(browser, tmp_path):
    info = write_output_folder(tmp_path, n=120, n_clusters=3, seed=12, hierarchy=False)
    table = pq.read_table(info["output"] / "assignments.parquet")
    assert not {"batch", "label_source"} & set(table.column_names)
    page, log = open_page(browser, build_explorer(info["output"]).path)
    try:
        assert not page.locator("#since-box").is_visible() and page.evaluate(f"{E}.counts.new") == 0
        page.click("#review-toggle")
        label = page.evaluate(f"{E}.clusterLabels()[0]")
        page.locator(f'.cluster-item[data-label="{label}"]').click()
        page.fill("#rename-input", "Renamed without history")
        page.click("#rename-go")
        page.wait_for_function(f"() => {E}.review.actions.length === 1")
        size = pc.sum(pc.equal(table["cluster"], label)).as_py()
        assert _listed(page)[label] == ("Renamed without history", size)
        i = int(np.flatnonzero(info["cluster"] == label)[0])
        page.keyboard.press("Escape")
        open_point(page, info["ids"][i], i)
        assert page.locator("#panel-batch").count() == page.locator("#panel-source").count() == 0
        assert log.page_errors == [] and log.console_errors == []
    finally:
        page.context.close()


def test_an_updated_folder_takes_thumbnails_from_every_input_it_read(tmp_path):
    """An update's metrics.json ``input`` is the list of the inputs its batches read: ``--explorer-only`` finds the
    thumbnails in every one it can and names the one it cannot."""
    info = write_output_folder(tmp_path, n=60, n_clusters=2, seed=13, hierarchy=False)
    metrics_path = info["output"] / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["input"] = [str(info["shards"]), str(tmp_path / "gone")]
    metrics_path.write_text(json.dumps(metrics))
    result = build_explorer(info["output"])
    assert result.n_points_with_thumbnail == 60
    assert result.notice == f"Some thumbnails are missing: no embedding shards found at {tmp_path / 'gone'}."

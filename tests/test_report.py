"""The report without running a clustering: what it shows of a hand-made run, montages, rendering and figures."""

from __future__ import annotations

import dataclasses
import io
import math
import re

import numpy as np
import pytest
from PIL import Image

from clustering.analysis import documents
from clustering.analysis.palette import BACKGROUND_RGB, cluster_palette, hex_colours
from clustering.analysis.report import contents, plots
from clustering.analysis.report.contents import ClusterSummary, ReportData, report_data
from clustering.analysis.report.montages import draw_montages, plan_montages
from clustering.analysis.report.render import TEMPLATES, render_report
from clustering.analysis.report.sections import ReportSection
from tests.test_documents import make_run, setting, shard_data

EVIL = '<script>alert("x")</script>'


def sample_data(**overrides) -> ReportData:
    rows = (
        {
            "min_cluster_size": 10,
            "min_samples": 5,
            "clusters": 12,
            "noise_fraction": 0.25,
            "dbcv": 0.41,
            "silhouette_reduced": 0.61,
            "silhouette_cosine": 0.22,
        },
        {
            "min_cluster_size": 20,
            "min_samples": 5,
            "clusters": 7,
            "noise_fraction": 0.31,
            "dbcv": 0.52,
            "silhouette_reduced": 0.64,
            "silhouette_cosine": float("nan"),
        },
    )
    values = {
        "title": "Image clusters",
        "created": "2026-01-01 00:00 UTC",
        "input": "s3://bucket/shards",
        "output": "/data/out",
        "model": "openai/clip-vit-base-patch32",
        "model_note": None,
        "n_total": 1200,
        "status_counts": {"ok": 1000, "http_error": 150, "timeout": 50},
        "n_rows": 1000,
        "n_unique": 900,
        "n_copies": 100,
        "keep_duplicates": False,
        "n_clusters": 7,
        "noise_fraction": 0.31,
        "notes": (f"a note with {EVIL}",),
        "params": {"reduction.n_neighbors": "15", "config.seed": "42"},
        "timings": {"read": 0.5, "reduce": 61.0, "total": 70.2},
        "sweep_columns": tuple(rows[0]),
        "sweep_rows": rows,
        "chosen_index": 1,
        "runner_up_indices": (0,),
        "selection": {"rule": "max DBCV under max_noise", "reason": f"because {EVIL}", "pinned": False},
        "alternatives": (
            {
                "column": "cluster",
                "min_cluster_size": 20,
                "min_samples": 5,
                "clusters": 7,
                "noise_fraction": 0.31,
                "label": "chosen: min_cluster_size=20, min_samples=5",
            },
        ),
        "granularity": (
            {
                "resolution_from": 0.25,
                "resolution_to": 0.5,
                "column": "cluster_mcs40_ms5",
                "setting": "coarse setting",
                "clusters": 3,
                "noise_fraction": 0.2,
            },
            {
                "resolution_from": 0.5,
                "resolution_to": 4.0,
                "column": "cluster",
                "setting": "the chosen setting",
                "clusters": 7,
                "noise_fraction": 0.31,
            },
        ),
        "selection_resolution": "0.8",
        "metric_docs": {"dbcv": "density-based cluster validity, higher is better"},
        "clusters": (
            ClusterSummary(
                cluster=0,
                size=300,
                unique=280,
                duplicates=20,
                mean_probability=0.9,
                persistence=0.12,
                montage="montages/cluster_000.jpg",
                examples=(f"post {EVIL}", "a | b * c"),
            ),
            ClusterSummary(cluster=1, size=100, unique=100, duplicates=0, mean_probability=0.8, persistence=math.nan),
        ),
        "montage_note": "montages are drawn for the 1 largest of 2 clusters",
        "outliers_montage": "montages/outliers.jpg",
        "outliers": ({"id": f"id-{EVIL}", "outlier_score": 0.97, "cluster": -1, "text": EVIL},),
        "text_column": "post_text",
        "map_png": "map.png",
        "sweep_png": "sweep.png",
        "explorer": None,
    }
    values.update(overrides)
    return ReportData(**values)


def test_html_escapes_every_data_derived_text():
    page = render_report(sample_data()).html
    assert "<script>" not in page
    assert page.count("&lt;script&gt;") == 5  # note, reason, example, outlier id, outlier text


def test_markdown_makes_data_text_inert():
    markdown = render_report(sample_data()).markdown
    assert "<script>" not in markdown
    assert "a \\| b \\* c" in markdown  # table pipes and emphasis escaped in data text


def test_report_shows_the_run():
    rendered = render_report(sample_data())
    for text in (
        "openai/clip-vit-base-patch32",
        "1,200",
        "http_error",
        "900 distinct images",
        "100 exact reposts",
        "max DBCV under max_noise",
        "density-based cluster validity",
        "montages/cluster_000.jpg",
        "montages/outliers.jpg",
        "map.png",
        "sweep.png",
        "1 min 1 s",
        "montages are drawn for the 1",
        "Granularity",
        "0.25-0.50",
        "cluster_mcs40_ms5",
        "coarse setting",
    ):
        assert text in rendered.html, text
        assert text in rendered.markdown, text
    assert 'class="chosen"' in rendered.html


def test_images_are_relative_and_the_page_is_self_contained():
    page = render_report(sample_data()).html
    for target in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert "://" not in target and not target.startswith("/"), target
    assert "<link" not in page and "<script" not in page  # no external stylesheet or script


def test_random_weights_and_explorer_link():
    rendered = render_report(sample_data(model_note="random-weight test model", explorer="explorer.html"))
    assert "random-weight test model" in rendered.html and 'href="explorer.html"' in rendered.html
    assert "random-weight test model" in rendered.markdown


def test_empty_run_renders():
    empty = sample_data(
        n_total=0,
        status_counts={},
        n_rows=0,
        n_unique=0,
        n_copies=0,
        n_clusters=0,
        noise_fraction=math.nan,
        sweep_columns=(),
        sweep_rows=(),
        chosen_index=None,
        runner_up_indices=(),
        selection=None,
        alternatives=(),
        metric_docs={},
        clusters=(),
        montage_note=None,
        outliers_montage=None,
        outliers=(),
        text_column=None,
        sweep_png=None,
    )
    rendered = render_report(empty)
    assert "No clusters were found" in rendered.html and "No settings were swept" in rendered.markdown


def test_every_report_field_is_used_by_the_html_template():
    text = (TEMPLATES / "report.html.j2").read_text()
    unused = [f.name for f in dataclasses.fields(ReportData) if f"r.{f.name}" not in text and f.name != "title"]
    assert not unused, unused


def test_sections_of_later_features_render_escaped():
    section = ReportSection(
        title="Top <accounts>",
        paragraphs=(f"who {EVIL}",),
        figure="timeline.png",
        columns=("account", "posts"),
        rows=(("@a|b", 1200), (EVIL, 3)),
    )
    rendered = render_report(sample_data(sections=(section,)))
    assert "<h2>Top &lt;accounts&gt;</h2>" in rendered.html and 'src="timeline.png"' in rendered.html
    assert '<td class="text">1,200</td>' in rendered.html and "<script>" not in rendered.html
    assert "## Top &lt;accounts&gt;" in rendered.markdown and "| @a\\|b | 1,200 |" in rendered.markdown
    assert rendered.html.index("<h2>Top") > rendered.html.index("<h2>Outliers")


# ------------------------------------------------------------------------------------------------ from a run
def blob(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_report_data_shows_what_the_run_found():
    texts = ["cat on a mat", "", "cat again", "dog", None, "lonely"]
    data = shard_data(6, texts=texts, metadata={"model": "tiny", "random_weights": True})
    probabilities = [0.9, 0.95, 0.8, 0.7, 0.6, 0.0]
    outliers = [0.1, 0.2, 0.3, 0.4, 0.5, 0.9]
    run = make_run(data, [setting([0, 0, 0, 1, 1, -1], probabilities=probabilities, outlier_scores=outliers)])
    run = dataclasses.replace(run, notes=(*run.notes, data.model_note, "a note"))
    montages = draw_montages(run, plan_montages(run), {})
    shown = report_data(
        run,
        clusters=documents.cluster_table(run),
        montages=montages,
        timings={"total": 1.0},
        output="/o",
        explorer=True,
    )
    assert shown.model == "tiny" and "random-weight test model" in shown.model_note
    assert shown.notes[-1] == "a note" and shown.model_note not in shown.notes  # the model note has its own place
    first = shown.clusters[0]
    assert (first.cluster, first.size, first.unique, first.montage) == (0, 3, 3, "montages/cluster_000.jpg")
    assert first.examples == ("cat on a mat", "cat again")  # highest probability first, rows without text skipped
    assert shown.clusters[1].examples == ("dog",)
    assert [o["id"] for o in shown.outliers] == ["p5", "p4", "p3", "p2", "p1", "p0"]
    assert shown.outliers[1]["text"] == "" and shown.text_column == "post_text"
    assert shown.explorer == "explorer.html" and shown.selection["reason"] == "test reason"
    assert shown.params["config.output"] == "out" and shown.params["sweep.min_samples"] == "3"


def test_montages_of_the_largest_clusters_with_their_notes():
    data = shard_data(7, copies={7: 0})
    run = make_run(data, [setting([0, 0, 0, 1, 1, 2, -1])], max_montages=2, montage_images=2)
    plan = plan_montages(run)
    assert plan.clusters == {0: [0, 1], 1: [3, 4]} and plan.outliers == [0, 1]  # equal GLOSH scores: row order
    assert plan.ids(run) == {"p0", "p1", "p3", "p4"}
    thumbnails = {"p0": blob((250, 0, 0)), "p1": blob((0, 250, 0)), "p3": blob((0, 0, 250))}
    montages = draw_montages(run, plan, thumbnails)
    assert sorted(montages.images) == ["montages/cluster_000.jpg", "montages/cluster_001.jpg", "montages/outliers.jpg"]
    assert "drawn for the 2 largest of 3 clusters" in montages.note
    missing = len(plan.ids(run) - set(thumbnails))
    assert montages.notes == (f"{missing} of the {len(plan.ids(run))} images chosen for montages have no thumbnail in "
                              "the shards",)  # fmt: skip
    sheet = Image.open(io.BytesIO(montages.images["montages/cluster_000.jpg"])).convert("RGB")
    red, green = sheet.getpixel((4 + 64, 4 + 40)), sheet.getpixel((4 + 132 + 64, 4 + 40))
    assert red[0] > 200 > red[1] and green[1] > 200 > green[0]  # tiles in ranked order: p0 then p1


def test_no_thumbnail_column_means_no_montages_and_says_so():
    run = make_run(shard_data(4, has_thumbnails=False), [setting([0, 0, 1, 1])])
    plan = plan_montages(run)
    assert plan.clusters == {} and plan.outliers == []
    montages = draw_montages(run, plan, {})
    assert montages.images == {} and montages.note == "the shards have no thumbnail column: no montages were drawn"
    assert montages.notes == (montages.note,)


# ----------------------------------------------------------------------------------------------------------- plots
def test_map_figure_with_many_clusters_and_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(150), 20)
    labels[::7] = -1
    coords = rng.standard_normal((len(labels), 2)) + np.repeat(rng.uniform(-30, 30, (150, 2)), 20, axis=0)
    png = plots.figure_to_png(plots.map_figure(coords, labels, title="map"))
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] > 500


@pytest.mark.parametrize("n", [0, 1])
def test_map_figure_degenerate(n):
    png = plots.figure_to_png(plots.map_figure(np.zeros((n, 2)), np.full(n, -1)))
    assert Image.open(io.BytesIO(png)).format == "PNG"


def test_one_palette_for_the_map_the_montages_and_the_explorer():
    """Cluster k has colour k in map.png (pixels near its colour are drawn), a montage's frame and the explorer."""
    colours = cluster_palette(120)
    assert colours.shape == (120, 3) and len({tuple(c) for c in colours}) == 120
    assert hex_colours(2) == ["#5b9cf0", "#f5a041"]  # the explorer's first hand-picked hues
    coords = np.array([[0.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    figure = plots.map_figure(coords, np.array([0, 1, 2]), centroids=dict.fromkeys(range(3), (5.0, 5.0)))
    image = np.asarray(Image.open(io.BytesIO(plots.figure_to_png(figure))).convert("RGB")).reshape(-1, 3)
    present = {tuple(p) for p in image}
    for k in range(3):  # each cluster's colour is drawn (alpha 0.85 over the dark ground moves it a little)
        ground = np.array(BACKGROUND_RGB)
        blended = np.round(0.85 * colours[k] + 0.15 * ground).astype(int)
        assert min(np.abs(np.array(list(present)) - blended).sum(axis=1)) <= 6, k
    frame = Image.open(io.BytesIO(plots.montage([None], frame=tuple(colours[3]), tile=32))).convert("RGB")
    assert np.abs(np.array(frame.getpixel((1, 1))) - colours[3]).max() <= 8  # JPEG rounding


def test_sweep_figure_marks_the_chosen_setting():
    rows = [
        {
            "min_cluster_size": m,
            "min_samples": s,
            "clusters": 100 // m,
            "noise_fraction": 0.1 * s / 5,
            "dbcv": 0.3 + m / 100,
            "silhouette_reduced": 0.5,
            "silhouette_cosine": float("nan"),
            "modularity_filled": 0.5 - abs(m - 20) / 100,
        }
        for s in (3, 5)
        for m in (5, 10, 20, 40, 80)
    ]
    for s in (3, 5):  # separation scores exist for the chosen setting and its runner-ups only
        rows[5 * (s == 5) + 1]["silhouette_reduced"] = math.nan
    figure = plots.sweep_figure(rows, chosen=3)
    titles = {ax.get_title() for ax in figure.axes if ax.get_visible()}
    assert {"clusters", "noise fraction", "silhouette, clustering space", "silhouette, cosine on embeddings"} <= titles
    assert not any("rule's score" in title for title in titles)  # no score named: no score panel
    assert any(line.get_label() == "chosen" for ax in figure.axes for line in ax.lines)

    scored = plots.sweep_figure(rows, chosen=2, score="modularity_filled")
    panels = [ax for ax in scored.axes if ax.get_visible()]
    assert panels[0].get_title() == "the rule's score:\nkNN-graph modularity with HDBSCAN's noise filled"
    star = next(line for line in panels[0].lines if line.get_label() == "chosen")
    assert list(star.get_ydata()) == [rows[2]["modularity_filled"]]
    assert len({ax.get_xlim() for ax in panels}) == 1  # every panel spans the whole grid
    plots.figure_to_png(scored)  # draws the ticks
    low, high = panels[0].get_xlim()
    ticks = [t.get_text() for t in panels[0].get_xticklabels() if low <= t.get_position()[0] <= high]
    assert ticks == ["5", "10", "20", "50"]  # plain numbers at 1-2-5 steps over the grid 5-80
    assert not any(t.get_text() for t in panels[0].get_xticklabels(minor=True))  # no overlapping 6x10^0, 2x10^1
    assert Image.open(io.BytesIO(plots.figure_to_png(figure))).format == "PNG"
    assert Image.open(io.BytesIO(plots.figure_to_png(plots.sweep_figure([], None)))).format == "PNG"


def test_montage_tolerates_missing_and_corrupt_thumbnails():
    good = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 10, 10)).save(good, format="PNG")
    blob = plots.montage([good.getvalue(), None, b"not an image"], captions=["p=1.00", "", "x"], columns=2, tile=64)
    image = Image.open(io.BytesIO(blob))
    assert image.format == "JPEG" and image.size == (2 * 68 + 4, 2 * 68 + 4)
    assert Image.open(io.BytesIO(plots.montage([]))).format == "JPEG"


# ------------------------------------------------------------------------------------------------ post analysis
XSS = '<img src=x onerror="alert(1)">'


def posts_run():
    """Three levels (tests.test_documents.three_levels' labels) over posts with texts, dates and accounts."""
    from clustering.analysis.posts.columns import read_posts
    from clustering.analysis.posts.describe import analyse_posts
    from tests.test_documents import CHOSEN, COARSER, FINER

    texts = [f"#chats {XSS} miaou" if i < 3 else f"#chiens wouf {i}" for i in range(12)]
    accounts = ["<b onmouseover=alert(2)>troll</b>"] * 9 + ["alice", "bob", "carol"]
    dates = [f"2025-09-{10 + i % 3:02d}T08:00:00Z" for i in range(12)]
    data = shard_data(12, texts=texts, extra={"created_at": dates, "account": accounts},
                      metadata={"model": "tiny", "random_weights": True})  # fmt: skip
    settings = [setting(CHOSEN, mcs=5), setting(COARSER, mcs=9), setting(FINER, mcs=2)]
    run = make_run(data, settings, runner_ups=(0, 1, 2))
    found = analyse_posts(
        {level.name: level.labels for level in run.outcome.hierarchy.levels},
        chosen="clusters",
        posts=read_posts(data.table, run.post),
        embeddings=np.eye(12, 4, dtype=np.float32),
        ids=run.ids,
        metadata=data.metadata,
    )
    return run.with_posts(found)


def test_report_data_carries_names_keywords_times_accounts_and_the_tree():
    run = posts_run()
    montages = draw_montages(run, plan_montages(run), {})
    shown = report_data(
        run, clusters=documents.cluster_table(run), montages=montages, timings={}, output="/o", explorer=False
    )
    first = shown.clusters[0]  # rows 0-2: "#chats" posted by the troll account only
    assert first.keywords[0] == "#chats" and first.name_source == "keywords" and first.name.startswith("#chats")
    assert (first.first_seen, first.last_seen, first.peak_period) == ("2025-09-10T08:00:00Z",
                                                                      "2025-09-12T08:00:00Z", "2025-09-10")  # fmt: skip
    assert first.top_account_share == 1.0 and not first.high_share  # 3 posts: too few to flag
    assert shown.names_note.startswith("names come from keywords: the model has random weights")
    assert shown.posts_line == "Post columns: text: post_text; date: created_at; account: account."
    assert shown.tree_levels == (("themes", "theme"), ("clusters", "cluster"), ("subclusters", "subcluster"))
    assert [(n.kind, n.cluster, n.size) for n in shown.tree] == [("theme", 0, 7), ("theme", 1, 3)]
    # Theme 1 holds only cluster 0, of the same rows: named on its line; cluster 0's sub-clusters come up a level.
    lone = shown.tree[1]
    assert [(t.kind, t.cluster) for t in lone.same] == [("cluster", 0)]
    assert [(n.kind, n.cluster) for n in lone.children] == [("subcluster", 1), ("subcluster", 3)]
    titles = [s.title for s in shown.sections]
    assert titles == ["Clusters over time", "Most active accounts", "Most reposted images", "Posted together"]
    accounts = shown.sections[1]
    assert accounts.rows[0][:4] == ("<b onmouseover=alert(2)>troll</b>", 9, "75.0%", 4)


def test_a_high_top_account_share_over_enough_posts_is_flagged():
    row = {"size": 40, "top_account_share": 0.6, "keywords": "a;b"}
    assert contents._post_facts(row)["high_share"] and not contents._post_facts({**row, "size": 9})["high_share"]
    assert not contents._post_facts({**row, "top_account_share": 0.49})["high_share"]
    rendered = render_report(sample_data(clusters=(ClusterSummary(cluster=0, size=40, unique=40, duplicates=0,
        mean_probability=1.0, persistence=0.5, top_account="x", top_account_share=0.6, high_share=True),)))  # fmt: skip
    assert 'class="flag"' in rendered.html and "60.0% ⚑" in rendered.markdown


def test_hostile_names_keywords_accounts_and_texts_stay_inert_in_the_browser(tmp_path):
    from tests.browser import launch_chromium

    hostile = {
        "name": "<script>alert(3)</script>",
        "keywords": f"#<svg onload=alert(4)>;{XSS}",
        "top_account": "<iframe src=javascript:alert(5)>",
    }
    run = posts_run()
    clusters = [{**row, **hostile} for row in documents.cluster_table(run)]
    montages = draw_montages(run, plan_montages(run), {})
    shown = report_data(run, clusters=clusters, montages=montages, timings={}, output="/o", explorer=False)
    rendered = render_report(shown)
    (tmp_path / "report.html").write_text(rendered.html)
    with launch_chromium() as browser:
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto((tmp_path / "report.html").as_uri())
        for summary in page.query_selector_all("summary"):
            summary.click()
        page.mouse.move(5, 5)
        text = page.inner_text("body")
        injected = page.evaluate(
            "() => document.querySelectorAll('script, iframe, svg, img[src=\"x\"], [onerror], [onmouseover]').length"
        )
    assert dialogs == [] and injected == 0
    for value in (hostile["name"], "#<svg onload=alert(4)>", XSS, hostile["top_account"], "<b onmouseover=alert(2)>"):
        assert value in text, value  # shown as text
    markdown = rendered.markdown
    assert "<script>" not in markdown and "<svg" not in markdown and "<iframe" not in markdown


@pytest.mark.parametrize(
    ("copies", "keep_duplicates", "says"), [(100, False, True), (0, False, False), (100, True, False)]
)
def test_setting_tables_say_their_noise_counts_rows(copies, keep_duplicates, says):
    # The reason's noise (from the sweep, one point per distinct image) and these tables' (rows) differ with reposts.
    rendered = render_report(sample_data(n_copies=copies, keep_duplicates=keep_duplicates))
    for page in (rendered.html, rendered.markdown):
        assert "noise (rows)" in page
        assert ("share of the rows, reposts included" in page) is says


def test_a_wide_sweep_table_scrolls_in_its_box_not_the_page(tmp_path):
    from tests.browser import launch_chromium

    columns = tuple(f"metric_with_a_long_name_{i}" for i in range(24))
    rows = tuple(dict.fromkeys(columns, 0.5 + i) for i in range(3))
    (tmp_path / "report.html").write_text(render_report(sample_data(sweep_columns=columns, sweep_rows=rows)).html)
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto((tmp_path / "report.html").as_uri())
        page_width, view_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        box = page.evaluate(
            "(() => { const b = document.querySelector('.scroll'); return [b.scrollWidth, b.clientWidth]; })()"
        )
    assert page_width <= view_width
    assert box[0] > box[1] + 1000  # the table is far wider than its box, which scrolls


def test_parameters_are_listed_but_folded():
    # Some 75 rows of settings end the page; a reader opens them when reproducing a run, not to read the results.
    html = render_report(sample_data()).html
    folded = re.search(r'<details class="docs params"><summary>Parameters.*?</details>', html, re.S)
    assert folded and "reduction.n_neighbors" in folded.group(0) and "config.seed" in folded.group(0)
    assert "(2, as run and as configured" in folded.group(0)

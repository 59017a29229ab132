"""explorer.html: built from synthetic analysis folders (docs/analysis-outputs.md) and driven in a real Chromium.

This module covers what every page does, on a folder without the hierarchy and post sections (older runs, or data
without them); ``test_explorer_features.py`` covers levels, timeline, accounts and layout on the full contract, and
``test_explorer_payload.py`` the Python side of the payload and the thumbnail packing.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from clustering import io as cio
from clustering import schema
from clustering.analysis.explorer import thumbnails
from clustering.analysis.explorer.build import ExplorerResult, build_explorer
from clustering.analysis.explorer.page import SCRIPT_FILES, page_script, script_json
from clustering.analysis.palette import cluster_palette
from tests.browser import lasso_rectangle, open_page, wait_idle

TOPICS = ("cats", "sunsets", "memes", "street food", "protest signs", "screenshots", "football", "vintage cars",
          "selfies", "flowers", "maps", "charts", "concert crowds", "beaches", "book covers", "dogs")  # fmt: skip
XSS_TEXT = '<img src=x onerror="window.__xss=1"></script><script>window.__xss=2</script>'
XSS_ID = '"><svg onload="window.__xss=3">'
XSS_URL = "javascript:window.__xss=4"
XSS_COLUMN = '<b onmouseover="window.__xss=5">col</b>'
XSS_NAME = '<img src=x onerror="window.__xss=6">theme'
XSS_KEYWORD = '<svg onload="window.__xss=7">'
XSS_ACCOUNT = '@<iframe srcdoc="<script>window.__xss=8</script>">'
XSS_HASHTAG = "#<script>window.__xss=9</script>"
START = np.datetime64("2024-09-01T00:00:00", "s")


# ----------------------------------------------------------------------------------------- synthetic folders
def _thumbnail(rng: np.random.Generator, cluster: int, size: int = 128) -> bytes:
    """A small JPEG whose palette and shape follow its cluster, with per-image jitter and grain (3-5 KB)."""
    hue = (cluster * 0.381966) % 1.0 if cluster >= 0 else rng.random()
    base = np.array(Image.new("HSV", (1, 1), (int(hue * 255), 150, 200)).convert("RGB").getpixel((0, 0)), float)
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(0, 2 * math.pi)
    grad = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
    arr = base * (0.55 + 0.5 * grad) + rng.normal(0, 10, (size, size, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    accent = tuple(int(v) for v in np.clip(255 - base * 0.6 + rng.normal(0, 20, 3), 0, 255))
    cx, cy = (rng.uniform(0.3, 0.7, 2) * size).tolist()
    r = rng.uniform(0.15, 0.3) * size
    shape = cluster % 4 if cluster >= 0 else int(rng.integers(4))
    if shape == 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=accent)
    elif shape == 1:
        draw.rectangle([cx - r, cy - r * 0.7, cx + r, cy + r * 0.7], fill=accent)
    elif shape == 2:
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=accent)
    else:
        for k in range(4):
            draw.line([(0, size * (k + 1) / 5 + cy / 8), (size, size * (k + 1) / 5 - cy / 8)], fill=accent, width=5)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=82)
    return out.getvalue()


def write_output_folder(
    root: Path,
    *,
    n: int = 300,
    n_clusters: int = 6,
    seed: int = 0,
    thumbnails: bool = True,
    shards: bool = True,
    xss_row: bool = False,
    hierarchy: bool = True,
) -> dict:
    """An analysis output folder per docs/analysis-outputs.md plus the embedding shards it came from.

    Clusters are Gaussian blobs on the map with ~8 % uniform noise; two alternative settings (a finer one that
    splits every cluster in two, a coarser one that merges pairs) sit in ``cluster_mcs*_ms*`` columns. With
    ``hierarchy`` the folder also has the analysis' post and hierarchy columns (``theme``: pairs of clusters,
    ``subcluster``: halves, ``repost_group``, ``post_time`` over 30 days) and their ``metrics.json`` sections, with
    a name and keywords per cluster; with ``xss_row`` HTML payloads sit in row 0 and in names, keywords, an account
    name and a hashtag.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out, shard_dir = root / "analysis", root / "shards"
    out.mkdir(exist_ok=True)
    centers = rng.uniform(-10, 10, (n_clusters, 2))
    spreads = rng.uniform(0.4, 1.3, (n_clusters, 2))
    weights = rng.dirichlet(np.full(n_clusters, 3.0))
    is_noise = rng.random(n) < 0.08
    cluster = np.where(is_noise, -1, rng.choice(n_clusters, n, p=weights)).astype(np.int32)
    xy = np.empty((n, 2))
    for k in range(n_clusters):
        m = cluster == k
        xy[m] = centers[k] + rng.normal(0, 1, (m.sum(), 2)) * spreads[k]
    xy[is_noise] = rng.uniform(-13, 13, (is_noise.sum(), 2))
    home = np.maximum(cluster, 0)
    dist = np.where(is_noise, 0, np.linalg.norm((xy - centers[home]) / spreads[home], axis=1))
    probability = np.where(is_noise, 0, np.exp(-0.35 * dist**2)).astype(np.float32)
    outlier = np.where(is_noise, rng.uniform(0.6, 1.0, n), 1 - probability).astype(np.float32)
    side = xy[:, 0] > centers[home, 0]
    finer = np.where(cluster < 0, -1, cluster * 2 + side).astype(np.int32)
    coarser = np.where(cluster < 0, -1, cluster // 2).astype(np.int32)
    ids = [f"post-{i:06d}" for i in range(n)]
    urls = [f"https://img.example.org/{i // 1000}/{i}.jpg" for i in range(n)]
    topic = [TOPICS[k % len(TOPICS)] if k >= 0 else "misc" for k in cluster]
    texts = [
        f"{['Look at these', 'Another batch of', 'Best', 'Weekend', 'Throwback:'][i % 5]} {topic[i]} "
        f"#{topic[i].replace(' ', '')} #{['daily', 'viral', 'photo', 'news'][i % 4]} (post {i})"
        for i in range(n)
    ]
    accounts = [f"@user{int(v)}" for v in rng.integers(0, max(2, n // 10), n)]
    seconds = rng.integers(0, 30 * 86400, n)
    seconds[cluster == 1] = rng.integers(10 * 86400, 12 * 86400, int((cluster == 1).sum()))  # a two-day burst
    post_time = START + seconds.astype("timedelta64[s]")
    dates = [str(t) + "Z" for t in post_time]
    theme = np.where(cluster < 0, -1, cluster // 2).astype(np.int32)
    repost = np.full(n, -1, np.int32)
    repost[np.flatnonzero(cluster == 0)[:6]] = 0
    repost[np.flatnonzero(cluster == 2)[:4]] = 1
    passthrough = {"post_text": texts, "account": accounts, "date": dates}
    if xss_row:
        ids[0], urls[0], texts[0] = XSS_ID, XSS_URL, XSS_TEXT
        texts[1] = f"{texts[1]} {XSS_HASHTAG}"
        accounts[2] = accounts[3] = XSS_ACCOUNT
        passthrough[XSS_COLUMN] = [XSS_TEXT if i == 0 else "plain" for i in range(n)]

    thumbs = [_thumbnail(rng, int(cluster[i])) for i in range(n)] if thumbnails else [None] * n
    if shards:
        shard_dir.mkdir(exist_ok=True)
        pt_schema = pa.schema([pa.field(name, pa.string()) for name in passthrough])
        table_schema = schema.shard_schema(pt_schema, 4, {"model": "tiny-clip"})
        if not thumbnails:
            table_schema = table_schema.remove(table_schema.get_field_index(schema.THUMBNAIL))
        columns = {
            schema.ID: ids,
            schema.URL: urls,
            schema.STATUS: ["ok"] * n,
            schema.ERROR: [None] * n,
            schema.HTTP_STATUS: [200] * n,
            schema.BYTES: [len(t) if t else 1000 for t in thumbs],
            schema.WIDTH: [128] * n,
            schema.HEIGHT: [128] * n,
            schema.SHA256: [f"{i:064x}" for i in range(n)],
            schema.THUMBNAIL: thumbs,
            schema.EMBEDDING: rng.normal(0, 1, (n, 4)).astype(np.float32).tolist(),
            **passthrough,
        }
        table = pa.table({f.name: columns[f.name] for f in table_schema}, schema=table_schema)
        half = n // 2
        pq.write_table(table.slice(0, half), shard_dir / cio.shard_name(0))
        pq.write_table(table.slice(half), shard_dir / cio.shard_name(1))

    levels = {
        "theme": pa.array(theme, pa.int32()),
        "subcluster": pa.array(finer, pa.int32()),
        "repost_group": pa.array(repost, pa.int32()),
        "post_time": pa.array(post_time.astype("datetime64[ms]"), pa.timestamp("ms", tz="UTC")),
    }
    assignments = pa.table(
        {
            "id": ids,
            "url": urls,
            "x": pa.array(xy[:, 0], pa.float32()),
            "y": pa.array(xy[:, 1], pa.float32()),
            "cluster": pa.array(cluster, pa.int32()),
            "probability": pa.array(probability, pa.float32()),
            "outlier_score": pa.array(outlier, pa.float32()),
            "sha256": [f"{i:064x}" for i in range(n)],
            "duplicate_of": [None] * n,
            "cluster_mcs10_ms5": pa.array(finer, pa.int32()),
            "cluster_mcs80_ms5": pa.array(coarser, pa.int32()),
            **(levels if hierarchy else {}),
            **passthrough,
        }
    )
    pq.write_table(assignments, out / "assignments.parquet")

    def alt(column, mcs, labels, label):
        return {"column": column, "min_cluster_size": mcs, "min_samples": 5, "label": label,
                "clusters": len(set(labels.tolist()) - {-1}), "noise_fraction": float((labels < 0).mean())}  # fmt: skip

    metrics = {
        "input": str(shard_dir),
        "model": "openai/clip-vit-base-patch32",
        "n_rows": n,
        "n_unique": n,
        "chosen": {"min_cluster_size": 25, "min_samples": 5, "clusters": n_clusters},
        "selection": {"rule": "max_dbcv", "reason": "highest DBCV among settings with < 30 % noise", "pinned": False},
        "alternatives": [
            alt("cluster", 25, cluster, "chosen: min_cluster_size=25, min_samples=5"),
            alt("cluster_mcs10_ms5", 10, finer, "runner-up 1: min_cluster_size=10, min_samples=5"),
            alt("cluster_mcs80_ms5", 80, coarser, "choice at resolution 0.25-0.5: min_cluster_size=80, min_samples=5"),
        ],
    }
    if hierarchy:
        metrics["hierarchy"] = _hierarchy(cluster, theme, finer, xss=xss_row)
        metrics["posts"] = {"text": "post_text", "date": "date", "account": "account", "missing": [],
                            "dates_unparseable": 0, "period": "day"}  # fmt: skip
        metrics["reposts"] = {"groups": 2, "rows_in_groups": 10, "largest": 6}
    (out / "metrics.json").write_text(json.dumps(metrics))
    return {"output": out, "shards": shard_dir, "ids": ids, "urls": urls, "texts": texts, "cluster": cluster,
            "finer": finer, "theme": theme, "probability": probability, "n": n, "accounts": accounts,
            "post_time": post_time, "repost": repost, "metrics": metrics}  # fmt: skip


def cluster_names(level: str, label: int) -> tuple[str, list[str]]:
    """The name and keywords the fixture gives cluster ``label`` of a level."""
    topic = TOPICS[label % len(TOPICS)]
    name = {"themes": f"{topic} and more", "clusters": topic, "subclusters": f"{topic} part"}[level]
    return name, [f"#{topic.replace(' ', '')}", f"{level}{label}", "photo"]


def _hierarchy(cluster: np.ndarray, theme: np.ndarray, finer: np.ndarray, *, xss: bool) -> dict:
    """metrics.json["hierarchy"] for the fixture's three levels (parents by construction: theme = cluster // 2)."""

    def level(name, column, labels, parent_of):
        clusters = []
        for label in sorted(set(labels.tolist()) - {-1}):
            title, keywords = cluster_names(name, label)
            if xss and name == "themes" and label == 0:
                title = XSS_NAME
            if xss and name == "clusters" and label == 0:
                keywords = [XSS_KEYWORD, *keywords]
            clusters.append({"cluster": label, "parent": parent_of(label), "size": int((labels == label).sum()),
                             "name": title, "name_source": "keywords", "uncertain": label == 1,
                             "keywords": keywords})  # fmt: skip
        return {"name": name, "column": column, "min_cluster_size": None, "clusters": clusters}

    return {
        "chosen": "clusters",
        "levels": [
            level("themes", "theme", theme, lambda _: -1),
            level("clusters", "cluster", cluster, lambda k: k // 2),
            level("subclusters", "subcluster", finer, lambda k: k // 2),
        ],
    }


def expected_matches(ids, urls, texts, query: str) -> int:
    """How many points the page's search should show: case-insensitive substring of id, URL or text."""
    q = query.lower()
    return sum(q in f"{a}\n{b}\n{c}".lower() for a, b, c in zip(ids, urls, texts, strict=True))


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("explorer")
    info = write_output_folder(root, n=300, n_clusters=6, xss_row=True, hierarchy=False)
    info["result"] = build_explorer(info["output"])
    return info


def _point(page, i: int) -> dict:
    pos = page.evaluate("i => window.explorer.screenPosition(i)", i)
    assert pos is not None, f"point {i} is off screen"
    return pos


def _hover(page, i: int) -> None:
    pos = _point(page, i)
    page.mouse.move(pos["x"] - 30, pos["y"] - 30)
    page.mouse.move(pos["x"], pos["y"], steps=3)
    page.wait_for_function("i => window.explorer.hovered === i", arg=i, timeout=5000)


def _isolated_point(page, n: int, *, cluster: bool = True) -> int:
    """A point with no other shown point within 8 px, so hovering it cannot pick a neighbour."""
    return page.evaluate(
        """([n, wantCluster]) => {
            const e = window.explorer, pos = [];
            for (let i = 0; i < n; i++) pos.push(e.isShown(i) ? e.screenPosition(i) : null);
            for (let i = 0; i < n; i++) {
                if (!pos[i] || (wantCluster && e.clusterOf(i) < 0)) continue;
                let ok = true;
                for (let j = 0; j < n && ok; j++)
                    if (j !== i && pos[j] && Math.hypot(pos[j].x - pos[i].x, pos[j].y - pos[i].y) < 8) ok = false;
                if (ok) return i;
            }
            return -1;
        }""",
        [n, cluster],
    )


# ----------------------------------------------------------------------------------------- python side
def test_result_and_page_are_self_contained(folder):
    result = folder["result"]
    assert isinstance(result, ExplorerResult)
    assert result.n_points == 300
    assert result.n_embedded_thumbnails == 300 and result.n_sidecar_thumbnails == result.n_sidecar_files == 0
    assert result.n_points_with_thumbnail == 300 and result.notice is None
    assert 0 < result.data_bytes < result.bytes
    page = Path(result.path)
    assert page.name == "explorer.html" and page.stat().st_size == result.bytes
    assert not (page.parent / "explorer_files").exists()
    text = page.read_text()
    assert "<script src" not in text and "stylesheet" not in text and "@import" not in text
    outside_data = text.split('id="explorer-data">')[0] + text.split("</script>")[-2]
    assert "http://" not in outside_data and "https://" not in outside_data  # the data holds the post URLs
    # data can never close its script block: exactly our four blocks, payloads present only escaped
    assert text.lower().count("</script") == 4
    assert "'strict-dynamic'" not in text  # no sidecar: no script but the pinned one may ever run
    assert XSS_COLUMN not in text and "\\u003cb onmouseover" in text  # a column name: in the header, escaped
    assert XSS_TEXT.split("</script>")[1] not in text  # per-point values travel compressed


def test_script_json_escapes_everything_that_could_break_out():
    value = {"a": "</script><!-- & \u2028\u2029 >", "<key>": [1.5, None]}
    text = script_json(value)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == value


def test_page_script_never_parses_data_as_html():
    folder = Path(__file__).parents[1] / "clustering/analysis/explorer/templates/explorer"
    assert sorted(SCRIPT_FILES) == sorted(p.name for p in folder.glob("*.js"))  # every feature file is in the page
    js = page_script()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js


def test_page_script_declares_each_name_once():
    # The feature files share one scope: a second `function f` or `const f` would silently replace the first.
    import re

    names = re.findall(r"^(?:async )?function (\w+)|^(?:const|let) (\w+)", page_script(), re.M)
    declared = [a or b for a, b in names]
    assert len(declared) > 100 and sorted({d for d in declared if declared.count(d) > 1}) == []


def test_page_script_is_the_feature_files_in_order_in_one_scope(folder):
    js = page_script()
    starts = [js.index(f"// ---- {name}\n") for name in SCRIPT_FILES]
    assert starts == sorted(starts)
    assert js.startswith("(async function () {\n'use strict';") and "})().catch((err) => {" in js
    page = Path(folder["result"].path).read_text()
    assert js in page  # the CSP hash below is computed over exactly this text
    digest = base64.b64encode(hashlib.sha256(js.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page


def test_detect_text_column_prefers_known_names_then_longest():
    table = pa.table({"account": ["@a", "@b"], "blurb": ["a long sentence here", "another long one"], "n": [1, 2]})
    assert schema.detect_text_column(table, ["account", "blurb", "n"]) == "blurb"
    table = table.append_column("Caption", pa.array(["x", "y"]))
    assert schema.detect_text_column(table, ["account", "blurb", "n", "Caption"]) == "Caption"
    assert schema.detect_text_column(table, ["n"]) is None


def test_build_validates_arguments(folder, tmp_path):
    with pytest.raises(ValueError, match="embed_budget_bytes"):
        build_explorer(folder["output"], embed_budget_bytes=-1)
    with pytest.raises(FileNotFoundError, match=r"assignments\.parquet"):
        build_explorer(tmp_path)
    pq.write_table(pa.table({"id": ["a"], "x": [0.0]}), tmp_path / "assignments.parquet")
    with pytest.raises(ValueError, match="'y'"):
        build_explorer(tmp_path)


# ----------------------------------------------------------------------------------------- in the browser
def test_loads_offline_without_errors_and_draws_every_point(page, folder):
    page, log = page
    counts = page.evaluate("window.explorer.counts")
    assert counts["total"] == counts["drawn"] == counts["shown"] == counts["rendered"] == folder["n"]
    assert counts["clusters"] == 6 and counts["noise"] == int((folder["cluster"] < 0).sum())
    assert counts["withThumbnail"] == folder["n"]
    assert page.evaluate("window.explorer.renderer") == "webgl"
    assert log.console_errors == [] and log.page_errors == []
    assert log.network_requests() == []
    assert all(u.startswith(("file:", "data:", "blob:")) for u in log.requests)


def test_hover_shows_card_with_thumbnail(page, folder):
    page, log = page
    i = _isolated_point(page, folder["n"])
    _hover(page, i)
    card = page.locator("#tooltip")
    card.wait_for(state="visible")
    assert page.locator("#tt-id").text_content() == folder["ids"][i]
    assert page.locator("#tt-text").text_content() == folder["texts"][i]  # short posts are shown whole
    page.wait_for_function("() => document.getElementById('tt-img').complete")
    assert page.evaluate("document.getElementById('tt-img').naturalWidth") == 128
    assert page.evaluate("document.getElementById('tt-img').src").startswith("blob:")
    assert page.locator("#tt-cluster").text_content() == f"Cluster {folder['cluster'][i]}"
    assert log.console_errors == []


def test_click_opens_panel_with_metadata_link_and_cluster_gallery(page, folder):
    page, _ = page
    i = _isolated_point(page, folder["n"])
    pos = _point(page, i)
    page.mouse.click(pos["x"], pos["y"])
    page.wait_for_function("i => window.explorer.current === i", arg=i)
    assert page.locator("#panel-id").text_content() == folder["ids"][i]
    link = page.locator("#panel-link")
    assert link.get_attribute("href") == f"https://img.example.org/0/{i}.jpg"
    assert link.get_attribute("rel") == "noopener noreferrer"
    cells = page.locator(".meta th").all_text_contents()
    assert {"url", "account", "date"} <= set(cells)  # the text column has its own box above the table
    assert page.locator(".post-text").text_content() == folder["texts"][i]
    k = folder["cluster"][i]
    tiles = page.locator(".gallery button")
    assert tiles.count() == int((folder["cluster"] == k).sum())
    # gallery order: highest probability first, the clicked point marked
    titles = tiles.evaluate_all("bs => bs.map(b => b.title)")
    probabilities = [folder["probability"][folder["ids"].index(t)] for t in titles]
    assert probabilities == sorted(probabilities, reverse=True) and folder["ids"][i] in titles
    assert page.locator(".gallery button.current").get_attribute("title") == folder["ids"][i]


def test_search_and_cluster_filter_change_shown_points(page, folder):
    page, _ = page
    for query in ("street food", "POST-00001", "img.example.org/0/12", "no such thing"):
        expected = expected_matches(folder["ids"], folder["urls"], folder["texts"], query)
        page.fill("#search", query)
        page.wait_for_function("n => window.explorer.counts.shown === n", arg=expected)
    assert page.locator("#search-count").text_content() == "0 matches"
    page.fill("#search", "")
    page.wait_for_function("n => window.explorer.counts.shown === n", arg=folder["n"])

    scale = page.evaluate("window.explorer.view.scale")
    biggest = page.evaluate("window.explorer.clusterLabels()[0]")
    page.locator(f'.cluster-item[data-label="{biggest}"]').click()
    size = int((folder["cluster"] == biggest).sum())
    page.wait_for_function("n => window.explorer.counts.shown === n", arg=size)
    assert page.evaluate("window.explorer.focus") == biggest
    assert page.locator(".gallery button").count() == size
    wait_idle(page)
    assert page.evaluate("window.explorer.view.scale") > 1.2 * scale  # zoomed in on the cluster
    page.keyboard.press("Escape")
    page.wait_for_function("n => window.explorer.counts.shown === n", arg=folder["n"])

    page.uncheck("#noise")
    noise = int((folder["cluster"] < 0).sum())
    page.wait_for_function("n => window.explorer.counts.drawn === n", arg=folder["n"] - noise)


def test_xss_payloads_stay_inert_and_show_as_text(page, folder):
    page, log = page
    i = 0  # the payload row
    assert page.evaluate("id => window.explorer.indexOf(id)", XSS_ID) == i
    # search narrows the map to the payload row (its text and id match), then hover and click it
    page.fill("#search", "__xss")
    page.wait_for_function("() => window.explorer.counts.shown >= 1")
    pos = page.evaluate("i => window.explorer.screenPosition(i)", i)
    if pos is None:
        page.click("#reset")
        wait_idle(page)
        pos = _point(page, i)
    page.mouse.move(pos["x"], pos["y"], steps=2)
    page.wait_for_function("i => window.explorer.hovered === i", arg=i)
    assert page.locator("#tt-id").text_content() == XSS_ID
    assert page.locator("#tt-text").text_content() == XSS_TEXT
    page.mouse.click(pos["x"], pos["y"])
    page.wait_for_function("i => window.explorer.current === i", arg=i)
    assert page.locator("#panel-id").text_content() == XSS_ID
    assert page.locator(".post-text").text_content() == XSS_TEXT
    assert page.locator("#panel-link").count() == 0  # javascript: URL is not a link
    assert XSS_URL in page.locator(".meta td").all_text_contents()
    assert XSS_COLUMN in page.locator(".meta th").all_text_contents()
    page.wait_for_timeout(200)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("svg, b[onmouseover], img[onerror]").count() == 0
    assert log.dialogs == [] and log.page_errors == []


def test_switching_to_an_alternative_clustering_recolours(page, folder):
    page, _ = page
    assert page.evaluate("window.explorer.clusterings") == ["cluster", "cluster_mcs10_ms5", "cluster_mcs80_ms5"]
    options = page.locator("#clustering option").all_text_contents()
    assert options[0].startswith("★ ") and options[0].endswith(" · chosen: min_cluster_size=25, min_samples=5")
    assert options[1].endswith(" · runner-up 1: min_cluster_size=10, min_samples=5") and "★" not in options[1]
    i = int(np.flatnonzero(folder["cluster"] >= 0)[0])
    before = page.evaluate("i => window.explorer.colorOf(i)", i)
    page.select_option("#clustering", "1")
    page.wait_for_function("() => window.explorer.clustering === 'cluster_mcs10_ms5'")
    counts = page.evaluate("window.explorer.counts")
    assert counts["clusters"] == len(set(folder["finer"].tolist()) - {-1})
    assert page.locator(".cluster-item").count() == counts["clusters"] + 1  # + noise row
    assert page.evaluate("i => window.explorer.clusterOf(i)", i) == folder["finer"][i]
    colours = page.evaluate(f"[...Array({folder['n']}).keys()].map(i => window.explorer.colorOf(i).join())")
    assert len(set(colours)) == counts["clusters"] + 1
    page.select_option("#clustering", "0")
    page.wait_for_function("() => window.explorer.counts.clusters === 6")
    assert page.evaluate("i => window.explorer.colorOf(i)", i) == before


def test_lasso_selects_and_exports_csv(page, folder):
    page, log = page
    label = page.evaluate("window.explorer.clusterLabels()[0]")
    members = [i for i in range(folder["n"]) if folder["cluster"][i] == label]
    pts = [p for p in (page.evaluate("i => window.explorer.screenPosition(i)", i) for i in members) if p]
    xs, ys = [p["x"] for p in pts], [p["y"] for p in pts]
    x0, x1, y0, y1 = min(xs) - 3, max(xs) + 3, min(ys) - 3, max(ys) + 3
    # The lasso is the rectangle around the cluster: it takes every point inside it, give or take a pixel at its edge.
    everywhere = [page.evaluate("i => window.explorer.screenPosition(i)", i) for i in range(folder["n"])]
    inner = sum(1 for p in everywhere if p and x0 + 1 < p["x"] < x1 - 1 and y0 + 1 < p["y"] < y1 - 1)
    outer = sum(1 for p in everywhere if p and x0 - 1 <= p["x"] <= x1 + 1 and y0 - 1 <= p["y"] <= y1 + 1)
    lasso_rectangle(page, x0, y0, x1, y1)
    selected = page.evaluate("window.explorer.counts.selected")
    assert len(members) <= inner <= selected <= outer
    assert page.evaluate("window.explorer.counts.shown") == selected
    assert page.locator(".gallery button").count() == min(selected, 120)
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rows) == selected and set(rows[0]) == {"id", "url", "cluster", "probability"}
    assert {folder["ids"][i] for i in members} <= {r["id"] for r in rows}
    page.keyboard.press("Escape")
    page.wait_for_function("() => window.explorer.counts.selected === 0")
    assert log.network_requests() == []


def test_screenshot_is_not_blank(page, folder, tmp_path):
    page, _ = page
    shot = tmp_path / "explorer.png"
    page.screenshot(path=str(shot))
    img = Image.open(shot).convert("RGB")
    map_box = page.locator("#map").bounding_box()
    crop = img.crop((int(map_box["x"]), int(map_box["y"]), int(map_box["x"] + map_box["width"]),
                     int(map_box["y"] + map_box["height"])))  # fmt: skip
    colours = crop.getcolors(maxcolors=1 << 20)
    assert len(colours) > 200  # a blank canvas has one colour; points, edges and labels give hundreds
    assert len(img.getcolors(maxcolors=1 << 20)) > 500


def test_canvas2d_fallback_draws_the_same_points(browser, folder, tmp_path):
    page, log = open_page(browser, folder["result"].path, query="renderer=canvas2d")
    try:
        assert page.evaluate("window.explorer.renderer") == "canvas2d"
        assert page.evaluate("window.explorer.counts.rendered") == folder["n"]
        shot = tmp_path / "canvas2d.png"
        page.locator("#map").screenshot(path=str(shot))
        assert len(Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20)) > 50
        i = _isolated_point(page, folder["n"])
        _hover(page, i)
        assert page.locator("#tt-id").text_content() == folder["ids"][i]
        assert log.console_errors == [] and log.page_errors == []
    finally:
        page.context.close()


def test_notebook_html_is_one_escaped_iframe(folder):
    from clustering.analysis.explorer.build import Explorer

    explorer = Explorer.from_output_dir(folder["output"])
    page = explorer.to_html(embed_budget_bytes=50_000)
    assert page.startswith("<!doctype html>") and "explorer_files" not in page
    assert "thumbnails left out" in page  # over budget and no sidecar: the page says so
    cell = explorer._repr_html_()
    assert cell.startswith("<iframe") and cell.count("<script") == 0  # the whole page is escaped into srcdoc


def test_sidecar_chunks_load_from_file_and_a_rebuild_removes_them(browser, tmp_path, monkeypatch):
    monkeypatch.setattr(thumbnails, "CHUNK_BYTES", 60_000)  # a few chunks out of 120 thumbnails of ~4 KB
    info = write_output_folder(tmp_path, n=120, n_clusters=3, seed=1, hierarchy=False)
    result = build_explorer(info["output"], embed_budget_bytes=20_000)
    files = sorted((info["output"] / "explorer_files").iterdir())
    assert all(f.name.startswith("thumbs-") and f.suffix == ".js" for f in files)
    assert 0 < result.n_embedded_thumbnails < 10
    assert result.n_sidecar_thumbnails == 120 - result.n_embedded_thumbnails
    assert result.n_sidecar_files == len(files) >= 5
    assert result.sidecar_bytes == sum(f.stat().st_size for f in files)
    assert "'strict-dynamic'" in Path(result.path).read_text()  # the pinned script may add the chunk scripts
    page, log = open_page(browser, result.path)
    try:
        chunks = page.evaluate("[...Array(120).keys()].map(i => window.explorer.thumbnailChunk(i))")
        assert chunks.count("embedded") == result.n_embedded_thumbnails
        i = _isolated_point(page, 120)
        if chunks[i] == "embedded":
            i = next(
                j
                for j in range(120)
                if chunks[j] != "embedded" and page.evaluate("j => window.explorer.screenPosition(j)", j)
            )
        _hover(page, i)
        page.wait_for_function(
            "() => document.getElementById('tt-img').complete && document.getElementById('tt-img').naturalWidth === 128"
        )
        assert page.evaluate("document.getElementById('tt-img').src").startswith("blob:")
        assert page.evaluate("i => window.explorer.thumbnailSrc(i)", i).startswith("blob:")
        loaded = [u for u in log.requests if u.startswith("file:") and "/explorer_files/" in u]
        assert any(u.endswith(f"/explorer_files/{chunks[i]}") for u in loaded)
        assert {u.rsplit("/", 1)[1] for u in loaded} <= {f.name for f in files}
        assert log.console_errors == [] and log.page_errors == [] and log.network_requests() == []
    finally:
        page.context.close()
    # moved without its folder: the page still works, the missing images show as missing
    moved = tmp_path / "moved.html"
    moved.write_text(Path(result.path).read_text())
    page, log = open_page(browser, moved)
    try:
        _hover(page, i)
        page.wait_for_function("() => document.getElementById('tooltip').classList.contains('no-image')")
        assert log.page_errors == [] and all("ERR_FILE_NOT_FOUND" in e for e in log.console_errors)
    finally:
        page.context.close()
    # a rebuild that fits the budget removes the stale sidecar
    again = build_explorer(info["output"])
    assert again.n_sidecar_thumbnails == again.n_sidecar_files == 0
    assert not (info["output"] / "explorer_files").exists()


def test_without_shards_the_page_works_and_says_so(browser, tmp_path):
    info = write_output_folder(tmp_path, n=80, n_clusters=3, seed=2, thumbnails=False, shards=False)
    result = build_explorer(info["output"], title="No <images> here")
    assert result.n_points_with_thumbnail == 0 and "no embedding shards found" in result.notice
    page, log = open_page(browser, result.path)
    try:
        assert page.locator("#notice").is_visible()
        assert "no embedding shards found" in page.locator("#notice").text_content()
        assert page.title() == "No <images> here" and page.locator("#title").text_content() == "No <images> here"
        i = _isolated_point(page, 80)
        _hover(page, i)
        assert page.locator("#tooltip").evaluate("t => t.classList.contains('no-image')")
        assert log.console_errors == [] and log.page_errors == []
    finally:
        page.context.close()
    # shards without a thumbnail column: also one line, also works
    info = write_output_folder(tmp_path / "b", n=40, n_clusters=2, seed=3, thumbnails=False)
    assert "no thumbnail column" in build_explorer(info["output"]).notice


def test_overview_says_what_the_reasons_figures_count(page, browser, tmp_path):
    # The reason's noise counts the images clustered (each distinct image once); the page counts rows.
    page, _ = page
    reason = page.locator("#panel-body dt:text-is('Why') + dd")
    assert reason.text_content() == "highest DBCV among settings with < 30 % noise"  # as many points as rows
    info = write_output_folder(tmp_path, n=60, n_clusters=2, seed=4)
    metrics = json.loads((info["output"] / "metrics.json").read_text())
    metrics["chosen"]["n"] = 45
    (info["output"] / "metrics.json").write_text(json.dumps(metrics))
    reposted, log = open_page(browser, build_explorer(info["output"]).path)
    try:
        text = reposted.locator("#panel-body dt:text-is('Why') + dd").text_content()
        assert text == "highest DBCV among settings with < 30 % noise (figures over the 45 distinct images clustered)"
        assert log.page_errors == [] and log.console_errors == []
    finally:
        reposted.context.close()


def test_degenerate_folders_load(browser, tmp_path):
    for n in (0, 1):
        out = tmp_path / f"n{n}"
        out.mkdir()
        pq.write_table(
            pa.table(
                {
                    "id": pa.array([f"only-{i}" for i in range(n)], pa.string()),
                    "url": pa.array(["https://x.test/a.jpg"] * n, pa.string()),
                    "x": pa.array([1.0] * n, pa.float32()),
                    "y": pa.array([2.0] * n, pa.float32()),
                    "cluster": pa.array([-1] * n, pa.int32()),
                }
            ),
            out / "assignments.parquet",
        )
        result = build_explorer(out)
        assert result.n_points == n and result.notice
        page, log = open_page(browser, result.path)
        try:
            counts = page.evaluate("window.explorer.counts")
            assert counts["total"] == counts["drawn"] == n and counts["clusters"] == 0
            assert page.locator("#empty").is_visible() == (n == 0)
            assert log.page_errors == [] and log.console_errors == []
        finally:
            page.context.close()


def _oklab(rgb: np.ndarray) -> np.ndarray:
    c = rgb / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    to_lms = np.array(
        [
            [0.4122214708, 0.2119034982, 0.0883024619],
            [0.5363325363, 0.6806995451, 0.2817188376],
            [0.0514459929, 0.1073969566, 0.6299787005],
        ]
    )
    to_lab = np.array(
        [
            [0.2104542553, 1.9779984951, 0.0259040371],
            [0.7936177850, -2.4285922050, 0.7827717662],
            [-0.0040720468, 0.4505937099, -0.8086757660],
        ]
    )
    return np.cbrt(lin @ to_lms) @ to_lab


def test_the_page_colours_clusters_with_the_runs_palette(page):
    page, _ = page
    k = page.evaluate("window.explorer.counts.clusters")
    assert page.evaluate(f"window.explorer.palette({k})") == cluster_palette(k).tolist()


def test_palette_stays_distinguishable_past_100_clusters():
    colours = cluster_palette(120).astype(float)
    assert len({tuple(c) for c in colours}) == 120
    lab = _oklab(colours)
    d = np.linalg.norm(lab[:, None] - lab[None], axis=-1) + np.eye(120)
    assert d[:10, :10].min() > 0.09  # the biggest clusters get clearly different colours (OKLab units)
    assert d.min() > 0.045  # ~ 2x a just-noticeable difference, even at 120 clusters
    noise_grey = _oklab(np.array([[128.0, 134.0, 143.0]]))
    assert np.linalg.norm(lab - noise_grey, axis=1).min() > 0.045


def test_50k_points_load(browser, tmp_path):
    n = 50_000
    rng = np.random.default_rng(5)
    out = tmp_path / "big"
    out.mkdir()
    labels = rng.integers(-1, 120, n).astype(np.int32)
    centers = rng.uniform(-30, 30, (121, 2))
    xy = centers[labels + 1] + rng.normal(0, 1, (n, 2))
    pq.write_table(
        pa.table(
            {
                "id": [f"p{i}" for i in range(n)],
                "url": [f"https://x.test/{i}.jpg" for i in range(n)],
                "x": pa.array(xy[:, 0], pa.float32()),
                "y": pa.array(xy[:, 1], pa.float32()),
                "cluster": pa.array(labels),
                "probability": pa.array(rng.random(n), pa.float32()),
                "text": [f"post number {i} about topic {labels[i]}" for i in range(n)],
            }
        ),
        out / "assignments.parquet",
    )
    result = build_explorer(out)
    page, log = open_page(browser, result.path, ready_timeout_ms=30000)
    try:
        counts = page.evaluate("window.explorer.counts")
        assert counts["total"] == counts["rendered"] == n and counts["clusters"] == 120
        texts = [f"post number {i} about topic {labels[i]}" for i in range(n)]
        expected = expected_matches([f"p{i}" for i in range(n)], [""] * n, texts, "topic 7")
        page.fill("#search", "topic 7")
        page.wait_for_function("n => window.explorer.counts.shown === n", arg=expected)
        assert log.page_errors == [] and log.console_errors == []
    finally:
        page.context.close()
    # level of detail: with a budget of 20,000 the full view draws a sample of each tile; zoomed in, every point
    page, log = open_page(browser, result.path, query="lod=20000", ready_timeout_ms=30000)
    try:
        wait_idle(page)
        lod = page.evaluate("window.explorer.lod")
        assert lod["sampled"] and 20_000 <= page.evaluate("window.explorer.counts.rendered") <= 20_000 + 3 * 256
        for _ in range(8):
            page.keyboard.press("+")
        page.wait_for_timeout(400)  # the frame after the last zoom step, at rest, is a full one
        wait_idle(page)
        assert not page.evaluate("window.explorer.lod")["sampled"]
        assert 0 < page.evaluate("window.explorer.counts.rendered") < 20_000
        assert log.page_errors == [] and log.console_errors == []
    finally:
        page.context.close()

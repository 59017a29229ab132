"""Build explorer pages from synthetic runs of 200k (and 1M) points and time them in headless Chromium.

For each size it prints: the page's size and its per-point data in bytes per point, against a peer run in the same
process: the same columns as plain JSON lists (what the page carried before, ~150-250 B/point); the build time of
both; the sidecar chunk files and bytes when thumbnails are packed; and, in ``/usr/bin/chromium`` headless
(software GL, like CI), the time from navigation to the inflated data and to the first drawn frame, frame times
while panning, and how long a sidecar chunk takes to load. A screenshot of each page is written to ``--out``.

``python bench/explorer.py [--sizes 200000 1000000] [--thumbnails 200000] [--out /tmp/explorer-bench]``

The synthetic run has the full output contract: 3 hierarchy levels with names and keywords, two alternative
settings, post text with hashtags, accounts, dates over six weeks, repost groups. Thumbnails are distinct JPEG bytes
(a few real 128 px JPEGs, each copy made unique by trailing bytes after the end-of-image marker, which browsers
ignore), so packing and loading are measured on real sizes without encoding 200k images.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout; the browser helper is in tests/

from clustering.analysis.explorer.build import Explorer
from clustering.analysis.explorer.payload import page_payload
from tests.browser import launch_chromium, open_page, wait_idle

WORDS = np.array(
    [
        "manif",
        "grève",
        "police",
        "paris",
        "lyon",
        "macron",
        "photo",
        "vidéo",
        "retraites",
        "cortège",
        "marche",
        "soutien",
        "place",
        "foule",
        "banderole",
        "nous",
        "tous",
        "demain",
        "rendez-vous",
        "ici",
    ]
)
TAGS = np.array([f"#tag{i}" for i in range(400)])


def synthetic_run(n: int, seed: int = 0) -> tuple[pa.Table, dict]:
    """An assignments table and metrics.json of ``n`` points with the full contract (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_clusters = max(4, n // 700)
    centers = rng.uniform(-40, 40, (n_clusters, 2))
    labels = np.where(rng.random(n) < 0.15, -1, rng.integers(0, n_clusters, n)).astype(np.int32)
    xy = np.where(labels[:, None] >= 0, centers[np.maximum(labels, 0)], 0) + rng.normal(0, 1.2, (n, 2))
    xy[labels < 0] = rng.uniform(-45, 45, (int((labels < 0).sum()), 2))
    theme = np.where(labels < 0, -1, labels // 8).astype(np.int32)
    sub = np.where(labels < 0, -1, labels * 3 + rng.integers(0, 3, n)).astype(np.int32)
    seconds = rng.integers(0, 42 * 86400, n)
    times = np.datetime64("2024-09-01T00:00:00") + seconds.astype("timedelta64[s]")
    words = WORDS[rng.integers(0, len(WORDS), (n, 9))]
    tags = TAGS[np.maximum(labels, 0) % len(TAGS)]
    texts = pa.array(np.char.add(np.char.add([" ".join(w) for w in words], " "), tags))
    accounts = pa.array(np.char.add("@user", rng.zipf(1.6, n).clip(max=n // 10).astype(str)))
    table = pa.table(
        {
            "id": pa.array(np.char.add("id", np.arange(n).astype(str))),
            "url": pa.array(
                np.char.add(np.char.add("https://pbs.twimg.example/media/", np.arange(n).astype(str)), ".jpg")
            ),
            "x": pa.array(xy[:, 0], pa.float32()),
            "y": pa.array(xy[:, 1], pa.float32()),
            "cluster": pa.array(labels),
            "probability": pa.array(rng.random(n), pa.float32()),
            "outlier_score": pa.array(rng.random(n), pa.float32()),
            "cluster_mcs10_ms5": pa.array(sub),
            "cluster_mcs80_ms5": pa.array(theme),
            "theme": pa.array(theme),
            "subcluster": pa.array(sub),
            "repost_group": pa.array(np.where(rng.random(n) < 0.05, rng.integers(0, n // 40, n), -1), pa.int32()),
            "post_time": pa.array(times.astype("datetime64[ms]"), pa.timestamp("ms", tz="UTC")),
            "text": texts,
            "created_at": pa.array(np.datetime_as_string(times, unit="s")),
            "account": accounts,
        }
    )

    def level(name, column, values, parent):
        ids = sorted(set(values.tolist()) - {-1})
        return {"name": name, "column": column, "min_cluster_size": None, "clusters": [
            {"cluster": k, "parent": parent(k), "size": None, "name": f"{name} {k}", "name_source": "keywords",
             "uncertain": False, "keywords": [str(TAGS[k % len(TAGS)]), "manif", "paris"]} for k in ids]}  # fmt: skip

    metrics = {
        "alternatives": [{"column": "cluster"}, {"column": "cluster_mcs10_ms5", "min_cluster_size": 10,
                         "min_samples": 5}, {"column": "cluster_mcs80_ms5", "min_cluster_size": 80, "min_samples": 5}],
        "hierarchy": {"chosen": "clusters", "levels": [level("themes", "theme", theme, lambda k: -1),
                      level("clusters", "cluster", labels, lambda k: k // 8),
                      level("subclusters", "subcluster", sub, lambda k: k // 3)]},
        "posts": {"text": "text", "date": "created_at", "account": "account", "missing": [], "dates_unparseable": 0,
                  "period": "day"},
    }  # fmt: skip
    return table, metrics


def json_peer(table: pa.Table) -> bytes:
    """The peer: every column as plain JSON lists (floats rounded to 4 decimals), as pages carried data before."""
    columns = {}
    for name in table.column_names:
        values = table.column(name)
        if pa.types.is_floating(values.type):
            columns[name] = np.round(values.to_numpy(), 4).tolist()
        elif pa.types.is_timestamp(values.type):
            columns[name] = values.cast(pa.string()).to_pylist()
        else:
            columns[name] = values.to_pylist()
    return json.dumps(columns, ensure_ascii=False, separators=(",", ":")).encode()


def thumbnail_source(ids: pa.Array, count: int, seed: int = 1):
    """``count`` distinct JPEG thumbnails of realistic size for the first ids, in a shuffled (shard-like) order."""
    rng = np.random.default_rng(seed)
    bases = []
    for k in range(24):
        arr = rng.normal(128, 60, (96, 128, 3)).clip(0, 255).astype(np.uint8)
        arr[:, : 16 + 4 * k] = (k * 10) % 255
        buf = io.BytesIO()
        Image.fromarray(arr).resize((128, 96)).save(buf, "JPEG", quality=80)
        bases.append(buf.getvalue())
    keys = ids.slice(0, count).to_pylist()
    order = rng.permutation(len(keys))

    def source():
        for j in order:
            yield keys[j], bases[j % len(bases)] + int(j).to_bytes(8, "little")  # after EOI: ignored by decoders

    return source, float(np.mean([len(b) for b in bases]) + 8)


def pinned_frames(browser, path: Path, n: int) -> dict:
    """The peer: the same zooming with the budget pinned at every point (``?lod=n``: no level of detail)."""
    page, _ = open_page(browser, path, query=f"lod={n}", ready_timeout_ms=120_000)
    try:
        wait_idle(page, 60_000)
        return _zoom_frames(page)
    finally:
        page.context.close()


def measure_page(browser, path: Path, shots: Path, label: str) -> dict:
    page, log = open_page(browser, path, ready_timeout_ms=120_000)
    try:
        timings = page.evaluate("window.explorer.timings")
        counts = page.evaluate("window.explorer.counts")
        wait_idle(page, 60_000)
        page.screenshot(path=str(shots / f"{label}.png"))
        frames = _zoom_frames(page)
        lod = page.evaluate("window.explorer.lod")
        chunk_ms = _chunk_load_ms(page)
        return {"timings": timings, "counts": counts, "frames": frames, "lod": lod, "chunk_ms": chunk_ms,
                "console_errors": log.console_errors, "page_errors": log.page_errors}  # fmt: skip
    finally:
        page.context.close()


def _zoom_frames(page, seconds: float = 3.0) -> dict:
    """Frames drawn while a wheel event zooms the map in or out at every animation frame (an interaction that
    never waits for the page), measured in the page: frames per second and the median frame interval."""
    return page.evaluate(
        """(seconds) => new Promise((resolve) => {
            const map = document.getElementById('overlay'), r = map.getBoundingClientRect();
            const e = window.explorer, start = performance.now(), first = e.frames, gaps = [];
            let last = start, k = 0;
            const tick = (now) => {
                if (e.frames !== first) { gaps.push(now - last); }
                last = now;
                const zoomIn = Math.floor(k++ / 20) % 2 === 0;
                const at = { clientX: r.left + r.width / 2, clientY: r.top + r.height / 2 };
                const wheel = { deltaY: zoomIn ? -60 : 60, ...at, bubbles: true, cancelable: true };
                map.dispatchEvent(new WheelEvent('wheel', wheel));
                if (now - start < seconds * 1000) requestAnimationFrame(tick);
                else {
                    gaps.sort((a, b) => a - b);
                    const fps = (e.frames - first) / ((now - start) / 1000);
                    resolve({ fps, median_ms: gaps[gaps.length >> 1] || 0 });
                }
            };
            requestAnimationFrame(tick);
        })""",
        seconds,
    )


def _chunk_load_ms(page) -> float | None:
    """Milliseconds from hovering a point whose sidecar chunk is not loaded yet to its image shown in the card."""
    candidates = page.evaluate(
        """() => {
            const e = window.explorer, out = [];
            for (let i = 0; i < e.counts.total && out.length < 50; i++) {
                const c = e.thumbnailChunk(i);
                if (c && c !== 'embedded' && !e.thumbnailSrc(i) && e.isShown(i) && e.screenPosition(i)) out.push(i);
            }
            return out;
        }"""
    )
    for i in candidates:
        if page.evaluate("i => window.explorer.thumbnailSrc(i)", i):
            continue  # loaded meanwhile with a neighbour's chunk
        pos = page.evaluate("i => window.explorer.screenPosition(i)", i)
        page.mouse.move(pos["x"] + 40, pos["y"] + 40)
        start = time.perf_counter()
        page.mouse.move(pos["x"], pos["y"])
        page.wait_for_function("() => window.explorer.hovered >= 0", timeout=10_000)
        hovered = page.evaluate("window.explorer.hovered")
        chunk = page.evaluate("h => window.explorer.thumbnailChunk(h)", hovered)
        if hovered != i and (
            chunk in (None, "embedded") or page.evaluate("h => window.explorer.thumbnailSrc(h)", hovered)
        ):
            continue  # a neighbour without an unloaded chunk answered the hover
        page.wait_for_function(
            "() => { const img = document.getElementById('tt-img');"
            " return img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0; }",
            timeout=30_000,
        )
        return 1000 * (time.perf_counter() - start)
    return None


def run_size(n: int, thumbnails: int, out: Path, browser) -> None:
    folder = out / f"n{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t = time.perf_counter()
    table, metrics = synthetic_run(n)
    print(f"\n== {n:,} points (synthetic data made in {time.perf_counter() - t:.1f} s; load {os.getloadavg()[0]:.1f})")
    t = time.perf_counter()
    peer = json_peer(table)
    peer_s = time.perf_counter() - t
    source, mean_thumb = thumbnail_source(table["id"].combine_chunks(), min(thumbnails, n)) if thumbnails else (None, 0)
    t = time.perf_counter()
    explorer = Explorer(page_payload(table, metrics), source, None, title=f"bench {n:,}")
    built = explorer.save(folder / "explorer.html")
    build_s = time.perf_counter() - t
    print(f"per-point data: {built.data_bytes / n:6.1f} B/point (JSON peer {len(peer) / n:6.1f} B/point, "
          f"ratio {len(peer) / built.data_bytes:.1f}x smaller)")  # fmt: skip
    print(f"build: {build_s:.1f} s (page {built.bytes / 2**20:.1f} MiB; JSON peer serialisation alone {peer_s:.1f} s)")
    if thumbnails:
        print(f"thumbnails: {built.n_embedded_thumbnails:,} embedded, {built.n_sidecar_thumbnails:,} in "
              f"{built.n_sidecar_files:,} sidecar files ({built.sidecar_bytes / 2**20:.0f} MiB; one file per image "
              f"would make {built.n_sidecar_thumbnails:,}), mean thumbnail {mean_thumb / 1024:.1f} KiB")  # fmt: skip
    m = measure_page(browser, Path(built.path), out, f"explorer-{n}")
    peer_frames = pinned_frames(browser, Path(built.path), n)
    print(
        f"chromium: data inflated at {m['timings']['decoded'] / 1000:.2f} s, first frame at "
        f"{m['timings']['firstDraw'] / 1000:.2f} s after navigation; {m['counts']['rendered']:,} points drawn at rest"
    )
    fps, peer_fps = m["frames"]["fps"], peer_frames["fps"]
    print(f"zooming: {fps:.1f} frames/s, median frame {m['frames']['median_ms']:.0f} ms (every point drawn each frame: "
          f"{peer_fps:.1f} frames/s, {peer_frames['median_ms']:.0f} ms; ratio {fps / max(peer_fps, 1e-9):.1f}x); "
          f"budget then {m['lod']['budget']:,.0f} of {m['lod']['full']:,}")  # fmt: skip
    if m["chunk_ms"] is not None:
        print(f"a sidecar chunk's image shown after {m['chunk_ms']:.0f} ms")
    print(f"console errors: {len(m['console_errors'])}, page errors: {len(m['page_errors'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000])
    parser.add_argument("--thumbnails", type=int, default=50_000, help="distinct thumbnails (0: none)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/explorer-bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with launch_chromium() as browser:
        for n in args.sizes:
            run_size(n, args.thumbnails, args.out, browser)
    print(f"\nscreenshots in {args.out}")


if __name__ == "__main__":
    main()

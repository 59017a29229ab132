"""Time the post analysis (dates, keywords, accounts, timelines, repost groups, centroids) on synthetic posts.

Each step runs at ``--rows`` and at a tenth of it in the same process; the printed ratio says how the cost grows
(about 10: linear; about 100: quadratic). Repost groups get a kNN graph passed in, as the analysis passes the
reduction's, with planted near-duplicate groups whose thumbnails are real JPEGs. Then the whole call the job makes
(``analyse_posts``) runs at ``--rows`` on one labelling and on three hierarchy levels, with its peak memory beyond
its inputs (tracemalloc, which sees numpy's buffers) per row: the ratio 3 levels / 1 level says what the work shared
by the levels saves.

``python bench/post_analysis.py [--rows 200000] [--dim 512]``
"""

from __future__ import annotations

import argparse
import io
import time
import tracemalloc

import numpy as np
import pyarrow as pa
from PIL import Image

from clustering.analysis.posts.accounts import cluster_accounts
from clustering.analysis.posts.columns import parse_accounts, parse_dates, read_posts
from clustering.analysis.posts.describe import analyse_posts
from clustering.analysis.posts.keywords import cluster_keywords
from clustering.analysis.posts.names import cluster_centroids
from clustering.analysis.posts.reposts import find_repost_groups, repost_group_table
from clustering.analysis.posts.timeline import cluster_timelines
from clustering.analysis.space.knn_graph import KnnGraph
from clustering.schema import PostColumns

WORDS = [f"mot{i}" for i in range(5000)]
TAGS = [f"#tag{i}" for i in range(300)]
GROUP_SIZE = 5  # planted near-duplicates per group
K = 15


def synthetic(n: int, dim: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n_clusters = max(2, n // 700)
    labels = np.where(rng.uniform(size=n) < 0.3, -1, rng.integers(0, n_clusters, n))
    texts = [
        " ".join([*rng.choice(WORDS, 8), TAGS[label % len(TAGS)] if label >= 0 else "", "https://t.co/x"])
        for label in labels
    ]
    seconds = np.datetime64("2025-08-01T00:00:00", "s").astype(np.int64) + rng.integers(0, 60 * 86400, n)
    dates = [f"{np.datetime64(int(s), 's')}+02:00" for s in seconds]
    twitter = [
        np.datetime64(int(s), "s").item().strftime("%a %b %d %H:%M:%S +0000 %Y") if i % 100 else "not a date"
        for i, s in enumerate(seconds)
    ]  # Twitter's created_at shape, 1 % garbage: the vectorised pass, then the per-value fallback
    accounts = [f"user{int(a)}" for a in rng.zipf(1.5, n) % 5000]
    X = rng.normal(size=(n, dim)).astype(np.float32)
    n_groups = n // 100
    for g in range(n_groups):  # planted near-duplicates: one base vector plus small noise
        members = np.arange(g * GROUP_SIZE, (g + 1) * GROUP_SIZE)
        X[members] = X[members[0]] + 0.05 * rng.normal(size=(GROUP_SIZE, dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    # The kNN graph the reduction would pass: group mates first, then random images (far in cosine).
    indices = rng.integers(0, n, size=(n, K)).astype(np.int32)
    indices[:, 0] = np.arange(n)
    for g in range(n_groups):
        members = np.arange(g * GROUP_SIZE, (g + 1) * GROUP_SIZE)
        indices[members, 1:GROUP_SIZE] = [np.roll(members, -s)[1:] for s in range(GROUP_SIZE)]
    graph = KnnGraph(indices=indices, distances=np.zeros((n, K), np.float32), method="exact")
    return {"labels": labels, "texts": texts, "dates": dates, "twitter": twitter, "accounts": accounts, "X": X,
            "graph": graph}  # fmt: skip


def thumbnail(index: int) -> bytes:
    rng = np.random.default_rng(index // GROUP_SIZE)  # group mates share a picture
    pixels = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    img = Image.fromarray(pixels).resize((128, 96), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=60 + index % 30)
    return buffer.getvalue()


def timed(step) -> tuple[float, object]:
    start = time.perf_counter()
    result = step()
    return time.perf_counter() - start, result


def run(data: dict) -> dict[str, float]:
    seconds: dict[str, float] = {}
    seconds["parse_dates"], dates = timed(lambda: parse_dates(data["dates"]))
    seconds["dates_twitter"], _ = timed(lambda: parse_dates(data["twitter"]))
    seconds["parse_accounts"], accounts = timed(lambda: parse_accounts(data["accounts"]))
    labels = data["labels"]
    seconds["keywords"], _ = timed(lambda: cluster_keywords(labels, data["texts"]))
    seconds["accounts"], _ = timed(lambda: cluster_accounts(labels, accounts))
    seconds["timelines"], _ = timed(lambda: cluster_timelines(labels, dates.values))
    seconds["centroids"], _ = timed(lambda: cluster_centroids(data["X"], labels))
    loading = []

    def loader(indices):  # stands in for read_thumbnails; its own time is not the step's
        start = time.perf_counter()
        blobs = [thumbnail(int(i)) for i in indices]
        loading.append(time.perf_counter() - start)
        return blobs

    total, groups = timed(lambda: find_repost_groups(data["X"], knn=data["graph"], thumbnails=loader))
    seconds["repost_groups"] = total - sum(loading)
    ids = [f"r{i}" for i in range(len(labels))]
    seconds["repost_table"], _ = timed(
        lambda: repost_group_table(groups, ids, dates=dates.values, accounts=accounts, labels=labels)
    )
    seconds["groups_found"] = groups.n_groups
    return seconds


def whole_call(data: dict, *, levels: int) -> tuple[float, float]:
    """Seconds and peak bytes per row of ``analyse_posts`` over 1 or 3 levels (themes, clusters, sub-clusters)."""
    labels = data["labels"]
    table = pa.table({"text": data["texts"], "date": data["dates"], "account": data["accounts"]})
    posts = read_posts(table, PostColumns(text="text", date="date", account="account"))
    split = np.random.default_rng(1).integers(0, 2, len(labels))
    hierarchy = {"themes": np.where(labels >= 0, labels // 4, -1), "clusters": labels,
                 "subclusters": np.where(labels >= 0, labels * 2 + split, -1)}  # fmt: skip
    chosen = {"clusters": labels} if levels == 1 else hierarchy
    ids = [f"r{i}" for i in range(len(labels))]

    def loader(wanted):
        return {i: thumbnail(int(i[1:])) for i in wanted}

    tracemalloc.start()
    start = time.perf_counter()
    analyse_posts(chosen, chosen="clusters", posts=posts, embeddings=data["X"], ids=ids,
                  metadata={"random_weights": True}, knn=data["graph"], thumbnails=loader)  # fmt: skip
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args()
    small_n = args.rows // 10
    run(synthetic(500, args.dim))  # warm-up: imports and first calls are not the steps' cost
    small, large = run(synthetic(small_n, args.dim)), run(synthetic(args.rows, args.dim))
    print(f"{'step':<16}{small_n:>10,} rows{args.rows:>12,} rows{'ratio':>8}")
    for step in small:
        if step == "groups_found":
            continue
        print(f"{step:<16}{small[step]:>13.2f} s{large[step]:>14.2f} s{large[step] / max(small[step], 1e-9):>8.1f}")
    print(f"planted groups found: {small['groups_found']} of {small_n // 100}, {large['groups_found']} of "
          f"{args.rows // 100}")  # fmt: skip
    whole_call(synthetic(2000, args.dim), levels=3)  # warm-up: first calls of the vectoriser and friends
    data = synthetic(args.rows, args.dim)
    (one, one_bytes), (three, three_bytes) = whole_call(data, levels=1), whole_call(data, levels=3)
    print(
        f"analyse_posts at {args.rows:,} rows: 1 level {one:.1f} s, 3 levels {three:.1f} s (ratio {three / one:.2f});"
        f" peak beyond the inputs {one_bytes:.0f} / {three_bytes:.0f} bytes per row"
    )


if __name__ == "__main__":
    main()

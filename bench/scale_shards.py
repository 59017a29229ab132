"""Write a folder of embedding shards at any size, for timing the Analyze job at 50k-1M rows.

The embeddings are issue 13's CLIP-like set (:func:`clustering.devtools.synthetic.make_blobs_on_sphere`: 512-D unit
vectors, 200 topics, a quarter of the images in a diffuse background, 5 % of the images in near-duplicate repost
bursts), plus 3 % exact reposts (same image, same sha256, another post). Every row carries what the post analysis
reads: a post text (topic words, filler, a hashtag), an ISO date over 60 days, an account (Zipf-distributed), and a
small JPEG thumbnail (one of a few pictures per topic; bursts share their source's). The shard metadata says the
model has random weights, so names come from keywords and no text tower is loaded.

    python bench/scale_shards.py --rows 200000 --output /tmp/shards-200k
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clustering import schema
from clustering.devtools.synthetic import make_blobs_on_sphere

TOPICS = 200
BACKGROUND = 0.25
BURST_SHARE = 0.05  # of the images, in bursts of 8-40 near-identical copies (24 on average)
MEAN_BURST = 24
EXACT_REPOSTS = 0.03
PICTURES_PER_TOPIC = 4
ROWS_PER_SHARD = 10_000
DAYS = 60
METADATA = {"model": "synthetic-clip-like", "dim": 512, "random_weights": True, "preprocessing": "none"}


def thumbnails(seed: int) -> list[bytes]:
    """A few small JPEGs per topic (index ``topic * PICTURES_PER_TOPIC + k``), then as many for the background."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    pictures = []
    for _ in range((TOPICS + 1) * PICTURES_PER_TOPIC):
        pixels = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).resize((128, 96), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=75)
        pictures.append(buffer.getvalue())
    return pictures


def post_columns(labels: np.ndarray, rng: np.random.Generator) -> dict[str, pa.Array]:
    """Text, date and account of every post: topic words and a hashtag, 60 days of dates, Zipf accounts."""
    n = labels.size
    vocabulary = np.array([f"word{i}" for i in range(4000)])
    topic_words = rng.integers(0, vocabulary.size, size=(TOPICS + 1, 5))
    own = topic_words[np.where(labels >= 0, labels, TOPICS)]
    picked = own[np.arange(n)[:, None], rng.integers(0, 5, size=(n, 3))]
    filler = rng.integers(0, vocabulary.size, size=(n, 4))
    words = vocabulary[np.concatenate([picked, filler], axis=1)]
    tags = np.where(labels >= 0, np.char.add("#topic", labels.astype(str)), "#misc")
    texts = np.char.add(np.char.add(np.apply_along_axis(" ".join, 1, words), " "), tags)
    start = np.datetime64("2025-03-01T00:00:00", "s")
    dates = (start + rng.integers(0, DAYS * 86400, n).astype("timedelta64[s]")).astype(str)
    accounts = np.char.add("user", (rng.zipf(1.6, n) % 20_000).astype(str))
    dates = np.char.add(dates, "Z")
    return {"post_text": pa.array(texts), "created_at": pa.array(dates), "account": pa.array(accounts)}


def make_scale_shards(root: str | Path, rows: int, *, seed: int = 0) -> dict:
    """Write ``rows`` ok rows as shards under ``root`` and return ``{"rows", "distinct", "labels"}``.

    ``labels`` are the true topics of the rows in shard order (-1 background).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    distinct = round(rows / (1 + EXACT_REPOSTS))
    X, truth = make_blobs_on_sphere(
        distinct,
        n_clusters=TOPICS,
        noise_fraction=BACKGROUND,
        duplicate_bursts=round(distinct * BURST_SHARE / MEAN_BURST),
        seed=seed,
    )
    source = np.concatenate([np.arange(distinct), rng.integers(0, distinct, rows - distinct)])
    source = source[rng.permutation(rows)]
    digests = np.array([hashlib.sha256(X[i].tobytes()).hexdigest() for i in range(distinct)])
    pictures = thumbnails(seed)
    variant = rng.integers(0, PICTURES_PER_TOPIC, distinct)
    picture_of = np.where(truth >= 0, truth, TOPICS) * PICTURES_PER_TOPIC + variant
    labels = truth[source]
    ids = np.char.add("post-", np.arange(rows).astype(str))
    posts = post_columns(labels, rng)
    passthrough = pa.schema([pa.field(name, pa.string()) for name in posts])
    shard_schema = schema.shard_schema(passthrough, X.shape[1], METADATA)
    for index, start in enumerate(range(0, rows, ROWS_PER_SHARD)):
        part = source[start : start + ROWS_PER_SHARD]
        m = part.size
        columns = {
            schema.ID: pa.array(ids[start : start + m]),
            schema.URL: pa.array(np.char.add("https://images.example/", ids[start : start + m])),
            schema.STATUS: pa.array(["ok"] * m),
            schema.ERROR: pa.nulls(m, pa.string()),
            schema.HTTP_STATUS: pa.array(np.full(m, 200, np.int32)),
            schema.BYTES: pa.array(np.full(m, 50_000, np.int64)),
            schema.WIDTH: pa.array(np.full(m, 1080, np.int32)),
            schema.HEIGHT: pa.array(np.full(m, 1080, np.int32)),
            schema.SHA256: pa.array(digests[part]),
            schema.THUMBNAIL: pa.array([pictures[i] for i in picture_of[part]], pa.binary()),
            schema.EMBEDDING: pa.FixedSizeListArray.from_arrays(pa.array(X[part].ravel()), X.shape[1]),
            **{name: values.slice(start, m) for name, values in posts.items()},
        }
        table = pa.table(columns, schema=shard_schema)
        pq.write_table(table, root / f"part-{index:05d}.parquet")
    return {"rows": rows, "distinct": distinct, "labels": labels}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="rows to write (default 200000)")
    parser.add_argument("--output", required=True, help="folder for the shards")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    args = parser.parse_args(argv)
    written = make_scale_shards(args.output, args.rows, seed=args.seed)
    print(f"{written['rows']:,} rows ({written['distinct']:,} distinct images) in {args.output}")


if __name__ == "__main__":
    main()

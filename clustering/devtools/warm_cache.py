"""Compile the analysis's numba kernels into numba's disk cache once, so that no analysis on this machine pays for it.

    python -m clustering.devtools.warm_cache      # into $NUMBA_CACHE_DIR, else ~/.cache/clipcluster/numba

A first analysis in an empty cache compiles for about a minute (issue 27: 87 s against 36 s for the same 20,000
images run again): the exact kNN scan, UMAP's membership graph and SGD, the sweep's tree kernels, and pynndescent's
kernels that ``import umap`` compiles. This runs the Analyze job itself (:func:`clustering.analysis.run_analysis`,
options parsed as ``jobs/analyze.py`` parses them) on generated shards, so every kernel is compiled with the argument
types of a real run (numba caches one machine-code version per signature: float32 against float64, int32 against
int64 and C against A layout are different entries). With ``--pynndescent`` it also runs
:func:`~clustering.analysis.space.reduce.reduce`
with pynndescent's kNN graph, the path of inputs above 80,000 points: that
caches the part of pynndescent's first-call compile that numba can cache (about 10 s of 45 s; its ``nn_descent``
takes the distance function as an argument and compiles in every process).

numba finds a cached kernel by the absolute folder of its source file, the file's content and the CPU: a cache
warmed for one checkout is not used by another one, nor on another CPU model. Warm it where the code will run, with
the ``NUMBA_CACHE_DIR`` the jobs will see (``make`` does, in ``scripts/setup.sh``); docs/cluster.md says how for
cluster images and ``ray job submit``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# The clustering run: the smallest round size at which the exact kNN scan splits its products into two blocks (one
# block holds 5,632 rows of a 6,000-point set: topk._BLOCK_BYTES over 4 bytes x n, in whole tiles of 512) and so
# compiles its column merge too, which a 20,000-point run needs; below it only the row merge is compiled.
WARM_POINTS = 6_000
# pynndescent compiles the same at any size; 1,000 points keep its run short.
WARM_PYNNDESCENT_POINTS = 1_000
# UMAP epochs of the warm-up's layouts: the epoch kernel is the same whatever their number (over 10, UMAP's minimum
# for an explicit count), and a real run's 200-500 epochs would only add seconds of layout.
WARM_EPOCHS = 20
_TOPICS = 12
_DIM = 512  # CLIP ViT-B/32: the analysis's arrays have the same types at any dimension, this is the common one
_METADATA = {"model": "warm-cache-synthetic", "dim": _DIM, "random_weights": True, "preprocessing": "none"}


def main(argv: list[str] | None = None) -> int:
    """Warm the cache and print one summary line. Exit status 0; 1 when no cache folder can be written; an analysis
    that fails raises (a bug: its traceback is the report)."""
    from clustering.cli import keep_compile_cache

    parser = argparse.ArgumentParser(
        prog="python -m clustering.devtools.warm_cache", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--pynndescent",
        action="store_true",
        help="also cache what numba can of pynndescent's compile (inputs above 80,000 points; about 45 s more)",
    )
    parser.add_argument(
        "--also-user-cache",
        action="store_true",
        help="then copy the cache into the folder that jobs started without NUMBA_CACHE_DIR use "
        "(~/.cache/clipcluster/numba), so that `python jobs/analyze.py` typed in a shell starts warm too",
    )
    args = parser.parse_args(argv)
    folder = keep_compile_cache()  # before numba is imported: it reads NUMBA_CACHE_DIR then
    if folder is None:
        print("warm_cache: no writable numba cache folder (set NUMBA_CACHE_DIR); nothing warmed", file=sys.stderr)
        return 1
    start = time.perf_counter()
    before = count_index_files(folder)
    warm(pynndescent=args.pynndescent)
    after = count_index_files(folder)
    seconds = time.perf_counter() - start
    copied = ""
    if args.also_user_cache:
        user = user_cache_folder()
        if user is not None and Path(user).resolve() != Path(folder).resolve():
            copy_cache(folder, user)
            copied = f", copied to {user}"
    print(f"warm_cache: {after} kernels in numba's cache {folder} ({after - before} new) in {seconds:.1f} s{copied}")
    return 0


def warm(*, pynndescent: bool = False, seed: int = 0) -> None:
    """Run the analysis paths that compile numba kernels, on generated data, into the current numba cache.

    UMAP's parallel SGD (``--parallel-layout``) is left out on purpose: ``reduce`` caches it under the same key as the
    single-threaded SGD, so compiling it here would hand the reproducible layouts the parallel kernel.

    Parameters
    ----------
    pynndescent : bool, default False
        Also run the reduction with pynndescent's kNN graph (:func:`run_pynndescent`).
    seed : int, default 0
        Seed of the generated embeddings.
    """
    with tempfile.TemporaryDirectory(prefix="clipcluster-warm-") as scratch:
        shards = Path(scratch) / "shards"
        write_shards(shards, WARM_POINTS, reposts=WARM_POINTS // 20, seed=seed)
        run_job(["--input", str(shards), "--output", str(Path(scratch) / "analysis"), "--n-epochs", str(WARM_EPOCHS)])
    if pynndescent:
        run_pynndescent(WARM_PYNNDESCENT_POINTS, seed=seed)


def run_job(argv: list[str]) -> None:
    """The Analyze job's own two calls (``jobs/analyze.py``), quietly: options parsed, then :func:`run_analysis`."""
    from clustering.analysis import AnalyzeConfig, run_analysis
    from clustering.config import parse_args

    config = parse_args(AnalyzeConfig, [*argv, "--no-progress"], prog="warm_cache", description="")
    run_analysis(config)


def run_pynndescent(n: int, *, seed: int) -> None:
    """The reduction with pynndescent's kNN graph, as the job runs it above 80,000 points (seeded, reproducible)."""
    from clustering.analysis.space.reduce import reduce

    X, _ = _embeddings(n, seed=seed)
    reduce(X, knn="pynndescent", n_epochs=WARM_EPOCHS, seed=seed)


def write_shards(folder: Path, points: int, *, reposts: int = 0, seed: int = 0) -> None:
    """Write ``points`` distinct CLIP-like images plus ``reposts`` exact reposts as two Parquet shards in ``folder``.

    Rows follow the shard schema (``clustering.schema``), all ``ok``; a repost repeats a random image (same embedding
    and ``sha256``) under its own id, as a repost does. Every row has what the post analysis reads (a text, a date, an
    account) and a small thumbnail (montages and the explorer).
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clustering import schema

    X, topics = _embeddings(points, seed=seed)
    rng = np.random.default_rng(seed)
    source = rng.permutation(np.concatenate([np.arange(points), rng.integers(0, points, reposts)]))
    n = source.size
    digests = np.array([hashlib.sha256(row.tobytes()).hexdigest() for row in X])[source]
    pictures = _thumbnails(_TOPICS + 1, seed=seed)
    ids = [f"post-{i}" for i in range(n)]
    times = np.datetime64("2025-01-01T00:00:00", "s") + rng.integers(0, 30 * 86_400, n).astype("timedelta64[s]")
    passthrough = {
        "post_text": [f"topic{t} words about topic{t} #tag{t}" for t in topics[source]],
        "created_at": [f"{t}Z" for t in times.astype(str)],
        "account": [f"user{a}" for a in rng.zipf(1.6, n) % 500],
    }
    table = pa.table(
        {
            schema.ID: ids,
            schema.URL: [f"https://images.example/{i}.jpg" for i in ids],
            schema.STATUS: ["ok"] * n,
            schema.ERROR: pa.nulls(n, pa.string()),
            schema.HTTP_STATUS: pa.array(np.full(n, 200, np.int32)),
            schema.BYTES: pa.array(np.full(n, 40_000, np.int64)),
            schema.WIDTH: pa.array(np.full(n, 640, np.int32)),
            schema.HEIGHT: pa.array(np.full(n, 480, np.int32)),
            schema.SHA256: digests,
            schema.THUMBNAIL: [pictures[t] for t in topics[source]],
            schema.EMBEDDING: pa.FixedSizeListArray.from_arrays(pa.array(X[source].ravel()), _DIM),
            **passthrough,
        },
        schema=schema.shard_schema(pa.schema([(name, pa.string()) for name in passthrough]), _DIM, _METADATA),
    )
    folder.mkdir(parents=True, exist_ok=True)
    half = n // 2
    pq.write_table(table.slice(0, half), folder / "part-00000.parquet")
    pq.write_table(table.slice(half), folder / "part-00001.parquet")


def user_cache_folder() -> str | None:
    """The folder that jobs started without ``NUMBA_CACHE_DIR`` cache in (:func:`clustering.cli.keep_compile_cache`),
    created; None when it cannot be written."""
    from clustering.cli import keep_compile_cache

    saved = os.environ.pop("NUMBA_CACHE_DIR", None)
    try:
        return keep_compile_cache()
    finally:
        os.environ.pop("NUMBA_CACHE_DIR", None)
        if saved is not None:
            os.environ["NUMBA_CACHE_DIR"] = saved


def copy_cache(source: str | Path, target: str | Path) -> None:
    """Copy a numba cache folder's files into ``target``, replacing files of the same name.

    A cache folder can move: numba names its subfolders after the source files' folders, not after the cache's. Each
    file is written under a temporary name and renamed, as numba writes them, so a process reading the cache
    meanwhile never sees half a file; the data files go first, so that no index names a file not there yet.
    """
    source, target = Path(source), Path(target)
    files = sorted((p for p in source.rglob("*") if p.is_file()), key=lambda p: p.suffix == ".nbi")
    for path in files:
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f"{destination.name}.{os.getpid()}.tmp")
        shutil.copyfile(path, partial)
        os.replace(partial, destination)


def count_index_files(folder: str | Path) -> int:
    """Number of numba cache index files (one per cached kernel) under ``folder``."""
    return sum(1 for _ in Path(folder).rglob("*.nbi"))


def _embeddings(n: int, *, seed: int):
    """``(X, topics)``: CLIP-like float32 unit vectors (:func:`make_blobs_on_sphere`), background as topic
    ``_TOPICS``."""
    import numpy as np

    from clustering.devtools.synthetic import make_blobs_on_sphere

    X, labels = make_blobs_on_sphere(n, dim=_DIM, n_clusters=_TOPICS, duplicate_bursts=4, seed=seed)
    return X, np.where(labels >= 0, labels, _TOPICS)


def _thumbnails(count: int, *, seed: int) -> list[bytes]:
    """``count`` small JPEGs of random colour blocks."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    pictures = []
    for _ in range(count):
        image = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((64, 48))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=70)
        pictures.append(buffer.getvalue())
    return pictures


if __name__ == "__main__":
    sys.exit(main())

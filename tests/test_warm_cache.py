"""The numba warm-up (clustering/devtools/warm_cache.py): after it, an analysis compiles nothing that numba can cache.

The warm-up runs once per module into an empty ``NUMBA_CACHE_DIR``; then the real job runs on another set (other
size, other seed) in a fresh process that records every numba compile. A kernel with ``cache=True`` compiled there
is one the warm-up missed (a path it does not take, or other argument types), i.e. one that every first run on a new
machine would pay for.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clustering.devtools.warm_cache import count_index_files, write_shards

ROOT = Path(__file__).resolve().parents[1]
# umap's kernels that reduce.py recompiles with numba's disk cache (its _UMAP_KERNELS), as cache file stems.
UMAP_CACHED = ("umap_.smooth_knn_dist", "umap_.compute_membership_strengths", "layouts._optimize_layout_euclidean")
# Runs a script (argv[1:]) and prints, at exit, the cache-enabled numba kernels it compiled: numba fires
# "numba:compile" only on a cache miss (numba/core/dispatcher.py), so a cache hit never shows here.
RECORD_CACHE_MISSES = """
import atexit, json, runpy, sys
from numba.core import event
from numba.core.caching import NullCache
missed = []
class Missed(event.Listener):
    def on_start(self, ev):
        pass
    def on_end(self, ev):
        d = ev.data["dispatcher"]
        if not isinstance(d._cache, NullCache):
            missed.append(f"{d.py_func.__module__}.{d.py_func.__qualname__}")
event.register("numba:compile", Missed())
atexit.register(lambda: print("CACHE-MISSES " + json.dumps(missed)))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def warmed(tmp_path_factory):
    """An empty numba cache after one warm-up (also copied to the user folder under a temporary XDG_CACHE_HOME), and
    what the warm-up printed."""
    cache, home = tmp_path_factory.mktemp("numba-cache"), tmp_path_factory.mktemp("xdg-cache")
    done = subprocess.run(
        [sys.executable, "-m", "clustering.devtools.warm_cache", "--also-user-cache"],
        cwd=ROOT,
        env={**_env(cache), "XDG_CACHE_HOME": str(home)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return cache, done, home / "clipcluster" / "numba"


def test_write_shards_gives_the_distinct_images_and_their_reposts(tmp_path):
    from clustering.analysis.shards import read_ok_rows

    write_shards(tmp_path, 300, reposts=20, seed=3)
    data = read_ok_rows(str(tmp_path))
    assert data.n_rows == 320
    assert data.duplicates.n_unique == 300
    assert data.embeddings.shape == (300, 512)
    assert {"post_text", "created_at", "account"} <= set(data.passthrough)


@pytest.mark.slow
def test_warm_up_is_one_line_and_caches_our_kernels_and_umaps(warmed):
    cache, done, user = warmed
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warm_cache: ") and str(cache) in lines[0], done.stdout
    assert done.stderr == ""
    assert lines[0].endswith(f"copied to {user}")
    assert {p.relative_to(user) for p in user.rglob("*")} == {p.relative_to(cache) for p in cache.rglob("*")}
    # numba names a cache folder after the source folder's name and the SHA-1 of its absolute path.
    ours = {
        f"{d.name}_{hashlib.sha1(str(d).encode()).hexdigest()}" for d in (ROOT / "clustering").rglob("*") if d.is_dir()
    }
    folders = {d.name for d in cache.iterdir() if count_index_files(d)}
    assert folders & ours, f"no kernel of {ROOT / 'clustering'} in {sorted(folders)}"
    umap_folder = next(d for d in cache.iterdir() if d.name.startswith("umap_"))
    stems = {p.name for p in umap_folder.glob("*.nbi")}
    for kernel in UMAP_CACHED:
        assert any(stem.startswith(kernel) for stem in stems), (kernel, sorted(stems))


@pytest.mark.slow
def test_an_analysis_after_the_warm_up_compiles_no_cacheable_kernel(warmed, tmp_path):
    cache, _, _ = warmed
    shards = tmp_path / "shards"
    write_shards(shards, 7_000, reposts=150, seed=1)  # two kNN blocks, as a 20,000-point run has
    job = ["jobs/analyze.py", "--input", str(shards), "--output", str(tmp_path / "out"), "--no-progress"]
    job += ["--n-epochs", "30"]  # the epoch kernel's types do not depend on the count; saves layout time
    before = count_index_files(cache)
    done = subprocess.run(
        [sys.executable, "-c", RECORD_CACHE_MISSES, *job], cwd=ROOT, env=_env(cache), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    misses = json.loads(done.stdout.rsplit("CACHE-MISSES ", 1)[1])
    assert misses == []
    assert count_index_files(cache) == before

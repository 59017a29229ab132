"""Issue 27's overview: how many themes the theme level has on every bench set and on a synthetic 40,000-image set.

For each set, the Analyze job's clustering step (``cluster_points``, the job's defaults) and then the theme level as
the run builds it (``outcome.assemble_outcome``): clusters, themes, whether every theme is a union of whole clusters,
and where the themes come from (the original-space overview above 8 clusters, else the sweep). Issue 27 asks 8-30
themes, fewer only where there are fewer clusters.

    python bench/themes.py                       # every set present, then 40k synthetic (about 10 min on 2 cores)
    python bench/themes.py --sets none --n 40000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"))

import quality

from clustering.analysis.cluster.cluster_points import cluster_points
from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.outcome import assemble_outcome
from clustering.analysis.shards import find_duplicates
from clustering.analysis.steps import Steps
from clustering.analysis.threads import single_threaded_blas
from clustering.devtools.synthetic import make_blobs_on_sphere


def themes_of(X: np.ndarray) -> dict:
    start = time.perf_counter()
    with single_threaded_blas():
        clustering = cluster_points(X, AnalyzeConfig(input="-", output="-", progress=False, threads=2), Steps())
    rows = np.arange(len(X))
    duplicates = find_duplicates([f"image-{i}" for i in rows])
    outcome = assemble_outcome(clustering, duplicates, rows, alternatives=0)
    levels = {level.name: level for level in outcome.hierarchy.levels}
    clusters, themes = levels["clusters"], levels.get("themes")
    union = themes is None or all(
        len(np.unique(themes.labels[clusters.labels == c])) == 1 for c in range(clusters.n_clusters)
    )
    return {
        "clusters": clusters.n_clusters,
        "themes": themes.n_clusters if themes is not None else 0,
        "union": union,
        "source": "original space" if clustering.overview is not None else "sweep" if themes is not None else "none",
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="", help="comma-separated bench/quality.py sets (default: every set; none)")
    parser.add_argument("--n", type=int, default=40_000, help="points of the synthetic set (0: none)")
    args = parser.parse_args(argv)
    loaders = quality.available_sets()
    wanted = [] if args.sets == "none" else [s for s in args.sets.split(",") if s] or list(loaders)
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    print("\n| set | images | clusters | themes | every theme a union of clusters | themes from | seconds |")
    print("|---|---|---|---|---|---|---|")
    named = [(name, lambda name=name: loaders[name]().X) for name in wanted]
    if args.n:
        named.append((f"synthetic {args.n // 1000}k", lambda: make_blobs_on_sphere(args.n, n_clusters=140, seed=0)[0]))
    for name, load in named:
        X = load()
        found = themes_of(X)
        print(f"| {name} | {len(X):,} | {found['clusters']} | {found['themes']} | {found['union']} | "
              f"{found['source']} | {found['seconds']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

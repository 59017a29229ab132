"""Issue 22's Done-when on the topic-posts sets: every topic its own cluster in the automatic choice, in 9 of 10 seeds,
with the original-space tests (the default) and without them (the selection as it was before issue 22), in one run.

The sets (``clustering.devtools.synthetic.make_topic_posts``): 8 topics of 400 CLIP-like posts around one common
direction (cosine 0.76 within a topic, 0.59 between topics and to the 1,100 background posts), 5 bursts of 20
near-copies; "side by side" puts the topics in groups of three that share part of their direction, so that UMAP lays
them next to each other. A topic is its own cluster when one cluster holds 80 % of it and is 80 % that topic
(``tests/test_topic_posts.py`` asserts the side-by-side variant).

    python bench/topic_posts.py              # about 10 min on 2 cores
    python bench/topic_posts.py --seeds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"))

from clustering.analysis.cluster.cluster_points import cluster_points
from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.steps import Steps
from clustering.analysis.threads import single_threaded_blas
from clustering.devtools.synthetic import make_topic_posts
from tests.test_topic_posts import VARIANTS, own_clusters


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="seeds per variant (default 10)")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; topics that are their own cluster, of 8")
    print("\n| variant | selection | per seed | seeds with all 8 | seconds per run |\n|---|---|---|---|---|")
    for variant, spec in VARIANTS.items():
        for tests, label in ((False, "without the original-space tests (before issue 22)"), (True, "default")):
            found, seconds = [], []
            for seed in range(args.seeds):
                X, truth = make_topic_posts(seed=seed, **spec)
                config = AnalyzeConfig(input="-", output="-", progress=False, threads=2, original_space_tests=tests)
                start = time.perf_counter()
                with single_threaded_blas():
                    clustering = cluster_points(X, config, Steps())
                seconds.append(time.perf_counter() - start)
                found.append(own_clusters(clustering.results[clustering.selection.index].labels, truth))
            whole = sum(count == 8 for count in found)
            per_seed = " ".join(map(str, found))
            print(f"| {variant} | {label} | {per_seed} | {whole} of {args.seeds} | {sum(seconds) / len(seconds):.1f} |")


if __name__ == "__main__":
    main()

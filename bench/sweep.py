"""Analysis bench: the one-tree sweep against the notebook's refit loop, and the tool's choice against two peers.

All on one synthetic dataset with known labels (:func:`clustering.devtools.synthetic.make_blobs_on_sphere`: 512-D unit
vectors, clusters of skewed sizes in sibling groups, background points, near-duplicate bursts), in one process:

1. Speed and identity: ``hdbscan.HDBSCAN(min_cluster_size=m, min_samples=5).fit(X)`` for m = 2, 7, 12, ... (the
   notebook's loop) against :func:`clustering.analysis.cluster.sweep.sweep` on the same coordinates, in 2-D (the
   notebook's
   UMAP) and in the tool's default cluster space; labels compared setting by setting.
2. Quality, ARI / AMI against the known labels, computed two ways: "all" counts every point, background and
   predicted noise each being one more label (rewards putting background in noise); "fg" only scores points that
   truly belong to a cluster (ignores what happens to the background):
   - the tool: default ``reduce`` + default grid + background test (``noise``) + ``select`` (no peeking at the
     labels);
   - the notebook recipe: 2-D UMAP (cosine, n_neighbors=20, min_dist=0), its sweep, best setting by ARI as if a
     person had picked perfectly;
   - EVoC with default parameters, best layer by ARI (also an oracle choice).

    python bench/sweep.py                       # n = 20,000, hard clusters (about 5-10 min on 2 cores)
    python bench/sweep.py --n 3000              # quick
    python bench/sweep.py --difficulty easy     # the generator's default, well separated clusters
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".numba_cache"))

TIMES: dict[str, float] = {}
DIFFICULTY = {"hard": {"cluster_spread": (0.9, 1.5), "sibling_similarity": 0.7}, "easy": {}}


@contextmanager
def step(name: str):
    start = time.perf_counter()
    yield
    TIMES[name] = time.perf_counter() - start
    print(f"  [{TIMES[name]:7.1f} s] {name}", flush=True)


def ari(truth: np.ndarray, labels: np.ndarray) -> float:
    """ARI over all points (background and noise as one label each): what the oracle choices maximise."""
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(truth, labels)


def quality(truth: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

    fg = truth >= 0
    return {
        "ari_all": adjusted_rand_score(truth, labels),
        "ami_all": adjusted_mutual_info_score(truth, labels),
        "ari_fg": adjusted_rand_score(truth[fg], labels[fg]),
        "ami_fg": adjusted_mutual_info_score(truth[fg], labels[fg]),
        "bg_in_noise": float((labels[~fg] < 0).mean()) if (~fg).any() else float("nan"),
        "noise": float((labels < 0).mean()),
        "clusters": int(labels.max()) + 1 if labels.size else 0,
    }


def refit_loop(X: np.ndarray, sizes: list[int], min_samples: int) -> list[np.ndarray]:
    """The notebook's loop: one full HDBSCAN fit per min_cluster_size."""
    import hdbscan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [hdbscan.HDBSCAN(min_cluster_size=m, min_samples=min_samples).fit(X).labels_ for m in sizes]


def compare(name: str, X: np.ndarray, sizes: list[int], min_samples: int) -> dict:
    from clustering.analysis.cluster.sweep import sweep

    with step(f"{name}: notebook refit loop, {len(sizes)} settings"):
        refits = refit_loop(X, sizes, min_samples)
    with step(f"{name}: one-tree sweep, {len(sizes)} settings"):
        results = sweep(X, sizes, [min_samples], progress=False)
    same = sum(np.array_equal(a, r.labels) for a, r in zip(refits, results, strict=True))
    refit_name, sweep_name = list(TIMES)[-2:]
    return {
        "name": name,
        "refit_s": TIMES[refit_name],
        "sweep_s": TIMES[sweep_name],
        "identical": same,
        "settings": len(sizes),
        "res": results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="points (default 20000)")
    parser.add_argument("--settings", type=int, default=40, help="min_cluster_size values 2, 7, 12, ... (default 40)")
    parser.add_argument("--clusters", type=int, default=30, help="true clusters (default 30)")
    parser.add_argument("--noise", type=float, default=0.25, help="background fraction (default 0.25)")
    parser.add_argument("--bursts", type=int, default=20, help="near-duplicate bursts (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    parser.add_argument(
        "--difficulty",
        choices=tuple(DIFFICULTY),
        default="hard",
        help="hard: looser clusters, closer siblings (cluster_spread 0.9-1.5, sibling_similarity 0.7); easy: the "
        "generator's defaults (default hard)",
    )
    parser.add_argument(
        "--satellite-share",
        type=float,
        default=0.5,
        help="share of the background loosely around clusters; the rest is unrelated to any (default 0.5)",
    )
    parser.add_argument("--no-evoc", action="store_true", help="skip the EVoC peer")
    args = parser.parse_args(argv)

    import umap

    from clustering.analysis.cluster.background import core_distances, drop_background
    from clustering.analysis.cluster.scores import score_setting
    from clustering.analysis.cluster.select import select
    from clustering.analysis.cluster.sweep import sweep
    from clustering.analysis.defaults import DEFAULT_CLUSTER_DIMS, DEFAULT_MAX_NOISE, DEFAULT_SCORE
    from clustering.analysis.grid import parse_grid
    from clustering.analysis.space.reduce import reduce
    from clustering.devtools.synthetic import make_blobs_on_sphere

    sizes = [2 + 5 * i for i in range(args.settings)]
    print(
        f"data: n={args.n}, 512-D, {args.clusters} clusters ({args.difficulty}), {args.noise:.0%} background "
        f"({args.satellite_share:.0%} satellites of clusters), {args.bursts} bursts, seed {args.seed}; "
        f"{os.cpu_count()} CPUs"
    )
    X, truth = make_blobs_on_sphere(
        args.n,
        dim=512,
        n_clusters=args.clusters,
        noise_fraction=args.noise,
        duplicate_bursts=args.bursts,
        seed=args.seed,
        satellite_share=args.satellite_share,
        **DIFFICULTY[args.difficulty],
    )

    print("steps:")
    with step("notebook: UMAP 2-D (cosine, n_neighbors=20, min_dist=0, random_state=42)"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nb_coords = umap.UMAP(
            n_components=2, random_state=42, n_neighbors=20, metric="cosine", min_dist=0, spread=1, n_jobs=-1
        ).fit_transform(X)
    with step(f"tool: reduce (kNN once, UMAP {DEFAULT_CLUSTER_DIMS}-D + 2-D map)"):
        reduction = reduce(X)
    for key, seconds in reduction.timings.items():
        print(f"      {key}: {seconds:.1f} s")

    speed = [compare("2-D (notebook map)", nb_coords, sizes, 5)]
    speed.append(compare(f"{DEFAULT_CLUSTER_DIMS}-D (tool cluster space)", reduction.cluster_coords, sizes, 5))

    grid = parse_grid(None, args.n)
    with step(f"tool: sweep default grid ({len(grid)} settings, min_samples=5)"):
        core = core_distances(reduction.knn.distances)
        hdbscan_results = sweep(reduction.cluster_coords, grid, [5], progress=False)
        tool_results = [drop_background(r, core) for r in hdbscan_results]
    with step(f"tool: metrics for {len(tool_results)} settings (kNN-graph modularity, noise filled)"):
        rows = [
            score_setting(r, reduction.cluster_coords, X, neighbours=reduction.knn.indices, silhouettes=False,
                          hdbscan_labels=h.labels)
            for r, h in zip(tool_results, hdbscan_results, strict=True)
        ]  # fmt: skip
    with step("tool: select"):
        chosen = select(rows)

    evoc_q = None
    if not args.no_evoc:
        import evoc

        with step("EVoC: default parameters (unseeded), all layers"):
            model = evoc.EVoC().fit(X)
        layers = [np.asarray(layer) for layer in model.cluster_layers_]
        best_layer = int(np.argmax([ari(truth, layer) for layer in layers]))
        evoc_q = (best_layer, len(layers), quality(truth, layers[best_layer]))

    # AMI's expected-information term is slow with thousands of clusters: full scores only for the reported rows.
    nb_best = int(np.argmax([ari(truth, r.labels) for r in speed[0]["res"]]))
    tool_best = int(np.argmax([ari(truth, r.labels) for r in tool_results]))
    tool_quality = {i: quality(truth, tool_results[i].labels) for i in {chosen.index, tool_best}}
    nb_quality = quality(truth, speed[0]["res"][nb_best].labels)

    print("\nrefit loop vs one-tree sweep (min_samples=5, min_cluster_size 2, 7, ...):")
    print(f"  {'space':32s} {'refits':>9s} {'sweep':>9s} {'ratio':>7s} {'identical labels':>18s}")
    for s in speed:
        ratio = s["refit_s"] / s["sweep_s"]
        print(
            f"  {s['name']:32s} {s['refit_s']:8.1f}s {s['sweep_s']:8.2f}s {ratio:6.1f}x "
            f"{s['identical']:>9d} of {s['settings']}"
        )

    print("\nquality vs known labels (all: background and noise count as one label each; fg: true cluster members)")
    header = f"  {'method':58s} {'ARI all':>8s} {'AMI all':>8s} {'ARI fg':>7s} {'AMI fg':>7s} {'bg->noise':>9s}"
    print(header + f" {'noise':>6s} {'clusters':>8s}")

    def line(name: str, q: dict) -> None:
        print(
            f"  {name:58s} {q['ari_all']:8.3f} {q['ami_all']:8.3f} {q['ari_fg']:7.3f} {q['ami_fg']:7.3f} "
            f"{q['bg_in_noise']:9.1%} {q['noise']:6.1%} {q['clusters']:8d}"
        )

    c = tool_results[chosen.index]
    line(f"tool: select() -> mcs={c.min_cluster_size} (rule, no labels)", tool_quality[chosen.index])
    t = tool_results[tool_best]
    line(f"tool space, oracle best mcs={t.min_cluster_size}", tool_quality[tool_best])
    line(f"notebook 2-D UMAP, oracle best mcs={sizes[nb_best]}", nb_quality)
    if evoc_q:
        line(f"EVoC default, oracle best layer {evoc_q[0]} of {evoc_q[1]}", evoc_q[2])
    print(f"\n  rule: {chosen.rule} (max_noise default {DEFAULT_MAX_NOISE:.0%}, score {DEFAULT_SCORE})")
    print(f"  reason: {chosen.reason}")
    gap = tool_quality[tool_best]["ari_all"] - tool_quality[chosen.index]["ari_all"]
    print(f"  gap to the best setting in the tool's own sweep: ARI {gap:.3f}")

    print("\nper-step time:")
    for name, seconds in TIMES.items():
        print(f"  {seconds:8.1f} s  {name}")


if __name__ == "__main__":
    main()

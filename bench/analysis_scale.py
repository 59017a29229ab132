"""The analysis at scale: against the notebook recipe at 40,000 points, then ``jobs/analyze.py`` at 50k-200k rows.

1. At ``--compare`` points (default 40,000; issue 13's CLIP-like set: 512-D, 200 topics, a quarter background, 5 %
   of the images in repost bursts), in one run, each side in a fresh process as a user would run it (numba's
   compile cache kept, pynndescent's first-call compile paid by both):

   - the tool: :func:`clustering.analysis.cluster.cluster_points.cluster_points` with the job's defaults (kNN graph,
     both layouts,
     the sweep, the background test, the scores, the choice);
   - the notebook recipe (the seed notebooks): a 2-D UMAP (cosine, n_neighbors 20, min_dist 0, seeded), one
     ``hdbscan.HDBSCAN(min_cluster_size=m, min_samples=5)`` refit for m = 2, 7, ..., 67, and one exact silhouette of
     the picked setting. Its setting is picked with the true labels (an oracle: a person picking perfectly).

   It prints both times, the tool's time as a share of the whole recipe and of its UMAP + refits alone (issue 13:
   at most 0.5x) and both qualities: ARI over every point (background and noise one label each) and over true topic
   members only.
2. ``jobs/analyze.py`` with defaults on shard folders of ``--sizes`` rows (bench/scale_shards.py), each run in its own
   process: wall time, the peak RSS of its whole process tree (sampled every 0.2 s from /proc, each process's RSS
   summed, so pages shared between processes count twice) and the step times from its ``metrics.json``; then its
   ``explorer.html`` is opened in headless Chromium: when the first frame was drawn, console errors, a screenshot.
   Issue 13 at 200,000 rows: at most 600 s, 6 GiB and a first frame within 15 s.

The load average is printed before and after each run: the development machine is shared.

    python bench/analysis_scale.py                          # both parts (about 25 min on 2 cores)
    python bench/analysis_scale.py --sizes                  # only the comparison
    python bench/analysis_scale.py --compare 0 --sizes 200000 --keep /tmp/scale   # one job run, shards kept
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

NOTEBOOK_SIZES = tuple(range(2, 68, 5))  # the seed notebook's loop: 14 refits
SAMPLE_SECONDS = 0.2


# ------------------------------------------------------------------------------------- 1. against the notebook
def dataset(n: int):
    """Issue 13's CLIP-like set at ``n`` points: ``(X, truth)``."""
    from scale_shards import BACKGROUND, BURST_SHARE, MEAN_BURST, TOPICS

    from clustering.devtools.synthetic import make_blobs_on_sphere

    bursts = round(n * BURST_SHARE / MEAN_BURST)
    return make_blobs_on_sphere(n, n_clusters=TOPICS, noise_fraction=BACKGROUND, duplicate_bursts=bursts, seed=0)


def quality(truth, labels) -> dict:
    from sklearn.metrics import adjusted_rand_score

    members = truth >= 0
    return {
        "ari_all": adjusted_rand_score(truth, labels),
        "ari_members": adjusted_rand_score(truth[members], labels[members]),
        "clusters": int(labels.max()) + 1,
        "noise": float((labels < 0).mean()),
    }


def run_tool(n: int) -> dict:
    """The Analyze job's compute on the distinct images, with its defaults."""
    import umap  # noqa: F401  imported before the clock, as the notebook side does

    from clustering.analysis.cluster.cluster_points import cluster_points
    from clustering.analysis.options import AnalyzeConfig
    from clustering.analysis.steps import Steps

    X, truth = dataset(n)
    start = time.perf_counter()
    steps = Steps()
    clustering = cluster_points(X, AnalyzeConfig(input="-", output="-", progress=False), steps)
    seconds = time.perf_counter() - start
    labels = clustering.results[clustering.selection.index].labels
    parts = {k: round(v, 1) for k, v in steps.timings.items()}
    return {"seconds": seconds, "parts": parts, **quality(truth, labels)}


def run_notebook(n: int) -> dict:
    """The seed notebooks' recipe: 2-D UMAP, one HDBSCAN refit per min_cluster_size, one silhouette."""
    import warnings

    import hdbscan
    import umap
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    X, truth = dataset(n)
    parts = {}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = umap.UMAP(n_components=2, random_state=42, n_neighbors=20, metric="cosine", min_dist=0, n_jobs=-1)
        coords = model.fit_transform(X)
        parts["umap"] = time.perf_counter() - start
        fits = [hdbscan.HDBSCAN(min_cluster_size=m, min_samples=5).fit(coords).labels_ for m in NOTEBOOK_SIZES]
    parts["refits"] = time.perf_counter() - start - parts["umap"]
    best = max(fits, key=lambda labels: adjusted_rand_score(truth, labels))  # the oracle's pick
    keep = best >= 0
    silhouette_score(coords[keep], best[keep])
    seconds = time.perf_counter() - start
    parts["silhouette"] = seconds - parts["umap"] - parts["refits"]
    return {"seconds": seconds, "parts": {k: round(v, 1) for k, v in parts.items()}, **quality(truth, best)}


def in_fresh_process(side: str, n: int) -> dict:
    """Run one side in its own interpreter and return what it printed (one JSON line)."""
    done = subprocess.run(
        [sys.executable, __file__, "--side", side, "--compare", str(n)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(n: int) -> None:
    print(f"\n## {n:,} points: the whole analysis against the notebook recipe (load {_load()})", flush=True)
    tool = in_fresh_process("tool", n)
    notebook = in_fresh_process("notebook", n)
    print("| method | seconds | ARI (all points) | ARI (members) | clusters | noise | parts |")
    print("|---|---|---|---|---|---|---|")
    for name, side in (("tool: defaults", tool), ("notebook recipe (best setting by truth)", notebook)):
        print(
            f"| {name} | {side['seconds']:.1f} | {side['ari_all']:.3f} | {side['ari_members']:.3f} | "
            f"{side['clusters']} | {side['noise']:.0%} | {', '.join(f'{k} {v}' for k, v in side['parts'].items())} |"
        )
    umap_and_refits = notebook["parts"]["umap"] + notebook["parts"]["refits"]
    print(
        f"\ntool / notebook recipe (UMAP + refits + the silhouette of the picked setting): "
        f"**{tool['seconds'] / notebook['seconds']:.2f}x**; tool / notebook UMAP + refit sweep alone "
        f"({umap_and_refits:.1f} s): **{tool['seconds'] / umap_and_refits:.2f}x** (issue 13: <= 0.5x); load {_load()}"
    )


# -------------------------------------------------------------------------------------------- 2. the job itself
def tree_rss(pid: int) -> int:
    """Summed resident set size, in bytes, of ``pid`` and every process below it."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(parents.get(current, ()))
        try:
            with open(f"/proc/{current}/status") as status:
                total += next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total


def run_job(shards: Path, output: Path) -> dict:
    """``jobs/analyze.py`` with defaults: wall seconds, peak tree RSS and its step times."""
    command = [sys.executable, str(ROOT / "jobs" / "analyze.py"), "--input", str(shards), "--output", str(output),
               "--overwrite", "--no-progress"]  # fmt: skip
    start = time.perf_counter()
    with open(output.parent / f"{output.name}.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(SAMPLE_SECONDS)
    seconds = time.perf_counter() - start
    if process.returncode:
        raise RuntimeError(f"jobs/analyze.py failed ({process.returncode}); see {log.name}")
    metrics = json.loads((output / "metrics.json").read_text())
    return {"seconds": seconds, "peak": peak, "timings": metrics["timings"], "layout": metrics["params"],
            "distinct": metrics["n_unique"]}  # fmt: skip


def scale(sizes: list[int], keep: Path | None) -> None:
    from scale_shards import make_scale_shards

    root = keep or Path(tempfile.mkdtemp(prefix="analysis-scale-"))
    print(f"\n## jobs/analyze.py with defaults (shards and outputs under {root})", flush=True)
    print("| rows | distinct | wall s | peak RSS (tree) | load before / after | slowest steps |")
    print("|---|---|---|---|---|---|")
    for rows in sizes:
        shards = root / f"shards-{rows}"
        if not (shards / "part-00000.parquet").exists():  # kept shards are reused
            make_scale_shards(shards, rows)
        before = _load()
        found = run_job(shards, root / f"analysis-{rows}")
        steps = sorted(((v, k) for k, v in found["timings"].items() if k != "total" and ":" not in k), reverse=True)
        slowest = ", ".join(f"{k} {v:.0f} s" for v, k in steps[:5])
        print(
            f"| {rows:,} | {found['distinct']:,} | {found['seconds']:.0f} | {found['peak'] / 2**30:.2f} GiB | "
            f"{before} / {_load()} | {slowest} |",
            flush=True,
        )
        reduction = found["layout"]["reduction"]
        print(f"  layouts: {reduction['layout']}; threads {reduction['threads']}; {found['layout']['backend']}")
        page = open_explorer(root / f"analysis-{rows}" / "explorer.html")
        print(
            f"  explorer.html ({page['mib']:.1f} MiB): first frame {page['first_frame']:.2f} s after navigation in "
            f"headless Chromium, {page['drawn']:,} points drawn at rest, {page['errors']} console/page errors; "
            f"screenshot {page['shot']}",
            flush=True,
        )


def open_explorer(path: Path) -> dict:
    """Open a job's explorer page in headless Chromium: when its first frame was drawn, errors, a screenshot."""
    sys.path.insert(0, str(ROOT))  # the browser helper lives with the tests
    from tests.browser import launch_chromium, open_page

    with launch_chromium() as browser:
        page, log = open_page(browser, path, ready_timeout_ms=120_000)
        try:
            timings = page.evaluate("window.explorer.timings")
            drawn = page.evaluate("window.explorer.counts")["rendered"]
            shot = path.with_suffix(".png")
            page.screenshot(path=str(shot))
        finally:
            page.context.close()
    errors = len(log.console_errors) + len(log.page_errors)
    mib = path.stat().st_size / 2**20
    return {"first_frame": timings["firstDraw"] / 1000, "drawn": drawn, "shot": shot, "mib": mib, "errors": errors}


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", type=int, default=40_000, help="points of the comparison (0: skip it)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[50_000, 100_000, 200_000], help="job rows")
    parser.add_argument("--keep", type=Path, help="folder for the shards and outputs (kept; shards reused)")
    parser.add_argument("--side", choices=("tool", "notebook"), help=argparse.SUPPRESS)  # one side, in a child
    args = parser.parse_args(argv)
    if args.side:
        print(json.dumps((run_tool if args.side == "tool" else run_notebook)(args.compare)))
        return
    print(f"{os.cpu_count()} CPUs; load average {_load()}")
    if args.compare:
        compare(args.compare)
    if args.sizes:
        scale(args.sizes, args.keep)


if __name__ == "__main__":
    main()

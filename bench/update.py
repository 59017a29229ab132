"""Updating an analysis against analysing everything again (issue 25: an update of a 50,000-row analysis with 10,000
new posts takes at most 15 % of the full re-analysis), measured in one run.

1. Shards: ``--rows + --new-rows`` rows of bench/scale_shards.py's CLIP-like set (512-D, 200 topics, a quarter
   background, repost bursts, exact reposts, texts, dates, accounts, thumbnails), split by date into the earliest
   ``--rows`` and the latest ``--new-rows`` rows. ``--new-topics`` topics (default 4, drawn with the seed) are moved
   whole (their bursts and reposts too) into the later batch, dated after every earlier row: topics that are new in
   the collection, which the update should find as new clusters. A third folder holds all rows, for the re-analysis.
2. numba's compile cache is warmed first (``python -m clustering.devtools.warm_cache``, then an untimed small analysis
   and update), so every timed run starts warm.
3. Three runs of ``jobs/analyze.py`` with the same options (every output written, the explorer included), each in a
   fresh process as a user runs it: the first analysis of the earlier rows (the update's base), the update with the
   later rows (``--update``), the full re-analysis of all rows. Each is timed from the command line (wall) and by the
   job itself (``metrics.json`` ``timings.total``).

It prints the ratio update / re-analysis for both clocks against the goal (<= 0.15), the update's steps, and how the
update's clusters agree with the re-analysis's: ARI over the rows that are members (non-noise) in both, joined on
``id``, and the new clusters (with how many rows of the new topics they took). The load average is printed before and
after each run: the development machine is shared.

    python bench/update.py                                  # 50,000 + 10,000 rows (12-15 min on 2 busy cores)
    python bench/update.py --rows 5000 --new-rows 1000      # a smoke test (about 2 min after the warm-up)
    python bench/update.py --keep /tmp/update               # shards and outputs kept there
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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from clustering import io, schema  # noqa: E402  (after the checkout is on the path)

GOAL = 0.15
ROWS_PER_SHARD = 10_000  # as bench/scale_shards.py writes them
OPTIONS = ("--overwrite", "--no-progress")  # the same for the three runs
WARM_ROWS, WARM_NEW_ROWS = 3_000, 600
DATE = "created_at"  # the date column bench/scale_shards.py writes (ISO, "Z")


# ------------------------------------------------------------------------------------------------------- shards
def split_shards(root: Path, rows: int, new_rows: int, *, new_topics: int, seed: int) -> dict:
    """Write ``root/earlier``, ``root/later`` and ``root/all`` (shard folders) and return the truth by id.

    Returns ``{"topic": {id: true topic}, "new_topics": [...], "new_topic_rows": int, "cutoff": ISO date}``.
    """
    from scale_shards import DAYS, make_scale_shards

    generated = root / "generated"
    made = make_scale_shards(generated, rows + new_rows, seed=seed)
    table = io.read_shards(str(generated))
    labels = np.asarray(made["labels"])
    rng = np.random.default_rng(seed)
    topics, sizes = np.unique(labels[labels >= 0], return_counts=True)
    moved = _pick_new_topics(topics, sizes, rng, count=new_topics, room=new_rows // 2)
    later = np.isin(labels, moved)
    dates = np.array([text[:-1] for text in table[DATE].to_pylist()], dtype="datetime64[s]")  # "...Z"
    others = np.flatnonzero(~later)
    latest = others[np.argsort(dates[others], kind="stable")[len(others) - (new_rows - int(later.sum())) :]]
    later[latest] = True
    cutoff = dates[latest].min() if len(latest) else dates.max()
    end = np.datetime64("2025-03-01T00:00:00", "s") + np.timedelta64(DAYS * 86_400, "s")
    span = max(int((end - cutoff) / np.timedelta64(1, "s")), 1)
    moved_rows = np.flatnonzero(np.isin(labels, moved))
    dates[moved_rows] = cutoff + rng.integers(1, span + 1, len(moved_rows)).astype("timedelta64[s]")
    text = pa.array(np.char.add(dates.astype(str), "Z"), pa.string())
    table = table.set_column(table.schema.get_field_index(DATE), table.schema.field(DATE), text)  # metadata kept
    by_date = np.argsort(dates, kind="stable")
    for name, chosen in (("earlier", ~later), ("later", later), ("all", np.ones(len(later), bool))):
        _write_folder(root / name, table.take(by_date[chosen[by_date]]))
    ids = table[schema.ID].to_pylist()
    return {
        "topic": dict(zip(ids, labels.tolist(), strict=True)),
        "new_topics": moved.tolist(),
        "new_topic_rows": len(moved_rows),
        "cutoff": f"{cutoff}Z",
    }


def _pick_new_topics(topics: np.ndarray, sizes: np.ndarray, rng, *, count: int, room: int) -> np.ndarray:
    """``count`` random topics whose rows together fit in ``room`` (fewer when they do not)."""
    picked, held = [], 0
    for i in rng.permutation(len(topics)):
        if len(picked) == count:
            break
        if held + sizes[i] <= room:
            picked.append(topics[i])
            held += sizes[i]
    return np.array(sorted(picked), dtype=np.int64)


def _write_folder(folder: Path, table: pa.Table) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, start in enumerate(range(0, table.num_rows, ROWS_PER_SHARD)):
        pq.write_table(table.slice(start, ROWS_PER_SHARD), folder / io.shard_name(index))


# --------------------------------------------------------------------------------------------------------- runs
def warm(root: Path) -> str:
    """Warm numba's cache: the warm-up module, then a small analysis and update (untimed). Returns its summary."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "clustering.devtools.warm_cache"], cwd=ROOT, capture_output=True,
                          text=True, check=True)  # fmt: skip
    small = root / "warm"
    split_shards(small, WARM_ROWS, WARM_NEW_ROWS, new_topics=2, seed=1)
    run_job(small / "earlier", small / "analysis")
    run_job(small / "later", small / "update", update=small / "analysis")
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "warm_cache: (no output)"
    seconds = time.perf_counter() - start
    return f"{summary}; then a {WARM_ROWS:,} + {WARM_NEW_ROWS:,}-row analysis and update; {seconds:.0f} s in all"


def run_job(shards: Path, output: Path, *, update: Path | None = None) -> dict:
    """``jobs/analyze.py`` in a fresh process: wall seconds, load before and after, and its ``metrics.json``."""
    command = [sys.executable, str(ROOT / "jobs" / "analyze.py"), "--input", str(shards), "--output", str(output),
               *OPTIONS, *(("--update", str(update)) if update else ())]  # fmt: skip
    before = _load()
    start = time.perf_counter()
    with open(output.parent / f"{output.name}.log", "w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    seconds = time.perf_counter() - start
    if code:
        raise RuntimeError(f"{' '.join(command)} failed ({code}); see {log.name}")
    metrics = json.loads((output / schema.METRICS_JSON).read_text())
    return {"wall": seconds, "total": metrics["timings"]["total"], "metrics": metrics, "load": f"{before} / {_load()}"}


# ------------------------------------------------------------------------------------------------------ compare
def agreement(update: Path, full: Path, truth: dict) -> dict:
    """ARI of the update's ``cluster`` against the re-analysis's over rows that are members in both (joined on id),
    and where the rows of the new topics went."""
    from sklearn.metrics import adjusted_rand_score

    columns = [schema.ID, schema.CLUSTER]
    mine = pq.read_table(update / schema.ASSIGNMENTS, columns=[*columns, "label_source", "batch"])
    theirs = pq.read_table(full / schema.ASSIGNMENTS, columns=columns).rename_columns([schema.ID, "full"])
    joined = mine.join(theirs, schema.ID)
    a = joined[schema.CLUSTER].to_numpy()
    b = joined["full"].to_numpy()
    both = (a >= 0) & (b >= 0)
    ids = joined[schema.ID].to_pylist()
    topic = np.array([truth["topic"][i] for i in ids])
    new_topic = np.isin(topic, truth["new_topics"])
    source = joined["label_source"].to_numpy(zero_copy_only=False)
    later = pc.greater(joined["batch"], 0).to_numpy(zero_copy_only=False)
    member = topic >= 0
    return {
        "rows": joined.num_rows,
        "members_both": int(both.sum()),
        "ari_members": adjusted_rand_score(a[both], b[both]),
        "ari_truth_update": adjusted_rand_score(topic[member & (a >= 0)], a[member & (a >= 0)]),
        "ari_truth_full": adjusted_rand_score(topic[member & (b >= 0)], b[member & (b >= 0)]),
        "new_topic_rows": int(new_topic.sum()),
        "new_topic_in_new_clusters": int((new_topic & (source == "new_cluster")).sum()),
        "later_rows": int(later.sum()),
        "later_noise": int((later & (a < 0)).sum()),
        "later_noise_full": int((later & (b < 0)).sum()),
        "old_topic_later_in_new_clusters": int((later & ~new_topic & (source == "new_cluster")).sum()),
    }


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000, help="rows of the first analysis (default 50000)")
    parser.add_argument("--new-rows", type=int, default=10_000, help="rows the update adds (default 10000)")
    parser.add_argument("--new-topics", type=int, default=4, help="topics only in the later rows (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    parser.add_argument("--keep", type=Path, help="folder for the shards and outputs (kept)")
    parser.add_argument("--no-warm", action="store_true", help="skip warming numba's cache (it is already warm)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.new_rows < 1:
        parser.error("--rows and --new-rows must be positive")
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-update-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs; load average {_load()}; shards and outputs under {root}", flush=True)
    if args.no_warm:
        print("numba cache: not warmed here (--no-warm)")
    else:
        print(f"numba cache warmed before timing: {warm(root)}", flush=True)
    truth = split_shards(root, args.rows, args.new_rows, new_topics=args.new_topics, seed=args.seed)
    print(
        f"shards: {args.rows:,} earlier rows and {args.new_rows:,} later rows (split at {truth['cutoff']}); "
        f"{len(truth['new_topics'])} topics only in the later rows ({truth['new_topic_rows']:,} rows: topics "
        f"{', '.join(map(str, truth['new_topics']))})",
        flush=True,
    )
    runs = {}
    for name, shards, base in (("first analysis", "earlier", None), ("update", "later", "first analysis"),
                               ("full re-analysis", "all", None)):  # fmt: skip
        output = root / name.replace(" ", "-")
        runs[name] = run_job(root / shards, output, update=runs[base]["output"] if base else None)
        runs[name]["output"] = output
        print(f"  {name}: {runs[name]['wall']:.1f} s wall (load {runs[name]['load']})", flush=True)

    total = args.rows + args.new_rows
    print("\n| run | rows read | wall s (command line) | job total s (metrics.json) | load before / after |")
    print("|---|---|---|---|---|")
    for name, rows in (("first analysis", args.rows), ("update", total), ("full re-analysis", total)):
        run = runs[name]
        print(f"| {name} | {rows:,} | {run['wall']:.1f} | {run['total']:.1f} | {run['load']} |")
    update, full = runs["update"], runs["full re-analysis"]
    for clock, key in (("wall (command line)", "wall"), ("job total (metrics.json)", "total")):
        ratio = update[key] / full[key]
        verdict = "meets" if ratio <= GOAL else "misses"
        print(f"update / full re-analysis, {clock}: **{ratio:.3f}** ({verdict} the goal <= {GOAL})")

    timings = update["metrics"]["timings"]
    print(f"\nupdate's steps (metrics.json timings, s; total {timings['total']:.1f}; start-up and imports "
          f"{update['wall'] - timings['total']:.1f} s outside it):")  # fmt: skip
    print("| step | update s | full re-analysis s |")
    print("|---|---|---|")
    full_timings = full["metrics"]["timings"]
    for step in dict.fromkeys([*timings, *full_timings]):
        if step != "total":
            print(f"| {step} | {_seconds(timings, step)} | {_seconds(full_timings, step)} |")

    found = agreement(update["output"], full["output"], truth)
    params = update["metrics"].get("params", {}).get("update", {})
    new_clusters = params.get("new_clusters", [])
    print(
        f"\nupdate: {params.get('new_images', '?'):,} new images: {params.get('placed', '?'):,} placed in earlier "
        f"clusters, {params.get('noise_by_vote', '?'):,} noise by the vote, {params.get('unplaced', '?'):,} clustered "
        f"among themselves into {len(new_clusters)} new clusters"
    )
    print(
        f"ARI of the update's clusters against the re-analysis's over the {found['members_both']:,} rows that are "
        f"members in both (of {found['rows']:,}): **{found['ari_members']:.3f}**; against the true topics (members): "
        f"update {found['ari_truth_update']:.3f}, re-analysis {found['ari_truth_full']:.3f}"
    )
    print(
        f"new topics: {found['new_topic_in_new_clusters']:,} of their {found['new_topic_rows']:,} rows in new "
        f"clusters; later rows of earlier topics or background in new clusters: "
        f"{found['old_topic_later_in_new_clusters']:,}; later rows left noise: {found['later_noise']:,} of "
        f"{found['later_rows']:,} (re-analysis: {found['later_noise_full']:,}); clusters: "
        f"{update['metrics'].get('n_clusters', '?')} (update), {full['metrics'].get('n_clusters', '?')} (re-analysis); "
        f"load {_load()}"
    )


def _seconds(timings: dict, step: str) -> str:
    return f"{timings[step]:.1f}" if step in timings else "-"


if __name__ == "__main__":
    main()

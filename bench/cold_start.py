"""Cold start (issue 27): the first ``jobs/analyze.py`` run on a fresh clone against the second, without and with the
warm-up that ``make``'s setup runs (``python -m clustering.devtools.warm_cache``).

Each scenario gets a fresh ``git clone`` of this checkout's HEAD (committed code only) and an empty
``NUMBA_CACHE_DIR``, as a new machine, CI runner or laptop has after ``make test``'s setup; every command runs in the
clone with ``PYTHONPATH`` pointing at it and this checkout's interpreter (its virtualenv's libraries, already
installed: what the setup's ``pip install`` leaves). numba keys its cache by the source file's folder, so nothing
compiled for this checkout or another clone is reused.

1. no warm-up: the job on ``--points`` CLIP-like points (``make_blobs_on_sphere``, 3 % exact reposts, two shards),
   then the same job again: seconds from command to exit, as a user waits, and first / second;
2. after the warm-up: the warm-up (timed), then the same two runs. Issue 27 asks first / second <= 1.3 here.
   ``--other-clone``: also the two runs in a clone whose cache another clone warmed, as a ``ray job submit`` job
   whose code Ray unpacked in a folder of its own finds a node warmed from a checkout elsewhere (docs/cluster.md);
3. ``--pynndescent``: the first pynndescent kNN graph in a fresh process (the path above 80,000 points), after no
   warm-up, the default warm-up and ``warm_cache --pynndescent``: what numba's cache can save of its compile.

Also printed: the CPU seconds of each command's process tree (less swayed than wall time by other work on a shared
machine), the entries each command wrote to numba's cache (0 after the warm-up: nothing left to compile that numba
can cache) and the 1-minute load average around each run (compare the runs of one invocation).

    python bench/cold_start.py                         # about 5 min on 2 cores
    python bench/cold_start.py --repeats 3 --other-clone --pynndescent
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPOSTS = 0.03  # share of extra rows repeating an image, as bench/scale_shards.py's sets have
_PYNNDESCENT_PROBE = (
    "from clustering.analysis.space.knn_graph import knn_graph; "
    "from clustering.devtools.synthetic import make_blobs_on_sphere; "
    "X, _ = make_blobs_on_sphere(2000, seed=0); knn_graph(X, n_neighbors=15, method='pynndescent', seed=42)"
)


@dataclass(frozen=True)
class Timed:
    """One command's wall seconds, the CPU seconds of its process tree, the numba cache entries it wrote (one data
    file per compiled signature and CPU) and the 1-minute load average before and after."""

    seconds: float
    cpu: float
    new_entries: int
    load: tuple[float, float]

    def cell(self) -> str:
        return (
            f"{self.seconds:.1f} s, CPU {self.cpu:.1f} s (+{self.new_entries} cache entries, "
            f"load {self.load[0]:.1f}/{self.load[1]:.1f})"
        )


class Clone:
    """A fresh clone of HEAD with its own empty numba cache; runs commands in it."""

    def __init__(self, root: Path, name: str, *, cache: Path | None = None) -> None:
        self.path = root / name
        subprocess.run(["git", "clone", "-q", str(ROOT), str(self.path)], check=True)
        self.cache = cache or root / f"{name}-numba-cache"
        self.cache.mkdir(exist_ok=True)
        self.logs = root / f"{name}-logs"
        self.logs.mkdir()
        self.env = {
            **os.environ,
            "NUMBA_CACHE_DIR": str(self.cache),
            "PYTHONPATH": str(self.path),
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def run(self, label: str, *args: str) -> Timed:
        """Run ``python ARGS`` in the clone, timed from start to exit; its output goes to a log file."""
        before, load, cpu = _cache_entries(self.cache), os.getloadavg()[0], _children_cpu()
        log = self.logs / f"{label}.log"
        start = time.perf_counter()
        with log.open("w") as out:
            done = subprocess.run([sys.executable, *args], cwd=self.path, env=self.env, stdout=out, stderr=out)
        seconds = time.perf_counter() - start
        if done.returncode:
            sys.exit(f"{label} failed (exit status {done.returncode}); see {log}:\n{log.read_text()[-3000:]}")
        added = _cache_entries(self.cache) - before
        return Timed(seconds, _children_cpu() - cpu, added, (load, os.getloadavg()[0]))

    def analyze(self, label: str, shards: Path) -> Timed:
        output = self.path.parent / f"{self.path.name}-{label}"
        return self.run(label, "jobs/analyze.py", "--input", str(shards), "--output", str(output))


SCENARIOS = {
    "no warm-up": "none",
    "after warm-up": "here",
    "after warm-up in another clone (a per-job folder)": "elsewhere",
}


def scenario(root: Path, shards: Path, name: str, *, warm: str) -> dict[str, Timed]:
    """First and second job run in a fresh clone: with an empty cache (``warm`` "none"), after the warm-up in the
    same clone ("here"), or in the cache another clone warmed ("elsewhere": a job whose code Ray unpacked in a
    folder of its own, on a node warmed from a checkout elsewhere)."""
    runs = {}
    if warm == "elsewhere":
        warmed = Clone(root, f"{name}-warmed")
        runs["warm-up"] = warmed.run("warm-up", "-m", "clustering.devtools.warm_cache")
        clone = Clone(root, name, cache=warmed.cache)
    else:
        clone = Clone(root, name)
        if warm == "here":
            runs["warm-up"] = clone.run("warm-up", "-m", "clustering.devtools.warm_cache")
    runs["first"] = clone.analyze("first", shards)
    runs["second"] = clone.analyze("second", shards)
    return runs


def pynndescent_section(root: Path) -> None:
    """The first pynndescent kNN graph in a fresh process after each kind of warm-up."""
    print("\n## first pynndescent kNN graph in a fresh process (2,000 points; compile dominates)")
    print("| cache before | warm-up | process |")
    print("|---|---|---|")
    for name, warm_args in (("empty", None), ("default warm-up", []), ("warm-up --pynndescent", ["--pynndescent"])):
        clone = Clone(root, "pynndescent-" + name.split()[0] + str(len(warm_args or [])))
        warmed = (
            clone.run("warm-up", "-m", "clustering.devtools.warm_cache", *warm_args) if warm_args is not None else None
        )
        probe = clone.run("probe", "-c", _PYNNDESCENT_PROBE)
        print(f"| {name} | {warmed.cell() if warmed else '-'} | {probe.cell()} |", flush=True)


def _cache_entries(folder: Path) -> int:
    """numba cache entries under ``folder``: its data files, one per compiled signature (and CPU) of a kernel."""
    return sum(1 for _ in folder.rglob("*.nbc"))


def _children_cpu() -> float:
    """User + system CPU seconds of the child processes waited for so far (a job's map process included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=20_000, help="distinct images in the set (default 20000)")
    parser.add_argument("--repeats", type=int, default=1, help="times to run both scenarios (default 1)")
    parser.add_argument("--other-clone", action="store_true", help="also: the cache warmed from another clone")
    parser.add_argument("--pynndescent", action="store_true", help="also measure pynndescent's first graph")
    parser.add_argument("--keep", type=Path, help="folder to keep the clones, caches, logs and outputs in")
    args = parser.parse_args(argv)
    from clustering.devtools.warm_cache import write_shards

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory(prefix="clipcluster-cold-") as scratch:
        root = args.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        shards = root / "shards"
        write_shards(shards, args.points, reposts=round(args.points * REPOSTS))
        print(f"HEAD {head.strip()}, {os.cpu_count()} CPUs, {args.points:,} points (+{REPOSTS:.0%} exact reposts)")
        print("| scenario | warm-up | first run | second run | first / second (wall, CPU) |")
        print("|---|---|---|---|---|")
        scenarios = {k: v for k, v in SCENARIOS.items() if v != "elsewhere" or args.other_clone}
        for repeat in range(args.repeats):
            for name, warm in scenarios.items():
                runs = scenario(root, shards, f"{repeat}-{warm}", warm=warm)
                first, second = runs["first"], runs["second"]
                ratios = f"{first.seconds / second.seconds:.2f}, {first.cpu / second.cpu:.2f}"
                warmed = runs["warm-up"].cell() if "warm-up" in runs else "-"
                print(f"| {name} | {warmed} | {first.cell()} | {second.cell()} | {ratios} |")
                sys.stdout.flush()
        if args.pynndescent:
            pynndescent_section(root)


if __name__ == "__main__":
    main()

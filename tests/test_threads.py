"""The same input and seed give the same outputs at any thread count (clustering/analysis/threads.py).

Exact comparisons on purpose: on one machine nothing may differ, not even the last bit of a map coordinate. The data
is large enough for the kNN graph to span several product tiles, and the map is laid out in a second process at two
threads and in this one at one thread, as at 20,000 points and more.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from clustering.analysis.space import exact_knn
from clustering.analysis.space import reduce as reduce_module
from tests.test_shards import blobs, write_shards

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
N = 1_500
# metrics.json keys (and columns ending in _seconds) that record how the run went rather than what it found.
RUN_RECORD = {"timings", "threads", "layout", "output", "created"}  # created: when a batch was analysed


def load_job():
    spec = importlib.util.spec_from_file_location("analyze_job", REPO / "jobs" / "analyze.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request):
    monkeypatch = pytest.MonkeyPatch()
    request.addfinalizer(monkeypatch.undo)
    monkeypatch.setattr(reduce_module, "BESIDE_MIN_POINTS", 0)  # the map in a second process whenever 2+ threads
    monkeypatch.setattr(exact_knn, "_TILE", 128)  # 12 tiles a side: the threads really share the products out
    tmp = tmp_path_factory.mktemp("threads")
    X, labels = blobs(N, dim=48, clusters=6, spread=0.35, seed=11)
    shards = tmp / "shards"
    copies = {N + i: 7 * i for i in range(40)}  # exact reposts, for the repost groups
    row_labels = [*labels, *(labels[source] for source in copies.values())]
    texts = [f"#topic{label} view {i % 13}" for i, label in enumerate(row_labels)]
    write_shards(shards, X, labels=labels, texts=texts, duplicates_of=copies)
    outputs = {}
    for count in (1, 2):
        out = tmp / f"threads-{count}"
        args = ["--input", str(shards), "--output", str(out), "--threads", str(count), "--no-explorer"]
        assert load_job().main(args) == 0
        outputs[count] = out
    return outputs


def without_run_record(value):
    if isinstance(value, dict):
        return {
            k: without_run_record(v) for k, v in value.items() if k not in RUN_RECORD and not k.endswith("_seconds")
        }
    if isinstance(value, list):
        return [without_run_record(v) for v in value]
    return value


def test_the_two_runs_really_used_one_and_two_threads(runs):
    documents = {count: json.loads((out / "metrics.json").read_text()) for count, out in runs.items()}
    layouts = {count: document["params"]["reduction"] for count, document in documents.items()}
    assert layouts[1]["threads"] == 1 and "second process" not in layouts[1]["layout"]
    assert layouts[2]["threads"] == 2 and "second process" in layouts[2]["layout"]


def test_assignments_and_map_are_identical_at_one_and_two_threads(runs):
    one, two = (pq.read_table(runs[count] / "assignments.parquet") for count in (1, 2))
    assert one.equals(two)
    coordinates = one.select(["x", "y"]).to_pandas()
    assert np.isfinite(coordinates.to_numpy()).all() and coordinates["x"].nunique() > N // 2


@pytest.mark.parametrize("name", ["clusters.csv", "sweep.csv", "repost_groups.csv"])
def test_tables_are_identical_at_one_and_two_threads(runs, name):
    one, two = (pd.read_csv(runs[count] / name) for count in (1, 2))
    timings = [c for c in one.columns if c.endswith("_seconds")]
    pd.testing.assert_frame_equal(one.drop(columns=timings), two.drop(columns=timings), check_exact=True)
    if name == "clusters.csv":
        assert (one["level"] == "clusters").sum() >= 4


def test_metrics_are_identical_at_one_and_two_threads_but_for_the_run_record(runs):
    one, two = (json.loads((runs[count] / "metrics.json").read_text()) for count in (1, 2))
    assert without_run_record(one) == without_run_record(two)


def test_single_threaded_blas_reaches_scipys_own_openblas_in_a_fresh_process():
    """scipy ships an OpenBLAS of its own, loaded only when scipy.linalg is first imported; imported inside the block,
    it would run on every core there (found by bench/update.py's profile)."""
    code = (
        "import numpy\nfrom threadpoolctl import threadpool_info\n"
        "from clustering.analysis.threads import single_threaded_blas\n"
        "with single_threaded_blas():\n"
        "    import scipy.linalg\n"
        "    print(sorted((i['filepath'].rsplit('/', 1)[-1], i['num_threads']) for i in threadpool_info()"
        " if i['user_api'] == 'blas'))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    libraries = ast.literal_eval(found.strip())
    assert any("scipy" in name for name, _ in libraries) and all(threads == 1 for _, threads in libraries), libraries

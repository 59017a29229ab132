"""The Dataset API: a researcher's own Ray Data pipeline through ``embed_images``, written with the researcher's sink;
and the ingest job killed with SIGKILL mid-run, then resumed by the same command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from clustering import io as cio
from clustering.config import DownloadOptions, StageOptions
from tests.fixtures_images import EXPECTED_STATUS, FAST_DOWNLOAD
from tests.test_cluster import ROOT, cluster_env, kill_processes_of, short_temp_dir

pytestmark = pytest.mark.slow


def test_a_users_own_pipeline_embeds_through_embed_images_and_writes_with_its_own_sink(
    ray_local, image_server, tiny_model_dir, tmp_path
):
    import ray.data

    from clustering.ingest import embed_images

    names = list(EXPECTED_STATUS)
    posts = [{"post": f"p{i}", "media": image_server.url(n), "likes": i} for i, n in enumerate(names)]
    # The user's pipeline: their own source and their own transformation before the embedding...
    ds = ray.data.from_items(posts).map(lambda row: {**row, "likes": row["likes"] * 10})
    embedded = embed_images(
        ds,
        model=tiny_model_dir,
        url_column="media",
        download=DownloadOptions(**FAST_DOWNLOAD),
        stages=StageOptions(download_batch_size=4, batch_size=4),
    )
    # ...and their own sink after it (JSON lines: no Parquet, no clipcluster writer involved).
    kept = embedded.filter(expr="status == 'ok'").drop_columns(["thumbnail"])
    kept.write_json(str(tmp_path / "out"))
    rows = [json.loads(line) for p in sorted((tmp_path / "out").glob("*.json")) for line in p.read_text().splitlines()]
    expected_ok = {f"p{i}" for i, n in enumerate(names) if EXPECTED_STATUS[n] == "ok"}
    assert {r["post"] for r in rows} == expected_ok  # every ok row once, with the user's columns
    assert all(r["likes"] % 10 == 0 for r in rows)
    vectors = np.array([r["embedding"] for r in rows], np.float32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    statuses = {r["post"]: r["status"] for r in embedded.select_columns(["post", "status"]).take_all()}
    assert statuses == {f"p{i}": EXPECTED_STATUS[n] for i, n in enumerate(names)}  # every row out, with a status


def run_cli(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "jobs/embed.py", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: SIGKILL reaches the job and the Ray runtime it started
    )  # fmt: skip


def test_a_job_killed_with_sigkill_resumes_and_ends_with_every_row_once(image_server, tiny_model_dir, tmp_path):
    n = 240
    # Each image takes 0.2 s to arrive: the job is still half-way when it is killed, however busy the machine is (a
    # fast local file let a loaded machine write every row before the kill came).
    urls = [image_server.url(f"bad/slow?seconds=0.2&n={i}") if i % 7 else image_server.url("bad/404") for i in range(n)]
    pacsv.write_csv(pa.table({"url": urls, "post": list(range(n))}), tmp_path / "urls.csv")
    output = tmp_path / "shards"
    args = ["--input", str(tmp_path / "urls.csv"), "--output", str(output), "--model", tiny_model_dir]
    args += ["--allow-private-networks", "--no-progress", "--rows-per-shard", "10", "--download-batch-size", "10"]
    args += ["--max-in-flight", "2"]  # slow enough to be killed half-way
    temp_dir = short_temp_dir()
    env = cluster_env(temp_dir)
    try:
        job = run_cli(args, env)
        deadline = time.monotonic() + 240
        while len(cio.list_shards(str(output))) < 3 and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.poll() is None, "the job ended before it could be killed"
        os.killpg(job.pid, signal.SIGKILL)  # kill -9: no cleanup, no atexit, no Ray shutdown
        job.wait(timeout=30)
        kill_processes_of(temp_dir)  # what is left of its Ray runtime (its own session)
        written = cio.read_shards(str(output)).num_rows
        assert 0 < written < n and not (output / "_SUCCESS").exists()

        resumed = run_cli(args, env)
        printed = resumed.communicate(timeout=300)[0].decode(errors="replace")
        assert resumed.returncode == 0, printed
    finally:
        kill_processes_of(temp_dir)
    table = cio.read_shards(str(output))
    assert table.num_rows == n and sorted(table["post"].to_pylist()) == list(range(n))  # every row, exactly once
    assert len(set(table["id"].to_pylist())) == n
    stats = json.loads((output / "_stats.json").read_text())
    # Files the kill left uncommitted were deleted and their rows done again; committed ones were kept.
    assert n - written <= stats["rows_this_run"] < n and f"this run: {stats['rows_this_run']} rows" in printed
    failed = sum(1 for i in range(n) if i % 7 == 0)
    assert stats["rows"] == n and stats["status_counts"] == {"http_error": failed, "ok": n - failed}

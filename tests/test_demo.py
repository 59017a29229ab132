"""`make demo` in miniature: the real entrypoint, offline, on a small generated sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from clustering import io, schema
from clustering.devtools.sample import TOGETHER_IMAGES
from clustering.devtools.sample_posts import TOGETHER_ACCOUNTS

pytestmark = pytest.mark.slow


def test_demo_runs_offline_and_ends_with_the_report_path(tmp_path):
    out = tmp_path / "demo"
    # Offline with an empty model cache, whether or not this machine reaches the hub: the demo must then fall back to
    # a random-weight CLIP and say so, every time.
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "clustering.devtools.demo", "--output", str(out), "--images", "60"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
        env=offline,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("report: ") and Path(lines[-1].removeprefix("report: ")).is_file()
    assert lines[-2].startswith("explorer: ") and Path(lines[-2].removeprefix("explorer: ")).is_file()
    assert any(line.startswith("rows: ") and " ok" in line for line in lines)
    table = io.read_shards(str(out / "shards"))
    statuses = set(table["status"].to_pylist())
    assert "ok" in statuses and statuses & {"http_error", "not_image", "decode_error"}
    assert schema.read_metadata(table.schema)["random_weights"] is True
    assert "RANDOM-WEIGHT CLIP" in proc.stdout  # the fallback model is announced loudly
    assert lines[-3] == "names: from keywords (the model has random weights, so it gives no zero-shot names)"
    posts = table.filter(pc.starts_with(table[schema.ID], "p"))  # the sample's posts, not the demo's bad routes
    assert {"post_text", "created_at", "account"} <= set(table.column_names)
    assert posts["post_text"].null_count == 0 and posts["account"].null_count == 0
    # What the analysis makes of the posts: names, keywords, timelines, accounts and repost groups, shown and written.
    analysis = out / "analysis"
    html = (analysis / "report.html").read_text()
    for shown in ("Post columns: text: post_text; date: created_at", "<h2>Clusters over time</h2>",
                  "<h2>Most active accounts</h2>", "<h2>Most reposted images</h2>", "(keywords)", "Keywords:",
                  "When:", "Who:"):  # fmt: skip
        assert shown in html, shown
    clusters = pa_csv.read_csv(analysis / "clusters.csv").to_pylist()
    chosen = [row for row in clusters if row["level"] == "clusters"]
    assert chosen and all(row["name"] and row["keywords"] and row["peak_period"] for row in chosen)
    assert all(row["accounts"] >= 1 and 0 < row["top_account_share"] <= 1 for row in chosen)
    groups = pa_csv.read_csv(analysis / "repost_groups.csv")
    assert groups.num_rows >= 1 and min(groups["posts"].to_pylist()) >= 2
    # The sample's three accounts that post the same pictures within seconds: one group, shown in the report.
    together = pa_csv.read_csv(analysis / "coordination.csv").to_pylist()
    assert len(together) == 1 and sorted(together[0]["account_names"].split(";")) == list(TOGETHER_ACCOUNTS)
    assert together[0]["together"] == TOGETHER_IMAGES
    section = html.split("<h2>Posted together</h2>", 1)[1].split("<h2>", 1)[0]
    assert f"within 60 seconds, {TOGETHER_IMAGES} times" in section
    assert all(account in section for account in TOGETHER_ACCOUNTS)
    # The demo follows its sample: the latest posts by date come as a second batch and update the first analysis.
    metrics = json.loads((analysis / "metrics.json").read_text())
    assert [b["kind"] for b in metrics["batches"]] == ["analysis", "update"] and metrics["batches"][1]["rows"] >= 1
    assert any(line.startswith("update: ") and "new rows" in line for line in lines)
    assert "<h2>Since the previous analysis</h2>" in html
    assignments = pq.read_table(analysis / "assignments.parquet")
    later = {row["post_id"] for row in pa_csv.read_csv(out / "urls-later.csv").to_pylist()}
    batch_of = dict(zip(assignments[schema.ID].to_pylist(), assignments["batch"].to_pylist(), strict=True))
    assert {batch_of[i] for i in later if i in batch_of} == {1} and set(batch_of.values()) == {0, 1}
    assert (pc.greater_equal(assignments[schema.REPOST_GROUP], 0).to_pylist()).count(True) == sum(
        groups["posts"].to_pylist()
    )

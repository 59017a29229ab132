"""Degenerate input gives a valid result: every output written, the situation stated, never a traceback.

Like fast_hdbscan's test_edge_cases.py, each through the whole job: no ok row, a handful of points, fewer points than
min_cluster_size, everything noise, all duplicates, no thumbnail column. The cases a whole job adds nothing to are unit
tests next to their code: one cluster or all noise in tests/test_documents.py, the model and input notes in
tests/test_shards.py, missing thumbnails in tests/test_report.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from clustering.analysis import run_analysis
from tests.test_analyze_job import ALWAYS, fast_config
from tests.test_shards import blobs, write_shards


def check_valid(out: Path, n_rows: int) -> dict:
    """Every output exists and parses, assignments has ``n_rows`` rows, the report links resolve."""
    for name in ALWAYS:
        assert (out / name).is_file(), name
    assert pq.read_table(out / "assignments.parquet").num_rows == n_rows
    assert Image.open(out / "map.png").format == "PNG"
    assert Image.open(out / "sweep.png").format == "PNG"
    json.loads((out / "sweep.json").read_text())
    html = (out / "report.html").read_text()
    for target in re.findall(r'(?:src|href)="([^"#]+)"', html):
        assert (out / target).exists(), target
    return json.loads((out / "metrics.json").read_text())


def notes_text(out: Path) -> str:
    return " ".join(json.loads((out / "metrics.json").read_text())["notes"])


def test_no_ok_rows(tmp_path):
    write_shards(tmp_path / "s", np.zeros((0, 16), np.float32), failed=9, dim=16)
    result = run_analysis(fast_config(tmp_path / "s", tmp_path / "out"))
    metrics = check_valid(tmp_path / "out", 0)
    assert result.n_rows == 0 and result.n_clusters == 0 and result.chosen is None
    assert metrics["n_total_rows"] == 9 and "ok" not in metrics["status_counts"]
    assert "none of the 9 rows has status ok" in notes_text(tmp_path / "out")
    assert "none of the 9 rows has status ok" in (tmp_path / "out" / "report.html").read_text()
    assert any("none of the 9 rows" in line for line in result.summary_lines())


def test_shards_without_any_row(tmp_path):
    write_shards(tmp_path / "s", np.zeros((0, 16), np.float32), dim=16)
    result = run_analysis(fast_config(tmp_path / "s", tmp_path / "out"))
    check_valid(tmp_path / "out", 0)
    assert "no rows at all" in notes_text(tmp_path / "out")
    assert result.n_rows == 0


@pytest.mark.parametrize("n", [1, 2, 3])
def test_too_few_points_to_cluster(tmp_path, n):
    X, labels = blobs(n, dim=16)
    write_shards(tmp_path / "s", X, labels=labels, failed=1)
    result = run_analysis(fast_config(tmp_path / "s", tmp_path / "out"))
    check_valid(tmp_path / "out", n)
    assert result.n_clusters == 0 and result.noise_fraction == 1.0
    assert f"only {n} distinct image" in notes_text(tmp_path / "out")
    frame = pq.read_table(tmp_path / "out" / "assignments.parquet").to_pandas()
    assert (frame.cluster == -1).all() and np.isfinite(frame[["x", "y"]].to_numpy()).all()


def test_fewer_points_than_min_cluster_size(tmp_path):
    X, labels = blobs(12, dim=16, clusters=2)
    write_shards(tmp_path / "s", X, labels=labels)
    result = run_analysis(fast_config(tmp_path / "s", tmp_path / "out", min_cluster_sizes="20,40", min_samples=(3,)))
    metrics = check_valid(tmp_path / "out", 12)
    assert result.n_clusters == 0
    assert "fewer than the smallest min_cluster_size (20)" in notes_text(tmp_path / "out")
    assert len(metrics["params"]["sweep"]["min_cluster_sizes"]) == 2


def test_everything_noise(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    write_shards(tmp_path / "s", X)
    # Two clusters of >= 40 points cannot exist among 50, and HDBSCAN never picks the root: all noise, guaranteed.
    result = run_analysis(fast_config(tmp_path / "s", tmp_path / "out", min_cluster_sizes="40", min_samples=(5,)))
    metrics = check_valid(tmp_path / "out", 50)
    assert result.n_clusters == 0 and result.noise_fraction == 1.0
    assert metrics["chosen"] is not None
    assert "every row as noise" in notes_text(tmp_path / "out")
    assert (tmp_path / "out" / "clusters.csv").read_text().startswith("level,cluster,parent,size")
    assert "No clusters were found" in (tmp_path / "out" / "report.html").read_text()


def test_all_duplicates(tmp_path):
    X, _ = blobs(1, dim=16)
    write_shards(tmp_path / "s", X, duplicates_of=dict.fromkeys(range(1, 30), 0))
    result = run_analysis(fast_config(tmp_path / "s", tmp_path / "out"))
    metrics = check_valid(tmp_path / "out", 30)
    assert result.n_unique == 1 and metrics["n_duplicates"] == 29
    assert "all 30 rows are copies of one image" in notes_text(tmp_path / "out")
    frame = pq.read_table(tmp_path / "out" / "assignments.parquet").to_pandas()
    assert frame.duplicate_of.notna().sum() == 29


def test_all_duplicates_kept_share_one_label(tmp_path):
    X, _ = blobs(1, dim=16)
    write_shards(tmp_path / "s", X, duplicates_of=dict.fromkeys(range(1, 30), 0))
    result = run_analysis(fast_config(tmp_path / "s", tmp_path / "out", keep_duplicates=True, min_samples=(5,)))
    metrics = check_valid(tmp_path / "out", 30)
    assert result.n_rows == 30 and metrics["keep_duplicates"] is True and metrics["n_duplicates"] == 29
    frame = pq.read_table(tmp_path / "out" / "assignments.parquet").to_pandas()
    assert frame.duplicate_of.notna().sum() == 29  # every copy is clustered, and still flagged as a repost
    assert frame.cluster.nunique() == 1  # 30 identical images are never split between clusters


def test_missing_thumbnail_column(tmp_path):
    X, labels = blobs(120, dim=16, clusters=3)
    write_shards(tmp_path / "s", X, labels=labels, with_thumbnails=False)
    result = run_analysis(fast_config(tmp_path / "s", tmp_path / "out", min_samples=(5,)))
    check_valid(tmp_path / "out", 120)
    assert "no thumbnail column" in notes_text(tmp_path / "out")
    assert "no thumbnail column" in (tmp_path / "out" / "report.html").read_text()
    assert not (tmp_path / "out" / "montages").exists()
    assert result.n_clusters == 3  # the three blobs, found without any image

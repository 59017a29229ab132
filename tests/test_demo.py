"""`make demo` in miniature: the real entrypoint, offline, on a small generated sample."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clustering import io, schema

pytestmark = pytest.mark.slow


def test_demo_runs_offline_and_ends_with_the_report_path(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "clustering.devtools.demo", "--output", str(out), "--images", "40"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("report: ") and Path(lines[-1].removeprefix("report: ")).is_file()
    assert lines[-2].startswith("explorer: ") and Path(lines[-2].removeprefix("explorer: ")).is_file()
    assert any(line.startswith("rows: ") and " ok" in line for line in lines)
    table = io.read_shards(str(out / "shards"))
    statuses = set(table["status"].to_pylist())
    assert "ok" in statuses and statuses & {"http_error", "not_image", "decode_error"}
    meta = schema.read_metadata(table.schema)
    if meta["random_weights"]:  # offline: the fallback model must be announced loudly
        assert "RANDOM-WEIGHT CLIP" in proc.stdout

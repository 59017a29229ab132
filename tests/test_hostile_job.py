"""Issue 8 end to end: one real ingest job over a table that mixes every hostile row, and the tables refused whole.

The mixed table holds local-file URLs and paths, literal special-purpose addresses, made-up host names that resolve to
every blocked range of the guard's table (through a static test resolver), non-canonical numeric hosts, good images
and one poison image whose decoding kills its worker. It runs as a real local Ray job whose workers get a setup hook
(``worker_process_setup_hook``) installing the test resolver and the poison decoder; a loopback-only safety net behind
the resolver means no traffic can leave 127.0.0.0/8 even if the guard failed. Every row must come out once, with the
status its kind deserves, and no error may quote a byte of a local file.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.hostile import GUARD_CASES, HOSTILE_URLS
from tests.test_cluster import ROOT, run_in_child
from tests.test_poison import POISON_MARK, ingest_on_local_ray, install_poison_decoder

pytestmark = pytest.mark.slow

HOSTS_ENV = "CLIPCLUSTER_TEST_HOSTS"
IMAGE_HOST = "images.test"
# Bytes that would show in an error if a local file's content leaked (/etc/passwd, /proc/self/environ).
LEAK_MARKERS = ("root:", "PATH=", "HOME=", "LANG=")


def install_hostile_workers() -> None:
    """Worker setup hook: names resolve only through the test table, then the guard, then a loopback-only safety net;
    127.0.0.1 is trusted so the good images load with the guard on; the decoder dies on the poison image."""
    from clustering.ingest import download, fetch
    from tests.hostile import LoopbackOnlyResolver, StaticResolver

    hosts = json.loads(os.environ[HOSTS_ENV])
    guarded = download.GuardedResolver

    def guarded_then_loopback_only(guard, inner):
        return LoopbackOnlyResolver(guarded(guard, inner))

    class TestNetworkDownloader(download.Downloader):
        def __init__(self, options, **kwargs):
            super().__init__(options, trusted_networks=("127.0.0.1/32",), resolver=StaticResolver(hosts), **kwargs)

    download.GuardedResolver = guarded_then_loopback_only
    fetch.Downloader = TestNetworkDownloader
    install_poison_decoder()


def run_job(spec_path: str) -> None:
    """Child-process entry: a local Ray runtime whose workers carry the hook, then one ingest job with defaults."""
    from clustering.config import IngestConfig

    spec = json.loads(Path(spec_path).read_text())
    config = IngestConfig(
        input=spec["input"],
        output=spec["output"],
        model=spec["model"],
        id_column="post_id",
        rows_per_shard=25,
        download_batch_size=8,
        retries=0,
        progress=False,
    )
    workers = {
        "worker_process_setup_hook": "tests.test_hostile_job.install_hostile_workers",
        "env_vars": {HOSTS_ENV: json.dumps(spec["hosts"])},
    }
    ingest_on_local_ray(config, workers)


def _jpeg(color, comment: bytes = b"") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, format="JPEG", comment=comment)
    return buf.getvalue()


def _mixed_table(server, folder: Path) -> tuple[list[dict], dict[str, str]]:
    """Rows of the mixed table and the made-up hosts they resolve through; each row says what it must become."""
    port = server.base_url.rsplit(":", 1)[1]
    base = f"http://{IMAGE_HOST}:{port}"
    rows, hosts = [], {IMAGE_HOST: "127.0.0.1"}
    for i in range(6):
        name = f"good{i}.jpg"
        (folder / name).write_bytes(_jpeg((40 * i, 120, 200)))
        rows.append({"url": f"{base}/{name}", "want": "ok", "text": None})
    (folder / "poison.jpg").write_bytes(_jpeg("red", comment=POISON_MARK))
    rows.append({"url": f"{base}/poison.jpg", "want": "decode_error", "text": "decoder process crashed"})
    for i, (address, kind, _) in enumerate(GUARD_CASES):
        # Public addresses are allowed (resolving one would send traffic off this machine), and 127.0.0.1 is trusted
        # here to serve the good images; 127.255.255.254 keeps loopback in the table.
        if kind is None or address == "127.0.0.1":
            continue
        host = f"guard{i}.test"
        hosts[host] = address
        rows.append({"url": f"http://{host}:{port}/x.jpg", "want": "blocked_address", "text": kind})
    for url, status in HOSTILE_URLS.items():
        rows.append({"url": url, "want": status, "text": None})
    for i, row in enumerate(rows):
        row["post_id"] = f"p{i:03d}"
    return rows, hosts


def test_one_job_over_every_hostile_row_keeps_each_row_once_and_leaks_nothing(tmp_path, tiny_model_dir):
    from clustering.devtools.devserver import ImageServer

    folder = tmp_path / "served"
    folder.mkdir()
    with ImageServer(folder) as server:
        rows, hosts = _mixed_table(server, folder)
        pq.write_table(pa.Table.from_pylist([{"post_id": r["post_id"], "url": r["url"]} for r in rows]),
                       tmp_path / "posts.parquet")  # fmt: skip
        spec = {
            "input": str(tmp_path / "posts.parquet"),
            "output": str(tmp_path / "shards"),
            "model": tiny_model_dir,
            "hosts": hosts,
        }
        returncode = run_in_child("tests.test_hostile_job:run_job", spec, tmp_path, timeout=420)
        hits = server.hits
    assert returncode == 0, (tmp_path / "job.log").read_text()[-5000:]

    import pandas as pd

    out = pd.read_parquet(tmp_path / "shards")  # a plain Parquet dataset
    assert sorted(out["id"]) == sorted(r["post_id"] for r in rows)  # every row, exactly once
    got = out.set_index("id")
    for row in rows:
        status, error = got.at[row["post_id"], "status"], got.at[row["post_id"], "error"]
        error = error if isinstance(error, str) else ""  # pandas reads a null error as NaN
        assert status == row["want"], (row["url"], status, error)
        if row["text"]:
            assert row["text"] in error, (row["url"], error)
        assert not any(marker in error for marker in LEAK_MARKERS), (row["url"], error)
    local_rows = [r for r in rows if "://" not in r["url"] or r["url"].startswith("file:")]
    assert all("--allow-local-files" in got.at[r["post_id"], "error"] or "/proc" in r["url"] or "/sys" in r["url"]
               or "/dev" in r["url"] for r in local_rows)  # fmt: skip
    # Only the good images and the poison file were ever requested: no guarded name reached a socket.
    assert set(hits) == {f"/good{i}.jpg" for i in range(6)} | {"/poison.jpg"}


REFUSED_TABLES = {
    "zero rows": ("posts.csv", "url\n", "has no rows"),
    "list URL column": ("posts.jsonl", '{"url": ["http://a.test/1.jpg", "http://a.test/2.jpg"]}\n', "list<"),
    "repeated ids": ("posts.csv", "post_id,url\na,http://a.test/1.jpg\na,http://a.test/2.jpg\n", "repeated id"),
    "empty ids": ("posts.csv", "post_id,url\na,http://a.test/1.jpg\n,http://a.test/2.jpg\n", "empty id"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_TABLES))
def test_tables_refused_whole_get_one_line_and_exit_2(tmp_path, tiny_model_dir, case):
    name, content, needle = REFUSED_TABLES[case]
    (tmp_path / name).write_text(content)
    args = ["--input", str(tmp_path / name), "--output", str(tmp_path / "shards"), "--model", tiny_model_dir]
    if "ids" in case:
        args += ["--id-column", "post_id"]
    proc = subprocess.run(
        [sys.executable, "jobs/embed.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("embed.py: error: ") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "shards").exists()

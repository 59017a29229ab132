"""Shards on object storage: an s3:// bucket served by moto on 127.0.0.1, through the path users take.

Users point the job at S3-compatible storage with the standard AWS variables (``AWS_ENDPOINT_URL`` for MinIO, Ceph,
R2...; credentials from the environment) or per URI (``s3://bucket/path?endpoint_override=...``). Both go through
``clustering.io.resolve`` (pyarrow's ``FileSystem.from_uri``), as the ingest job and the shard reader do. The job runs
as a user runs it, ``jobs/embed.py`` in a process of its own whose environment holds the variables: its Ray workers,
which write the shards, inherit them (a runtime started earlier in this test process would not).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from clustering import io as cio
from tests.fixtures_images import EXPECTED_STATUS, FAST_DOWNLOAD
from tests.test_cluster import ROOT, cluster_env, kill_processes_of, short_temp_dir

pytestmark = pytest.mark.integration
BUCKET = "clipcluster-test"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never ask the EC2 metadata service (169.254.169.254) for credentials or a region.
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 in server mode on 127.0.0.1 (a real HTTP endpoint, as MinIO would be), with an empty bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in CREDENTIALS.items():
            mp.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            mp.delenv(name, raising=False)
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    server.stop()


@pytest.fixture
def url_table(image_server, tmp_path):
    rows = [{"url": image_server.url(name), "caption": f"file {name}"} for name in EXPECTED_STATUS]
    rows.append({"url": image_server.url("bad/404"), "caption": "gone"})
    path = tmp_path / "urls.csv"
    pacsv.write_csv(pa.Table.from_pylist(rows), path)
    expected = [*EXPECTED_STATUS.values(), "http_error"]
    return path, expected


def keys(client, prefix: str) -> dict[str, str]:
    """Object key -> ETag under ``prefix`` (a rewritten object gets a new ETag and LastModified)."""
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"]: (o["ETag"], o["LastModified"]) for o in listing.get("Contents", [])}


def run_job(input_path, output: str, model: str, *, endpoint: str | None = None) -> dict:
    """``jobs/embed.py`` in its own process (and Ray runtime), as a user runs it; returns what it printed."""
    temp_dir = short_temp_dir()
    env = {**cluster_env(temp_dir), **CREDENTIALS}
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint  # what a MinIO/Ceph/R2 user exports
    flags = ["--no-progress"]
    for key, value in FAST_DOWNLOAD.items():
        flag = key.replace("_", "-")
        flags.append((f"--{flag}" if value else f"--no-{flag}") if isinstance(value, bool) else f"--{flag}={value}")
    command = [sys.executable, "jobs/embed.py", "--input", str(input_path), "--output", output, "--model", model]
    try:
        proc = subprocess.run(
            [*command, "--rows-per-shard", "5", *flags], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        kill_processes_of(temp_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def files_written(stdout: str) -> int:
    return int(stdout.split("files: ", 1)[1].split(" written", 1)[0])


def test_shards_written_to_and_read_back_from_s3_with_resume(s3_endpoint, url_table, tiny_model_dir, monkeypatch):
    endpoint, client = s3_endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # for the reads in this process
    input_path, expected = url_table
    uri = f"s3://{BUCKET}/runs/first/shards"

    assert files_written(run_job(input_path, uri, tiny_model_dir, endpoint=endpoint)) >= 1
    objects = keys(client, "runs/first/shards/")
    names = sorted(k.split("runs/first/shards/", 1)[1] for k in objects if not k.endswith("/"))
    bookkeeping = ["_SUCCESS", "_ingest.log", "_manifest.json", "_stats.json"]  # names Parquet readers skip
    data = [n for n in names if n.startswith(cio.SHARD_GLOB_PREFIX) and n.endswith(cio.SHARD_SUFFIX)]
    checkpoint = [n for n in names if n.startswith("_checkpoint/")]
    assert sorted(data + checkpoint + bookkeeping) == names and data and checkpoint

    table = cio.read_shards(uri)  # the reader users (and the analysis job) call
    by_caption = sorted(zip(table["caption"].to_pylist(), table["status"].to_pylist(), strict=True))
    assert table.num_rows == len(expected) and sorted(s for _, s in by_caption) == sorted(expected)
    assert dict(by_caption)["gone"] == "http_error"
    stats = json.loads(client.get_object(Bucket=BUCKET, Key="runs/first/shards/_stats.json")["Body"].read())
    assert stats["status_counts"]["ok"] == expected.count("ok") and stats["files"] == len(data)

    again = run_job(input_path, uri, tiny_model_dir, endpoint=endpoint)  # resume: everything is done
    assert files_written(again) == 0
    kept = {k: v for k, v in objects.items() if cio.SHARD_GLOB_PREFIX in k or k.endswith("_stats.json")}
    assert {k: v for k, v in keys(client, "runs/first/shards/").items() if k in kept} == kept  # nothing rewritten

    victim = f"runs/first/shards/{data[0]}"
    lost = pq.read_table(_body(client, victim)).num_rows
    client.delete_object(Bucket=BUCKET, Key=victim)
    redone = run_job(input_path, uri, tiny_model_dir, endpoint=endpoint)
    assert files_written(redone) >= 1 and f"this run: {lost} rows" in redone
    table = cio.read_shards(uri)
    assert table.num_rows == len(expected) and len(set(table["id"].to_pylist())) == len(expected)


def _body(client, key: str) -> pa.BufferReader:
    return pa.BufferReader(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_endpoint_given_in_the_uri_and_input_on_s3_too(s3_endpoint, url_table, tiny_model_dir):
    endpoint, client = s3_endpoint
    input_path, expected = url_table
    client.upload_file(str(input_path), BUCKET, "inputs/urls.csv")
    query = f"?endpoint_override={endpoint}"  # no AWS_ENDPOINT_URL anywhere for this one
    output = f"s3://{BUCKET}/runs/second{query}"
    assert files_written(run_job(f"s3://{BUCKET}/inputs/urls.csv{query}", output, tiny_model_dir)) >= 1
    assert sorted(cio.read_shards(output)["status"].to_pylist()) == sorted(expected)
    assert files_written(run_job(f"s3://{BUCKET}/inputs/urls.csv{query}", output, tiny_model_dir)) == 0

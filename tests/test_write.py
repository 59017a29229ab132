"""The no-loss core without Ray: shard assembly from out-of-order, retried and missing deliveries, resume planning,
--overwrite, statistics, and a shard folder that any Parquet reader opens."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from clustering import io as cio
from clustering import schema
from clustering.config import ConfigError
from clustering.ingest import write

DIM = 4
META = {"model": "tiny", "dim": DIM}
SHARD_SCHEMA = schema.shard_schema(pa.schema([pa.field("likes", pa.int64())]), DIM, META)


def fragment(urls: list[str], start: int = 0) -> pa.Table:
    n = len(urls)
    return pa.table(
        {
            "id": [f"id{start + i}" for i in range(n)],
            "url": urls,
            "likes": pa.array(range(start, start + n), pa.int64()),
        }
    )


def results(work_ids: list[int], *, status: str = "ok") -> pa.Table:
    """Stage output for ``work_ids``: the embedding of work item k is [k, k, k, k]; errors name their work item."""
    n = len(work_ids)
    ok = status == "ok"
    vectors = pa.array(np.repeat(np.array(work_ids, np.float32), DIM))
    return pa.table(
        {
            schema.WORK_ID: pa.array(work_ids, pa.int64()),
            schema.STATUS: pa.array([status] * n, pa.string()),
            schema.ERROR: pa.array([None if ok else f"err {k}" for k in work_ids], pa.string()),
            schema.HTTP_STATUS: pa.array([200] * n, pa.int32()),
            schema.BYTES: pa.array([100 + k for k in work_ids], pa.int64()),
            schema.WIDTH: pa.array([10] * n, pa.int32()),
            schema.HEIGHT: pa.array([10] * n, pa.int32()),
            schema.SHA256: pa.array([f"h{k}" for k in work_ids], pa.string()),
            schema.THUMBNAIL: pa.array([b"\xff\xd8" if ok else None for _ in work_ids], pa.binary()),
            schema.EMBEDDING: pa.FixedSizeListArray.from_arrays(vectors, DIM, mask=pa.array([not ok] * n)),
        }
    )


# --- work items and assembly -------------------------------------------------------------------------------------


def test_reposts_are_one_work_item_and_rows_map_back_to_it():
    work, row_work = write.shard_work(fragment(["a", "b", "a", "c", "b"]))
    assert work["url"].to_pylist() == ["a", "b", "c"]
    assert work[schema.WORK_ID].to_pylist() == [0, 1, 2]
    assert row_work.tolist() == [0, 1, 0, 2, 1]


def test_out_of_order_and_retried_deliveries_give_every_row_once_in_input_order():
    frag = fragment(["a", "b", "a", "c", "b"])
    # Work item 1 arrives twice (a retried task delivered again), the parts arrive in any order.
    deliveries = [results([2, 1]), results([1]), results([0])]
    table = write.assemble_shard(frag, deliveries, shard_schema=SHARD_SCHEMA)
    assert table.schema.equals(SHARD_SCHEMA, check_metadata=True)
    assert table["id"].to_pylist() == ["id0", "id1", "id2", "id3", "id4"]
    assert table["url"].to_pylist() == ["a", "b", "a", "c", "b"]
    assert table["likes"].to_pylist() == [0, 1, 2, 3, 4]
    assert [v[0] for v in table["embedding"].to_pylist()] == [0.0, 1.0, 0.0, 2.0, 1.0]  # each row its URL's result
    assert table["sha256"].to_pylist() == ["h0", "h1", "h0", "h2", "h1"]


def test_a_missing_delivery_refuses_to_write_a_shard_that_would_lose_rows():
    frag = fragment(["a", "b", "c"])
    with pytest.raises(write.MissingWorkError, match="1 of 3 work items"):
        write.assemble_shard(frag, [results([0]), results([2, 0])], shard_schema=SHARD_SCHEMA)
    with pytest.raises(write.MissingWorkError, match="3 of 3"):
        write.assemble_shard(frag, [], shard_schema=SHARD_SCHEMA)


def test_writing_a_shard_twice_rewrites_the_same_rows(tmp_path):
    target = write.ShardTarget(str(tmp_path), SHARD_SCHEMA)
    frag = fragment(["a", "b", "a"])
    first = write.write_shard(3, frag, [results([0, 1])], target=target)
    again = write.write_shard(3, frag, [results([1]), results([0]), results([1])], target=target)
    assert first == again
    assert first["shard"] == 3 and first["rows"] == 3 and first["bytes"] == 100 + 101 + 100
    assert cio.list_shards(str(tmp_path)) == [str(tmp_path / "part-00003.parquet")]
    assert [p.name for p in tmp_path.iterdir()] == ["part-00003.parquet"]  # no temporary file left behind


# --- input identity and planning ---------------------------------------------------------------------------------


def test_fingerprint_fed_in_fragments_equals_the_whole_input_and_depends_on_order_and_sharding():
    whole = fragment(["a", "b", "c", "d"])
    one = write.Fingerprint(2)
    one.update(whole)
    parts = write.Fingerprint(2)
    parts.update(whole.slice(0, 3))
    parts.update(whole.slice(3))
    assert one.hexdigest() == parts.hexdigest() and parts.rows == 4
    other_sharding = write.Fingerprint(3)
    other_sharding.update(whole)
    reordered = write.Fingerprint(2)
    reordered.update(whole.take([1, 0, 2, 3]))
    assert len({one.hexdigest(), other_sharding.hexdigest(), reordered.hexdigest()}) == 3


def plan(tmp_path, fingerprint="f1", rows=10, overwrite=False):
    return write.plan_output(
        str(tmp_path), fingerprint=fingerprint, rows=rows, rows_per_shard=4, model_meta=META, overwrite=overwrite
    )


def test_plan_writes_the_manifest_first_and_resumes_only_missing_shards(tmp_path):
    first = plan(tmp_path)
    assert (first.n_shards, first.pending) == (3, (0, 1, 2))
    assert json.loads((tmp_path / write.MANIFEST).read_text())["fingerprint"] == "f1"
    target = write.ShardTarget(str(tmp_path), SHARD_SCHEMA)
    write.write_shard(1, fragment(["x"]), [results([0])], target=target)
    (tmp_path / ".part-00002.parquet.abc.tmp").write_bytes(b"half a shard")  # a write killed mid-way
    assert plan(tmp_path).pending == (0, 2)


def test_a_different_input_or_model_in_the_same_folder_is_refused(tmp_path):
    plan(tmp_path)
    with pytest.raises(ConfigError, match=r"different run \(fingerprint differ\)"):
        plan(tmp_path, fingerprint="f2")
    with pytest.raises(ConfigError, match="different run"):
        write.plan_output(
            str(tmp_path), fingerprint="f1", rows=10, rows_per_shard=4, model_meta={"model": "big", "dim": DIM},
            overwrite=False,
        )  # fmt: skip
    assert plan(tmp_path, fingerprint="f2", overwrite=True).pending == (0, 1, 2)


def test_overwrite_deletes_only_what_the_job_wrote(tmp_path):
    plan(tmp_path)
    write.write_shard(0, fragment(["x"]), [results([0])], target=write.ShardTarget(str(tmp_path), SHARD_SCHEMA))
    for name in (write.STATS, write.SUCCESS, write.LOG, write.LEGACY_STATS, ".part-00001.parquet.x.tmp"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "partners.csv").write_text("not a shard")
    write.clear_output(cio.resolve(str(tmp_path))[0], str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "partners.csv"]


def test_a_folder_holding_other_files_is_refused_but_one_holding_only_our_log_is_not(tmp_path):
    (tmp_path / "thesis.docx").write_text("precious")
    with pytest.raises(ConfigError, match="not a clipcluster shard folder"):
        write.check_output_target(str(tmp_path), overwrite=False)
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / write.LOG).write_text("an earlier run stopped before planning")
    write.check_output_target(str(ours), overwrite=False)


def test_a_folder_written_under_the_old_names_resumes_and_becomes_a_plain_dataset(tmp_path):
    first = plan(tmp_path)
    target = write.ShardTarget(str(tmp_path), SHARD_SCHEMA)
    write.write_shard(0, fragment(["x"]), [results([0])], target=target)
    (tmp_path / write.MANIFEST).rename(tmp_path / write.LEGACY_MANIFEST)
    (tmp_path / write.LEGACY_STATS).write_text(json.dumps({"rows": 1}))
    with pytest.raises(ConfigError, match="different run"):
        plan(tmp_path, fingerprint="other")
    resumed = plan(tmp_path)
    assert resumed.pending == (1, 2) and resumed.manifest == first.manifest
    assert not (tmp_path / write.LEGACY_MANIFEST).exists() and (tmp_path / write.MANIFEST).exists()
    assert write.read_stats(resumed) == {"rows": 1}
    write.finish(resumed, [], elapsed=1.0)
    assert not (tmp_path / write.LEGACY_STATS).exists()


# --- statistics --------------------------------------------------------------------------------------------------


def test_shard_records_count_statuses_errors_and_bytes_and_merge_across_shards():
    table = write.assemble_shard(
        fragment(["a", "b", "c", "b"]),
        [results([0]), results([1], status="http_error"), results([2], status="timeout")],
        shard_schema=SHARD_SCHEMA,
    )
    record = write.shard_record(7, table)
    assert record == {
        "shard": 7,
        "rows": 4,
        "status_counts": {"http_error": 2, "ok": 1, "timeout": 1},
        "top_errors": {"http_error": {"err 1": 2}, "timeout": {"err 2": 1}},
        "bytes": 100 + 101 + 102 + 101,
    }
    merged = write.merge_records([record, {**record, "shard": 8, "bytes": 1}])
    assert merged["rows"] == 8 and merged["bytes_downloaded"] == 405
    assert merged["status_counts"] == {"http_error": 4, "ok": 2, "timeout": 2}
    assert merged["top_errors"]["http_error"] == {"err 1": 4}


def test_top_errors_keep_the_most_frequent_ones_only():
    record = {"rows": 0, "bytes": 0, "status_counts": {}, "top_errors": {"http_error": {}}}
    record["top_errors"]["http_error"] = {f"HTTP {code}": code - 400 for code in range(401, 401 + write.TOP_ERRORS + 5)}
    top = write.merge_records([record])["top_errors"]["http_error"]
    assert len(top) == write.TOP_ERRORS and min(top.values()) == 6 and "HTTP 415" in top


def test_finish_covers_shards_of_earlier_runs_and_marks_the_folder_complete(tmp_path):
    first = plan(tmp_path, rows=8)  # two shards
    target = write.ShardTarget(str(tmp_path), SHARD_SCHEMA)
    old = write.write_shard(0, fragment(["a", "b"]), [results([0]), results([1], status="timeout")], target=target)
    stats = write.finish(first, [old], elapsed=2.0)
    assert stats["rows"] == 2 and stats["rows_this_run"] == 2 and stats["ok_this_run"] == 1
    assert stats["images_per_second"] == 0.5
    assert not (tmp_path / write.SUCCESS).exists()  # one shard of two

    (tmp_path / write.STATS).unlink()  # a record-less shard (older versions): counted from the file itself
    second = plan(tmp_path, rows=8)
    assert second.pending == (1,) and second.records == {}
    new = write.write_shard(1, fragment(["c"], start=2), [results([0], status="http_error")], target=target)
    stats = write.finish(second, [new], elapsed=1.0, extra={"model": "tiny"})
    assert stats["rows"] == 3 and stats["rows_this_run"] == 1 and stats["model"] == "tiny"
    assert stats["status_counts"] == {"http_error": 1, "ok": 1, "timeout": 1}
    assert (tmp_path / write.SUCCESS).exists()
    document = json.loads((tmp_path / write.STATS).read_text())
    assert sorted(document["shard_records"]) == ["0", "1"]
    assert plan(tmp_path, rows=8).records == {0: document["shard_records"]["0"], 1: document["shard_records"]["1"]}


def test_the_shard_folder_opens_whole_in_pandas_and_pyarrow(tmp_path):
    import pandas as pd

    first = plan(tmp_path, rows=5)
    target = write.ShardTarget(str(tmp_path), SHARD_SCHEMA)
    records = [
        write.write_shard(0, fragment(["a", "b", "c", "d"]), [results([0, 1, 2, 3])], target=target),
        write.write_shard(1, fragment(["e"], start=4), [results([0])], target=target),
    ]
    write.finish(first, records, elapsed=1.0)
    (tmp_path / write.LOG).write_text("log lines")
    assert {p.name for p in Path(tmp_path).iterdir()} >= {write.MANIFEST, write.STATS, write.SUCCESS, write.LOG}
    assert len(pd.read_parquet(tmp_path)) == 5
    assert pads.dataset(str(tmp_path)).to_table().num_rows == 5
    assert pq.read_table(tmp_path).num_rows == 5

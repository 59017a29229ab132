"""The output folder without Ray: identity and resume bookkeeping, file names, statistics and the exactly-once check."""

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


def rows(ids: list[str], *, status: str = "ok") -> pa.Table:
    """Output rows as the pipeline writes them; an error names its row, bytes grow with the row."""
    n = len(ids)
    ok = status == "ok"
    vectors = pa.array(np.ones(n * DIM, np.float32))
    return pa.table(
        {
            schema.ID: ids,
            schema.URL: [f"http://h/{i}" for i in ids],
            schema.STATUS: [status] * n,
            schema.ERROR: [None if ok else f"err {i}" for i in ids],
            schema.HTTP_STATUS: pa.array([200] * n, pa.int32()),
            schema.BYTES: pa.array([100 + k for k in range(n)], pa.int64()),
            schema.WIDTH: pa.array([10] * n, pa.int32()),
            schema.HEIGHT: pa.array([10] * n, pa.int32()),
            schema.SHA256: [f"h{i}" for i in ids],
            schema.THUMBNAIL: pa.array([b"\xff\xd8" if ok else None] * n, pa.binary()),
            schema.EMBEDDING: pa.FixedSizeListArray.from_arrays(vectors, DIM, mask=pa.array([not ok] * n)),
            "likes": pa.array(range(n), pa.int64()),
        }
    ).cast(SHARD_SCHEMA)


def put(folder: Path, name: str, table: pa.Table) -> str:
    pq.write_table(table, folder / name)
    return name


def plan(tmp_path, *, fingerprint="f1", rows=10, model="tiny", overwrite=False) -> write.OutputPlan:
    meta = {"model": model, "dim": DIM}
    return write.plan_output(str(tmp_path), fingerprint=fingerprint, rows=rows, model_meta=meta, overwrite=overwrite)


# --- names, identity and resume ------------------------------------------------------------------------------------


def test_file_names_start_with_part_and_carry_the_write_and_the_task():
    names = write.PartNames()
    name = names.get_filename_for_task("0123abcd", 7)
    assert name == "part-0123abcd_000007.parquet" and name.startswith(cio.SHARD_GLOB_PREFIX)
    assert names.get_filename_for_task("0123abcd", 7) == name != names.get_filename_for_task("ffff0000", 7)


def test_plan_writes_the_manifest_first_and_a_finished_folder_is_recognised(tmp_path):
    first = plan(tmp_path)
    manifest = json.loads((tmp_path / write.MANIFEST).read_text())
    assert (manifest["fingerprint"], manifest["rows"], manifest["layout"]) == ("f1", 10, write.LAYOUT)
    assert not first.finished and first.checkpoint == f"{tmp_path}/{write.CHECKPOINT}"
    (tmp_path / write.SUCCESS).write_bytes(b"")
    assert plan(tmp_path).finished


def test_a_different_input_or_model_in_the_same_folder_is_refused(tmp_path):
    plan(tmp_path)
    with pytest.raises(ConfigError, match=r"different run \(fingerprint differ\)"):
        plan(tmp_path, fingerprint="f2")
    with pytest.raises(ConfigError, match=r"different run \(model differ\)"):
        plan(tmp_path, model="big")
    assert not plan(tmp_path, fingerprint="f2", overwrite=True).finished


def test_a_folder_of_the_earlier_ordered_layout_is_refused_by_name(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"fingerprint": "f1", "model": "tiny", "dim": DIM}))
    with pytest.raises(ConfigError, match="written by an earlier clipcluster"):
        plan(tmp_path)
    assert plan(tmp_path, overwrite=True).manifest["layout"] == write.LAYOUT
    assert not (tmp_path / "manifest.json").exists()


def test_overwrite_deletes_only_what_the_job_wrote(tmp_path):
    plan(tmp_path)
    put(tmp_path, "part-abc_000000-0.parquet", rows(["a"]))
    (tmp_path / write.CHECKPOINT).mkdir()
    (tmp_path / write.CHECKPOINT / "part-abc_000000.parquet").write_bytes(b"ids")
    for name in (write.STATS, write.SUCCESS, write.LOG, "stats.json"):
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


# --- statistics and the exactly-once check ----------------------------------------------------------------------------


def test_file_records_count_statuses_errors_and_bytes_and_merge_across_files():
    table = pa.concat_tables([rows(["a"]), rows(["b", "c"], status="http_error"), rows(["d"], status="timeout")])
    record = write.file_record("part-x.parquet", table)
    assert record == {
        "file": "part-x.parquet",
        "rows": 4,
        "status_counts": {"http_error": 2, "ok": 1, "timeout": 1},
        "top_errors": {"http_error": {"err b": 1, "err c": 1}, "timeout": {"err d": 1}},
        "bytes": 100 + 100 + 101 + 100,
    }
    merged = write.merge_records([record, {**record, "file": "part-y.parquet", "bytes": 1}])
    assert merged["rows"] == 8 and merged["bytes_downloaded"] == 402
    assert merged["status_counts"] == {"http_error": 4, "ok": 2, "timeout": 2}
    assert merged["top_errors"]["http_error"] == {"err b": 2, "err c": 2}


def test_top_errors_keep_the_most_frequent_ones_only():
    record = {"rows": 0, "bytes": 0, "status_counts": {}, "top_errors": {"http_error": {}}}
    record["top_errors"]["http_error"] = {f"HTTP {code}": code - 400 for code in range(401, 401 + write.TOP_ERRORS + 5)}
    top = write.merge_records([record])["top_errors"]["http_error"]
    assert len(top) == write.TOP_ERRORS and min(top.values()) == 6 and "HTTP 415" in top


def test_finish_counts_the_whole_folder_and_this_run_and_keeps_earlier_records(tmp_path):
    first = plan(tmp_path, rows=3)
    old = put(tmp_path, "part-run1_000000-0.parquet", rows(["a", "b"]))
    with pytest.raises(write.LostRowsError, match=r"2 rows .* for 3 input rows"):
        write.finish(first, new_files=[old], elapsed=2.0)
    assert not (tmp_path / write.SUCCESS).exists()

    second = plan(tmp_path, rows=3)
    new = put(tmp_path, "part-run2_000000-0.parquet", rows(["c"], status="http_error"))
    stats = write.finish(second, new_files=[new], elapsed=1.0, extra={"model": "tiny"})
    assert (stats["rows"], stats["rows_this_run"], stats["ok_this_run"], stats["files"]) == (3, 1, 0, 2)
    assert stats["status_counts"] == {"http_error": 1, "ok": 2} and stats["model"] == "tiny"
    assert (tmp_path / write.SUCCESS).exists()
    document = json.loads((tmp_path / write.STATS).read_text())
    assert sorted(document["file_records"]) == [old, new]
    assert write.read_stats(second)["rows"] == 3 and "file_records" not in write.read_stats(second)


def test_a_row_written_twice_fails_the_exactly_once_check(tmp_path):
    folder = plan(tmp_path, rows=2)
    put(tmp_path, "part-a_000000-0.parquet", rows(["a", "b"]))
    put(tmp_path, "part-b_000000-0.parquet", rows(["b"]))
    with pytest.raises(write.LostRowsError, match=r"3 rows \(2 distinct ids\) for 2 input rows"):
        write.check_exactly_once(folder, cio.list_shards(str(tmp_path)))


def test_the_folder_opens_whole_in_pandas_and_pyarrow_beside_its_bookkeeping(tmp_path):
    import pandas as pd

    first = plan(tmp_path, rows=5)
    names = [put(tmp_path, "part-r_000000-0.parquet", rows(["a", "b", "c", "d"]))]
    names.append(put(tmp_path, "part-r_000001-0.parquet", rows(["e"])))
    (tmp_path / write.CHECKPOINT).mkdir()
    pq.write_table(pa.table({"id": ["a"]}), tmp_path / write.CHECKPOINT / "part-r_000000.parquet")
    write.finish(first, new_files=names, elapsed=1.0)
    (tmp_path / write.LOG).write_text("log lines")
    assert {p.name for p in Path(tmp_path).iterdir()} >= {write.MANIFEST, write.STATS, write.SUCCESS, write.LOG}
    assert len(pd.read_parquet(tmp_path)) == 5
    assert pads.dataset(str(tmp_path)).to_table().num_rows == 5
    assert pq.read_table(tmp_path).num_rows == 5
    assert schema.read_metadata(pq.read_schema(tmp_path / names[0]))["model"] == "tiny"


def test_a_deleted_data_file_is_forgotten_by_the_checkpoint_so_its_rows_are_done_again(tmp_path):
    plan(tmp_path, rows=3)
    checkpoint = tmp_path / write.CHECKPOINT
    checkpoint.mkdir()
    for task in ("000000", "000001"):
        put(tmp_path, f"part-run1_{task}-0.parquet", rows([task]))
        pq.write_table(pa.table({"id": [task]}), checkpoint / f"part-run1_{task}.parquet")
    pq.write_table(pa.table({"id": ["x"]}), checkpoint / "part-run1_000002.pending.parquet")  # Ray Data's to clean
    (tmp_path / write.SUCCESS).write_bytes(b"")
    assert plan(tmp_path, rows=3).finished  # nothing deleted: nothing forgotten
    (tmp_path / "part-run1_000001-0.parquet").unlink()
    again = plan(tmp_path, rows=3)
    assert not again.finished
    kept = sorted(p.name for p in checkpoint.iterdir())
    assert kept == ["part-run1_000000.parquet", "part-run1_000002.pending.parquet"]

"""The output folder: its identity and resume bookkeeping, the names of its files, and the run's statistics.

The folder is a plain Parquet dataset: ``part-*.parquet`` files written by Ray Data, plus bookkeeping under names
Parquet readers skip: ``_manifest.json`` (the input's fingerprint and the model, written before any work),
``_checkpoint/`` (Ray Data's record of the ids already written: a rerun skips them), ``_stats.json``, ``_SUCCESS``
(every input row is in the folder) and ``_ingest.log``.

Nothing here runs on Ray: the functions take paths and plain Arrow tables, so the rules that keep runs apart and count
rows are tested without a cluster.
"""

from __future__ import annotations

import functools
import json
import logging
import posixpath
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from clustering import __version__, io, schema
from clustering.config import ConfigError

log = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
STATS = "_stats.json"
SUCCESS = "_SUCCESS"
LOG = "_ingest.log"
CHECKPOINT = "_checkpoint"
# Ray Data's name for a checkpoint record whose data file may not be complete yet.
PENDING_SUFFIX = ".pending.parquet"
# Every file the job owns besides the data files: what --overwrite may delete, and nothing else.
BOOKKEEPING = frozenset({MANIFEST, STATS, SUCCESS, LOG})
# The manifest's layout: 2 is Ray Data's (files named by write, resume by id). Layout 1 (ordered shards written by the
# earlier scheduler of its own) is refused rather than mixed with it.
LAYOUT = 2
# Distinct error messages kept per status and file; the run's top errors are merged from these.
TOP_ERRORS = 10
# The manifest fields that identify a run: a folder whose manifest differs in one of them belongs to another run.
IDENTITY = ("layout", "fingerprint", "model", "dim")


def __getattr__(name: str):
    # ``PartNames`` is built on first use: the job reads this module before Ray starts, and importing Ray Data takes
    # most of a second then.
    if name == "PartNames":
        return _part_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _part_names() -> type:
    from ray.data.datasource import FilenameProvider

    class PartNames(FilenameProvider):
        """``part-<write>_<task>-<i>.parquet``: the prefix the readers of this project (and Spark's conventions)
        expect.

        Deterministic for a write and a task, as Ray Data's checkpointing requires; a new run writes under a new write
        id, so files of different runs never collide.
        """

        def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
            return f"{io.SHARD_GLOB_PREFIX}{write_uuid}_{task_index:06d}{io.SHARD_SUFFIX}"

    PartNames.__module__, PartNames.__qualname__ = __name__, "PartNames"  # pickled by name, like a top-level class
    return PartNames


# --- identity and resume ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputPlan:
    """The output folder of a run: where it is, its manifest, and whether an earlier run finished it."""

    uri: str
    fs: pafs.FileSystem
    root: str
    manifest: dict
    finished: bool

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    @property
    def checkpoint(self) -> str:
        return self.path(CHECKPOINT)


def plan_output(uri: str, *, fingerprint: str, rows: int, model_meta: dict, overwrite: bool) -> OutputPlan:
    """Refuse to mix two different runs in one folder; write ``_manifest.json`` before any work.

    A rerun of the same input and model resumes: Ray Data skips the ids recorded under ``_checkpoint/``.
    """
    fs, root = io.resolve(uri)
    manifest = {
        "format": "clipcluster-shards",
        "layout": LAYOUT,
        "schema_version": schema.SCHEMA_VERSION,
        "fingerprint": fingerprint,
        "rows": rows,
        "model": model_meta["model"],
        "dim": model_meta["dim"],
    }
    if overwrite:
        clear_output(fs, root)
    old = read_manifest(fs, root)
    if old is None:
        check_output_target(uri, overwrite=overwrite)
    else:
        changed = [k for k in IDENTITY if old.get(k, 1 if k == "layout" else None) != manifest[k]]
        if "layout" in changed:
            raise ConfigError(
                f"--output: {uri} was written by an earlier clipcluster (shards in input order); pass --overwrite to "
                "start over or choose another --output"
            )
        if changed:
            raise ConfigError(
                f"--output: {uri} holds shards of a different run ({', '.join(changed)} differ); "
                "pass --overwrite to replace them or choose another --output"
            )
    fs.create_dir(root, recursive=True)
    if old != manifest:
        io.write_bytes_atomic(fs, f"{root}/{MANIFEST}", json.dumps(manifest, indent=2).encode())
    for name in ("manifest.json", "stats.json"):  # the earlier layout's names, after --overwrite
        if io.exists(fs, f"{root}/{name}"):
            fs.delete_file(f"{root}/{name}")
    if forget_deleted_files(fs, root) and io.exists(fs, f"{root}/{SUCCESS}"):
        fs.delete_file(f"{root}/{SUCCESS}")
    return OutputPlan(uri, fs, root, manifest, finished=io.exists(fs, f"{root}/{SUCCESS}"))


def forget_deleted_files(fs: pafs.FileSystem, root: str) -> int:
    """Drop the checkpoint records of data files that are gone, so their rows are done again; returns how many.

    Ray Data names each committed checkpoint file after the data files it covers (``part-<write>_<task>``, data in
    ``part-<write>_<task>-<i>.parquet``); a record without its data would make a rerun skip rows that are nowhere.
    """
    folder = f"{root}/{CHECKPOINT}"
    if not io.exists(fs, folder):
        return 0
    data = [
        posixpath.basename(i.path)
        for i in fs.get_file_info(pafs.FileSelector(root))
        if i.type == pafs.FileType.File and posixpath.basename(i.path).startswith(io.SHARD_GLOB_PREFIX)
    ]
    forgotten = 0
    for info in fs.get_file_info(pafs.FileSelector(folder)):
        name = posixpath.basename(info.path)
        if name.endswith(PENDING_SUFFIX) or not name.endswith(io.SHARD_SUFFIX):
            continue  # pending records are Ray Data's to clean up (with the files they name)
        prefix = name[: -len(io.SHARD_SUFFIX)]
        if not any(d.startswith(prefix) for d in data):
            fs.delete_file(info.path)
            forgotten += 1
    if forgotten:
        log.warning("%d output file(s) were deleted: their rows will be done again", forgotten)
    return forgotten


def read_manifest(fs: pafs.FileSystem, root: str) -> dict | None:
    """The folder's manifest; None when there is none (``manifest.json``: an earlier layout's name)."""
    for name in (MANIFEST, "manifest.json"):
        if io.exists(fs, f"{root}/{name}"):
            return json.loads(io.read_text(fs, f"{root}/{name}"))
    return None


def check_output_target(uri: str, *, overwrite: bool) -> None:
    """Refuse, before any expensive work, an existing folder that holds something other than our output."""
    fs, root = io.resolve(uri)
    if overwrite or not io.exists(fs, root) or read_manifest(fs, root) is not None:
        return
    if any(not is_ours(i.path.rsplit("/", 1)[-1]) for i in fs.get_file_info(pafs.FileSelector(root))):
        raise ConfigError(
            f"--output: {uri} exists and is not a clipcluster shard folder; pass --overwrite or pick another"
        )


def is_ours(name: str) -> bool:
    """Whether a name in the output folder is one the job writes (a data file, bookkeeping, the checkpoint)."""
    return name in BOOKKEEPING or name == CHECKPOINT or name.startswith(io.SHARD_GLOB_PREFIX)


def clear_output(fs: pafs.FileSystem, root: str) -> None:
    """Delete what the job wrote in ``root`` (``--overwrite``); any other file stays."""
    if not io.exists(fs, root):
        return
    for info in fs.get_file_info(pafs.FileSelector(root)):
        name = info.path.rsplit("/", 1)[-1]
        if not is_ours(name) and name not in ("manifest.json", "stats.json"):
            continue
        if info.type == pafs.FileType.Directory:
            fs.delete_dir(info.path)
        else:
            fs.delete_file(info.path)


# --- statistics --------------------------------------------------------------------------------------------------


def file_record(name: str, table: pa.Table) -> dict:
    """What the statistics keep of one data file: rows, counts per status, top errors per status, bytes downloaded."""
    statuses = table[schema.STATUS].to_pylist()
    errors: dict[str, dict[str, int]] = {}
    for status, error in zip(statuses, table[schema.ERROR].to_pylist(), strict=True):
        if status != schema.Status.OK.value:
            per = errors.setdefault(status, {})
            per[error or ""] = per.get(error or "", 0) + 1
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return {
        "file": name,
        "rows": table.num_rows,
        "status_counts": dict(sorted(counts.items())),
        "top_errors": {s: _top(per) for s, per in sorted(errors.items())},
        "bytes": int(pc.sum(table[schema.BYTES]).as_py() or 0),
    }


def merge_records(records: Iterable[dict]) -> dict:
    """Counts over many files: rows, per status, top errors per status, bytes downloaded."""
    rows, total_bytes = 0, 0
    counts: dict[str, int] = {}
    errors: dict[str, dict[str, int]] = {}
    for record in records:
        rows += record["rows"]
        total_bytes += record["bytes"]
        for status, n in record["status_counts"].items():
            counts[status] = counts.get(status, 0) + n
        for status, per in record["top_errors"].items():
            merged = errors.setdefault(status, {})
            for error, n in per.items():
                merged[error] = merged.get(error, 0) + n
    return {
        "rows": rows,
        "status_counts": dict(sorted(counts.items())),
        "top_errors": {s: _top(per) for s, per in sorted(errors.items())},
        "bytes_downloaded": total_bytes,
    }


def _top(per_error: dict[str, int]) -> dict[str, int]:
    return dict(sorted(per_error.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ERRORS])


class LostRowsError(RuntimeError):
    """The folder does not hold every input row exactly once after a run that reported success."""


def check_exactly_once(plan: OutputPlan, paths: Sequence[str]) -> None:
    """Every input row is in the folder once: as many rows as the manifest counts, each id once.

    Reads only the ``id`` column. Raises :class:`LostRowsError` otherwise (a bug, not a user error: rerunning resumes).
    """
    ids = [pq.read_table(p, filesystem=plan.fs, columns=[schema.ID])[schema.ID] for p in paths]
    column = pa.chunked_array([c for part in ids for c in part.chunks], pa.string())
    distinct = pc.count_distinct(column).as_py() if len(column) else 0
    expected = plan.manifest["rows"]
    if len(column) != expected or distinct != expected:
        raise LostRowsError(
            f"{plan.uri} holds {len(column)} rows ({distinct} distinct ids) for {expected} input rows; "
            "rerun the same command to resume"
        )


def finish(plan: OutputPlan, *, new_files: Sequence[str], elapsed: float, extra: dict | None = None) -> dict:
    """Write ``_stats.json`` (whole-folder counts, this run's throughput, per-file records) and ``_SUCCESS``.

    Files recorded by an earlier run keep their records; the others are read (their status, error and bytes columns).
    Returns the statistics without the per-file records.
    """
    paths = io.list_shards(plan.uri)
    old = _old_records(plan)
    records = {}
    for path in paths:
        name = posixpath.basename(path)
        if name in old and name not in new_files:
            records[name] = old[name]
        else:
            columns = [schema.STATUS, schema.ERROR, schema.BYTES]
            records[name] = file_record(name, pq.read_table(path, filesystem=plan.fs, columns=columns))
    check_exactly_once(plan, paths)
    this_run = [records[n] for n in new_files if n in records]
    rows_now = sum(r["rows"] for r in this_run)
    ok_now = sum(r["status_counts"].get(schema.Status.OK.value, 0) for r in this_run)
    stats = {
        **merge_records(records.values()),
        "files": len(records),
        "rows_this_run": rows_now,
        "ok_this_run": ok_now,
        "elapsed_seconds": round(elapsed, 3),
        "images_per_second": round(ok_now / elapsed, 2) if elapsed > 0 else None,
        "version": __version__,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    document = {**stats, "file_records": {n: records[n] for n in sorted(records)}}
    io.write_bytes_atomic(plan.fs, plan.path(STATS), json.dumps(document, indent=2).encode())
    io.write_bytes_atomic(plan.fs, plan.path(SUCCESS), b"")
    return stats


def _old_records(plan: OutputPlan) -> dict[str, dict]:
    if not io.exists(plan.fs, plan.path(STATS)):
        return {}
    return json.loads(io.read_text(plan.fs, plan.path(STATS))).get("file_records", {})


def read_stats(plan: OutputPlan) -> dict:
    """The statistics an earlier run left, without per-file records; {} when none."""
    if not io.exists(plan.fs, plan.path(STATS)):
        return {}
    stats = json.loads(io.read_text(plan.fs, plan.path(STATS)))
    stats.pop("file_records", None)
    return stats

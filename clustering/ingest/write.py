"""The no-loss core: shard planning, resume bookkeeping, shard assembly and writing, and run statistics.

Input row ``i`` belongs to shard ``i // rows_per_shard``. Within a shard each distinct URL is one work item (reposts
are downloaded once). Results come back keyed by work item, in any order, possibly twice after a retried task; a
shard is assembled once every work item is in and written atomically where it was computed, and only a small
completion record (:func:`shard_record`) goes back to the driver. A rerun finds the finished shards and plans the rest.

Nothing here knows Ray: every function takes and returns plain Arrow tables and dicts, so the rules that keep rows
from being lost or duplicated are tested without a cluster.

The folder is a plain Parquet dataset: ``part-NNNNN.parquet`` shards plus bookkeeping under names Parquet readers skip
(``_manifest.json``, ``_stats.json``, ``_SUCCESS``, ``_ingest.log``). Folders written under the old names
(``manifest.json``, ``stats.json``) resume and are renamed on the way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
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
LEGACY_MANIFEST = "manifest.json"
LEGACY_STATS = "stats.json"
# Every file the job owns besides shards: what --overwrite may delete, and nothing else.
BOOKKEEPING = frozenset({MANIFEST, STATS, SUCCESS, LOG, LEGACY_MANIFEST, LEGACY_STATS})
RESULT_COLUMNS = [f.name for f in schema.RESULT_FIELDS] + [schema.EMBEDDING]
# Distinct error messages kept per status and shard; the run's top errors are merged from these.
TOP_ERRORS = 10
# The manifest fields that identify a run: a folder whose manifest differs in one of them belongs to another run.
IDENTITY = ("fingerprint", "model", "dim", "rows_per_shard")


# --- input identity ----------------------------------------------------------------------------------------------


class Fingerprint:
    """Identity of an input for resume, computed fragment by fragment: same ids, URLs, order and sharding give the
    same hex digest (the same digest as earlier versions computed over the whole table)."""

    def __init__(self, rows_per_shard: int) -> None:
        self._digest = hashlib.sha256(f"{rows_per_shard}\n".encode())
        self.rows = 0

    def update(self, fragment: pa.Table) -> None:
        ids, urls = fragment[schema.ID].to_pylist(), fragment[schema.URL].to_pylist()
        self._digest.update("".join(f"{i}\t{u}\n" for i, u in zip(ids, urls, strict=True)).encode())
        self.rows += fragment.num_rows

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


# --- planning and resume -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputPlan:
    """Where shards go and which are still to do.

    ``records`` holds the completion records of shards finished by earlier runs (from ``_stats.json``), so the final
    statistics cover the whole folder without reading it back.
    """

    uri: str
    fs: pafs.FileSystem
    root: str
    n_shards: int
    pending: tuple[int, ...]
    manifest: dict
    records: dict[int, dict] = field(default_factory=dict)

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"


def plan_output(
    uri: str, *, fingerprint: str, rows: int, rows_per_shard: int, model_meta: dict, overwrite: bool
) -> OutputPlan:
    """Decide which shards to (re)do, refusing to mix two different runs in one output folder.

    Writes ``_manifest.json`` before any work, so that an interrupted run is recognised by the next one.
    """
    fs, root = io.resolve(uri)
    n_shards = max(1, -(-rows // rows_per_shard))
    manifest = {
        "format": "clipcluster-shards",
        "schema_version": schema.SCHEMA_VERSION,
        "fingerprint": fingerprint,
        "rows": rows,
        "rows_per_shard": rows_per_shard,
        "shards": n_shards,
        "model": model_meta["model"],
        "dim": model_meta["dim"],
    }
    if overwrite:
        clear_output(fs, root)
    old = read_manifest(fs, root)
    if old is None:
        check_output_target(uri, overwrite=overwrite)
    else:
        changed = [k for k in IDENTITY if old.get(k) != manifest[k]]
        if changed:
            raise ConfigError(
                f"--output: {uri} holds shards of a different run ({', '.join(changed)} differ); "
                "pass --overwrite to replace them or choose another --output"
            )
    fs.create_dir(root, recursive=True)
    if old != manifest or not io.exists(fs, f"{root}/{MANIFEST}"):
        io.write_bytes_atomic(fs, f"{root}/{MANIFEST}", json.dumps(manifest, indent=2).encode())
    _delete_if_present(fs, f"{root}/{LEGACY_MANIFEST}")
    done = {shard_index(p) for p in io.list_shards(uri)}
    records = {s: r for s, r in _old_records(fs, root).items() if s in done}
    pending = tuple(s for s in range(n_shards) if s not in done)
    return OutputPlan(uri, fs, root, n_shards, pending, manifest, records)


def read_manifest(fs: pafs.FileSystem, root: str) -> dict | None:
    """The folder's manifest under its current or its old name; None when there is none."""
    for name in (MANIFEST, LEGACY_MANIFEST):
        if io.exists(fs, f"{root}/{name}"):
            return json.loads(io.read_text(fs, f"{root}/{name}"))
    return None


def check_output_target(uri: str, *, overwrite: bool) -> None:
    """Refuse, before any expensive work, an existing folder that holds something other than our shards."""
    fs, root = io.resolve(uri)
    if overwrite or not io.exists(fs, root) or read_manifest(fs, root) is not None:
        return
    if any(not is_ours(i.path.rsplit("/", 1)[-1]) for i in fs.get_file_info(pafs.FileSelector(root))):
        raise ConfigError(
            f"--output: {uri} exists and is not a clipcluster shard folder; pass --overwrite or pick another"
        )


def is_ours(name: str) -> bool:
    """Whether a file name in the output folder is one the job writes (a shard, its temp file, bookkeeping)."""
    return name in BOOKKEEPING or name.startswith((io.SHARD_GLOB_PREFIX, f".{io.SHARD_GLOB_PREFIX}"))


def clear_output(fs: pafs.FileSystem, root: str) -> None:
    """Delete what the job wrote in ``root`` (``--overwrite``); any other file stays."""
    if not io.exists(fs, root):
        return
    for info in fs.get_file_info(pafs.FileSelector(root)):
        if info.type == pafs.FileType.File and is_ours(info.path.rsplit("/", 1)[-1]):
            fs.delete_file(info.path)


def shard_index(path: str) -> int:
    return int(path.rsplit("-", 1)[1].split(".")[0])


def _delete_if_present(fs: pafs.FileSystem, path: str) -> None:
    if io.exists(fs, path):
        fs.delete_file(path)


def _old_records(fs: pafs.FileSystem, root: str) -> dict[int, dict]:
    path = f"{root}/{STATS}"
    if not io.exists(fs, path):
        return {}
    return {int(k): v for k, v in json.loads(io.read_text(fs, path)).get("shard_records", {}).items()}


# --- work items and shard assembly -------------------------------------------------------------------------------


def shard_work(fragment: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """The distinct URLs of one shard as work items, and the work item of each of its rows.

    Returns
    -------
    work : pyarrow.Table
        ``work_id`` (int64, ``0..n-1`` in order of first appearance) and ``url``.
    row_work : numpy.ndarray
        int64, the ``work_id`` of each row of ``fragment``.
    """
    unique: dict[str | None, int] = {}
    row_work = np.array([unique.setdefault(u, len(unique)) for u in fragment[schema.URL].to_pylist()], np.int64)
    work = pa.table(
        {
            schema.WORK_ID: pa.array(np.arange(len(unique), dtype=np.int64)),
            schema.URL: pa.array(list(unique), pa.string()),
        }
    )
    return work, row_work


class MissingWorkError(RuntimeError):
    """A shard was asked to be written before every one of its work items had a result."""


def assemble_shard(fragment: pa.Table, results: Sequence[pa.Table], *, shard_schema: pa.Schema) -> pa.Table:
    """One shard table: each input row of ``fragment`` with the result of its work item.

    Parameters
    ----------
    fragment : pyarrow.Table
        The shard's input rows: ``id``, ``url`` and the passthrough columns, in input order.
    results : sequence of pyarrow.Table
        Stage outputs holding ``work_id`` and the result columns, in any order; a work item delivered more than once
        (a retried task) is kept once.
    shard_schema : pyarrow.Schema
        The output schema (see :func:`clustering.schema.shard_schema`).

    Raises
    ------
    MissingWorkError
        When a work item of the shard has no result: writing would lose rows.
    """
    work, row_work = shard_work(fragment)
    merged = pa.concat_tables([r.select([schema.WORK_ID, *RESULT_COLUMNS]) for r in results]) if results else None
    ids = merged[schema.WORK_ID].to_numpy() if merged is not None else np.zeros(0, np.int64)
    order = np.argsort(ids, kind="stable")
    first = np.concatenate([[True], ids[order][1:] != ids[order][:-1]]) if len(ids) else np.zeros(0, bool)
    keep = order[first]
    missing = np.setdiff1d(np.arange(work.num_rows), ids[keep])
    if len(missing) or len(keep) != work.num_rows:
        raise MissingWorkError(f"{len(missing)} of {work.num_rows} work items have no result (first: {missing[:5]})")
    by_work = merged.take(pa.array(keep))  # row k holds work item k
    rows = by_work.take(pa.array(row_work))
    columns = {schema.ID: fragment[schema.ID], schema.URL: fragment[schema.URL]}
    columns.update({name: rows[name] for name in RESULT_COLUMNS})
    passthrough = [c for c in fragment.column_names if c not in (schema.ID, schema.URL)]
    columns.update({name: fragment[name] for name in passthrough})
    return pa.table(columns).cast(shard_schema)


@dataclass(frozen=True)
class ShardTarget:
    """Where and how a worker writes shards: the output URI (resolved on the worker) and the shard schema."""

    uri: str
    shard_schema: pa.Schema


def write_shard(shard: int, fragment: pa.Table, results: Sequence[pa.Table], *, target: ShardTarget) -> dict:
    """Assemble and atomically write one shard; return its completion record (see :func:`shard_record`).

    Idempotent: a retried task rewrites the same file with the same rows.
    """
    table = assemble_shard(fragment, results, shard_schema=target.shard_schema)
    fs, root = io.resolve(target.uri)
    io.write_parquet_atomic(table, fs, f"{root}/{io.shard_name(shard)}")
    return shard_record(shard, table)


# --- statistics --------------------------------------------------------------------------------------------------


def shard_record(shard: int, table: pa.Table) -> dict:
    """What the driver keeps of a written shard: rows, counts per status, top errors per status, bytes downloaded."""
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
        "shard": shard,
        "rows": table.num_rows,
        "status_counts": dict(sorted(counts.items())),
        "top_errors": {s: _top(per) for s, per in sorted(errors.items())},
        "bytes": int(pc.sum(table[schema.BYTES]).as_py() or 0),
    }


def record_from_file(fs: pafs.FileSystem, path: str) -> dict:
    """The completion record of a shard written by an earlier run that left none (older versions)."""
    table = pq.read_table(path, filesystem=fs, columns=[schema.STATUS, schema.ERROR, schema.BYTES])
    return shard_record(shard_index(path), table)


def merge_records(records: Iterable[dict]) -> dict:
    """Counts over many shards: rows, per status, top errors per status, bytes downloaded."""
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


def finish(plan: OutputPlan, records: Sequence[dict], *, elapsed: float, extra: dict | None = None) -> dict:
    """Write ``_stats.json`` (whole-folder counts, this run's throughput, per-shard records) and ``_SUCCESS``.

    Shards finished by an earlier run keep their recorded counts; those without a record (older versions) are read.
    Returns the statistics without the per-shard records.
    """
    by_shard = dict(plan.records)
    by_shard.update({r["shard"]: r for r in records})
    for path in io.list_shards(plan.uri):
        if shard_index(path) not in by_shard:
            record = record_from_file(plan.fs, path)
            by_shard[record["shard"]] = record
    rows_now = sum(r["rows"] for r in records)
    ok_now = sum(r["status_counts"].get(schema.Status.OK.value, 0) for r in records)
    stats = {
        **merge_records(by_shard.values()),
        "shards": len(by_shard),
        "rows_this_run": rows_now,
        "ok_this_run": ok_now,
        "elapsed_seconds": round(elapsed, 3),
        "images_per_second": round(ok_now / elapsed, 2) if elapsed > 0 else None,
        "version": __version__,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    document = {**stats, "shard_records": {str(s): by_shard[s] for s in sorted(by_shard)}}
    io.write_bytes_atomic(plan.fs, plan.path(STATS), json.dumps(document, indent=2).encode())
    _delete_if_present(plan.fs, plan.path(LEGACY_STATS))
    if len(by_shard) == plan.n_shards:
        io.write_bytes_atomic(plan.fs, plan.path(SUCCESS), b"")
    return stats


def read_stats(plan: OutputPlan) -> dict:
    """The statistics an earlier run left (current or old name), without per-shard records; {} when none."""
    for name in (STATS, LEGACY_STATS):
        if io.exists(plan.fs, plan.path(name)):
            stats = json.loads(io.read_text(plan.fs, plan.path(name)))
            stats.pop("shard_records", None)
            return stats
    return {}

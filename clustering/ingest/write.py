"""Shard planning, resume bookkeeping and assembly of finished shards on the driver.

Input row ``i`` belongs to shard ``i // rows_per_shard``. Within a shard each distinct URL becomes one work item
(reposts are downloaded once), results come back in any order, possibly twice after a retried task, and a shard is
written, atomically, the moment its last work item arrives. A rerun finds the finished shards and only plans the rest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from clustering import __version__, io, schema
from clustering.config import ConfigError
from clustering.ingest.read import InputTable

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STATS = "stats.json"
RESULT_COLUMNS = [f.name for f in schema.RESULT_FIELDS] + [schema.EMBEDDING]


def fingerprint(inp: InputTable, rows_per_shard: int) -> str:
    """Identity of an input for resume: same ids, URLs, order and sharding give the same fingerprint."""
    digest = hashlib.sha256(f"{rows_per_shard}\n".encode())
    for row_id, url in zip(inp.table[schema.ID].to_pylist(), inp.table[schema.URL].to_pylist(), strict=True):
        digest.update(f"{row_id}\t{url}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class OutputPlan:
    fs: pafs.FileSystem
    root: str
    n_shards: int
    pending: tuple[int, ...]
    manifest: dict


def plan_output(uri: str, inp: InputTable, *, rows_per_shard: int, model_meta: dict, overwrite: bool) -> OutputPlan:
    """Decide which shards to (re)do, refusing to mix two different runs in one output folder."""
    fs, root = io.resolve(uri)
    n_shards = max(1, -(-inp.num_rows // rows_per_shard))
    manifest = {
        "format": "clipcluster-shards",
        "schema_version": schema.SCHEMA_VERSION,
        "fingerprint": fingerprint(inp, rows_per_shard),
        "rows": inp.num_rows,
        "rows_per_shard": rows_per_shard,
        "shards": n_shards,
        "model": model_meta["model"],
        "dim": model_meta["dim"],
    }
    manifest_path = f"{root}/{MANIFEST}"
    if overwrite:
        _clear(fs, root)
    elif io.exists(fs, manifest_path):
        old = json.loads(io.read_text(fs, manifest_path))
        changed = [k for k in ("fingerprint", "model", "dim", "rows_per_shard") if old.get(k) != manifest[k]]
        if changed:
            raise ConfigError(
                f"--output: {uri} holds shards of a different run ({', '.join(changed)} differ); "
                "pass --overwrite to replace them or choose another --output"
            )
    else:
        check_output_target(uri, overwrite=False)
    fs.create_dir(root, recursive=True)
    io.write_text(fs, manifest_path, json.dumps(manifest, indent=2))
    done = {int(p.rsplit("-", 1)[1].split(".")[0]) for p in io.list_shards(uri)}
    pending = tuple(s for s in range(n_shards) if s not in done)
    return OutputPlan(fs=fs, root=root, n_shards=n_shards, pending=pending, manifest=manifest)


def check_output_target(uri: str, *, overwrite: bool) -> None:
    """Refuse, before any expensive work, an existing folder that holds something other than our shards."""
    fs, root = io.resolve(uri)
    if overwrite or not io.exists(fs, root) or io.exists(fs, f"{root}/{MANIFEST}"):
        return
    if fs.get_file_info(pafs.FileSelector(root)):
        raise ConfigError(
            f"--output: {uri} exists and is not a clipcluster shard folder; pass --overwrite or pick another"
        )


def _clear(fs: pafs.FileSystem, root: str) -> None:
    if not io.exists(fs, root):
        return
    for info in fs.get_file_info(pafs.FileSelector(root)):
        name = info.path.rsplit("/", 1)[-1]
        if name in (MANIFEST, STATS) or name.startswith((io.SHARD_GLOB_PREFIX, f".{io.SHARD_GLOB_PREFIX}")):
            fs.delete_file(info.path)


class ShardAssembler:
    """Collects pipeline results by work item and writes each shard once all of its work items are in."""

    def __init__(self, plan: OutputPlan, inp: InputTable, *, rows_per_shard: int, shard_schema: pa.Schema) -> None:
        self.plan, self.inp, self.rows_per_shard, self.schema = plan, inp, rows_per_shard, shard_schema
        self._row_work: dict[int, np.ndarray] = {}  # shard -> work id of each of its rows
        self._first_work: dict[int, int] = {}  # shard -> its first work id
        urls, work_ids, next_id = [], [], 0
        for shard in plan.pending:
            shard_urls = self._slice(shard)[schema.URL].to_pylist()
            unique: dict[str | None, int] = {}
            rows = np.array([unique.setdefault(u, len(unique)) for u in shard_urls], np.int64)
            self._first_work[shard] = next_id
            self._row_work[shard] = rows + next_id
            urls.extend(unique)
            work_ids.extend(range(next_id, next_id + len(unique)))
            next_id += len(unique)
        self.work = pa.table({schema.WORK_ID: pa.array(work_ids, pa.int64()), schema.URL: pa.array(urls, pa.string())})
        self._starts = np.array([self._first_work[s] for s in plan.pending], np.int64)
        self._received: dict[int, list[pa.Table]] = {s: [] for s in plan.pending}
        self._seen: dict[int, set[int]] = {s: set() for s in plan.pending}
        self.written: list[int] = []
        self.rows_written = 0
        self.ok_written = 0

    def _slice(self, shard: int) -> pa.Table:
        start = shard * self.rows_per_shard
        return self.inp.table.slice(start, self.rows_per_shard)

    def add(self, batch: pa.Table) -> None:
        """Take one result batch; write every shard it completes."""
        work_ids = batch[schema.WORK_ID].to_numpy()
        owner = np.searchsorted(self._starts, work_ids, side="right") - 1
        for position in np.unique(owner):
            shard = self.plan.pending[position]
            part = batch.filter(pa.array(owner == position))
            self._received[shard].append(part)
            self._seen[shard].update(part[schema.WORK_ID].to_pylist())
            if len(self._seen[shard]) == int(self._row_work[shard].max(initial=-1) - self._first_work[shard] + 1):
                self._write(shard)

    def _write(self, shard: int) -> None:
        results = pa.concat_tables(self._received.pop(shard))
        # A retried task may deliver a work item twice: keep one copy per work id, ordered by work id.
        order = np.argsort(results[schema.WORK_ID].to_numpy(), kind="stable")
        ids = results[schema.WORK_ID].to_numpy()[order]
        keep = order[np.concatenate([[True], ids[1:] != ids[:-1]])] if len(ids) else order
        results = results.take(pa.array(keep))
        rows = results.take(pa.array(self._row_work[shard] - self._first_work[shard]))
        source = self._slice(shard)
        columns = {schema.ID: source[schema.ID], schema.URL: source[schema.URL]}
        columns.update({name: rows[name] for name in RESULT_COLUMNS})
        columns.update({name: source[name] for name in self.inp.passthrough})
        table = pa.table(columns).cast(self.schema)
        io.write_parquet_atomic(table, self.plan.fs, f"{self.plan.root}/{io.shard_name(shard)}")
        self.written.append(shard)
        self.rows_written += table.num_rows
        ok = pc.sum(pc.equal(table[schema.STATUS], schema.Status.OK.value)).as_py() or 0
        self.ok_written += ok
        log.info(
            "shard %d written: %d rows, %d ok (%d/%d shards this run)",
            shard,
            table.num_rows,
            ok,
            len(self.written),
            len(self.plan.pending),
        )

    def missing(self) -> list[int]:
        return [s for s in self.plan.pending if s not in self.written]


def collect_stats(uri: str, *, elapsed: float, rows_this_run: int, ok_this_run: int) -> dict:
    """Counts over the whole output (every shard), plus this run's timing."""
    table = io.read_shards(uri, columns=[schema.STATUS, schema.ERROR, schema.BYTES])
    statuses = table[schema.STATUS].to_pylist()
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    errors: dict[str, dict[str, int]] = {}
    for s, e in zip(statuses, table[schema.ERROR].to_pylist(), strict=True):
        if s != schema.Status.OK.value:
            per = errors.setdefault(s, {})
            per[e or ""] = per.get(e or "", 0) + 1
    top_errors = {s: dict(sorted(per.items(), key=lambda kv: -kv[1])[:10]) for s, per in errors.items()}
    return {
        "rows": table.num_rows,
        "status_counts": dict(sorted(counts.items())),
        "top_errors": top_errors,
        "bytes_downloaded": int(pc.sum(table[schema.BYTES]).as_py() or 0),
        "rows_this_run": rows_this_run,
        "ok_this_run": ok_this_run,
        "elapsed_seconds": round(elapsed, 3),
        "images_per_second": round(ok_this_run / elapsed, 2) if elapsed > 0 else None,
        "version": __version__,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_stats(plan: OutputPlan, stats: dict) -> None:
    io.write_text(plan.fs, f"{plan.root}/{STATS}", json.dumps(stats, indent=2))

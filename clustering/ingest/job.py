"""The ingest job on Ray Data: read → fetch+decode → embed → Parquet, resumable, every row once with a status.

The job starts Ray (or attaches to its cluster) first; while Ray's processes start, the driver reads its input and the
model's configuration and imports Ray Data and the stages. Then it hands one Ray Data pipeline to Ray:
``ReadUrlTable`` (:mod:`clustering.ingest.source`) → ``embed_images`` (:mod:`clustering.ingest.dataset`) → ``Write``
(Parquet, with Ray Data's checkpoint so a rerun skips the ids already written). Ray Data schedules, streams, backs
off, retries lost work and scales the actor pools with the cluster; the driver holds no rows. When the write ends, the
folder's statistics are computed from the files and the run checks that every input row is there exactly once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pyarrow as pa

from clustering import __version__, cli, io, schema
from clustering.config import ConfigError, IngestConfig, to_dict
from clustering.ingest import console, write

if TYPE_CHECKING:
    from clustering.ingest.clip_embedder import ModelInfo
    from clustering.ingest.read import InputScan, InputSource

log = logging.getLogger(__name__)

# Logical CPUs of a read task and of a cast+write task: none. Both are short and mostly I/O, and they must always
# find room: on a 2-CPU machine the fetch and embed actors (half a CPU each) and, on resume, Ray Data's checkpoint
# filter (1 CPU) hold every logical CPU, and a read or write waiting for one would stall the job for good.
READ_CPUS = 0
WRITE_CPUS = 0
# A local runtime gets at least this many logical CPUs: the stages' actors, the reads and the writes, and on resume
# Ray Data's checkpoint filter (1 CPU), must all fit, or the pipeline waits forever for a free CPU (Ray #44687).
MIN_LOCAL_CPUS = 2


@dataclasses.dataclass(frozen=True)
class IngestResult:
    output: str
    stats: dict
    files_written: int
    files_total: int


def connect_ray(config: IngestConfig):
    """Attach to the cluster this job runs in (``ray job submit`` sets RAY_ADDRESS), else start a local runtime."""
    import ray

    if ray.is_initialized():
        return ray
    address = config.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        cpus = max(os.cpu_count() or 1, MIN_LOCAL_CPUS)
        ray.init(address="local", num_cpus=cpus, include_dashboard=False)
    return ray


def check_shared_output(config: IngestConfig, nodes: int) -> None:
    """A plain local path on a multi-node cluster scatters files over nodes: refuse unless declared shared."""
    fs, _ = io.resolve(config.output)
    import pyarrow.fs as pafs

    if nodes > 1 and isinstance(fs, pafs.LocalFileSystem) and not config.shared_output:
        raise ConfigError(
            f"--output: {config.output} is a local path but the cluster has {nodes} nodes; use shared storage "
            "(s3://, gs://, ...) or pass --shared-output if this path is on a filesystem every node mounts"
        )


def shard_metadata(config: IngestConfig, info: ModelInfo) -> dict:
    from clustering.ingest.clip_embedder import preprocess_dict

    return {
        "model": info.model,
        "model_name_or_path": info.name_or_path,
        "dim": info.dim,
        "random_weights": info.random_weights,
        "preprocess": preprocess_dict(info.preprocess),
        "clipcluster_version": __version__,
        "schema_version": schema.SCHEMA_VERSION,
        "decode": to_dict(config.decode_options()),
    }


def load_model_info(model: str) -> ModelInfo:
    """The model's dimension and preprocessing, or one line saying why ``model`` is not a usable CLIP checkpoint."""
    from clustering.ingest.clip_embedder import model_info

    try:
        return model_info(model)
    except (OSError, ValueError) as exc:  # missing files, no network, or a config that is not CLIP's
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--model: {model} is not a usable CLIP checkpoint: {reason}") from None


def run_ingest(config: IngestConfig) -> IngestResult:
    """Run the whole ingest job described by ``config``; safe to rerun (rows already written are skipped).

    INFO logs go to ``_ingest.log`` in the output folder (written when the run ends); the console keeps warnings,
    one progress bar and the summary the entrypoint prints (Ray's known driver note included: see
    :mod:`clustering.ingest.console`).
    """
    write.check_output_target(config.output, overwrite=config.overwrite)
    with _log_file() as (log_path, adopt_loggers):
        try:
            return _run(config, adopt_loggers)
        finally:  # a failed run's log is the one worth reading
            _store_log(config.output, log_path)


@dataclasses.dataclass(frozen=True)
class _Prepared:
    source: InputSource
    scan: InputScan
    info: ModelInfo


def _prepare(config: IngestConfig, pool: ThreadPoolExecutor) -> _Prepared:
    """Read the input and the model's configuration; every user error surfaces here, the input's first."""
    from clustering.ingest.read import open_input

    source = open_input(config.input, url_column=config.url_column, id_column=config.id_column, limit=config.limit)
    info = pool.submit(load_model_info, config.model)
    log.info("input: %s (url column %r, passthrough %s)", config.input, source.url_column, list(source.passthrough))
    scan = source.scan()
    log.info("input: %d rows in %d part(s), fingerprint %s", scan.rows, len(source.parts), scan.fingerprint)
    return _Prepared(source, scan, info.result())


def _import_stages() -> None:
    """Import what the pipeline is built from: Ray Data (most of a second) and the stages."""
    for module in ("ray.data", "ray.data.checkpoint", "clustering.ingest.dataset", "clustering.ingest.source"):
        importlib.import_module(module)


def _run(config: IngestConfig, adopt_loggers: Callable[[], None]) -> IngestResult:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="ingest-start") as pool:
        # Ray starts first, in the main thread (the processes a local runtime starts die with the thread that started
        # them); its processes take seconds to come up, and the driver reads the input and the model's configuration
        # and imports Ray Data and the stages meanwhile.
        imported = pool.submit(_import_stages)
        prepared_future = pool.submit(_prepare, config, pool)
        ray = connect_ray(config)
        imported.result()
        adopt_loggers()  # Ray Data set up its console logger on import
        prepared = prepared_future.result()
    with console.ray_notes_to_log(log):
        return _run_pipeline(config, ray, prepared, started)


def _run_pipeline(config: IngestConfig, ray, prepared: _Prepared, started: float) -> IngestResult:
    meta = shard_metadata(config, prepared.info)
    plan = write.plan_output(
        config.output,
        fingerprint=prepared.scan.fingerprint,
        rows=prepared.scan.rows,
        model_meta=meta,
        overwrite=config.overwrite,
    )
    if plan.finished:
        log.info("every row is already in %s: nothing to do", config.output)
        return IngestResult(config.output, write.read_stats(plan), 0, len(io.list_shards(config.output)))
    nodes = len([n for n in ray.nodes() if n.get("Alive")])
    check_shared_output(config, nodes)
    resources = ray.cluster_resources()
    log.info("cluster: %d node(s), %d CPUs, %d GPUs", nodes, resources.get("CPU", 0), resources.get("GPU", 0))
    shard_schema = schema.shard_schema(prepared.source.passthrough_schema, prepared.info.dim, meta)
    before = {os.path.basename(p) for p in io.list_shards(config.output)}
    dataset = build_dataset(config, prepared, shard_schema, plan)
    dataset.write_parquet(
        plan.root,
        filesystem=plan.fs,
        filename_provider=write.PartNames(),
        min_rows_per_file=config.rows_per_shard,
        ray_remote_args={"num_cpus": WRITE_CPUS},
    )
    new_files = sorted({os.path.basename(p) for p in io.list_shards(config.output)} - before)
    cluster = {"nodes": nodes, "cpus": int(resources.get("CPU", 0)), "gpus": int(resources.get("GPU", 0))}
    extra = {"model": prepared.info.model, "cluster": cluster}
    stats = write.finish(plan, new_files=new_files, elapsed=time.perf_counter() - started, extra=extra)
    return IngestResult(config.output, stats, len(new_files), stats["files"])


def build_dataset(config: IngestConfig, prepared: _Prepared, shard_schema: pa.Schema, plan: write.OutputPlan):
    """The job's Ray Data pipeline, up to the write: read, fetch+decode, embed, cast to the output schema."""
    import ray.data
    from ray.data.checkpoint import CheckpointConfig

    from clustering.ingest.dataset import embed_images
    from clustering.ingest.source import UrlTableDatasource

    # One block per fetch batch, split inside the read tasks: the blocks are what the fetch actors share.
    blocks = max(1, -(-prepared.scan.rows // config.download_batch_size))
    source = UrlTableDatasource(prepared.source, prepared.scan)
    dataset = ray.data.read_datasource(source, num_cpus=READ_CPUS, override_num_blocks=blocks)
    context = dataset.context
    context.checkpoint_config = CheckpointConfig(
        id_column=schema.ID,
        checkpoint_path=plan.checkpoint,
        delete_checkpoint_on_success=False,  # a rerun of a finished job must still know every id is done
        override_filesystem=plan.fs,
    )
    context.enable_progress_bars = config.progress
    context.enable_operator_progress_bars = False  # one bar for the job; the dashboard has the operators
    context.enable_auto_log_stats = False
    context.op_resource_reservation_enabled = False
    dataset.set_name("clipcluster-ingest")
    embedded = embed_images(
        dataset,
        model=config.model,
        download=config.download_options(),
        decode=config.decode_options(),
        stages=config.stage_options(),
        info=prepared.info,
        local_root=prepared.source.local_root,
    )
    return embedded.map_batches(
        _to_output_schema,
        fn_kwargs={"output_schema": shard_schema},
        batch_format="pyarrow",
        num_cpus=WRITE_CPUS,
        udf_modifying_row_count=False,
    )


def _to_output_schema(batch: pa.Table, output_schema: pa.Schema) -> pa.Table:
    """The contract's columns in the contract's order and types, passthrough as read, the run's metadata attached."""
    return batch.select(output_schema.names).cast(output_schema)


@contextlib.contextmanager
def _log_file():
    """A local temporary file for the run's log, until it can join the output (see :func:`_store_log`); yields its path
    and the function that redirects Ray Data's logger too once Ray Data is imported."""
    handle, path = tempfile.mkstemp(prefix="clipcluster-ingest-", suffix=".log")
    os.close(handle)
    # Importing Ray installs its console handler: the log file redirects it (Ray Data's follows after its import).
    import ray  # noqa: F401

    with cli.log_to_file(path) as adopt_loggers:
        yield path, adopt_loggers


def _store_log(output: str, log_path: str) -> None:
    """Put the log in the output folder as ``_ingest.log``, unless the run stopped before the folder existed (a bad
    option or input must not leave a folder behind)."""
    fs, root = io.resolve(output)
    if io.exists(fs, root):
        with open(log_path, "rb") as src:
            io.write_bytes_atomic(fs, f"{root}/{write.LOG}", src.read())
    os.unlink(log_path)


def summary_lines(result: IngestResult) -> list[str]:
    """The end-of-run summary a person reads: rows in/out, ok, each failure class, throughput, where the log is."""
    s = result.stats
    counts = s.get("status_counts", {})
    failures = ", ".join(f"{k} {v}" for k, v in counts.items() if k != schema.Status.OK.value) or "none"
    lines = [
        f"files: {result.files_written} written this run, {result.files_total} in total at {result.output}",
        f"rows: {s.get('rows', 0)} out, {counts.get('ok', 0)} ok; failures: {failures}",
    ]
    if result.files_written:
        lines.append(
            f"this run: {s['rows_this_run']} rows, {s['ok_this_run']} images embedded in "
            f"{s['elapsed_seconds']:.1f} s ({s['images_per_second']} images/s); log: {result.output}/{write.LOG}"
        )
    return lines

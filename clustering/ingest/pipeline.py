"""Ray wiring of the ingest job: read → plan shards → download → decode → embed → assemble shards → stats.

All stage logic lives in the stage modules; this module only sizes the actor pools from the cluster it runs on, builds
the Ray Data pipeline and streams results back to the driver, which writes each shard as soon as it is complete.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace

import pyarrow as pa

from clustering import __version__, io, schema
from clustering.config import ConfigError, IngestConfig, to_dict
from clustering.ingest import write
from clustering.ingest.embed import ModelInfo, model_info, preprocess_dict
from clustering.ingest.read import read_input

log = logging.getLogger(__name__)

# Download actors wait on sockets, not CPUs; a quarter CPU each leaves room for decode tasks and the embed actor
# even on a 2-CPU laptop (0.25 + 0.5 + 1 <= 2), where whole-CPU reservations would starve the decode stage.
DOWNLOAD_CPUS = 0.25
DECODE_CPUS = 0.5
EMBED_CPUS = 1  # feeds a GPU, or is the compute itself on CPU-only machines
# One download actor per 8 cluster CPUs: each runs --max-in-flight requests at once, which is what saturates links.
CPUS_PER_DOWNLOAD_ACTOR = 8
# A node lost mid-job (spot reclaim, a crash) must cost time, not rows. Ray Data 2.60 restarts actors and retries actor
# tasks and plain tasks without limit by default (ActorPoolMapOperator._apply_default_remote_args,
# remote_fn.cached_remote_fn: max_restarts = max_task_retries = max_retries = -1). They are not repeated below because
# map_batches(**ray_remote_args) is deprecated in 2.60 (removed in 2.64); tests/test_cluster.py pins these defaults, so
# a Ray upgrade that changes them fails a test instead of making the job fragile. Only system failures (a dead worker
# or node) are retried: every stage catches per-row errors itself. Results a retried task delivers twice are dropped by
# the driver (write.ShardAssembler keys them by work id).


@dataclass(frozen=True)
class PoolSizes:
    download_actors: int
    decode_tasks: int
    embed_actors: int
    gpus_per_embed_actor: float
    cluster_cpus: int
    cluster_gpus: int
    nodes: int


@dataclass(frozen=True)
class IngestResult:
    output: str
    stats: dict
    shards_written: int
    shards_total: int


def connect_ray(config: IngestConfig):
    """Attach to the cluster this job runs in (``ray job submit`` sets RAY_ADDRESS), else start a local runtime."""
    import ray

    if ray.is_initialized():
        return ray
    address = config.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False)
    return ray


def pool_sizes(config: IngestConfig, resources: dict, nodes: int) -> PoolSizes:
    """Size actor pools from the cluster's resources: one embed actor per GPU, CPU stages from the CPU count.

    The embed pool is fixed-size. Ray Data's actor autoscaler only grows a pool within the resource budget of nodes
    that already exist (``default_actor_autoscaler``; GPU pools stuck at one actor: ray-project/ray#59144), whereas a
    fixed pool of N actors asks for N GPUs up front and its pending actors make the cluster autoscaler add GPU nodes.
    So on a cluster that scales GPU nodes from zero, ``--embed-actors N --num-gpus-per-actor 1`` is trusted beyond
    the GPUs present now.
    """
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 1))
    per_actor = config.num_gpus_per_actor if config.num_gpus_per_actor is not None else (1.0 if gpus else 0.0)
    if per_actor > gpus and not config.embed_actors:
        raise ConfigError(
            f"--num-gpus-per-actor {per_actor:g} exceeds the cluster's {gpus} GPUs; on a cluster that adds GPU "
            "nodes on demand, also pass --embed-actors N so the job asks for N GPU actors up front"
        )
    embed = config.embed_actors or (int(gpus // per_actor) if per_actor > 0 else 1)
    if per_actor * embed > gpus:
        log.warning(
            "%d embed actor(s) x %g GPU asked for, the cluster has %d GPU(s) now: waiting for the autoscaler to add "
            "GPU nodes (the job stalls if it never does)",
            embed,
            per_actor,
            gpus,
        )
    elif per_actor == 0 and nodes > 1:
        log.warning("the cluster has no GPUs: embedding on CPU (pass --embed-actors/--num-gpus-per-actor to change)")
    download = config.download_actors or max(1, cpus // CPUS_PER_DOWNLOAD_ACTOR)
    # Cap decode tasks to the CPUs the actors leave free: unbounded, they take every CPU while the embed actors
    # wait for one, and embedding (plus its model load) only starts once decoding is over (seen on 2 CPUs).
    free = cpus - download * DOWNLOAD_CPUS - embed * EMBED_CPUS
    decode = max(1, int(free // DECODE_CPUS))
    return PoolSizes(download, decode, embed, per_actor, cpus, gpus, nodes)


def check_shared_output(config: IngestConfig, nodes: int) -> None:
    """A plain local path on a multi-node cluster scatters shards over nodes: refuse unless declared shared."""
    fs, _ = io.resolve(config.output)
    import pyarrow.fs as pafs

    if nodes > 1 and isinstance(fs, pafs.LocalFileSystem) and not config.shared_output:
        raise ConfigError(
            f"--output: {config.output} is a local path but the cluster has {nodes} nodes; use shared storage "
            "(s3://, gs://, ...) or pass --shared-output if this path is on a filesystem every node mounts"
        )


def build_dataset(
    work: pa.Table, config: IngestConfig, info: ModelInfo, sizes: PoolSizes, *, local_root: str | None = None
):
    """The Ray Data pipeline over unique work items; returns a Dataset of result batches.

    ``local_root`` is the image folder given as input (``InputTable.local_root``), readable with local files off.
    """
    import ray.data
    from ray.data import ActorPoolStrategy, TaskPoolStrategy

    from clustering.ingest.decode import decode_batch
    from clustering.ingest.download import Downloader
    from clustering.ingest.embed import ClipEmbedder

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = config.progress
    ctx.execution_options.preserve_order = False
    step = config.download_batch_size
    # One block per download batch so every stage sees parallel work from the start.
    blocks = [work.slice(i, step) for i in range(0, work.num_rows, step)] or [work]
    ds = ray.data.from_arrow(blocks)
    ds = ds.map_batches(
        Downloader,
        fn_constructor_kwargs={"options": config.download_options(), "local_root": local_root},
        batch_format="pyarrow",
        batch_size=step,
        compute=ActorPoolStrategy(min_size=1, max_size=sizes.download_actors),
        num_cpus=DOWNLOAD_CPUS,
    )
    ds = ds.map_batches(
        decode_batch,
        fn_kwargs={"options": config.decode_options(), "spec": info.preprocess},
        batch_format="pyarrow",
        batch_size=config.batch_size,
        num_cpus=DECODE_CPUS,
        compute=TaskPoolStrategy(size=sizes.decode_tasks),
    )
    return ds.map_batches(
        ClipEmbedder,
        fn_constructor_kwargs={
            "model": config.model,
            "preprocess": preprocess_dict(info.preprocess),
            "batch_size": config.batch_size,
        },
        batch_format="pyarrow",
        batch_size=config.batch_size,
        num_gpus=sizes.gpus_per_embed_actor,
        num_cpus=EMBED_CPUS,
        compute=ActorPoolStrategy(size=sizes.embed_actors),
    )


def shard_metadata(config: IngestConfig, info: ModelInfo) -> dict:
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


def run_ingest(config: IngestConfig) -> IngestResult:
    """Run the whole ingest job described by ``config``; safe to rerun (finished shards are kept)."""
    started = time.perf_counter()
    inp = read_input(config.input, url_column=config.url_column, id_column=config.id_column)
    if config.limit is not None:
        inp = replace(inp, table=inp.table.slice(0, config.limit))
    log.info(
        "input: %d rows from %s (url column %r, %d passthrough columns)",
        inp.num_rows,
        config.input,
        inp.url_column,
        len(inp.passthrough),
    )
    write.check_output_target(config.output, overwrite=config.overwrite)
    try:
        info = model_info(config.model)
    except OSError as exc:
        raise ConfigError(f"--model: cannot load {config.model}: {str(exc).splitlines()[0]}") from None
    meta = shard_metadata(config, info)
    plan = write.plan_output(
        config.output, inp, rows_per_shard=config.rows_per_shard, model_meta=meta, overwrite=config.overwrite
    )
    if not plan.pending:
        log.info("all %d shards already finished in %s: nothing to do", plan.n_shards, config.output)
        return IngestResult(config.output, _existing_stats(plan), 0, plan.n_shards)

    ray = connect_ray(config)
    nodes = len([n for n in ray.nodes() if n.get("Alive")])
    check_shared_output(config, nodes)
    sizes = pool_sizes(config, ray.cluster_resources(), nodes)
    log.info(
        "cluster: %d node(s), %d CPUs, %d GPUs -> %d download actor(s), %d decode task(s), %d embed actor(s) x %g GPU",
        nodes,
        sizes.cluster_cpus,
        sizes.cluster_gpus,
        sizes.download_actors,
        sizes.decode_tasks,
        sizes.embed_actors,
        sizes.gpus_per_embed_actor,
    )
    passthrough_schema = pa.schema([inp.table.schema.field(c) for c in inp.passthrough])
    assembler = write.ShardAssembler(
        plan,
        inp,
        rows_per_shard=config.rows_per_shard,
        shard_schema=schema.shard_schema(passthrough_schema, info.dim, meta),
    )
    log.info("%d of %d shards to do: %d unique URLs", len(plan.pending), plan.n_shards, assembler.work.num_rows)
    for batch in build_dataset(assembler.work, config, info, sizes, local_root=inp.local_root).iter_batches(
        batch_format="pyarrow", batch_size=None
    ):
        assembler.add(batch)
    missing = assembler.missing()
    if missing:  # cannot happen unless Ray dropped blocks; say so loudly rather than report success
        raise RuntimeError(f"shards {missing} never completed; rerun the same command to resume them")
    elapsed = time.perf_counter() - started
    stats = write.collect_stats(
        config.output, elapsed=elapsed, rows_this_run=assembler.rows_written, ok_this_run=assembler.ok_written
    )
    stats["model"], stats["cluster"] = (
        info.model,
        {"nodes": nodes, "cpus": sizes.cluster_cpus, "gpus": sizes.cluster_gpus},
    )
    write.write_stats(plan, stats)
    return IngestResult(config.output, stats, len(assembler.written), plan.n_shards)


def _existing_stats(plan: write.OutputPlan) -> dict:
    import json

    path = f"{plan.root}/{write.STATS}"
    return json.loads(io.read_text(plan.fs, path)) if io.exists(plan.fs, path) else {}


def summary_lines(result: IngestResult) -> list[str]:
    """The end-of-run summary a person reads: rows in/out, ok, each failure class, throughput."""
    s = result.stats
    counts = s.get("status_counts", {})
    failures = ", ".join(f"{k} {v}" for k, v in counts.items() if k != schema.Status.OK.value) or "none"
    lines = [
        f"shards: {result.shards_written} written this run, {result.shards_total} in total at {result.output}",
        f"rows: {s.get('rows', 0)} out, {counts.get('ok', 0)} ok; failures: {failures}",
    ]
    if result.shards_written:
        lines.append(
            f"this run: {s['rows_this_run']} rows, {s['ok_this_run']} images embedded in "
            f"{s['elapsed_seconds']:.1f} s ({s['images_per_second']} images/s)"
        )
    return lines

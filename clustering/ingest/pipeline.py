"""Ray wiring of the ingest job: read → plan shards → fetch+decode → embed → write shards → stats.

Stage logic lives in the stage modules and the scheduling in :mod:`clustering.ingest.runner`; this module reads and
plans, sizes the stages from the cluster it runs on, builds their Ray handles, and records the run. The driver never
holds more than the shards in flight: workers write the shards and return small completion records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Iterator

import pyarrow as pa

from clustering import __version__, cli, io, schema
from clustering.config import ConfigError, IngestConfig, to_dict
from clustering.ingest import write
from clustering.ingest.embed import ModelInfo, model_info, preprocess_dict
from clustering.ingest.fetch import FetchDecode
from clustering.ingest.read import InputSource, open_input
from clustering.ingest.runner import (
    STAGE_RETRIES,
    WRITE_RETRIES,
    EmbedActor,
    RunReport,
    ShardRunner,
    Stages,
    run_stage,
    write_task,
)

log = logging.getLogger(__name__)

# CPU reservations. A fetch+decode task waits on sockets about as long as it decodes, so two per CPU keep the cores
# busy; the embed actor feeds a GPU, or is the compute itself on CPU-only machines; a write is mostly I/O.
FETCH_CPUS = 0.5
EMBED_CPUS = 1
WRITE_CPUS = 0.25


@dataclasses.dataclass(frozen=True)
class PoolSizes:
    fetch_tasks: int
    embed_actors: int
    gpus_per_embed_actor: float
    cluster_cpus: int
    cluster_gpus: int
    nodes: int


@dataclasses.dataclass(frozen=True)
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
    """Size the stages from the cluster's resources: one embed actor per GPU, fetch+decode tasks from the CPUs.

    The embed pool is fixed and asked for up front, so on a cluster that scales GPU nodes from zero its pending actors
    make the autoscaler add GPU nodes: ``--embed-actors N --num-gpus-per-actor 1`` is trusted beyond the GPUs present.
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
    # Fetch+decode tasks fill the CPUs the embed actors leave: more would queue behind the CPU reservation anyway.
    free = max(cpus - embed * EMBED_CPUS, FETCH_CPUS)
    fetch = config.download_actors or max(1, int(free // FETCH_CPUS))
    return PoolSizes(fetch, embed, per_actor, cpus, gpus, nodes)


def check_shared_output(config: IngestConfig, nodes: int) -> None:
    """A plain local path on a multi-node cluster scatters shards over nodes: refuse unless declared shared."""
    fs, _ = io.resolve(config.output)
    import pyarrow.fs as pafs

    if nodes > 1 and isinstance(fs, pafs.LocalFileSystem) and not config.shared_output:
        raise ConfigError(
            f"--output: {config.output} is a local path but the cluster has {nodes} nodes; use shared storage "
            "(s3://, gs://, ...) or pass --shared-output if this path is on a filesystem every node mounts"
        )


def build_stages(
    ray, config: IngestConfig, info: ModelInfo, sizes: PoolSizes, target: write.ShardTarget, *, local_root: str | None
) -> Stages:
    """Ray handles of the three stages; waits until every embed actor has loaded its model."""
    from clustering.ingest import embed  # looked up at call time, so a test can swap the embedder class

    fetch_decode = FetchDecode(
        download=config.download_options(), decode=config.decode_options(), spec=info.preprocess, local_root=local_root
    )
    fetch_task = ray.remote(run_stage).options(
        num_cpus=FETCH_CPUS, num_returns=2, max_retries=STAGE_RETRIES, retry_exceptions=False
    )
    actor_class = ray.remote(EmbedActor).options(
        num_cpus=EMBED_CPUS,
        num_gpus=sizes.gpus_per_embed_actor,
        max_restarts=-1,  # a lost node must cost time, not the job; each call still has bounded retries
        max_task_retries=STAGE_RETRIES,
    )
    embed_kwargs = {
        "model": config.model,
        "preprocess": preprocess_dict(info.preprocess),
        "batch_size": config.batch_size,
    }
    actors = [actor_class.remote(embed.ClipEmbedder, embed_kwargs) for _ in range(sizes.embed_actors)]
    ray.get([a.ready.remote() for a in actors])
    writer = ray.remote(write_task).options(num_cpus=WRITE_CPUS, max_retries=WRITE_RETRIES, retry_exceptions=[OSError])
    return Stages(
        fetch=lambda work, failure: fetch_task.remote(fetch_decode, work, 0, work.num_rows, failure),
        embed_actors=actors,
        write=lambda shard, fragment, *tables: writer.remote(shard, fragment, *tables, target=target),
        fetch_slots=sizes.fetch_tasks,
        chunk_rows=config.download_batch_size,
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


def load_model_info(model: str) -> ModelInfo:
    """The model's dimension and preprocessing, or one line saying why ``model`` is not a usable CLIP checkpoint."""
    try:
        return model_info(model)
    except (OSError, ValueError) as exc:  # missing files, no network, or a config that is not CLIP's
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--model: {model} is not a usable CLIP checkpoint: {reason}") from None


def scan_input(source: InputSource, rows_per_shard: int) -> write.Fingerprint:
    """One pass over the input before any work: its fingerprint and row count, and every check that needs it all."""
    fingerprint = write.Fingerprint(rows_per_shard)
    for fragment in source.fragments(rows_per_shard):
        fingerprint.update(fragment)
    return fingerprint


def shard_fragments(
    source: InputSource, rows_per_shard: int, shards: tuple[int, ...]
) -> Iterator[tuple[int, pa.Table]]:
    """``(shard, input rows)`` for each of ``shards``, read in one more pass (the others are read and dropped)."""
    wanted = set(shards)
    for shard, fragment in enumerate(source.fragments(rows_per_shard)):
        if shard in wanted:
            yield shard, fragment


def run_ingest(config: IngestConfig) -> IngestResult:
    """Run the whole ingest job described by ``config``; safe to rerun (finished shards are kept).

    INFO logs go to ``_ingest.log`` in the output folder (written when the run ends); the console keeps warnings,
    the progress bar and the summary the entrypoint prints.
    """
    write.check_output_target(config.output, overwrite=config.overwrite)
    with _log_file() as log_path:
        try:
            return _run(config)
        finally:  # a failed run's log is the one worth reading
            _store_log(config.output, log_path)


def _run(config: IngestConfig) -> IngestResult:
    started = time.perf_counter()
    source = open_input(config.input, url_column=config.url_column, id_column=config.id_column, limit=config.limit)
    log.info("input: %s (url column %r, passthrough %s)", config.input, source.url_column, list(source.passthrough))
    fingerprint = scan_input(source, config.rows_per_shard)  # every input error before the model is looked up
    log.info("input: %d rows, fingerprint %s", fingerprint.rows, fingerprint.hexdigest())
    info = load_model_info(config.model)
    meta = shard_metadata(config, info)
    plan = write.plan_output(
        config.output,
        fingerprint=fingerprint.hexdigest(),
        rows=fingerprint.rows,
        rows_per_shard=config.rows_per_shard,
        model_meta=meta,
        overwrite=config.overwrite,
    )
    if not plan.pending:
        log.info("all %d shards already finished in %s: nothing to do", plan.n_shards, config.output)
        return IngestResult(config.output, write.read_stats(plan), 0, plan.n_shards)

    ray = connect_ray(config)
    nodes = len([n for n in ray.nodes() if n.get("Alive")])
    check_shared_output(config, nodes)
    sizes = pool_sizes(config, ray.cluster_resources(), nodes)
    log.info("cluster: %d node(s), %d CPUs, %d GPUs -> %d fetch+decode task(s), %d embed actor(s) x %g GPU", nodes,
             sizes.cluster_cpus, sizes.cluster_gpus, sizes.fetch_tasks, sizes.embed_actors,
             sizes.gpus_per_embed_actor)  # fmt: skip
    target = write.ShardTarget(config.output, schema.shard_schema(source.passthrough_schema, info.dim, meta))
    stages = build_stages(ray, config, info, sizes, target, local_root=source.local_root)
    per_shard = config.rows_per_shard
    pending_rows = sum(min(per_shard, plan.manifest["rows"] - s * per_shard) for s in plan.pending)
    log.info("%d of %d shards to do (%d rows)", len(plan.pending), plan.n_shards, pending_rows)
    with _progress(config.progress, pending_rows) as bar:
        report = ShardRunner(ray, stages, progress=bar).run(
            shard_fragments(source, config.rows_per_shard, plan.pending)
        )
    cluster = {"nodes": nodes, "cpus": sizes.cluster_cpus, "gpus": sizes.cluster_gpus}
    extra = {"model": info.model, "cluster": cluster, "stages": stage_rates(report)}
    stats = write.finish(plan, report.records, elapsed=time.perf_counter() - started, extra=extra)
    return IngestResult(config.output, stats, len(report.records), plan.n_shards)


def stage_rates(report: RunReport) -> dict:
    """Images per busy second of one worker, per stage: which stage needs more workers."""
    return {
        stage: {
            "rows": report.stage_rows[stage],
            "busy_seconds": round(seconds, 3),
            "images_per_busy_second": round(report.stage_rows[stage] / seconds, 1) if seconds > 0 else None,
        }
        for stage, seconds in report.stage_seconds.items()
    }


@contextlib.contextmanager
def _progress(enabled: bool, total: int):
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="row", desc="ingest", smoothing=0.1) as bar:
        yield bar


@contextlib.contextmanager
def _log_file():
    """A local temporary file for the run's log, until it can join the output (see :func:`_store_log`)."""
    handle, path = tempfile.mkstemp(prefix="clipcluster-ingest-", suffix=".log")
    os.close(handle)
    import ray  # noqa: F401  (importing it installs Ray's console handler, which the log file must then redirect)

    with cli.log_to_file(path):
        yield path


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
        f"shards: {result.shards_written} written this run, {result.shards_total} in total at {result.output}",
        f"rows: {s.get('rows', 0)} out, {counts.get('ok', 0)} ok; failures: {failures}",
    ]
    if result.shards_written:
        lines.append(
            f"this run: {s['rows_this_run']} rows, {s['ok_this_run']} images embedded in "
            f"{s['elapsed_seconds']:.1f} s ({s['images_per_second']} images/s); log: {result.output}/{write.LOG}"
        )
    return lines

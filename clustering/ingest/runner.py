"""Drive shards through the Ray stages; workers write the shards, the driver keeps only references and records.

Per shard, its distinct URLs are cut into chunks. Each chunk is fetched and decoded by one Ray task (the raw bytes
stay in that worker), embedded by one of the embed actors, and once every chunk of a shard is embedded, one write task
assembles the shard, writes it atomically and returns a small completion record. The driver reads the input one shard
at a time, holds the shards in flight and object references, never pixels or embeddings.

Every failure is bounded, so no input can make the job loop forever:

- A worker process that dies (a native decoder crash, an out-of-memory kill, a lost node) is retried by Ray
  ``STAGE_RETRIES`` times. A piece that still fails is split in two and each half is tried again, down to a single row,
  which ends as ``decode_error`` "decoder process crashed" (``embed_error`` "embedder process crashed" in the embed
  stage) while every other row ends as usual.
- An embed actor that dies takes every call queued on it down, whatever their rows, and Ray restarts it (on another
  node if its node is gone): a failed embed call is first sent again as it was, up to ``ACTOR_RESENDS`` times, and
  only split after that.
- An intermediate result lost with its node is recomputed from the chunk, at most ``MAX_RECOMPUTES`` times per shard.
- Anything else (a bug, storage refusing writes after ``WRITE_RETRIES``) stops the job with the shard named; the
  shards already written stay, and rerunning the command resumes.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clustering import schema
from clustering.ingest import write
from clustering.ingest.fetch import DECODER_CRASHED, EMBEDDER_CRASHED, mark_failed

log = logging.getLogger(__name__)

# Ray re-runs a task or actor call whose process died this many times before the runner splits it. One retry absorbs
# a lost node; a batch that kills its worker twice is split, so a poison image costs about 2 x log2(chunk) crashes.
STAGE_RETRIES = 1
# Retries of a shard write that failed with an OSError (a flaky object store); a write is idempotent.
WRITE_RETRIES = 3
# How often a shard's intermediate results may be lost (with their node) and recomputed before the job gives up.
MAX_RECOMPUTES = 3
# Times an embed call that failed with its actor is sent again unchanged before it is split: a lost node fails every
# call queued on its actor at once, while the actor restarts elsewhere; only a piece that keeps killing actors is split.
ACTOR_RESENDS = 3
# Calls queued per embed actor: one running and one waiting keeps the model busy without hoarding decoded pixels.
EMBED_QUEUE = 2


@dataclasses.dataclass(frozen=True)
class Stages:
    """The Ray handles of the stages (built by :mod:`clustering.ingest.pipeline`).

    ``fetch(work, failure)`` and ``actor.run(decoded, start, stop, failure)`` return ``(meta, table)`` reference pairs;
    ``write(shard, fragment, *tables)`` returns a reference to the shard's completion record.
    """

    fetch: Callable[[pa.Table, Any], tuple[Any, Any]]
    embed_actors: list
    write: Callable[..., Any]
    fetch_slots: int
    chunk_rows: int


@dataclasses.dataclass
class _Piece:
    """Contiguous rows of one chunk on their way through fetch+decode and embed."""

    shard: int
    work: pa.Table  # work_id + url of exactly these rows (small: kept on the driver to retry and split)
    decoded: Any = None  # fetch+decode output holding these rows, once fetched
    offset: int = 0  # where these rows start in ``decoded``
    marked: bool = False  # its one row crashed its worker in the current stage: marked failed there, not run
    resends: int = 0  # embed calls of this piece that failed with their actor and were sent again


@dataclasses.dataclass
class _Shard:
    index: int
    fragment: Any  # reference to the shard's input rows
    rows_per_work: np.ndarray  # input rows per work item, for progress
    pieces: list[_Piece]
    embedded: list = dataclasses.field(default_factory=list)
    rows_embedded: int = 0
    recomputes: int = 0


@dataclasses.dataclass
class RunReport:
    """What a run did: the shards' completion records and the busy seconds and rows of each stage."""

    records: list[dict]
    stage_seconds: dict[str, float]
    stage_rows: dict[str, int]


class ShardRunner:
    """Feed shards to :class:`Stages`, keep the pipeline full within bounds, and handle failures (module doc)."""

    def __init__(self, ray, stages: Stages, *, progress=None) -> None:
        self.ray, self.stages, self.progress = ray, stages, progress
        self.fetch_queue: collections.deque[_Piece] = collections.deque()
        self.embed_queue: collections.deque[_Piece] = collections.deque()
        self.in_flight: dict[Any, tuple[str, Any, Any]] = {}  # waited-on ref -> (kind, piece or shard, result ref)
        self.actor_load = [0] * len(stages.embed_actors)
        self.shards: dict[int, _Shard] = {}
        self.fetching = 0
        self.report = RunReport([], collections.defaultdict(float), collections.defaultdict(int))

    def run(self, fragments: Iterator[tuple[int, pa.Table]]) -> RunReport:
        """Process every ``(shard index, input rows)`` of ``fragments``; returns once every shard is written."""
        fragments = iter(fragments)
        exhausted = False
        while True:
            while not exhausted and self._wants_shard():
                item = next(fragments, None)
                exhausted = item is None
                if item is not None:
                    self._open(*item)
            self._submit()
            if not self.in_flight:
                break
            [ref], _ = self.ray.wait(list(self.in_flight), num_returns=1, fetch_local=False)
            self._complete(ref, *self.in_flight.pop(ref))
        stuck = sorted(self.shards)
        if stuck:  # cannot happen unless a result vanished without an error: say so rather than report success
            raise RuntimeError(f"shards {stuck} never completed; rerun the same command to resume them")
        return self.report

    # --- feeding ------------------------------------------------------------------------------------------------

    def _wants_shard(self) -> bool:
        # Read the next shard only when the fetch queue runs low, and keep a bounded number open: the driver's memory
        # and the object store then hold a few shards, whatever the input's size.
        return len(self.fetch_queue) < self.stages.fetch_slots and len(self.shards) < self.stages.fetch_slots + 2

    def _open(self, index: int, fragment: pa.Table) -> None:
        work, row_work = write.shard_work(fragment)
        pieces = [
            _Piece(index, work.slice(start, self.stages.chunk_rows))
            for start in range(0, work.num_rows, self.stages.chunk_rows)
        ]
        shard = _Shard(index, self.ray.put(fragment), np.bincount(row_work, minlength=work.num_rows), pieces)
        self.shards[index] = shard
        self.fetch_queue.extend(pieces)
        if not pieces:  # cannot happen (a shard has rows), but an empty shard must still be written
            self._write(shard)

    def _submit(self) -> None:
        while self.embed_queue and min(self.actor_load) < EMBED_QUEUE:
            self._submit_embed(self.embed_queue.popleft())
        # Fetch only while the embed stage keeps up: decoded pixels waiting for a model are memory, not progress.
        while (
            self.fetch_queue
            and self.fetching < self.stages.fetch_slots
            and len(self.embed_queue) <= self.stages.fetch_slots
        ):
            piece = self.fetch_queue.popleft()
            failure = (schema.Status.DECODE_ERROR, DECODER_CRASHED) if piece.marked else None
            meta, table = self.stages.fetch(piece.work, failure)
            self.in_flight[meta] = ("fetch", piece, table)
            self.fetching += 1

    def _submit_embed(self, piece: _Piece) -> None:
        actor = int(np.argmin(self.actor_load))
        failure = (schema.Status.EMBED_ERROR, EMBEDDER_CRASHED) if piece.marked else None
        stop = piece.offset + piece.work.num_rows
        run = self.stages.embed_actors[actor].run.options(num_returns=2)
        meta, table = run.remote(piece.decoded, piece.offset, stop, failure)
        self.in_flight[meta] = ("embed", (piece, actor), table)
        self.actor_load[actor] += 1

    def _write(self, shard: _Shard) -> None:
        record = self.stages.write(shard.index, shard.fragment, *shard.embedded)
        self.in_flight[record] = ("write", shard, record)

    # --- completions --------------------------------------------------------------------------------------------

    def _complete(self, ref, kind: str, subject, result) -> None:
        if kind == "fetch":
            self.fetching -= 1
        elif kind == "embed":
            subject, actor = subject
            self.actor_load[actor] -= 1
        try:
            outcome = self.ray.get(ref)
        except Exception as exc:  # classified below; anything unexpected is re-raised there
            self._failed(kind, subject, exc)
            return
        if kind == "write":
            self._written(subject, outcome)
            return
        self.report.stage_seconds[kind] += outcome["seconds"]
        self.report.stage_rows[kind] += outcome["rows"]
        if kind == "fetch":  # a row marked crashed in this stage is not marked for the next one
            self.embed_queue.append(dataclasses.replace(subject, decoded=result, offset=0, marked=False, resends=0))
        else:
            self._embedded(subject, result)

    def _embedded(self, piece: _Piece, table) -> None:
        shard = self.shards[piece.shard]
        shard.embedded.append(table)
        rows = int(shard.rows_per_work[piece.work[schema.WORK_ID].to_numpy()].sum())
        shard.rows_embedded += rows
        if self.progress is not None:
            self.progress.update(rows)
        if shard.rows_embedded == int(shard.rows_per_work.sum()):
            self._write(shard)

    def _written(self, shard: _Shard, record: dict) -> None:
        del self.shards[shard.index]
        self.report.records.append(record)
        log.info("shard %d written: %d rows, %s", record["shard"], record["rows"], record["status_counts"])

    def _failed(self, kind: str, subject, exc: Exception) -> None:
        cause = _cause(self.ray, exc)
        exceptions = self.ray.exceptions
        if isinstance(cause, exceptions.ObjectLostError):
            shard = self.shards[subject.index if kind == "write" else subject.shard]
            self._recompute(shard, cause)
        elif kind == "embed" and isinstance(cause, exceptions.RayActorError) and subject.resends < ACTOR_RESENDS:
            log.warning("an embed actor failed (%s): sending its call again", type(cause).__name__)
            self.embed_queue.appendleft(dataclasses.replace(subject, resends=subject.resends + 1))
        elif kind != "write" and isinstance(cause, _crash_errors(self.ray)):
            self._split(kind, subject, cause)
        else:
            shard = subject.index if kind == "write" else subject.shard
            raised = getattr(cause, "cause", None) or cause  # the exception the stage's own code raised
            raise RuntimeError(
                f"shard {shard}: the {kind} stage failed ({type(raised).__name__}: {str(raised).splitlines()[0]}); "
                "shards already written are kept: rerun the same command to resume"
            ) from exc

    def _split(self, kind: str, piece: _Piece, cause: Exception) -> None:
        """A piece killed its worker ``STAGE_RETRIES + 1`` times: retry its halves, or mark its one row failed."""
        if piece.marked:  # even skipping the work crashed: the worker itself cannot run
            raise RuntimeError(f"shard {piece.shard}: the {kind} stage cannot run ({cause})") from cause
        n = piece.work.num_rows
        halves = [(0, n // 2), (n // 2, n)] if n > 1 else [(0, 1)]
        log.warning(
            "%s of %d row(s) in shard %d killed its worker %d times (%s): %s",
            kind,
            n,
            piece.shard,
            STAGE_RETRIES + 1,
            type(cause).__name__,
            "splitting it" if n > 1 else f"marking {piece.work[schema.URL][0].as_py()!r} as crashed",
        )
        for start, stop in halves:
            part = dataclasses.replace(
                piece, work=piece.work.slice(start, stop - start), offset=piece.offset + start, marked=n == 1, resends=0
            )
            (self.fetch_queue if kind == "fetch" else self.embed_queue).appendleft(part)

    def _recompute(self, shard: _Shard, cause: Exception) -> None:
        """Intermediate results of ``shard`` were lost with a node: start the shard over from its chunks."""
        shard.recomputes += 1
        if shard.recomputes > MAX_RECOMPUTES:
            raise RuntimeError(f"shard {shard.index} lost its intermediate results {MAX_RECOMPUTES} times: {cause}")
        log.warning("shard %d lost intermediate results (%s): recomputing it", shard.index, type(cause).__name__)
        self._cancel(shard.index)
        if self.progress is not None:
            self.progress.update(-shard.rows_embedded)
        shard.embedded, shard.rows_embedded = [], 0
        self.fetch_queue.extend(dataclasses.replace(p, decoded=None, offset=0) for p in shard.pieces)

    def _cancel(self, index: int) -> None:
        """Forget the shard's pieces still queued or in flight (their results would be stale after a recompute)."""
        self.fetch_queue = collections.deque(p for p in self.fetch_queue if p.shard != index)
        self.embed_queue = collections.deque(p for p in self.embed_queue if p.shard != index)
        for ref, (kind, subject, _) in list(self.in_flight.items()):
            piece = subject[0] if kind == "embed" else subject
            if kind != "write" and piece.shard == index:
                self.in_flight.pop(ref)
                if kind == "fetch":
                    self.fetching -= 1
                else:
                    self.actor_load[subject[1]] -= 1


def _crash_errors(ray) -> tuple[type, ...]:
    """Errors meaning the process running a call died (after Ray's own retries), not that the code raised."""
    e = ray.exceptions
    return (e.WorkerCrashedError, e.RayActorError, e.NodeDiedError, e.OutOfMemoryError)


def _cause(ray, exc: Exception) -> Exception:
    """The Ray system error behind ``exc`` when a task failed because of one (e.g. a lost argument)."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, ray.exceptions.RayError):
        return cause
    return exc


def run_stage(stage: Callable[[pa.Table], pa.Table], batch: pa.Table, start: int, stop: int, failure=None):
    """Run ``stage`` on rows ``start:stop`` of ``batch`` (marked failed first when ``failure`` is given).

    Returns ``(meta, table)``: the small ``meta`` (rows, ok, busy seconds) is what the driver waits on and reads, so
    the table itself never has to travel to the driver.
    """
    started = time.perf_counter()
    part = batch.slice(start, stop - start)
    if failure is not None:
        part = mark_failed(part, *failure)
    out = stage(part)
    ok = pc.sum(pc.equal(out[schema.STATUS], schema.Status.OK.value)).as_py() or 0
    return {"rows": out.num_rows, "ok": ok, "seconds": time.perf_counter() - started}, out


class EmbedActor:
    """Ray actor hosting one embed stage instance (the model is loaded once, in ``__init__``)."""

    def __init__(self, stage_class: type, kwargs: dict) -> None:
        import transformers

        # This process only serves the actor: its weight-loading bar would interleave with the driver's progress bar.
        transformers.utils.logging.disable_progress_bar()
        self.stage = stage_class(**kwargs)

    def ready(self) -> bool:
        return True

    def run(self, batch: pa.Table, start: int, stop: int, failure=None):
        return run_stage(self.stage, batch, start, stop, failure)


def write_task(shard: int, fragment: pa.Table, *tables: pa.Table, target: write.ShardTarget) -> dict:
    """Ray task body: the results arrive as separate arguments so Ray resolves each reference before the call."""
    return write.write_shard(shard, fragment, tables, target=target)

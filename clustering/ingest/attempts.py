"""Bound the calls that keep killing their process: the job ends with a clear error instead of a loop.

Ray Data retries an actor call whose process died for as long as Ray restarts the actor, and the one way to bound that
in Ray 2.60 (``max_task_retries`` through ``ray_remote_args``) is deprecated. So a stage counts, on its node's disk,
how often a call on the same batch has begun without ending: a process that dies mid-call leaves its count behind,
and the call that finds :data:`MAX_ATTEMPTS` of them raises :class:`CrashLoopError`, which Ray Data does not retry. A
batch that moves to another node (its node was lost) starts a new count there: node loss costs time, not the job.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

# Calls on one batch that may die with their process before the job stops: one lost actor, then one more, is bad luck
# (an out-of-memory kill by a neighbour, a node going down); a third is the batch.
MAX_ATTEMPTS = 3


class CrashLoopError(RuntimeError):
    """A stage's process died :data:`MAX_ATTEMPTS` times on the same batch."""


def batch_key(values: Iterable[object]) -> str:
    """A short digest of a batch's identifying values (its URLs, or its images' hashes)."""
    digest = hashlib.sha1()
    for value in values:
        digest.update(f"{value}\n".encode())
    return digest.hexdigest()[:20]


@contextlib.contextmanager
def attempt(stage: str, key: str, *, describe: str, folder: Path | None = None) -> Iterator[None]:
    """Count one call of ``stage`` on batch ``key``; raise :class:`CrashLoopError` when earlier ones keep dying.

    ``describe`` names the batch in the error (its size, its first URL). The count is removed when the call returns
    or raises: only a call whose process dies leaves it.
    """
    path = (folder or _default_folder()) / f"{stage}-{key}"
    path.parent.mkdir(parents=True, exist_ok=True)
    died = int(path.read_text() or 0) if path.exists() else 0
    if died >= MAX_ATTEMPTS:
        raise CrashLoopError(
            f"the {stage} stage's process died {died} times on the same batch ({describe}); stopping the job. Rows "
            "already written are kept: rerun the same command to resume after removing the cause"
        )
    path.write_text(str(died + 1))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _default_folder() -> Path:
    """Per job and node, so a rerun (resume) starts with clean counts."""
    job = "local"
    with contextlib.suppress(Exception):  # outside a Ray worker there is no job id: counts are per process then
        import ray

        if ray.is_initialized():
            job = ray.get_runtime_context().get_job_id()
    return Path(tempfile.gettempdir()) / "clipcluster-attempts" / f"{job}-{os.getuid()}"

"""Decode in a child process, so an image that crashes the decoder costs its own row, not its batch or its worker.

Pillow's format plugins are native code; a file that makes one segfault (or an allocation the kernel answers with the
OOM killer) would take down the process decoding it. :class:`IsolatedDecoder` runs the per-image decoder in a child
process of its own and sends it one slice of rows at a time. When the child dies on a slice, a new child is started
and the slice is tried once more (a crash can be a coincidence); a slice that kills it again is split in halves, each
tried once and split again on a crash, down to the lone row, which ends as ``decode_error`` "decoder process
crashed". Every other row ends as usual, and Ray never sees the crash: its retries are left for lost nodes.

The decoder function is sent to the child with cloudpickle when it starts, so the child runs exactly the function the
parent was given (a test's decoder that kills its own process on a marked image included).

Run as ``python -m clustering.ingest.isolate READ_FD WRITE_FD``, this module is the child.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

import pyarrow as pa

from clustering import schema

log = logging.getLogger(__name__)

DECODER_CRASHED = "decoder process crashed"
# Seconds a new child gets to import its modules and say it is ready; a cold start on a loaded node takes a few.
START_TIMEOUT = 120


# A reply starting with these bytes is an error message, not an Arrow stream (which starts with 0xFFFFFFFF).
ERROR_PREFIX = b"error:"


class DecoderCrashed(RuntimeError):
    """The child process died while decoding a slice."""


class _Child:
    """One child process and the two pipes to it: requests (a table) in, replies (a table) out."""

    def __init__(self, function: bytes) -> None:
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(to_child), str(from_child)],
            pass_fds=(to_child, from_child),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self.requests = Connection(from_parent, readable=False)
        self.replies = Connection(to_parent, writable=False)
        self.requests.send_bytes(function)
        if not self.replies.poll(START_TIMEOUT):
            self.close()
            raise RuntimeError(f"the decoder process did not start within {START_TIMEOUT} s")
        self.replies.recv()  # "ready"

    def run(self, table: pa.Table) -> pa.Table:
        try:
            self.requests.send_bytes(_to_ipc(table))
            reply = self.replies.recv_bytes()
        except (EOFError, OSError) as exc:  # the child died: its pipe closed under us
            raise DecoderCrashed(f"exit status {self.process.wait()}") from exc
        if reply.startswith(ERROR_PREFIX):  # the decoder raised: a bug, not an image (decode_image catches those)
            raise RuntimeError(f"the decoder raised {reply[len(ERROR_PREFIX) :].decode()}")
        return _from_ipc(reply)

    def close(self) -> None:
        for connection in (self.requests, self.replies):
            connection.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class IsolatedDecoder:
    """Callable: ``decode(table)`` run in a child process, with a crash isolated to its row (module doc).

    Parameters
    ----------
    decode : callable
        ``pa.Table -> pa.Table``: the fetched rows (``status``, ``error``, ``content``) to decoded rows, same rows in
        the same order (e.g. :func:`clustering.ingest.decode.decode_batch` with its options bound).
    mark_crashed : callable
        ``(pa.Table, str) -> pa.Table``: the same table as ``decode`` returns, with every row still ``ok`` set to
        ``decode_error`` and the given reason, computed without decoding anything.
    """

    def __init__(self, decode: Callable[[pa.Table], pa.Table], mark_crashed: Callable[[pa.Table, str], pa.Table]):
        import cloudpickle  # Ray's dependency; pickles the decoder by value when it is not importable by name

        self._function = cloudpickle.dumps(decode)
        self._mark_crashed = mark_crashed
        self._lock = threading.Lock()  # one child, one slice at a time: a crash is always the current slice's
        self._child: _Child | None = None
        self.crashes = 0

    def start(self) -> None:
        """Start the child now (it takes a second to import Pillow and Arrow), instead of at the first slice."""
        with self._lock:
            self._ensure_child()

    def __call__(self, table: pa.Table) -> pa.Table:
        with self._lock:
            return self._decode(table, retried=False)

    def _decode(self, table: pa.Table, *, retried: bool) -> pa.Table:
        try:
            return self._ensure_child().run(table)
        except DecoderCrashed as exc:
            self.crashes += 1
            self._child = None
            first_url = table[schema.URL][0].as_py() if table.num_rows else None
            log.warning("the decoder process died (%s) on %d row(s) from %r", exc, table.num_rows, first_url)
        if not retried:
            return self._decode(table, retried=True)
        if table.num_rows == 1:
            log.warning("marking %r as %s", first_url, DECODER_CRASHED)
            return self._mark_crashed(table, DECODER_CRASHED)
        half = table.num_rows // 2
        left = self._decode(table.slice(0, half), retried=True)
        right = self._decode(table.slice(half), retried=True)
        return pa.concat_tables([left, right])

    def _ensure_child(self) -> _Child:
        if self._child is None:
            self._child = _Child(self._function)
        return self._child

    def close(self) -> None:
        """Stop the child process (it also stops by itself when this process goes away)."""
        with self._lock:
            if self._child is not None:
                self._child.close()
                self._child = None

    def __del__(self) -> None:
        child = getattr(self, "_child", None)
        if child is not None:
            child.close()


def _serve(read_fd: int, write_fd: int) -> None:
    """Child process: receive the decoder, then decode tables until the parent closes the pipe."""
    import pickle

    requests = Connection(read_fd, writable=False)
    replies = Connection(write_fd, readable=False)
    decode = pickle.loads(requests.recv_bytes())
    replies.send("ready")
    while True:
        try:
            table = _from_ipc(requests.recv_bytes())
        except EOFError:
            return
        try:
            reply = _to_ipc(decode(table))
        except Exception as exc:  # reported to the parent, which stops the job with it
            reply = ERROR_PREFIX + f"{type(exc).__name__}: {exc}".encode()
        replies.send_bytes(reply)


def _to_ipc(table: pa.Table) -> pa.Buffer:
    """Arrow IPC stream bytes of ``table``: only a slice's own rows travel, where pickle would send whole buffers."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))

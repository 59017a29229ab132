"""Keep Ray's one known driver warning off the console and in the run's log; every other byte reaches the console.

Every run prints, once, from the C++ core of the driver (``RAY_LOG_ONCE_PER_PROCESS(ERROR)`` in ``core_worker.cc``)::

    [... E ...] core_worker.cc:2465: Actor with class name: 'MapWorker(MapBatches(FetchDecode))' and ID: '...' has
    constructor arguments in the object store and max_restarts > 0. If the arguments in the object store go out of
    scope or are lost, the actor restart will fail. See https://github.com/ray-project/ray/issues/53727 ...

Ray Data starts every actor of a pool with two object references the driver owns for the operator's lifetime (its
``DataContext`` and the stage's callable) and lets a lost actor restart (``max_restarts=-1``); the job relies on the
restart when a node is lost. The references live on the driver's node, as long as the driver does: a restart on any
node that is still up finds them, and a lost driver node ends the job anyway. Nothing for a researcher to do, so the
line belongs in ``_ingest.log`` (docs/architecture.md, "Ingest").

Ray offers no switch for it: the driver's core worker sends every ERROR line to stderr as well as to its log file,
and ``RAY_BACKEND_LOG_LEVEL`` would silence every error of every Ray process. So :func:`ray_notes_to_log` points the
driver's file descriptor 2 at a small child process (``python -m clustering.ingest.console``) that copies everything
to the real stderr except that one line, which it hands back to be logged. The child drains until the last writer is
gone, so even a driver that aborts in C++ gets its last words to the console. When stderr is a terminal, the child
holds a pseudo-terminal of the same size, so progress bars still see a terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

# A line is the known note when it holds all of these (Ray's C++ log prefix names the file; the text is the note's).
KNOWN_NOTE = (b"core_worker.cc", b"has constructor arguments in the object store and max_restarts > 0")
# Seconds the child holds an unfinished line that may be the start of the note before it copies it on anyway.
HOLD_SECONDS = 0.2
# Seconds the driver waits at the end for the child to copy what is left.
DRAIN_SECONDS = 10.0


def is_known_note(line: bytes) -> bool:
    return all(part in line for part in KNOWN_NOTE)


@contextlib.contextmanager
def ray_notes_to_log(log: logging.Logger) -> Iterator[None]:
    """While inside, Ray's known driver note goes to ``log`` (INFO) instead of the console; all else is unchanged.

    Does nothing where file descriptor 2 cannot be redirected (no stderr, or no child process can start).
    """
    redirect = _Redirect.start()
    if redirect is None:
        yield
        return
    reader = threading.Thread(target=_log_notes, args=(redirect.notes, log), name="ray-notes", daemon=True)
    reader.start()
    try:
        yield
    finally:
        redirect.stop()
        reader.join(timeout=1.0)


class _Redirect:
    """File descriptor 2 pointed at the filter child; :meth:`stop` gives it back and waits for the child to drain."""

    def __init__(self, console: int, child: subprocess.Popen, notes: int) -> None:
        self.console = console  # the real stderr, kept open to be restored
        self.child = child
        self.notes = notes  # the known notes, one per line, from the child

    @classmethod
    def start(cls) -> _Redirect | None:
        try:
            console = os.dup(2)
        except OSError:  # no stderr at all
            return None
        if os.isatty(console):
            import tty

            source, sink = os.openpty()  # the child reads the master; the driver writes to the slave, a terminal
            tty.setraw(sink)  # bytes as written: no newline translation
            _copy_window_size(console, source)
        else:
            source, sink = os.pipe()
        notes_read, notes_write = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", __name__, str(notes_write)],
                stdin=source,
                stdout=console,
                stderr=console,
                pass_fds=(notes_write,),
                env=env,
            )
        except OSError:
            for fd in (console, source, sink, notes_read, notes_write):
                os.close(fd)
            return None
        for fd in (source, notes_write):
            os.close(fd)
        sys.stderr.flush()
        os.dup2(sink, 2)
        os.close(sink)
        return cls(console, child, notes_read)

    def stop(self) -> None:
        """Give fd 2 back to the real stderr; the child copies what is left and exits when no writer remains."""
        with contextlib.suppress(ValueError, OSError):
            sys.stderr.flush()
        os.dup2(self.console, 2)
        os.close(self.console)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.child.wait(timeout=DRAIN_SECONDS)  # a process that inherited fd 2 meanwhile would hold it open


def _log_notes(fd: int, log: logging.Logger) -> None:
    with os.fdopen(fd, "rb") as notes:
        for line in notes:
            log.info("Ray (known, harmless: see docs/architecture.md): %s", line.decode(errors="replace").rstrip())


def _copy_window_size(terminal: int, pty_fd: int) -> None:
    import fcntl
    import termios

    with contextlib.suppress(OSError):
        fcntl.ioctl(pty_fd, termios.TIOCSWINSZ, fcntl.ioctl(terminal, termios.TIOCGWINSZ, b"\0" * 8))


# --- the child ----------------------------------------------------------------------------------------------------


def _write_all(fd: int, data: bytes) -> None:
    """Write ``data``; a console that went away (closed pipe) drops it, so the driver is never blocked."""
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(fd, data) :]


def filter_stream(source: int, console: int, notes: int) -> None:
    """Copy ``source`` to ``console`` until every writer is gone, sending lines that are the known note to ``notes``.

    Bytes go on as soon as they arrive; only an unfinished line that starts like a Ray log line (``[``) waits for
    its end, at most :data:`HOLD_SECONDS`.
    """
    pending = b""
    while True:
        ready, _, _ = select.select([source], [], [], HOLD_SECONDS if pending else None)
        if not ready:  # an unfinished line that stayed unfinished: not Ray's, which writes whole lines
            _write_all(console, pending)
            pending = b""
            continue
        try:
            chunk = os.read(source, 65536)
        except OSError:  # a pseudo-terminal whose last writer is gone
            chunk = b""
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        out = bytearray()
        for line in lines:
            if is_known_note(line):
                _write_all(console, bytes(out))
                out.clear()
                _write_all(notes, line + b"\n")
            else:
                out += line + b"\n"
        if pending and not pending.startswith(b"["):
            out += pending
            pending = b""
        _write_all(console, bytes(out))
    _write_all(console, pending)


def _main(argv: list[str]) -> None:
    # Ctrl-C and a polite kill reach the whole process group: the driver decides, this process copies to the end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.isatty(0) and os.isatty(1):  # follow the real terminal's size (progress bars ask fd 2 for it)
        signal.signal(signal.SIGWINCH, lambda *_: _copy_window_size(1, 0))
    filter_stream(0, 1, int(argv[0]))


if __name__ == "__main__":
    _main(sys.argv[1:])

"""What every entrypoint does around its library call: readable logs, one line for a user error, a clean Ctrl-C, and a
compile cache that outlives the process."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator

from clustering.config import ConfigError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that print to the console themselves instead of propagating to the root logger.
SELF_PRINTING_LOGGERS = ("ray", "ray.data")
# Warnings that inform the log but not a researcher at the console: a local Ray runtime announcing that it turned token
# authentication on (nothing to do about it) is kept in the run's log file only.
LOG_ONLY_WARNINGS = ("ray._private.authentication", "ray.data._internal.progress")


def keep_compile_cache() -> str | None:
    """Point numba's compile cache at a per-user folder unless ``NUMBA_CACHE_DIR`` is set already; return the folder.

    UMAP, pynndescent and the sweep compile for tens of seconds to minutes in every fresh process without it (and the
    map's worker process is one). Takes effect only before numba is imported, so entrypoints call it first thing:
    ``$XDG_CACHE_HOME/clipcluster/numba`` (default ``~/.cache/clipcluster/numba``). None when that folder cannot be
    written: numba then caches where it can, as it does by default.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "clipcluster", "numba")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    os.environ["NUMBA_CACHE_DIR"] = folder  # inherited by the worker processes and Ray workers this run starts
    return folder


def run_entrypoint(prog: str, job: Callable[[], Iterable[str]], *, on_interrupt: str = "interrupted") -> int:
    """Run ``job`` and print the summary lines it returns; exit status 0, 2 (user error) or 130 (Ctrl-C).

    ``ConfigError`` (bad option, unreadable input, refused output, unusable shards) is printed as
    ``PROG: error: MESSAGE`` on one line, never as a traceback; anything else is a bug and keeps its traceback. The
    compile cache is kept first (:func:`keep_compile_cache`): entrypoints import numba only inside ``job``.
    """
    keep_compile_cache()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S")
    try:
        lines = list(job())
    except ConfigError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: {on_interrupt}", file=sys.stderr)
        return 130
    for line in lines:
        print(line)
    return 0


@contextlib.contextmanager
def log_to_file(path: str) -> Iterator[Callable[[], None]]:
    """Send INFO records (ours and Ray's) to ``path`` and keep only warnings and errors on the console meanwhile.

    Progress bars and the summary lines are printed, not logged, so they stay on the console. Yields a function to
    call once a library that sets up its own console logger on import (Ray Data does) has been imported meanwhile:
    that logger then writes to ``path`` too, and its console handler keeps to warnings like the others.
    """
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    handler.setLevel(logging.INFO)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in SELF_PRINTING_LOGGERS)]
    root = loggers[0]
    saved_level = root.level
    saved_handlers: dict[logging.Handler, int] = {}
    root.setLevel(min(saved_level or logging.WARNING, logging.INFO))

    def adopt() -> None:
        for lg in loggers:
            if handler not in lg.handlers:  # Ray Data's set-up replaces the handlers of its logger
                lg.addHandler(handler)
            for console in lg.handlers:
                if _is_console(console) and console not in saved_handlers:
                    saved_handlers[console] = console.level
                    console.setLevel(max(console.level, logging.WARNING))
                    console.addFilter(_console_worthy)

    adopt()
    try:
        yield adopt
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        handler.close()
        for console, level in saved_handlers.items():
            console.setLevel(level)
            console.removeFilter(_console_worthy)
        root.setLevel(saved_level)


def _console_worthy(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR or not record.name.startswith(LOG_ONLY_WARNINGS)


def _is_console(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)

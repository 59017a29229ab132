"""What every entrypoint does around its library call: readable logs, one line for a user error, a clean Ctrl-C."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable

from clustering.config import ConfigError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run_entrypoint(prog: str, job: Callable[[], Iterable[str]], *, on_interrupt: str = "interrupted") -> int:
    """Run ``job`` and print the summary lines it returns; exit status 0, 2 (user error) or 130 (Ctrl-C).

    ``ConfigError`` (bad option, unreadable input, refused output, unusable shards) is printed as
    ``PROG: error: MESSAGE`` on one line, never as a traceback; anything else is a bug and keeps its traceback.
    """
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

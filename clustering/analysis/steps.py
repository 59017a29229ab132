"""Timing of a run's steps: each step is timed once, and every log line and the report show the same figures."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

__all__ = ["Steps"]


class Steps:
    """Times named steps; ``timings`` keeps them in order (a step entered twice adds up)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def last(self, name: str) -> str:
        """The time of step ``name`` as a log line shows it."""
        return f"{self.timings.get(name, 0.0):.1f} s"

    def so_far(self) -> dict[str, float]:
        """Seconds per step so far, and ``total`` since the start."""
        return {**self.timings, "total": time.perf_counter() - self.started}

    def finish(self) -> dict[str, float]:
        """:meth:`so_far`, rounded to milliseconds: what ``metrics.json`` records."""
        return {k: round(v, 3) for k, v in self.so_far().items()}

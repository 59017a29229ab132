"""The settings the selection would choose at other resolutions: the granularities a collection offers.

The rule's score is linear in its resolution: ``modularity_filled = inside - resolution * expected`` (the two terms
are sweep columns, :func:`.metrics.modularity_terms`). Over a range of resolutions the winning setting therefore
changes at a few break points only (the upper envelope of one line per setting, as in CHAMP, Weir et al. 2017): a
coarse setting wins at low resolutions, finer ones as the resolution grows. :func:`resolution_ladder` lists them, with
the resolutions each one wins over, so an analyst sees which clusterings the collection supports and can pick the
granularity a question needs (``--resolution``) without re-running anything: the job writes each rung's labels as an
alternative column.

Why a ladder and not another default: on the held-out tuxpaint set the folders an analyst would draw win only from
resolution 1.5-2.0 on, where emoji and art4apps already split into 2-5 times too many clusters (docs/performance.md,
"Granularity").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LADDER_RESOLUTIONS", "Rung", "resolution_ladder"]

# Resolutions the ladder spans: from a coarse view (a few themes) to a fine one (about 4x the default's clusters on the
# bench's real sets).
LADDER_RESOLUTIONS = (0.25, 4.0)


@dataclass(frozen=True)
class Rung:
    """One setting of the ladder and the resolutions at which the rule would choose it."""

    index: int  # row index in the sweep rows
    low: float
    high: float


def resolution_ladder(
    rows: Sequence[dict],
    eligible: Sequence[int],
    *,
    low: float = LADDER_RESOLUTIONS[0],
    high: float = LADDER_RESOLUTIONS[1],
) -> list[Rung]:
    """The settings with the highest ``modularity_filled`` somewhere in ``[low, high]``, coarse to fine.

    Parameters
    ----------
    rows : sequence of dict
        Sweep rows with ``modularity_filled_inside`` and ``modularity_filled_expected``.
    eligible : sequence of int
        Indices of the rows the rule may choose (noise budget, enough clusters), in the rule's tie order (a tie at a
        resolution goes to the earlier one, as in :func:`.select.select`).
    low, high : float
        The range of resolutions, ``0 < low <= high``.

    Returns
    -------
    list of Rung
        Consecutive ranges covering ``[low, high]``, each won by its setting; empty when no eligible row has both
        terms. A setting that wins only at a single break point is left out.
    """
    if not 0 < low <= high:
        raise ValueError(f"need 0 < low <= high, got low={low!r}, high={high!r}")
    lines = [(i, *_terms(rows[i])) for i in eligible]
    lines = [line for line in lines if math.isfinite(line[1]) and math.isfinite(line[2])]
    if not lines:
        return []
    rungs: list[Rung] = []
    at, current = low, _best_at(lines, low)
    while True:
        # As the resolution grows, settings with a smaller expected term gain: the next winner is the first to cross.
        crossings = [_crossing(current, line) for line in lines if line[2] < current[2]]
        later = [where for where in crossings if where > at]
        switch = min(later, default=math.inf)
        if switch >= high:
            return _extend(rungs, Rung(current[0], at, high))
        rungs = _extend(rungs, Rung(current[0], at, switch))
        at, current = switch, _best_at(lines, switch * (1 + 1e-9))


def _extend(rungs: list[Rung], rung: Rung) -> list[Rung]:
    """``rungs`` plus ``rung``, merged into the last one when the same setting wins on (rounding at a break point)."""
    if rungs and rungs[-1].index == rung.index:
        return [*rungs[:-1], Rung(rung.index, rungs[-1].low, rung.high)]
    return [*rungs, rung]


def _terms(row: dict) -> tuple[float, float]:
    return float(row.get("modularity_filled_inside", math.nan)), float(row.get("modularity_filled_expected", math.nan))


def _crossing(line: tuple[int, float, float], other: tuple[int, float, float]) -> float:
    """The resolution at which ``other`` (smaller expected term) starts to score higher than ``line``."""
    return (line[1] - other[1]) / (line[2] - other[2])


def _best_at(lines: list[tuple[int, float, float]], resolution: float) -> tuple[int, float, float]:
    """The line scoring highest at ``resolution`` (ties: the earlier one, i.e. the rule's order)."""
    order = max(range(len(lines)), key=lambda k: (lines[k][1] - resolution * lines[k][2], -k))
    return lines[order]

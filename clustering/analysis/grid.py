"""The ``min_cluster_size`` grid of the sweep: the default for a data size, and the parser of ``--min-cluster-sizes``.

A leaf (numpy and the config errors only): the options check a grid with it before any stage is imported.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clustering.config import ConfigError

# Default min_cluster_size grid: geometric, from DEFAULT_GRID_MIN up to DEFAULT_GRID_MAX_SHARE of the points (at least
# DEFAULT_GRID_MIN + a few steps), DEFAULT_GRID_POINTS values. The notebook's linear 2, 7, ..., 197 grid spends most of
# its 40 settings on large sizes that all look alike; its chosen sizes were 167 of 39,839 points (0.42 %) and 37 of
# 5,025 (0.74 %). A geometric grid up to 5 % covers both with room on either side, in fewer settings.
DEFAULT_GRID_MIN = 5
DEFAULT_GRID_MAX_SHARE = 0.05
DEFAULT_GRID_POINTS = 24


def default_grid(n: int) -> tuple[int, ...]:
    """Default ``min_cluster_size`` values for ``n`` points: geometric from 5 to 5 % of ``n``.

    Parameters
    ----------
    n : int
        Number of points that will be clustered.

    Returns
    -------
    tuple of int
        Strictly increasing sizes, each >= 2; ``(2,)`` when ``n < 4``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n < 4:
        return (2,)
    low = min(DEFAULT_GRID_MIN, max(2, n // 2))
    high = max(low, int(n * DEFAULT_GRID_MAX_SHARE), min(n // 2, 4 * low))
    values = np.geomspace(low, high, DEFAULT_GRID_POINTS)
    return tuple(sorted({round(float(v)) for v in values}))


def parse_grid(
    spec: str | Sequence[int] | None,
    n: int,
    *,
    option: str = "min_cluster_sizes",
    minimum: int = 2,
) -> tuple[int, ...]:
    """Parse a grid of integer HDBSCAN parameters.

    Parameters
    ----------
    spec : str, sequence of int or None
        ``"5,10,20"`` (a list), ``"2:100:5"`` (``start:stop:step``, **stop inclusive**: ``2:12:5`` gives 2, 7, 12;
        step defaults to 1), a sequence of ints, or None for :func:`default_grid` scaled to ``n``.
    n : int
        Number of points to be clustered (only used for the default grid).
    option : str, default "min_cluster_sizes"
        Name of the option being parsed, used in error messages.
    minimum : int, default 2
        Smallest allowed value (hdbscan needs ``min_cluster_size >= 2`` and ``min_samples >= 1``).

    Returns
    -------
    tuple of int
        Sorted, de-duplicated values. Values above ``n`` are kept (they give all-noise settings) so one config can
        serve datasets of any size.

    Raises
    ------
    ConfigError
        (a ``ValueError``) naming ``option`` when the spec is malformed, empty or has a value below ``minimum``.
    """
    if spec is None:
        return default_grid(n) if minimum <= 2 else tuple(v for v in default_grid(n) if v >= minimum) or (minimum,)
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ConfigError(f"{option}: empty; give e.g. '5,10,20' or '2:100:5' (start:stop:step, stop inclusive)")
        if ":" in text:
            parts = [p.strip() for p in text.split(":")]
            if len(parts) not in (2, 3) or not all(_is_int(p) for p in parts):
                raise ConfigError(f"{option}: {spec!r} is not start:stop[:step] with integers, e.g. '2:100:5'")
            start, stop = int(parts[0]), int(parts[1])
            step = int(parts[2]) if len(parts) == 3 else 1
            if step <= 0:
                raise ConfigError(f"{option}: step must be a positive integer, got {step} in {spec!r}")
            if stop < start:
                raise ConfigError(f"{option}: stop {stop} is below start {start} in {spec!r}")
            values = list(range(start, stop + 1, step))
        else:
            parts = [p.strip() for p in text.split(",") if p.strip()]
            bad = [p for p in parts if not _is_int(p)]
            if bad or not parts:
                raise ConfigError(f"{option}: {spec!r} must be comma-separated integers, e.g. '5,10,20' (bad: {bad})")
            values = [int(p) for p in parts]
    else:
        try:
            values = list(spec)
        except TypeError as err:
            raise ConfigError(f"{option}: expected a string, a sequence of integers or None, got {spec!r}") from err
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, np.integer))]
        if bad:
            raise ConfigError(f"{option}: values must be integers, got {bad}")
        values = [int(v) for v in values]
        if not values:
            raise ConfigError(f"{option}: empty; give at least one value")
    low = [v for v in values if v < minimum]
    if low:
        raise ConfigError(f"{option}: every value must be >= {minimum}, got {low}")
    return tuple(sorted(set(values)))


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()

"""Choose one sweep setting with a stated, deterministic rule, and say why.

The rule: among settings whose noise fraction is within a budget and that find at least ``min_clusters`` clusters,
take the highest score (a modularity of the clusters on the original space's kNN graph, see the evidence at
``DEFAULT_SCORE``); ties go to less noise, then the smaller ``min_cluster_size`` and ``min_samples``. When no setting
fits the budget, the budget is relaxed to the lowest noise any setting reaches plus ``RELAX_MARGIN`` and the reason
says so. A pinned setting (a
person's choice) always wins and is labelled as such.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from clustering.analysis.cluster.setting import setting_name
from clustering.analysis.defaults import DEFAULT_MAX_NOISE, DEFAULT_SCORE, SCORES

# When nothing fits the noise budget: accept settings up to the lowest reachable noise plus this margin.
RELAX_MARGIN = 0.05
# How the report and the sweep figure name each score.
SCORE_LABELS = {
    "modularity_filled": "kNN-graph modularity with HDBSCAN's noise filled",
    "modularity": "kNN-graph modularity",
    "dbcv": "DBCV",
    "silhouette_cosine": "cosine silhouette",
    "silhouette_reduced": "reduced-space silhouette",
    "mean_persistence": "mean persistence",
    "calinski_harabasz": "Calinski-Harabasz",
}
_REQUIRED = ("min_cluster_size", "min_samples", "clusters", "noise_fraction")


@dataclass(frozen=True)
class Selection:
    """The chosen setting and the explanation the report prints.

    Attributes
    ----------
    index : int
        Row index (in the sweep rows) of the chosen setting.
    rule : str
        The rule as applied, e.g. "highest reduced-space silhouette among settings with at most 35% noise and at
        least 2 clusters".
    reason : str
        Why this row won, with its figures and the runner-up's.
    runner_ups : list of int
        Next best row indices under the same rule, best first (at most 3), one per clustering: a setting that gives
        the same clusters as the chosen one or an earlier runner-up is skipped (see ``labellings`` of :func:`select`).
    pinned : bool
        True when the setting was pinned by the user rather than chosen by the rule.
    eligible : tuple of int
        Every row the rule chose among (after any relaxation of the budget), in the rule's tie order (:func:`tie_key`).
    """

    index: int
    rule: str
    reason: str
    runner_ups: list[int] = field(default_factory=list)
    pinned: bool = False
    eligible: tuple[int, ...] = ()


def select(
    rows: Sequence[dict],
    *,
    max_noise: float = DEFAULT_MAX_NOISE,
    min_clusters: int = 2,
    pin_min_cluster_size: int | None = None,
    pin_min_samples: int | None = None,
    score: str = DEFAULT_SCORE,
    labellings: Sequence[Hashable] | None = None,
) -> Selection:
    """Pick a setting from scored sweep rows.

    Parameters
    ----------
    rows : sequence of dict
        Rows from :func:`clustering.analysis.cluster.scores.score_setting` (need ``min_cluster_size``, ``min_samples``,
        ``clusters``, ``noise_fraction`` and the ``score`` column).
    max_noise : float, default DEFAULT_MAX_NOISE
        Noise budget in [0, 1]: settings labelling a larger share as noise are not eligible (relaxed, with a stated
        reason, when no setting meets it).
    min_clusters : int, default 2
        Fewest clusters an eligible setting must find (>= 1). Relaxed to 1 only when no setting finds that many.
    pin_min_cluster_size, pin_min_samples : int or None
        Pin the choice: the row with these values wins (the rule picks among rows matching a single pin).
    score : str, default DEFAULT_SCORE
        Column to maximise, one of :data:`SCORES`; nan counts as worst.
    labellings : sequence of hashable, optional
        One key per row, equal exactly when two rows label the points the same way (:func:`partition_key`).
        Neighbouring ``min_cluster_size`` values often select the same clusters from the tree: the runner-ups and the
        reason then name the next *different* clusterings, and the reason counts the settings that repeat the chosen
        one. Without it every row counts as its own clustering.

    Returns
    -------
    Selection

    Raises
    ------
    ValueError
        On empty rows, missing columns, out-of-range options, or a pin that matches no row (naming the option).
    """
    rows = list(rows)
    pins = {"pin_min_cluster_size": pin_min_cluster_size, "pin_min_samples": pin_min_samples}
    _validate(rows, score, max_noise=max_noise, min_clusters=min_clusters, pins=pins)
    keys = list(range(len(rows))) if labellings is None else list(labellings)
    if len(keys) != len(rows):
        raise ValueError(f"labellings must hold one key per row: {len(keys)} keys for {len(rows)} rows")
    label = SCORE_LABELS.get(score, score)

    ranked, rule, note = _rank(rows, max_noise, min_clusters, score, label)

    if pin_min_cluster_size is None and pin_min_samples is None:
        distinct = _distinct(ranked, keys)  # the chosen clustering first, then the runner-ups
        reason = _reason(rows, ranked, distinct, keys=keys, score=score, note=note)
        return Selection(ranked[0], rule, reason, distinct[1:4], eligible=_tie_order(rows, ranked))

    matches = [
        i
        for i, r in enumerate(rows)
        if (pin_min_cluster_size is None or r["min_cluster_size"] == pin_min_cluster_size)
        and (pin_min_samples is None or r["min_samples"] == pin_min_samples)
    ]
    if not matches:
        given = ", ".join(f"{k}={v}" for k, v in pins.items() if v is not None)
        swept = sorted({(r["min_cluster_size"], r["min_samples"]) for r in rows})
        raise ValueError(f"{given} matches no swept setting; swept (min_cluster_size, min_samples): {swept}")
    order = {i: pos for pos, i in enumerate(ranked)}
    # Among several matches (a single pin), the rule's order decides; rows the rule excluded come after, by key.
    chosen = min(matches, key=lambda i: (order.get(i, math.inf), _key(rows[i], score, i)))
    runner_ups = _distinct([chosen, *ranked], keys)[1:4]
    row = rows[chosen]
    reason = f"pinned by the user: {_name(row)} ({_figures(row, score, label)})"
    if ranked and ranked[0] != chosen:
        top = rows[ranked[0]]
        reason += f"; the rule ({rule}) would have chosen {_name(top)} ({_figures(top, score, label)})"
    return Selection(
        chosen, f"pinned ({rule} otherwise)", reason, runner_ups, pinned=True, eligible=_tie_order(rows, ranked)
    )


def _validate(rows, score, *, max_noise, min_clusters, pins: dict) -> None:
    if not rows:
        raise ValueError("rows must not be empty: the sweep produced no settings")
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    for i, row in enumerate(rows):
        missing = [k for k in (*_REQUIRED, score) if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] lacks {missing}; pass rows from metrics.score_setting")
    if isinstance(max_noise, bool) or not isinstance(max_noise, (int, float)) or not 0.0 <= max_noise <= 1.0:
        raise ValueError(f"max_noise must be a number in [0, 1], got {max_noise!r}")
    if isinstance(min_clusters, bool) or not isinstance(min_clusters, int) or min_clusters < 1:
        raise ValueError(f"min_clusters must be an integer >= 1, got {min_clusters!r}")
    for name, value in pins.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


def _value(row: dict, score: str) -> float:
    value = row.get(score)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return -math.inf
    return value if math.isfinite(value) else -math.inf


def tie_key(row: dict, index: int) -> tuple:
    """How the rule breaks an exact tie of scores: less noise, then the smaller sizes, then excess of mass (hdbscan's
    default) before leaf, then the row order."""
    leaf = row.get("selection") == "leaf"
    return (row["noise_fraction"], row["min_cluster_size"], row["min_samples"], leaf, index)


def _key(row: dict, score: str, index: int) -> tuple:
    return (-_value(row, score), *tie_key(row, index))


def _tie_order(rows: Sequence[dict], indices) -> tuple[int, ...]:
    return tuple(sorted(indices, key=lambda i: tie_key(rows[i], i)))


def _rank(rows, max_noise, min_clusters, score, label) -> tuple[list[int], str, str]:
    """Rank rows under the rule, relaxing it (and saying how) when nothing is eligible."""

    def ranked(indices):
        return sorted(indices, key=lambda i: _key(rows[i], score, i))

    def eligible(budget, k):
        return [i for i, r in enumerate(rows) if r["clusters"] >= k and r["noise_fraction"] <= budget + 1e-12]

    rule = _rule_text(label, max_noise, min_clusters)
    chosen = eligible(max_noise, min_clusters)
    if chosen:
        return ranked(chosen), rule, ""
    for k in (min_clusters, 1):
        with_clusters = [i for i, r in enumerate(rows) if r["clusters"] >= k]
        if with_clusters:
            lowest = min(rows[i]["noise_fraction"] for i in with_clusters)
            budget = min(1.0, lowest + RELAX_MARGIN)
            relaxed = _rule_text(label, budget, k)
            note = (
                f"relaxed: no setting with at least {min_clusters} clusters had at most {max_noise:.0%} noise; "
                f"the lowest noise with at least {k} clusters is {lowest:.1%}, so the budget became {budget:.0%}"
            )
            if k != min_clusters:
                note = (
                    f"relaxed: no setting found {min_clusters} clusters; "
                    f"the lowest noise with a cluster is {lowest:.1%}, so the budget became {budget:.0%}"
                )
            return ranked(eligible(budget, k)), relaxed, note
    # Every setting labels every point noise: nothing to prefer, take the smallest setting.
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["min_cluster_size"], rows[i]["min_samples"], i))
    rule = "every setting is all noise: smallest min_cluster_size, then min_samples"
    return order, rule, "no setting found a cluster"


def _name(row: dict) -> str:
    return setting_name(row["min_cluster_size"], row["min_samples"], row.get("selection"))


def _rule_text(label: str, budget: float, min_clusters: int) -> str:
    # In words rather than "<=" / ">=": the Markdown report would have to escape those.
    return f"highest {label} among settings with at most {budget:.0%} noise and at least {min_clusters} clusters"


def _figures(row: dict, score: str, label: str) -> str:
    value = _value(row, score)
    shown = f"{value:.3f}" if math.isfinite(value) else "nan"
    return f"{label} {shown}, {row['clusters']} clusters, noise {row['noise_fraction']:.1%}"


def _reason(rows, ranked, distinct, *, keys, score, note) -> str:
    """Why ``ranked[0]`` won: its figures, how many settings give the same clusters, the runner-up clustering's
    (``distinct[1]``) figures and how many settings the rule let compete."""
    label = SCORE_LABELS.get(score, score)
    chosen = ranked[0]
    text = f"{_name(rows[chosen])}: {_figures(rows[chosen], score, label)}"
    same = sum(keys[i] == keys[chosen] for i in ranked) - 1
    if same:
        text += f" ({same} more setting{'s give' if same > 1 else ' gives'} the same clusters)"
    if len(distinct) > 1:
        text += f"; runner-up {_name(rows[distinct[1]])}: {_figures(rows[distinct[1]], score, label)}"
    text += f"; {len(ranked)} of {len(rows)} settings eligible"
    return f"{text} ({note})" if note else text


def _distinct(indices, keys) -> list[int]:
    """``indices`` in order, keeping the first row of each clustering."""
    seen: set = set()
    kept = []
    for i in indices:
        if keys[i] not in seen:
            seen.add(keys[i])
            kept.append(i)
    return kept


def partition_key(labels: np.ndarray) -> bytes:
    """A key equal for two labellings exactly when they group the points the same way (cluster ids aside; noise is
    noise in both): the labels renumbered in order of first appearance, hashed."""
    labels = np.asarray(labels)
    clustered = labels >= 0
    _, first, inverse = np.unique(labels[clustered], return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    canonical = np.full(labels.shape, -1, dtype=np.int64)
    canonical[clustered] = rank[inverse]
    return hashlib.blake2b(canonical.tobytes(), digest_size=16).digest()

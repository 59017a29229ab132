"""The resolution ladder: the settings the selection would choose at other resolutions of its score."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from clustering.analysis.cluster.ladder import Rung, resolution_ladder
from clustering.analysis.cluster.select import select


def _rows(inside, expected) -> list[dict]:
    return [
        {"min_cluster_size": 5 + i, "min_samples": 5, "selection": "eom", "clusters": 2 + i, "noise_fraction": 0.1,
         "modularity_filled_inside": a, "modularity_filled_expected": b}
        for i, (a, b) in enumerate(zip(inside, expected, strict=True))
    ]  # fmt: skip


def _winner(rows, eligible, resolution: float) -> int:
    scores = [rows[i]["modularity_filled_inside"] - resolution * rows[i]["modularity_filled_expected"]
              for i in eligible]  # fmt: skip
    return eligible[int(np.argmax(scores))]


@pytest.mark.parametrize("seed", range(20))
def test_every_resolution_falls_in_the_rung_of_its_winner(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    rows = _rows(rng.uniform(0.5, 1.0, n), rng.uniform(0.01, 0.5, n))
    eligible = list(range(n))
    ladder = resolution_ladder(rows, eligible)
    assert ladder[0].low == 0.25 and ladder[-1].high == 4.0
    assert all(a.high == b.low and a.index != b.index for a, b in itertools.pairwise(ladder))
    expected = [rows[r.index]["modularity_filled_expected"] for r in ladder]
    assert expected == sorted(expected, reverse=True)  # coarse (large expected term) to fine
    for resolution in np.geomspace(0.25, 4.0, 400):
        inside = [r for r in ladder if r.low < resolution < r.high]
        if inside:  # off the break points, the rung is the brute-force winner
            assert inside[0].index == _winner(rows, eligible, resolution)


def test_the_ladder_agrees_with_the_selection_at_each_rung():
    rng = np.random.default_rng(7)
    rows = _rows(rng.uniform(0.5, 1.0, 30), rng.uniform(0.01, 0.5, 30))
    for rung in resolution_ladder(rows, list(range(30))):
        middle = math.sqrt(rung.low * rung.high)
        scored = [r | {"modularity_filled": r["modularity_filled_inside"] - middle * r["modularity_filled_expected"]}
                  for r in rows]  # fmt: skip
        assert select(scored).index == rung.index


def test_only_eligible_rows_with_both_terms_count():
    rows = _rows([0.9, 0.99, 0.95, math.nan], [0.3, 0.5, 0.1, 0.01])
    assert {rung.index for rung in resolution_ladder(rows, [0, 2, 3])} <= {0, 2}
    assert resolution_ladder(rows, [3]) == [] and resolution_ladder(rows, []) == []
    assert resolution_ladder(rows, [2]) == [Rung(2, 0.25, 4.0)]


def test_a_tie_goes_to_the_earlier_eligible_row():
    rows = _rows([0.9, 0.9], [0.2, 0.2])
    assert resolution_ladder(rows, [1, 0]) == [Rung(1, 0.25, 4.0)]


def test_a_bad_range_is_refused():
    with pytest.raises(ValueError, match="0 < low <= high"):
        resolution_ladder(_rows([0.9], [0.2]), [0], low=2.0, high=1.0)

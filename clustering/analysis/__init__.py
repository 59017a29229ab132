"""Analysis of embedding shards: reduction, an HDBSCAN sweep, an explained selection, report and explorer.

The public surface is small: configure with :class:`AnalyzeConfig`, run with :func:`run_analysis`. The folders follow
the run's data, forward only (docs/architecture.md has the map):

- ``shards`` reads the ``ok`` rows; ``options`` and ``defaults`` are the job's options (no stage imported);
- ``space/``: the kNN graph, the clustering space and the 2-D map;
- ``cluster/``: the sweep, the background test, the scores, the explained choice, the original-space tests, the
  ladder and the hierarchy (``cluster_points`` runs them);
- ``outcome`` spreads the choice over every row; ``posts/`` describes each cluster's posts;
- ``documents`` shapes the files, ``output_folder`` writes them; ``report/`` and ``explorer/`` show them;
- ``run`` orchestrates, ``run_data`` holds what a run carries from step to step.

The names below load lazily, so importing one stage does not pull in matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["AnalysisResult", "AnalyzeConfig", "InputError", "run_analysis"]

_HOMES = {
    "AnalysisResult": "clustering.analysis.run_data",
    "AnalyzeConfig": "clustering.analysis.options",
    "InputError": "clustering.analysis.shards",
    "run_analysis": "clustering.analysis.run",
}

if TYPE_CHECKING:
    from clustering.analysis.options import AnalyzeConfig
    from clustering.analysis.run import run_analysis
    from clustering.analysis.run_data import AnalysisResult
    from clustering.analysis.shards import InputError


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'clustering.analysis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

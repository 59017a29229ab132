"""Analysis of embedding shards: reduction, an HDBSCAN sweep, an explained selection, report and explorer.

The public surface is small: configure with :class:`AnalyzeConfig`, run with :func:`run_analysis`. The modules are
importable on their own for notebooks and benchmarks: the compute stages (``read``, ``reduce``, ``sweep``, ``metrics``,
``select``), the in-memory result (``result``) and the tables built from it (``tables``), the output folder
(``outputs``), and what is shown (``plots``, ``report``, ``explorer``); the names below load lazily so importing one
stage does not pull in matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["AnalysisResult", "AnalyzeConfig", "InputError", "run_analysis"]

_HOMES = {
    "AnalysisResult": "clustering.analysis.result",
    "AnalyzeConfig": "clustering.analysis.config",
    "InputError": "clustering.analysis.read",
    "run_analysis": "clustering.analysis.pipeline",
}

if TYPE_CHECKING:
    from clustering.analysis.config import AnalyzeConfig
    from clustering.analysis.pipeline import run_analysis
    from clustering.analysis.read import InputError
    from clustering.analysis.result import AnalysisResult


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'clustering.analysis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

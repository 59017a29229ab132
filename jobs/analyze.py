"""Cluster CLIP embedding shards on one node: UMAP, an HDBSCAN sweep, an explained choice, report and explorer.

    python jobs/analyze.py --input SHARDS --output DIR [options]
    python jobs/analyze.py --config my.yaml

The output folder is described in docs/analysis-outputs.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from clustering.analysis.options import AnalyzeConfig  # light: no stage (and no numba) loads with the options
from clustering.cli import run_entrypoint
from clustering.config import parse_args


def main(argv: list[str] | None = None) -> int:
    def job() -> list[str]:
        config = parse_args(AnalyzeConfig, argv, prog="jobs/analyze.py", description=__doc__.splitlines()[0])
        from clustering.analysis.run import run_analysis  # after parsing: --help and typos stay fast

        return run_analysis(config).summary_lines()

    return run_entrypoint("analyze.py", job)


if __name__ == "__main__":
    sys.exit(main())

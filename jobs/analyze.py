"""Cluster CLIP embedding shards on one node: UMAP, an HDBSCAN sweep, an explained choice, report and explorer.

    python jobs/analyze.py --input SHARDS --output DIR [options]
    python jobs/analyze.py --config my.yaml

The output folder is described in docs/analysis-outputs.md.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from clustering.analysis import AnalyzeConfig, InputError
from clustering.config import ConfigError, parse_args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        config = parse_args(AnalyzeConfig, argv, prog="jobs/analyze.py", description=__doc__.splitlines()[0])
        from clustering.analysis.pipeline import run_analysis  # after parsing: --help and typos stay fast

        result = run_analysis(config)
    except (ConfigError, InputError) as exc:
        print(f"analyze.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("analyze.py: interrupted", file=sys.stderr)
        return 130
    for line in result.summary_lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

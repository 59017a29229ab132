"""Embed an image-URL table with CLIP into sharded Parquet (download → decode → embed on Ray).

Runs locally (starts its own Ray runtime) or under `ray job submit` on a cluster (attaches to it).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from clustering.config import ConfigError, IngestConfig, parse_args
from clustering.ingest.pipeline import run_ingest, summary_lines


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    try:
        config = parse_args(IngestConfig, argv, prog="jobs/embed.py", description=__doc__)
        result = run_ingest(config)
    except ConfigError as exc:
        print(f"embed.py: error: {exc}", file=sys.stderr)
        return 2
    for line in summary_lines(result):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

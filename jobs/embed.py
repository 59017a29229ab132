"""Embed an image-URL table with CLIP into a Parquet dataset (read → download + decode → embed → write, on Ray Data).

Runs locally (starts its own Ray runtime) or under `ray job submit` on a cluster (attaches to it); a rerun resumes.
The same stages fit into any Ray Data pipeline: `clustering.ingest.embed_images`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from clustering.cli import run_entrypoint
from clustering.config import IngestConfig, parse_args


def main(argv: list[str] | None = None) -> int:
    def job() -> list[str]:
        config = parse_args(IngestConfig, argv, prog="jobs/embed.py", description=__doc__)
        # Imported once the options are read: the job then starts Ray before it imports Ray Data (see run_ingest).
        from clustering.ingest.job import run_ingest, summary_lines

        return summary_lines(run_ingest(config))

    return run_entrypoint("embed.py", job)


if __name__ == "__main__":
    sys.exit(main())

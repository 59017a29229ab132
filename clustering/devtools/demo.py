"""``make demo``: generate the bundled sample, serve it on 127.0.0.1, ingest it, analyse it, print where to look.

The real download path runs (aiohttp against a local server). The real default model is used when it can be
downloaded; offline, a random-weight CLIP is generated locally, announced in one loud line and recorded in every output.
The sample's posts carry texts, dates and accounts, so the analysis names clusters, lists keywords, draws timelines,
counts accounts and finds repost groups; with random weights the names come from keywords, and the demo says so.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import socket
import sys
from pathlib import Path

from clustering.cli import keep_compile_cache
from clustering.config import DEFAULT_MODEL, ConfigError, IngestConfig

log = logging.getLogger("clustering.devtools.demo")

# Rows that exercise the failure paths in every demo run: each becomes a row with a status, never a crash.
BAD_ROUTES = {"bad/404": "http_error", "bad/html": "not_image"}


def hub_reachable(host: str = "huggingface.co") -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def pick_model(workdir: Path) -> str:
    """The real default model if it loads (cached or downloadable), else a locally generated random-weight CLIP."""
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    if not hub_reachable():
        # Offline: use the local Hugging Face cache only, instead of five retried lookups that cannot succeed.
        os.environ["HF_HUB_OFFLINE"] = "1"
    from clustering.ingest.clip_embedder import model_info

    try:
        model_info(DEFAULT_MODEL)
        return DEFAULT_MODEL
    except Exception as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    from clustering.devtools.tiny_model import build_tiny_clip

    path = build_tiny_clip(workdir / "random-clip", projection_dim=64)
    print(
        f"\n*** WARNING: {DEFAULT_MODEL} could not be loaded ({reason}).\n"
        f"*** Using a RANDOM-WEIGHT CLIP generated locally at {path}; clusters reflect pixel statistics, not meaning.\n"
        "*** Every output records this (metadata 'random_weights': true).\n",
        flush=True,
    )
    return str(path)


def write_url_table(sample_manifest: Path, base_url: str, dest: Path) -> int:
    """The sample's URL table with real http:// URLs on the local server, plus a few known-bad rows."""
    with sample_manifest.open() as src:
        rows = list(csv.DictReader(src))
    bad = [{"post_id": f"bad-{i}", "url": route, "kind": "bad"} for i, route in enumerate(BAD_ROUTES)]
    fields = [f for f in rows[0] if f != "path"]
    with dest.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows + bad:
            writer.writerow({**row, "url": f"{base_url}/{row.get('path') or row['url']}"})
    return len(rows) + len(bad)


def run_demo(output: Path, *, n_images: int) -> int:
    from clustering.devtools.devserver import ImageServer
    from clustering.devtools.sample import make_sample
    from clustering.ingest.job import run_ingest, summary_lines

    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    sample = make_sample(output / "sample", n_images=n_images, seed=0, together=True)
    model = pick_model(output)
    shards = output / "shards"
    with ImageServer(sample.outdir) as server:
        n_rows = write_url_table(sample.manifest, server.base_url, output / "urls.csv")
        print(f"demo: {n_rows} URLs served from {server.base_url}, model {model}", flush=True)
        config = IngestConfig(
            input=str(output / "urls.csv"),
            output=str(shards),
            model=model,
            allow_private_networks=True,
            rows_per_shard=100,
            id_column="post_id",
            read_timeout=5.0,
            retries=1,
        )
        result = run_ingest(config)
    for line in summary_lines(result):
        print(line)
    print(f"shards: {shards}")
    return run_analysis_step(shards, output / "analysis")


def names_line(shards: Path) -> str | None:
    """One line when cluster names cannot be zero-shot because the shards' model has random weights."""
    import pyarrow.parquet as pq

    from clustering import io, schema

    paths = io.list_shards(str(shards))
    if paths and schema.read_metadata(pq.read_schema(paths[0])).get("random_weights"):
        return "names: from keywords (the model has random weights, so it gives no zero-shot names)"
    return None


def run_analysis_step(shards: Path, outdir: Path) -> int:
    from clustering.analysis.options import AnalyzeConfig
    from clustering.analysis.run import run_analysis

    # Wider than the default grid for a few hundred images (5 to 20), so the sweep holds the coarser settings whose
    # clusters become the themes of the report's hierarchy.
    config = AnalyzeConfig(input=str(shards), output=str(outdir), overwrite=True, min_cluster_sizes="5:80:5")
    result = run_analysis(config)
    line = names_line(shards)
    if line:
        print(line)
    print(f"explorer: {(outdir / 'explorer.html').resolve()}")
    print(f"report: {Path(result.report_html).resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clustering.devtools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo-output", help="folder for everything the demo writes (replaced)")
    parser.add_argument("--images", type=int, default=300, help="number of sample images to generate (default 300)")
    args = parser.parse_args(argv)
    keep_compile_cache()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    try:
        return run_demo(Path(args.output), n_images=args.images)
    except ConfigError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

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


# The demo follows its sample as it grows: the later posts (by date) arrive as a second batch, placed by an update.
LATER_SHARE = 0.2


def write_url_tables(sample_manifest: Path, base_url: str, dest: Path) -> tuple[Path, Path, int]:
    """Two URL tables with real http:// URLs on the local server, split by post date: the earlier posts plus a few
    known-bad rows (the first batch), and the latest :data:`LATER_SHARE` (the batch the update brings)."""
    with sample_manifest.open() as src:
        rows = sorted(csv.DictReader(src), key=lambda row: (row.get("created_at") or "", row["post_id"]))
    cut = len(rows) - round(LATER_SHARE * len(rows))
    bad = [{"post_id": f"bad-{i}", "url": route, "kind": "bad"} for i, route in enumerate(BAD_ROUTES)]
    fields = [f for f in rows[0] if f != "path"]
    tables = (dest / "urls.csv", dest / "urls-later.csv")
    for table, batch in zip(tables, (rows[:cut] + bad, rows[cut:]), strict=True):
        with table.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for row in batch:
                writer.writerow({**row, "url": f"{base_url}/{row.get('path') or row['url']}"})
    return *tables, len(rows) + len(bad)


def run_demo(output: Path, *, n_images: int) -> int:
    from clustering.devtools.devserver import ImageServer
    from clustering.devtools.sample import make_sample
    from clustering.ingest.job import run_ingest, summary_lines

    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    sample = make_sample(output / "sample", n_images=n_images, seed=0, together=True)
    model = pick_model(output)
    shards, later = output / "shards", output / "shards-later"
    with ImageServer(sample.outdir) as server:
        first_urls, later_urls, n_rows = write_url_tables(sample.manifest, server.base_url, output)
        print(f"demo: {n_rows} URLs served from {server.base_url}, model {model}; the latest "
              f"{LATER_SHARE:.0%} of the posts by date come as a second batch", flush=True)  # fmt: skip
        for urls, folder in ((first_urls, shards), (later_urls, later)):
            config = IngestConfig(
                input=str(urls),
                output=str(folder),
                model=model,
                allow_private_networks=True,
                rows_per_shard=100,
                id_column="post_id",
                read_timeout=5.0,
                retries=1,
            )
            for line in summary_lines(run_ingest(config)):
                print(line)
            print(f"shards: {folder}")
    return run_analysis_step(shards, later, output)


def names_line(shards: Path) -> str | None:
    """One line when cluster names cannot be zero-shot because the shards' model has random weights."""
    import pyarrow.parquet as pq

    from clustering import io, schema

    paths = io.list_shards(str(shards))
    if paths and schema.read_metadata(pq.read_schema(paths[0])).get("random_weights"):
        return "names: from keywords (the model has random weights, so it gives no zero-shot names)"
    return None


def run_analysis_step(shards: Path, later: Path, output: Path) -> int:
    """Analyse the first batch, then update that analysis with the later posts (``docs/follow.md``)."""
    from clustering.analysis.options import AnalyzeConfig
    from clustering.analysis.run import run_analysis

    # Wider than the default grid for a few hundred images (5 to 20), so the sweep holds the coarser settings whose
    # clusters become the themes of the report's hierarchy.
    grid = "5:80:5"
    first = run_analysis(
        AnalyzeConfig(input=str(shards), output=str(output / "analysis-first"), min_cluster_sizes=grid)
    )
    print(f"first batch: {first.n_clusters} clusters; report: {Path(first.report_html).resolve()}")
    config = AnalyzeConfig(input=str(later), output=str(output / "analysis"), update=str(output / "analysis-first"),
                           min_cluster_sizes=grid)  # fmt: skip
    result = run_analysis(config)
    update = next((note for note in result.notes if note.startswith("update of")), "")
    print(f"update: {update.split(': ', 1)[-1]}")
    line = names_line(shards)
    if line:
        print(line)
    print(f"explorer: {(output / 'analysis' / 'explorer.html').resolve()}")
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

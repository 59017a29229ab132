"""Ingest throughput on realistic images: the job against the notebook loop and img2dataset, in one run.

Images are the sizes social media serves (1080x1350, 1080x1080, 720x1280, 1600x900), JPEG quality 85, textured so
files weigh about 110 KB, served by a local aiohttp server that adds 50 ms to every response. In the same invocation:

- the job, ``python jobs/embed.py`` from the command line to the process's exit (tiny random-weight CLIP): download,
  decode, thumbnail, embedding, Parquet; its own images/s (``_stats.json``: from its start, Ray's start included) and
  the seconds from the command to the first image fetched (the server's first hit);
- ``--baseline DIR``: the same command from another checkout (e.g. ``git worktree add /tmp/base 6ef25f6``, the
  scheduler of its own this project had before Ray Data), on the same URLs, in the same run;
- img2dataset (download + resize to 224 only, no embedding: a floor for the work the job does), run from its own
  virtualenv because it pins pandas < 3 (``--img2dataset PATH``, default: ``img2dataset`` on PATH), also from the
  command line to its exit;
- the notebook loop: sequential ``requests.get`` + Pillow + ``CLIPProcessor`` + batches of 32 (on a subset: a
  sequential loop's rate does not depend on the count);
- each stage alone on one core, on the same images, to show where the time goes.

``--rss`` instead measures the driver's peak memory at 10,000 and 100,000 rows (small images, half of the rows
reposts, 10 % bad rows), each in a fresh process, and checks that every row comes out exactly once.

    python bench/ingest.py --img2dataset /path/to/venv/bin/img2dataset --baseline /tmp/base    # 3000 images
    python bench/ingest.py --rss
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

SIZES = ((1080, 1350), (1080, 1080), (720, 1280), (1600, 900))
JPEG_QUALITY = 85
# Distinct pictures generated; further URLs reuse them under new names (the job and its peers still fetch and decode
# every URL: nothing is cached by content), which keeps generation under a minute.
DISTINCT_IMAGES = 200


def realistic_jpeg(index: int, rng: np.random.Generator) -> bytes:
    """A photo-like JPEG: smooth colour fields, a dozen shapes and a fine grain that gives real file sizes."""
    from PIL import Image, ImageDraw

    width, height = SIZES[index % len(SIZES)]
    base = rng.integers(0, 256, (height // 90 + 2, width // 90 + 2, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(20, width // 3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    grain = np.repeat(np.repeat(rng.normal(0, 1.4, (height // 2, width // 2, 1)), 2, 0), 2, 1)
    pixels = np.clip(np.asarray(img).astype(np.float32) + grain, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def write_images(folder: Path, n: int) -> list[str]:
    """``n`` file names under ``folder``: DISTINCT_IMAGES pictures, hard-linked under further names."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    names = []
    for i in range(n):
        name = f"{i:06d}.jpg"
        if i < DISTINCT_IMAGES:
            (folder / name).write_bytes(realistic_jpeg(i, rng))
        else:
            os.link(folder / names[i % DISTINCT_IMAGES], folder / name)
        names.append(name)
    return names


# --- the peers ---------------------------------------------------------------------------------------------------


def notebook_loop(urls: list[str], model_dir: str) -> tuple[float, int]:
    """The seed notebook's loop, adapted to URLs: download, open, preprocess and embed in batches of 32."""
    import requests
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    started = time.perf_counter()
    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)
    done = 0
    for i in range(0, len(urls), 32):
        images = [Image.open(io.BytesIO(requests.get(u, timeout=30).content)).convert("RGB") for u in urls[i : i + 32]]
        inputs = processor(images=images, return_tensors="pt")
        with torch.no_grad():
            out = model.get_image_features(pixel_values=inputs["pixel_values"])
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        done += len(torch.nn.functional.normalize(out, dim=-1))
    return time.perf_counter() - started, done


def img2dataset_run(executable: str, urls: list[str], workdir: Path) -> tuple[float, int]:
    """img2dataset 1.47 as the issue ran it: 2 processes x 32 threads, resize to 224 (centre crop), files output."""
    url_list = workdir / "i2d-urls.txt"
    url_list.write_text("\n".join(urls) + "\n")
    command = [executable, "--url_list", str(url_list), "--input_format", "txt", "--output_folder"]
    command += [str(workdir / "i2d"), "--output_format", "files", "--image_size", "224", "--resize_mode"]
    command += ["center_crop", "--processes_count", "2", "--thread_count", "32", "--timeout", "30"]
    command += ["--retries", "0", "--enable_wandb", "False", "--distributor", "multiprocessing"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    successes = sum(json.loads(p.read_text())["successes"] for p in (workdir / "i2d").glob("*_stats.json"))
    return seconds, successes


@dataclasses.dataclass(frozen=True)
class JobRun:
    """One run of ``jobs/embed.py`` from the command line: its own figures and the bench's clock."""

    end_to_end: float  # seconds from the command to the process's exit
    first_fetch: float | None  # seconds from the command to the server's first hit
    stats: dict  # the job's _stats.json

    @property
    def ok(self) -> int:
        return self.stats["status_counts"].get("ok", 0)


def job_run(checkout: Path, csv_path: Path, model_dir: str, output: Path, server) -> JobRun:
    """``python jobs/embed.py`` of ``checkout`` on the URLs, as a user runs it: its own process, its own Ray."""
    command = [sys.executable, str(checkout / "jobs" / "embed.py"), "--input", str(csv_path), "--output", str(output)]
    command += ["--model", model_dir, "--allow-private-networks", "--no-progress"]
    hits_before = sum(server.hits.values())
    first: list[float] = []
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    while proc.poll() is None:
        if not first and sum(server.hits.values()) > hits_before:
            first.append(time.perf_counter() - started)
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    printed = proc.stdout.read().decode(errors="replace")
    if proc.returncode:
        raise SystemExit(f"{command} failed:\n{printed[-3000:]}")
    stats = json.loads((output / "_stats.json").read_text())
    return JobRun(seconds, first[0] if first else None, stats)


# --- stages alone ------------------------------------------------------------------------------------------------


def stage_rates(urls: list[str], model_dir: str, n: int) -> dict[str, float]:
    """Images/s of each stage alone, on one core, on the first ``n`` URLs."""
    import pyarrow as pa

    from clustering.config import DecodeOptions, DownloadOptions
    from clustering.ingest.clip_embedder import ClipEmbedder, embed_batch, model_info, preprocess_dict
    from clustering.ingest.decode import decode_batch
    from clustering.ingest.download import add_fetch_columns, fetch_all

    info = model_info(model_dir)
    work = pa.table({"url": pa.array(urls[:n], pa.string())})
    rates, started = {}, time.perf_counter()
    results = asyncio.run(fetch_all(urls[:n], DownloadOptions(allow_private_networks=True)))
    rates["download (64 in flight, 50 ms latency)"] = n / (time.perf_counter() - started)
    fetched = add_fetch_columns(work, results)
    started = time.perf_counter()
    decoded = decode_batch(fetched, options=DecodeOptions(), spec=info.preprocess)
    rates["decode + crop + thumbnail"] = n / (time.perf_counter() - started)
    embedder = ClipEmbedder(model=model_dir, preprocess=preprocess_dict(info.preprocess))
    embed_batch(decoded.slice(0, 8), embedder)  # warm-up: the first forward pass initialises torch
    started = time.perf_counter()
    embed_batch(decoded, embedder)
    rates["embed (tiny model, CPU)"] = n / (time.perf_counter() - started)
    return rates


# --- driver memory ------------------------------------------------------------------------------------------------


def rss_child(rows: int, workdir: str, model_dir: str, base_url: str) -> None:
    """One job at ``rows`` rows in this fresh process; prints the driver's peak RSS and the exact-once check."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import ray

    from clustering import io as cio
    from clustering.config import IngestConfig
    from clustering.ingest.job import run_ingest

    rng = np.random.default_rng(rows)
    unique = rows // 2
    urls = [
        f"{base_url}/bad/404?{i}" if i % 10 == 0 else f"{base_url}/small/{i % 64:02d}.jpg?u={i}" for i in range(unique)
    ]
    urls += [urls[j] for j in rng.integers(0, unique, rows - unique)]  # reposts of earlier posts
    order = rng.permutation(rows)
    table = pa.table({"url": pa.array([urls[i] for i in order]), "post": pa.array(np.arange(rows))})
    csv_path = Path(workdir) / f"urls-{rows}.csv"
    pacsv.write_csv(table, csv_path)
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    output = Path(workdir) / f"shards-{rows}"
    config = IngestConfig(
        input=str(csv_path), output=str(output), model=model_dir, allow_private_networks=True, progress=False
    )
    started = time.perf_counter()
    stats = run_ingest(config).stats
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = cio.read_shards(str(output), columns=["id", "post"])
    exact = out.num_rows == rows and len(set(out["id"].to_pylist())) == rows
    exact = exact and sorted(out["post"].to_pylist()) == list(range(rows))
    print(json.dumps({"rows": rows, "peak_rss_mib": round(peak_mib, 1), "seconds": round(seconds, 1),
                      "exactly_once": exact, "status_counts": stats["status_counts"]}))  # fmt: skip
    ray.shutdown()


def rss_bench(model_dir: str, tmp: Path) -> None:
    from PIL import Image

    from clustering.devtools.devserver import ImageServer

    small = tmp / "served" / "small"
    small.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(64):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(small / f"{i:02d}.jpg", quality=85)
    results = []
    with ImageServer(tmp / "served") as server:
        for rows in (10_000, 100_000):
            code = "import sys, bench.ingest as b; b.rss_child(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])"
            proc = subprocess.run(
                [sys.executable, "-c", code, str(rows), str(tmp), model_dir, server.base_url],
                cwd=Path(__file__).resolve().parents[1],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode:
                raise SystemExit(f"the {rows}-row run failed:\n{proc.stderr[-3000:]}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    for r in results:
        print(f"{r['rows']:>7} rows: driver peak RSS {r['peak_rss_mib']:7.1f} MiB, {r['seconds']:6.1f} s, "
              f"every row exactly once: {r['exactly_once']}, statuses {r['status_counts']}")  # fmt: skip
    print(f"peak RSS ratio 100k / 10k: {results[1]['peak_rss_mib'] / results[0]['peak_rss_mib']:.2f}x (goal <= 1.5x)")


# --- main --------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000, help="number of image URLs (default 3000)")
    parser.add_argument("--notebook-images", type=int, default=300, help="URLs the notebook loop runs (default 300)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every response (default 0.05)")
    parser.add_argument("--img2dataset", default=shutil.which("img2dataset"), help="img2dataset executable")
    parser.add_argument("--baseline", type=Path, help="another checkout whose jobs/embed.py runs on the same URLs")
    parser.add_argument("--rss", action="store_true", help="measure driver memory at 10k and 100k rows instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from clustering.devtools.devserver import ImageServer
    from clustering.devtools.tiny_model import build_tiny_clip

    here = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = str(build_tiny_clip(tmp / "model"))
        if args.rss:
            rss_bench(model_dir, tmp)
            return
        names = write_images(tmp / "images", args.images)
        mean_kib = np.mean([(tmp / "images" / n).stat().st_size for n in names[:DISTINCT_IMAGES]]) / 1024
        with ImageServer(tmp / "images", latency=args.latency) as server:
            urls = [server.url(n) for n in names]
            csv_path = tmp / "urls.csv"
            csv_path.write_text("url\n" + "\n".join(urls) + "\n")
            baseline = job_run(args.baseline, csv_path, model_dir, tmp / "base", server) if args.baseline else None
            job = job_run(here, csv_path, model_dir, tmp / "shards", server)
            i2d = img2dataset_run(args.img2dataset, urls, tmp) if args.img2dataset else None
            nb_seconds, nb_done = notebook_loop(urls[: args.notebook_images], model_dir)
            stages = stage_rates(urls, model_dir, min(256, args.images))
    report(args, mean_kib, job, baseline, i2d, (nb_seconds, nb_done), stages)


def report(args, mean_kib: float, job: JobRun, baseline: JobRun | None, i2d, notebook, stages: dict) -> None:
    load = os.getloadavg()
    sizes = ", ".join("x".join(map(str, s)) for s in SIZES)
    print(f"images: {args.images} JPEGs, {mean_kib:.0f} KiB mean, sizes {sizes}; "
          f"{args.latency * 1000:.0f} ms added per response; {os.cpu_count()} CPUs, no GPU; "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")  # fmt: skip
    nb_rate = notebook[1] / notebook[0]
    print(f"notebook loop    : {notebook[1]} images in {notebook[0]:6.1f} s = {nb_rate:7.1f} images/s")
    i2d_rate = i2d[1] / i2d[0] if i2d else None
    if i2d:
        print(f"img2dataset      : {i2d[1]} images in {i2d[0]:6.1f} s = {i2d_rate:7.1f} images/s "
              "(resize only; command to exit)")  # fmt: skip
    else:
        print(
            "img2dataset      : not run (pass --img2dataset PATH; install it in a venv of its own: it pins pandas < 3)"
        )
    runs = [("clipcluster", job)] + ([("baseline", baseline)] if baseline else [])
    for name, run in runs:
        first = f"{run.first_fetch:.1f} s" if run.first_fetch is not None else "n/a"
        print(f"{name:17}: {run.ok} images; job {run.stats['images_per_second']:7.1f} images/s "
              f"({run.stats['elapsed_seconds']:.1f} s); command to exit {run.end_to_end:6.1f} s = "
              f"{run.ok / run.end_to_end:7.1f} images/s; first image fetched {first} after the command")  # fmt: skip
    for stage, rate in stages.items():
        print(f"  alone, one core: {stage:40} {rate:8.1f} images/s")
    job_rate = job.stats["images_per_second"]
    print(f"ratio vs notebook   : {job_rate / nb_rate:.2f}x (goal >= 15x)")
    if baseline:
        print(f"ratio vs baseline   : {job_rate / baseline.stats['images_per_second']:.2f}x job images/s, "
              f"{baseline.end_to_end / job.end_to_end:.2f}x command to exit (goal >= 1x)")  # fmt: skip
    if i2d:
        print(f"ratio vs img2dataset: {job_rate / i2d_rate:.2f}x job images/s (goal >= 2.5x), "
              f"{(job.ok / job.end_to_end) / i2d_rate:.2f}x command to exit (goal >= 1.5x)")  # fmt: skip
    if job.first_fetch is not None:
        print(f"first image fetched : {job.first_fetch:.1f} s after the command (goal <= 8 s)")


if __name__ == "__main__":
    main()

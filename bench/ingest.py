"""Ingest throughput: the Ray job against the notebook's sequential loop, same server, images and model.

The notebook approach: sequential ``requests.get`` + Pillow + ``CLIPProcessor`` + batches of 32 through
``get_image_features``. Both read the same images from a local aiohttp server that adds ~50 ms to every response
(like a real CDN round trip), and embed with the same random-weight model. Prints images/s of each and their ratio.

    python bench/ingest.py                      # 1000 images, tiny model
    python bench/ingest.py --architecture vit-b-32 --images 200
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import tempfile
import time
from pathlib import Path

import numpy as np


def notebook_baseline(urls: list[str], model_dir: str) -> tuple[float, np.ndarray]:
    """The seed notebook's loop, adapted to URLs: download, open, preprocess and embed in batches of 32."""
    import requests
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    started = time.perf_counter()
    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)
    vectors = []
    for i in range(0, len(urls), 32):
        images = []
        for url in urls[i : i + 32]:
            try:
                images.append(Image.open(io.BytesIO(requests.get(url, timeout=30).content)).convert("RGB"))
            except Exception:
                continue
        inputs = processor(images=images, return_tensors="pt")
        with torch.no_grad():
            out = model.get_image_features(pixel_values=inputs["pixel_values"])
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        vectors.append(torch.nn.functional.normalize(out, dim=-1).numpy())
    return time.perf_counter() - started, np.concatenate(vectors)


def sample_paths(manifest: Path) -> list[str]:
    """The generated sample's good images (broken files are left out so both sides embed the same set)."""
    with manifest.open() as src:
        return [row["path"] for row in csv.DictReader(src) if row["kind"] != "broken"]


def run_job(csv_path: Path, model_dir: str, output: Path) -> tuple[float, dict]:
    from clustering.config import IngestConfig
    from clustering.ingest.pipeline import run_ingest

    config = IngestConfig(
        input=str(csv_path),
        output=str(output),
        model=model_dir,
        allow_private_networks=True,
        progress=False,
        overwrite=True,
    )
    started = time.perf_counter()
    result = run_ingest(config)
    return time.perf_counter() - started, result.stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="number of images (default 1000)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every response (default 0.05)")
    parser.add_argument("--architecture", choices=("tiny", "vit-b-32"), default="tiny", help="random model shapes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import ray

    from clustering.devtools.devserver import ImageServer
    from clustering.devtools.sample import make_sample
    from clustering.devtools.tiny_model import build_tiny_clip

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sample = make_sample(tmp / "images", n_images=args.images, seed=1)
        model_dir = str(build_tiny_clip(tmp / "model", architecture=args.architecture))
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        with ImageServer(sample.outdir, latency=args.latency) as server:
            urls = [server.url(p) for p in sample_paths(sample.manifest)]
            csv_path = tmp / "urls.csv"
            csv_path.write_text("url\n" + "\n".join(urls) + "\n")
            job_seconds, stats = run_job(csv_path, model_dir, tmp / "shards")
            base_seconds, base_vectors = notebook_baseline(urls, model_dir)
        ray.shutdown()
    ok = stats["status_counts"].get("ok", 0)
    job_rate, base_rate = ok / job_seconds, len(base_vectors) / base_seconds
    print(
        f"images: {len(urls)} served with {args.latency * 1000:.0f} ms latency, model {args.architecture} "
        f"(random weights), machine: {__import__('os').cpu_count()} CPUs, no GPU"
    )
    print(f"notebook loop : {len(base_vectors)} images in {base_seconds:6.1f} s = {base_rate:7.1f} images/s")
    print(
        f"clipcluster   : {ok} images in {job_seconds:6.1f} s = {job_rate:7.1f} images/s "
        f"(whole job incl. Ray start and model load; statuses {stats['status_counts']})"
    )
    print(f"ratio         : {job_rate / base_rate:.2f}x")


if __name__ == "__main__":
    main()

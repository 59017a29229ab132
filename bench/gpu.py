"""GPU throughput of the ingest job, in three parts, so a session with a GPU can measure each and see which one limits.

1. model: the embed actor's forward pass alone (``ClipEmbedder.embed``) on pre-made uint8 crops, per batch size;
   fp16 on CUDA, fp32 on CPU, exactly as the job runs it.
2. decode: download-free decode + CLIP preprocessing (``decode_image``) of photo-sized JPEGs on one CPU core.
3. job: the whole Ray job (``run_ingest``) against a local HTTP server holding the same JPEGs, on this machine's GPUs.

It prints images/s of each and the ratio that sizes a cluster: how many decode cores one GPU needs. Random weights
(``--architecture vit-b-32``: the real ViT-B/32 shapes) cost the same time as real ones; ``--model`` takes a real
checkpoint instead. Nothing leaves the machine: the images are generated and served on 127.0.0.1.

    python bench/gpu.py                                  # on a GPU machine: ViT-B/32 shapes, 2000 images
    python bench/gpu.py --architecture tiny --images 32 --batch-sizes 8 --job-images 32   # smoke test on CPU
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def photo_jpegs(n: int, side: int, seed: int = 0) -> list[bytes]:
    """``n`` JPEGs about ``side`` px on the long edge, from the demo sample's generators (photo-like sizes)."""
    from PIL import Image

    from clustering.devtools.sample import make_sample

    with tempfile.TemporaryDirectory() as tmp:
        sample = make_sample(tmp, n_images=max(n, 10), seed=seed)
        sources = sorted(p for p in (sample.outdir / "images").iterdir() if "broken" not in p.name)
        out = []
        for i in range(n):
            src = sources[i % len(sources)]
            try:
                img = Image.open(src).convert("RGB")
            except OSError:  # the sample's deliberately broken files
                img = Image.new("RGB", (64, 48), (128, 128, 128))
            scale = side / max(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=85)
            out.append(buf.getvalue())
    return out


def bench_model(model: str, batch_sizes: list[int], images: int, device: str | None) -> list[dict]:
    """Forward passes alone: uint8 crops already in memory, one warm-up batch per size, then ``images`` timed."""
    import torch

    from clustering.ingest.clip_embedder import ClipEmbedder, model_info, preprocess_dict

    info = model_info(model)
    rows = []
    for batch_size in batch_sizes:
        embedder = ClipEmbedder(
            model=model, preprocess=preprocess_dict(info.preprocess), batch_size=batch_size, device=device
        )
        h, w = info.preprocess.crop
        crops = np.random.default_rng(0).integers(0, 256, size=(batch_size, h, w, 3), dtype=np.uint8)
        embedder.embed(crops)  # warm-up: CUDA context, kernels, allocator
        cuda = embedder.device.startswith("cuda")
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        batches = max(1, images // batch_size)
        started = time.perf_counter()
        for _ in range(batches):
            embedder.embed(crops)  # returns numpy: includes the device->host copy the job pays too
        seconds = time.perf_counter() - started
        rows.append(
            {
                "batch_size": batch_size,
                "device": embedder.device,
                "dtype": str(embedder.dtype).removeprefix("torch."),
                "images_per_second": round(batches * batch_size / seconds, 1),
                "peak_gpu_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
            }
        )
        del embedder
        if cuda:
            torch.cuda.empty_cache()
    return rows


def bench_decode(jpegs: list[bytes], model: str) -> dict:
    """Decode + thumbnail + CLIP crop of each JPEG on this one core (the decode stage's work per image)."""
    from clustering.config import DecodeOptions
    from clustering.ingest.clip_embedder import model_info
    from clustering.ingest.decode import decode_image

    spec, options = model_info(model).preprocess, DecodeOptions()
    decode_image(jpegs[0], options, spec)
    started = time.perf_counter()
    statuses = [decode_image(content, options, spec).status for content in jpegs]
    seconds = time.perf_counter() - started
    return {
        "images": len(jpegs),
        "ok": statuses.count("ok"),
        "mean_jpeg_kib": round(sum(map(len, jpegs)) / len(jpegs) / 1024, 1),
        "images_per_second_per_core": round(len(jpegs) / seconds, 1),
    }


def bench_job(jpegs: list[bytes], model: str, workdir: Path, latency: float) -> dict:
    """The whole job in local Ray (all CPUs and GPUs of this machine) against a local HTTP server."""
    import ray

    from clustering.config import IngestConfig
    from clustering.devtools.devserver import ImageServer
    from clustering.ingest.job import run_ingest

    images = workdir / "images"
    images.mkdir(parents=True)
    for i, content in enumerate(jpegs):
        (images / f"{i:06d}.jpg").write_bytes(content)
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    try:
        with ImageServer(images, latency=latency) as server:
            csv_path = workdir / "urls.csv"
            csv_path.write_text("url\n" + "\n".join(server.url(f"{i:06d}.jpg") for i in range(len(jpegs))) + "\n")
            config = IngestConfig(
                input=str(csv_path),
                output=str(workdir / "shards"),
                model=model,
                allow_private_networks=True,
                progress=False,
                overwrite=True,
            )
            started = time.perf_counter()
            result = run_ingest(config)
            seconds = time.perf_counter() - started
        resources = ray.cluster_resources()
    finally:
        ray.shutdown()
    ok = result.stats["status_counts"].get("ok", 0)
    return {
        "images": len(jpegs),
        "ok": ok,
        "seconds": round(seconds, 1),
        "images_per_second": round(ok / seconds, 1),
        "cpus": int(resources.get("CPU", 0)),
        "gpus": int(resources.get("GPU", 0)),
        "stages": result.stats.get("stages"),
        "note": "whole job: actor start-up, model load on every actor, download, decode, embed, shard writes",
    }


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPUs, {gpu}, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/gpu.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--architecture", choices=("vit-b-32", "tiny"), default="vit-b-32", help="random model")
    parser.add_argument("--model", help="a real CLIP checkpoint (hub id or folder) instead of a random one")
    parser.add_argument("--images", type=int, default=2000, help="images per model measurement and decode run")
    parser.add_argument("--batch-sizes", default="32,64,128,256", help="forward-pass batch sizes to time")
    parser.add_argument("--job-images", type=int, default=2000, help="images for the whole job; 0 skips it")
    parser.add_argument("--side", type=int, default=1024, help="long edge of the generated JPEGs in px")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the local server adds to each response")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model:
            model = args.model
        else:
            from clustering.devtools.tiny_model import build_tiny_clip

            model = str(build_tiny_clip(tmp / "model", architecture=args.architecture))
        figures = {"machine": machine(), "model": args.model or f"random {args.architecture}"}
        print(f"machine: {figures['machine']}; model: {figures['model']}", flush=True)

        figures["model_alone"] = bench_model(model, batch_sizes, args.images, args.device)
        for row in figures["model_alone"]:
            memory = f", peak {row['peak_gpu_memory_mib']} MiB" if row["peak_gpu_memory_mib"] is not None else ""
            print(
                f"model alone : batch {row['batch_size']:4d} on {row['device']} ({row['dtype']}): "
                f"{row['images_per_second']:9.1f} images/s{memory}",
                flush=True,
            )

        jpegs = photo_jpegs(max(args.images, args.job_images, 1), args.side)
        figures["decode"] = bench_decode(jpegs[: args.images], model)
        decode = figures["decode"]
        print(
            f"decode      : {decode['images_per_second_per_core']:9.1f} images/s per core "
            f"({decode['mean_jpeg_kib']} KiB JPEGs, {args.side} px long edge)",
            flush=True,
        )
        best = max(row["images_per_second"] for row in figures["model_alone"])
        figures["decode_cores_per_model_replica"] = round(best / decode["images_per_second_per_core"], 1)
        print(f"ratio       : one model replica needs {figures['decode_cores_per_model_replica']} decode cores")

        if args.job_images:
            figures["job"] = bench_job(jpegs[: args.job_images], model, tmp / "job", args.latency)
            job = figures["job"]
            print(
                f"whole job   : {job['ok']} images in {job['seconds']} s = {job['images_per_second']} images/s "
                f"({job['cpus']} CPUs, {job['gpus']} GPUs; includes Ray start-up and model loads)"
            )
            for stage, rates in (job["stages"] or {}).items():
                print(f"  job stage {stage:6}: {rates['images_per_busy_second']} images per busy worker-second")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

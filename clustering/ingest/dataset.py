"""The Dataset API: image URLs in any Ray Data pipeline in, status, thumbnail and CLIP embedding columns out.

``embed_images(ds)`` adds two operators to ``ds``; Ray Data schedules them, scales their actor pools with the
cluster, shows them in the dashboard and streams between them:

- ``MapBatches(FetchDecode)``: an autoscaling pool of CPU actors that download each distinct URL of a batch once
  (aiohttp, the address guard, byte caps, bounded retries) and decode it in a child process (Pillow, safety limits,
  thumbnail, CLIP crop). Every row comes out with a ``status``; nothing one image does can fail a batch.
- ``MapBatches(ClipEmbedder)``: an autoscaling pool of embed actors, one GPU each where the cluster has GPUs, that
  load CLIP once and add ``embedding`` (null unless ``ok``); CUDA out-of-memory splits the batch inside the actor.

    import ray
    from clustering.ingest import embed_images

    posts = ray.data.read_parquet("s3://bucket/posts/")          # any Dataset with a URL column
    embedded = embed_images(posts, url_column="image_url")
    embedded.filter(expr="status == 'ok'").write_lance("s3://bucket/embeddings.lance")
"""

from __future__ import annotations

import ray
import ray.data

from clustering.config import DEFAULT_MODEL, DecodeOptions, DownloadOptions, StageOptions
from clustering.ingest.clip_embedder import ModelInfo, model_info, preprocess_dict
from clustering.ingest.fetch import FetchDecode

# Logical CPUs per actor. A fetch+decode actor waits on sockets while its child process decodes: two per core keep
# the cores busy. The embed actor feeds a GPU, or is the compute on CPU-only machines; half a CPU leaves room on a
# 2-CPU machine for Ray Data's checkpoint filter (1 CPU) on resume, which would otherwise wait for a free CPU forever
# (Ray issue #44687).
FETCH_CPUS = 0.5
EMBED_CPUS = 0.5
# Batches queued on one fetch actor at once: the next one downloads while the last slices of the current one decode.
FETCH_CALLS_PER_ACTOR = 2


def embed_images(
    ds: ray.data.Dataset,
    *,
    model: str = DEFAULT_MODEL,
    url_column: str = "url",
    download: DownloadOptions | None = None,
    decode: DecodeOptions | None = None,
    stages: StageOptions | None = None,
    info: ModelInfo | None = None,
    local_root: str | None = None,
) -> ray.data.Dataset:
    """Add fetch+decode and CLIP embedding to ``ds``: every row comes out once, with its status.

    Parameters
    ----------
    ds : ray.data.Dataset
        Any dataset with a text column of image URLs (http(s), or local paths and ``file://`` URLs when
        ``download.allow_local_files``). Its other columns are carried unchanged. A block is one call of one fetch
        actor: blocks of a few hundred rows spread the work over the pool (``ray.data`` readers make many blocks;
        ``ds.repartition(target_num_rows_per_block=256)`` splits a few big ones).
    model : str, default "openai/clip-vit-base-patch32"
        Hub id or local folder of any transformers ``CLIPModel``.
    url_column : str, default "url"
        The column holding the URLs.
    download : DownloadOptions, optional
        Concurrency, timeouts, caps, retries, and what may be fetched (public addresses only by default).
    decode : DecodeOptions, optional
        Accepted formats, pixel and size limits, thumbnail size and quality.
    stages : StageOptions, optional
        Batch sizes and actor-pool bounds; by default both pools grow with the cluster.
    info : ModelInfo, optional
        The model's dimension and preprocessing, when the caller has read them already.
    local_root : str, optional
        A folder whose files may be read even with local files off (an image folder given as input).

    Returns
    -------
    ray.data.Dataset
        ``ds``'s columns plus ``status``, ``error``, ``http_status``, ``bytes``, ``width``, ``height``, ``sha256``,
        ``thumbnail`` (JPEG) and ``embedding`` (L2-normalised float32, null unless ``status == "ok"``).
    """
    from clustering.ingest import clip_embedder  # looked up at call time, so a test can swap the embedder class

    download = download or DownloadOptions()
    decode = decode or DecodeOptions()
    stages = stages or StageOptions()
    info = info or model_info(model)
    fetched = ds.map_batches(
        FetchDecode,
        fn_constructor_kwargs={
            "download": download,
            "decode": decode,
            "spec": info.preprocess,
            "url_column": url_column,
            "local_root": local_root,
        },
        compute=ray.data.ActorPoolStrategy(
            min_size=1,
            max_size=stages.download_actors,
            max_concurrent_calls_per_actor=FETCH_CALLS_PER_ACTOR,
        ),
        num_cpus=FETCH_CPUS,
        batch_size=stages.download_batch_size,
        batch_format="pyarrow",
        udf_modifying_row_count=False,
    )
    gpus = embed_gpus(stages)
    return fetched.map_batches(
        clip_embedder.ClipEmbedder,
        fn_constructor_kwargs={
            "model": model,
            "preprocess": preprocess_dict(info.preprocess),
            "batch_size": stages.batch_size,
        },
        compute=ray.data.ActorPoolStrategy(min_size=stages.min_embed_actors, max_size=stages.embed_actors),
        num_cpus=EMBED_CPUS,
        num_gpus=gpus or None,
        batch_size=stages.batch_size,
        batch_format="pyarrow",
        udf_modifying_row_count=False,
    )


def embed_gpus(stages: StageOptions) -> float:
    """GPUs per embed actor: as asked, else one where the cluster has GPUs now, else none (CPU embedding)."""
    if stages.num_gpus_per_actor is not None:
        return stages.num_gpus_per_actor
    if not ray.is_initialized():
        ray.init()
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0

"""CLIP image embedding: a callable class that loads the model once per actor and embeds preprocessed pixels.

Pixels arrive from the decode stage as uint8 crops (resize + centre crop already done on CPU workers); this stage only
rescales, normalises, runs the vision tower and L2-normalises. Rows that failed earlier pass through untouched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clustering import schema
from clustering.config import PreprocessSpec
from clustering.ingest import attempts
from clustering.ingest.decode import preprocess_spec_from_processor
from clustering.schema import Status

log = logging.getLogger(__name__)

# Niceness of the thread that loads the model: the lowest priority there is.
LOAD_NICENESS = 19


@dataclass(frozen=True)
class ModelInfo:
    """What the driver needs to know about a model before any actor loads it: cheap to read (config files only)."""

    model: str
    dim: int
    preprocess: PreprocessSpec
    name_or_path: str
    random_weights: bool = False


def load_image_processor(model: str):
    """The model's image processor; the PIL-backed class where torchvision is absent (it is the same maths)."""
    import transformers

    processor_class = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    return processor_class.from_pretrained(model)


def model_info(model: str) -> ModelInfo:
    """Read the embedding dimension and preprocessing of ``model`` (a hub id or a local folder).

    Read from the checkpoint's ``config.json`` and ``preprocessor_config.json`` when they say it all (milliseconds,
    where transformers' image processor imports torch: seconds before the job can start); through transformers
    otherwise.
    """
    files = _config_files(model)
    if files is not None:
        config, processor = files
        if config.get("model_type") != "clip" or not config.get("projection_dim"):
            raise ValueError(f"its config ({config.get('model_type', 'unknown type')}) has no projection_dim")
        if all(processor.get(k) is not None for k in ("size", "crop_size", "image_mean", "image_std")):
            return ModelInfo(
                model=model,
                dim=int(config["projection_dim"]),
                preprocess=preprocess_spec_from_processor(SimpleNamespace(**processor)),
                name_or_path=model,
                random_weights=bool(config.get("clipcluster_random_weights", False)),
            )
    return _model_info_from_transformers(model)


def _config_files(model: str) -> tuple[dict, dict] | None:
    """The checkpoint's two JSON configuration files, from its folder or the hub (cache first); None when absent."""
    names = ("config.json", "preprocessor_config.json")
    try:
        if os.path.isdir(model):
            paths = [os.path.join(model, n) for n in names]
        else:
            from huggingface_hub import hf_hub_download

            paths = [hf_hub_download(model, n) for n in names]
        return tuple(json.loads(Path(p).read_text()) for p in paths)  # type: ignore[return-value]
    except (OSError, ValueError, ImportError):  # missing files, offline, unparsable: transformers says why
        return None


def _model_info_from_transformers(model: str) -> ModelInfo:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model)
    dim = getattr(config, "projection_dim", None)
    if not dim:
        raise ValueError(f"its config ({getattr(config, 'model_type', 'unknown type')}) has no projection_dim")
    spec = preprocess_spec_from_processor(load_image_processor(model))
    return ModelInfo(
        model=model,
        dim=int(dim),
        preprocess=spec,
        name_or_path=config._name_or_path or model,
        random_weights=bool(getattr(config, "clipcluster_random_weights", False)),
    )


def pick_device(requested: str | None = None) -> str:
    import torch

    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def normalise_pixels(pixels: np.ndarray, spec: PreprocessSpec):
    """uint8 NHWC crops -> float NCHW tensor, rescaled to [0, 1] and normalised like CLIPImageProcessor."""
    import torch

    # (p / 255 - mean) / std in two in-place passes over one float copy: (p - 255 mean) * 1 / (255 std).
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float()
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0
    scale = 1.0 / (torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0)
    return x.sub_(mean).mul_(scale)


class ClipEmbedder:
    """Callable class (one per Ray embed actor): loads CLIP once in ``__init__`` and embeds batches of crops.

    The model loads in a thread of the lowest CPU priority (Linux): when a job starts, this actor's import of torch
    and the weights want the same CPUs as the first downloads, which come first (the first batch reaches this actor
    only after them). Where CPUs are idle, as on a GPU node, the load runs at full speed all the same.

    Parameters
    ----------
    model : str
        Hub id or local folder of any transformers ``CLIPModel``; only names travel through Ray, never weights.
    preprocess : dict
        ``PreprocessSpec`` fields, as read from the model's image processor on the driver.
    batch_size : int
        Largest forward-pass batch; a CUDA out-of-memory halves it for that batch instead of failing the job.
    device : str, optional
        ``cuda`` when a GPU is visible to this actor, else ``cpu`` (local mode, CI, CPU-only clusters).
    """

    def __init__(self, *, model: str, preprocess: dict, batch_size: int = 64, device: str | None = None) -> None:
        self.spec = PreprocessSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in preprocess.items()})
        self.batch_size = batch_size
        self.device, self.dtype, self.model = _at_lowest_priority(_load_model, model, device)
        log.info("embedder ready: %s on %s (%s)", model, self.device, self.dtype)

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Unit-norm float32 embeddings for uint8 NHWC crops, in chunks of at most ``batch_size``."""
        out = [self._embed_splitting(pixels[i : i + self.batch_size]) for i in range(0, len(pixels), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, self.model.config.projection_dim), np.float32)

    def _embed_splitting(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        try:
            return self._forward(pixels)
        except torch.OutOfMemoryError:
            if len(pixels) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(pixels) // 2
            log.warning("CUDA out of memory on a batch of %d; splitting it in two", len(pixels))
            return np.concatenate([self._embed_splitting(pixels[:half]), self._embed_splitting(pixels[half:])])

    def _forward(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = normalise_pixels(pixels, self.spec).to(self.device, self.dtype)
            features = self.model.get_image_features(pixel_values=x)
            # transformers 5 returns an output object whose pooler_output is the projected embedding; 4.x a tensor.
            features = features if isinstance(features, torch.Tensor) else features.pooler_output
            features = torch.nn.functional.normalize(features.float(), dim=-1)
            return features.cpu().numpy()

    def __call__(self, batch: pa.Table) -> pa.Table:
        """:func:`embed_batch`, counted so that a batch that keeps killing this process ends the job (see
        :mod:`clustering.ingest.attempts`)."""
        images = batch[schema.SHA256].to_pylist() if schema.SHA256 in batch.column_names else []
        describe = f"{batch.num_rows} rows, first image sha256 {images[0] if images else None}"
        with attempts.attempt("embed", attempts.batch_key([batch.num_rows, *images]), describe=describe):
            return embed_batch(batch, self)


def _load_model(model: str, device: str | None):
    """``(device, dtype, CLIPModel)`` of ``model``, in eval mode on its device."""
    import torch
    import transformers
    from transformers import CLIPModel

    # One per actor: their weight-loading bars would interleave with the job's progress bar on the console.
    transformers.utils.logging.disable_progress_bar()
    device = pick_device(device)
    # fp16 halves memory and doubles throughput on GPUs; CPUs get fp32 (fp16 matmuls are slow or missing there).
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    return device, dtype, CLIPModel.from_pretrained(model, dtype=dtype).to(device).eval()


def _at_lowest_priority(function, *args):
    """``function(*args)``, run in a thread of the lowest CPU priority (Linux, where each thread has a priority of its
    own; elsewhere at the caller's); the calling thread waits and keeps its priority, and so do the threads it starts
    later (torch's forward passes)."""
    outcome: dict = {}

    def run() -> None:
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOAD_NICENESS)
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # re-raised in the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="load-model")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def embed_batch(batch: pa.Table, embedder: ClipEmbedder) -> pa.Table:
    """Add ``embedding`` for rows still ``ok``; rows that fail here become ``embed_error``, others pass through."""
    dim = embedder.model.config.projection_dim
    status = batch[schema.STATUS].to_pylist()
    errors = batch[schema.ERROR].to_pylist()
    pixels = batch[schema.PIXELS]
    ready = pc.and_(pc.equal(batch[schema.STATUS], Status.OK.value), pc.is_valid(pixels))
    todo = np.flatnonzero(ready.to_numpy(zero_copy_only=False)).tolist()
    vectors = np.full((batch.num_rows, dim), np.nan, np.float32)
    if todo:
        h, w = embedder.spec.crop
        stacked = _stack_crops(pc.filter(pixels, ready), (h, w, 3))
        try:
            vectors[todo] = embedder.embed(stacked)
        except Exception as exc:
            log.exception("embedding a batch of %d failed", len(todo))
            for i in todo:
                status[i], errors[i] = Status.EMBED_ERROR.value, f"{type(exc).__name__}: {exc}"[:300]
    valid = pc.equal(pa.array(status, pa.string()), Status.OK.value)
    flat = pa.array(vectors.reshape(-1), pa.float32())
    embedding = pa.FixedSizeListArray.from_arrays(flat, dim, mask=pc.invert(valid))
    batch = batch.drop_columns([schema.PIXELS])
    batch = schema.set_column(batch, schema.STATUS, pa.array(status, pa.string()))
    batch = schema.set_column(batch, schema.ERROR, pa.array(errors, pa.string()))
    return schema.set_column(batch, schema.EMBEDDING, embedding)


def _stack_crops(crops: pa.ChunkedArray, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 ``(n, *shape)`` from a binary column of equal-sized crops: one copy out of Arrow's buffers, no Python
    bytes object per crop."""
    size = int(np.prod(shape))
    parts = []
    for chunk in crops.chunks:
        if len(chunk) == 0:
            continue
        offsets = np.frombuffer(chunk.buffers()[1], np.int32)[chunk.offset : chunk.offset + len(chunk) + 1]
        if not np.array_equal(np.diff(offsets), np.full(len(chunk), size)):
            raise ValueError(f"pixels must be {shape} uint8 crops")
        data = np.frombuffer(chunk.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
        parts.append(data.reshape(len(chunk), *shape))
    return np.concatenate(parts)  # a writable copy: torch refuses to wrap read-only Arrow memory


def preprocess_dict(spec: PreprocessSpec) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()}

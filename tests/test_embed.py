"""The embed stage on a tiny random-weight CLIP loaded through from_pretrained, on CPU."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pyarrow as pa
import pytest

from clustering.config import PreprocessSpec
from clustering.ingest.clip_embedder import (
    LOAD_NICENESS,
    ClipEmbedder,
    _at_lowest_priority,
    embed_batch,
    model_info,
    preprocess_dict,
)
from clustering.schema import PIXELS


@pytest.fixture(scope="module")
def embedder(tiny_model_dir):
    info = model_info(tiny_model_dir)
    return ClipEmbedder(model=tiny_model_dir, preprocess=preprocess_dict(info.preprocess), batch_size=4)


def crops(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)


def test_model_info_reads_dim_and_preprocessing(tiny_model_dir):
    info = model_info(tiny_model_dir)
    assert info.dim == 32
    assert info.preprocess == PreprocessSpec()  # the tiny model uses CLIP's own 224 px crop and statistics


def test_embeddings_are_unit_norm_and_independent_of_batching(embedder):
    pixels = crops(7)
    together = embedder.embed(pixels)
    alone = np.concatenate([embedder.embed(pixels[i : i + 1]) for i in range(7)])
    assert together.shape == (7, 32) and together.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert not np.allclose(together[0], together[1])


def test_out_of_memory_splits_the_batch(embedder, monkeypatch):
    import torch

    pixels = crops(4, seed=1)
    expected = embedder.embed(pixels)
    real_forward = embedder._forward
    sizes = []

    def forward_with_small_memory(chunk):  # stands in for a GPU that only fits one image
        sizes.append(len(chunk))
        if len(chunk) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(chunk)

    monkeypatch.setattr(embedder, "_forward", forward_with_small_memory)
    np.testing.assert_allclose(embedder.embed(pixels), expected, atol=1e-5)
    assert sizes[0] == 4 and sizes.count(1) == 4


def test_failed_rows_pass_through_with_null_embedding(embedder):
    pixels = crops(2, seed=2)
    batch = pa.table(
        {
            "post": [0, 1, 2],  # a column of the input, carried through
            "status": ["ok", "http_error", "ok"],
            "error": [None, "HTTP 404 Not Found", None],
            PIXELS: pa.array([pixels[0].tobytes(), None, pixels[1].tobytes()], pa.binary()),
        }
    )
    out = embed_batch(batch, embedder)
    assert PIXELS not in out.column_names
    assert out["status"].to_pylist() == ["ok", "http_error", "ok"]
    assert out["error"].to_pylist()[1] == "HTTP 404 Not Found"
    vectors = out["embedding"].to_pylist()
    assert vectors[1] is None
    np.testing.assert_allclose(vectors[0], embedder.embed(pixels[:1])[0], atol=1e-5)


def test_a_model_failure_becomes_embed_error_rows(embedder, monkeypatch):
    def broken(chunk):
        raise RuntimeError("weights on fire")

    monkeypatch.setattr(embedder, "_forward", broken)
    batch = pa.table(
        {
            "status": ["ok"],
            "error": pa.array([None], pa.string()),
            PIXELS: pa.array([crops(1)[0].tobytes()], pa.binary()),
        }
    )
    out = embed_batch(batch, embedder)
    assert out["status"].to_pylist() == ["embed_error"]
    assert "weights on fire" in out["error"][0].as_py()
    assert out["embedding"].to_pylist() == [None]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread has a priority of its own on Linux")
def test_the_model_loads_at_the_lowest_cpu_priority_and_the_actor_keeps_its_own():
    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = priority()
    assert _at_lowest_priority(priority) == LOAD_NICENESS == 19  # the load yields the CPUs to the first fetches
    assert priority() == before  # the embedder's own thread, and the forward passes it starts, keep theirs

    def broken() -> None:
        raise OSError("no such checkpoint")

    with pytest.raises(OSError, match="no such checkpoint"):  # a failed load fails the actor's construction
        _at_lowest_priority(broken)

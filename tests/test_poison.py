"""A poison image: one file whose decoding kills the process decoding it (as a segfault in a native decoder would).

The fetch+decode stage decodes in a child process: the crash must cost that one row (``decode_error`` "decoder
process crashed") while every other row ends as usual, and Ray must never see it (a dead actor would be retried by
Ray Data forever). Proven in a real local Ray Data job whose workers get a decoder hook (``worker_process_setup_hook``)
that SIGKILLs its own process when it meets the marked image; the stage hands that decoder to its child process.
"""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path

import pytest

from tests.test_cluster import run_in_child

pytestmark = pytest.mark.slow
POISON_MARK = b"clipcluster-test-poison"


def install_poison_decoder() -> None:
    """Worker setup hook: ``decode_image`` kills its own process on content carrying :data:`POISON_MARK`."""
    import clustering.ingest.decode as decode

    real = decode.decode_image

    def decode_or_die(content, options, spec):
        if POISON_MARK in content:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(content, options, spec)

    decode.decode_image = decode_or_die


def ingest_on_local_ray(config, runtime_env: dict):
    """One ingest job on a fresh local 2-CPU Ray runtime whose workers get ``runtime_env`` (a setup hook); returns
    the job's result. Run in a child process (:func:`tests.test_cluster.run_in_child`)."""
    import ray

    from clustering.ingest.job import run_ingest

    ray.init(address="local", num_cpus=2, include_dashboard=False, runtime_env=runtime_env)
    try:
        return run_ingest(config)
    finally:
        ray.shutdown()


def run_job(spec_path: str) -> None:
    """Child-process entry: a local Ray runtime whose workers carry the hook, and one ingest job."""
    from clustering.config import IngestConfig

    spec = json.loads(Path(spec_path).read_text())
    config = IngestConfig(
        input=spec["input"],
        output=spec["output"],
        model=spec["model"],
        rows_per_shard=6,
        download_batch_size=4,  # batches of 4: the poison is isolated after two splits
        progress=False,
    )
    result = ingest_on_local_ray(config, {"worker_process_setup_hook": "tests.test_poison.install_poison_decoder"})
    Path(spec["findings"]).write_text(json.dumps({"stats": result.stats}))


def test_a_decoder_crash_is_isolated_to_its_row_and_every_other_row_ends_as_usual(tmp_path, tiny_model_dir):
    from PIL import Image

    from clustering import io as cio

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(11):
        Image.new("RGB", (64, 48), (20 * i, 100, 200)).save(folder / f"img{i:02d}.jpg")
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(buf, format="JPEG", comment=POISON_MARK)
    (folder / "img05-poison.jpg").write_bytes(buf.getvalue())
    spec = {
        "input": str(folder),
        "output": str(tmp_path / "shards"),
        "model": tiny_model_dir,
        "findings": str(tmp_path / "findings.json"),
    }
    returncode = run_in_child("tests.test_poison:run_job", spec, tmp_path, timeout=300)
    assert returncode == 0, (tmp_path / "job.log").read_text()[-5000:]

    table = cio.read_shards(spec["output"])
    names = table["id"].to_pylist()
    assert sorted(names) == sorted(p.name for p in folder.iterdir())  # every row, once
    outcome = dict(zip(names, zip(table["status"].to_pylist(), table["error"].to_pylist(), strict=True), strict=True))
    assert outcome.pop("img05-poison.jpg") == ("decode_error", "decoder process crashed")
    assert set(outcome.values()) == {("ok", None)}
    console = (tmp_path / "job.log").read_text(errors="replace")  # the actors' warnings reach the driver's console
    assert "the decoder process died" in console and "marking" in console  # it split, then isolated the one row
    assert "RayActorError" not in console and "ActorDiedError" not in console  # Ray never saw the crash


EMBED_POISON = "embed-poison"


def install_dying_embedder() -> None:
    """Worker setup hook: the embed stage's process dies on any batch holding the marked URL, every time."""
    import clustering.ingest.clip_embedder as embed

    real = embed.embed_batch

    def embed_or_die(batch, embedder):
        if any(EMBED_POISON in (u or "") for u in batch["url"].to_pylist()):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(batch, embedder)

    embed.embed_batch = embed_or_die


def run_dying_job(spec_path: str) -> None:
    """Child-process entry: a job whose embed actor dies on one batch every time; records how the job ended."""
    from clustering.config import IngestConfig

    spec = json.loads(Path(spec_path).read_text())
    config = IngestConfig(input=spec["input"], output=spec["output"], model=spec["model"], progress=False,
                          rows_per_shard=4, download_batch_size=4, batch_size=4)  # fmt: skip
    try:
        ingest_on_local_ray(config, {"worker_process_setup_hook": "tests.test_poison.install_dying_embedder"})
        outcome = "finished"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    Path(spec["findings"]).write_text(json.dumps({"outcome": outcome}))


def test_a_batch_that_keeps_killing_the_embed_stage_ends_the_job_with_a_clear_error(tmp_path, tiny_model_dir):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (64, 48), (20 * i, 100, 200)).save(folder / f"img{i}.jpg")
    Image.new("RGB", (64, 48), "red").save(folder / f"{EMBED_POISON}.jpg")
    spec = {"input": str(folder), "output": str(tmp_path / "out"), "model": tiny_model_dir}
    spec["findings"] = str(tmp_path / "findings.json")
    returncode = run_in_child("tests.test_poison:run_dying_job", spec, tmp_path, timeout=300)
    assert returncode == 0, (tmp_path / "job.log").read_text()[-5000:]  # it ended by itself, within the timeout
    outcome = json.loads((tmp_path / "findings.json").read_text())["outcome"]
    assert "the embed stage's process died 3 times on the same batch" in outcome, outcome
    assert "rerun the same command to resume" in outcome

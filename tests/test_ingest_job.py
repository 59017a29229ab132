"""End to end in local Ray (2 CPUs): a real HTTP server, real images, the tiny CLIP, real Parquet shards."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from clustering import io as cio
from clustering import schema
from clustering.config import ConfigError, IngestConfig
from clustering.ingest.job import run_ingest
from tests.fixtures_images import EXPECTED_STATUS, FAST_DOWNLOAD

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BAD_ROUTES = {
    "bad/404": "http_error",
    "bad/500": "http_error",
    "bad/slow": "timeout",
    "bad/redirect-loop": "http_error",
    "bad/endless": "too_large",
}
REPOSTS = 3  # photo.jpg appears this many extra times, spread over shards


def url_rows(server, image_dir: Path) -> list[dict]:
    rows = [{"url": server.url(name), "expected": status} for name, status in EXPECTED_STATUS.items()]
    rows += [{"url": server.url(route), "expected": status} for route, status in BAD_ROUTES.items()]
    rows += [{"url": server.url("photo.jpg"), "expected": "ok"} for _ in range(REPOSTS)]
    rows += [
        {"url": "http://", "expected": "invalid_url"},
        {"url": "no-such-file.png", "expected": "connection_error"},  # a relative local path that is missing
        {"url": "ftp://127.0.0.1/x.png", "expected": "invalid_url"},
        {"url": str(image_dir / "photo.webp"), "expected": "ok"},  # a plain local path
        {"url": (image_dir / "cmyk.jpg").as_uri(), "expected": "ok"},  # file://
    ]
    for i, row in enumerate(rows):
        row["post_text"] = f"post {i} <b>text</b>"
        row["likes"] = i
    return rows


def write_csv(rows: list[dict], path: Path) -> Path:
    pacsv.write_csv(pa.Table.from_pylist(rows), path)
    return path


def job_config(**kwargs) -> IngestConfig:
    fast = {k: v for k, v in FAST_DOWNLOAD.items() if k != "backoff_base"}
    fast["read_timeout"] = 1.5  # the slow route sleeps 3 s; local files and images arrive well within this
    return IngestConfig(rows_per_shard=6, progress=False, **fast, **kwargs)


@pytest.fixture(scope="module")
def first_run(ray_local, image_server, image_dir, tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ingest")
    rows = url_rows(image_server, image_dir)
    csv_path = write_csv(rows, tmp / "urls.csv")
    config = job_config(input=str(csv_path), output=str(tmp / "shards"), model=tiny_model_dir)
    photo_hits_before = image_server.hits["/photo.jpg"]  # the server is shared by the whole session
    result = run_ingest(config)
    return rows, config, result, image_server.hits["/photo.jpg"] - photo_hits_before


def read_output(config: IngestConfig) -> pa.Table:
    """Every output row, in input order (the files hold rows in the order the stages finished them)."""
    table = cio.read_shards(config.output)
    return table.sort_by("likes")


def test_every_row_comes_out_once_with_the_expected_status(first_run):
    rows, config, result, _ = first_run
    table = read_output(config)
    assert table.num_rows == len(rows)
    assert len(set(table["id"].to_pylist())) == len(rows)
    assert table["url"].to_pylist() == [r["url"] for r in rows]
    assert table["status"].to_pylist() == [r["expected"] for r in rows]
    assert table["post_text"].to_pylist() == [r["post_text"] for r in rows]
    assert table["likes"].to_pylist() == [r["likes"] for r in rows]
    failed = [e for s, e in zip(table["status"].to_pylist(), table["error"].to_pylist(), strict=True) if s != "ok"]
    assert all(failed), "every failed row carries an error message"
    assert result.stats["status_counts"]["ok"] == sum(r["expected"] == "ok" for r in rows)


def test_embeddings_are_unit_norm_only_for_ok_rows_and_metadata_is_recorded(first_run, tiny_model_dir):
    _, config, _, _ = first_run
    table = read_output(config)
    ok = np.array(table["status"].to_pylist()) == "ok"
    vectors = table["embedding"].to_pylist()
    assert all(v is None for v, good in zip(vectors, ok, strict=True) if not good)
    norms = np.linalg.norm(np.array([v for v in vectors if v is not None]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    thumbs = [t for t, good in zip(table["thumbnail"].to_pylist(), ok, strict=True) if good]
    assert all(t and t[:2] == b"\xff\xd8" for t in thumbs)  # JPEG thumbnails for every ok row
    meta = schema.read_metadata(table.schema)
    assert meta["model"] == tiny_model_dir and meta["dim"] == 32 and meta["random_weights"] is True
    assert meta["preprocess"]["crop"] == [224, 224]


def test_same_image_same_embedding_across_shards_and_like_the_notebook(first_run, image_dir, tiny_model_dir):
    import torch
    from PIL import Image
    from transformers import CLIPImageProcessor, CLIPModel

    _, config, _, _ = first_run
    table = read_output(config)
    photo = [i for i, u in enumerate(table["url"].to_pylist()) if u.endswith("/photo.jpg")]
    assert len(photo) == REPOSTS + 1
    vectors = np.array([table["embedding"][i].as_py() for i in photo])
    np.testing.assert_allclose(vectors, vectors[:1].repeat(len(photo), 0), atol=1e-6)
    assert len({table["sha256"][i].as_py() for i in photo}) == 1
    # The notebook's path (CLIPImageProcessor + get_image_features) on the same file gives the same direction.
    model = CLIPModel.from_pretrained(tiny_model_dir).eval()
    pixels = CLIPImageProcessor.from_pretrained(tiny_model_dir)(
        images=Image.open(image_dir / "photo.jpg"), return_tensors="pt"
    )["pixel_values"]
    with torch.inference_mode():
        reference = torch.nn.functional.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    assert float(np.dot(vectors[0], reference[0].numpy())) > 0.995


def test_reposts_in_a_fetch_batch_are_downloaded_once(first_run):
    _, config, _, photo_hits = first_run
    assert config.download_batch_size >= len(read_output(config))  # one fetch batch holds every row
    assert photo_hits == 1


def test_the_folder_is_a_plain_parquet_dataset_with_files_of_at_least_rows_per_shard(first_run):
    import pyarrow.dataset as pads

    rows, config, result, _ = first_run
    files = cio.list_shards(config.output)
    assert result.files_written == len(files) == result.stats["files"]
    sizes = [pads.dataset(f).count_rows() for f in files]
    assert sum(sizes) == len(rows) and all(n >= config.rows_per_shard for n in sizes[:-1] if len(sizes) > 1)
    whole = pads.dataset(config.output).to_table()  # _manifest.json, _checkpoint/ ... are skipped by readers
    assert whole.num_rows == len(rows)


def test_rerun_writes_nothing_and_an_unfinished_run_resumes_without_duplicates(first_run):
    rows, config, _, _ = first_run
    paths = cio.list_shards(config.output)
    before = {p: Path(p).stat().st_mtime_ns for p in paths}
    again = run_ingest(config)
    assert again.files_written == 0
    assert {p: Path(p).stat().st_mtime_ns for p in cio.list_shards(config.output)} == before

    # An interrupted run leaves no _SUCCESS: the next one runs the pipeline, whose checkpoint skips every row.
    (Path(config.output) / "_SUCCESS").unlink()
    resumed = run_ingest(config)
    assert resumed.files_written == 0 and resumed.stats["rows_this_run"] == 0
    assert (Path(config.output) / "_SUCCESS").exists()
    table = read_output(config)
    assert table.num_rows == len(rows) and len(set(table["id"].to_pylist())) == len(rows)


def test_output_of_another_run_is_refused_without_overwrite(first_run, tmp_path):
    rows, config, _, _ = first_run
    other = write_csv(rows[:3], tmp_path / "other.csv")
    with pytest.raises(ConfigError, match="different run"):
        run_ingest(dataclasses.replace(config, input=str(other)))


def test_loopback_is_blocked_unless_allowed(ray_local, image_server, tiny_model_dir, tmp_path):
    csv_path = write_csv(
        [{"url": image_server.url("photo.jpg")}, {"url": "http://169.254.169.254/latest/"}], tmp_path / "urls.csv"
    )
    config = dataclasses.replace(
        job_config(input=str(csv_path), output=str(tmp_path / "out"), model=tiny_model_dir),
        allow_private_networks=False,
    )
    run_ingest(config)
    table = cio.read_shards(config.output)
    assert table["status"].to_pylist() == ["blocked_address", "blocked_address"]
    assert "169.254.169.254" in table["error"][1].as_py()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "embed.py"), *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--output", "x"], "--input is required"),
        (["--input", "/nonexistent.csv", "--output", "x"], "does not exist"),
        (["--input", "{csv}", "--output", "{out}", "--url-column", "link"], "--url-column: 'link' is not a column"),
        (["--input", "{csv}", "--output", "{notshards}"], "is not a clipcluster shard folder"),
        (["--input", "{csv}", "--output", "{out}", "--batch-size", "0"], "--batch-size must be at least 1"),
        # A model that is not a CLIP checkpoint: a BERT config, then a folder with no config at all.
        (["--input", "{csv}", "--output", "{out}", "--model", "{bert}"], "has no projection_dim"),
        (["--input", "{csv}", "--output", "{out}", "--model", "{notshards}"], "is not a usable CLIP checkpoint"),
    ],
)
def test_bad_config_gets_one_clear_line(tmp_path, args, needle):
    csv_path = write_csv([{"url": "http://example.org/a.png"}], tmp_path / "in.csv")
    (tmp_path / "notshards").mkdir()
    (tmp_path / "notshards" / "thesis.docx").write_text("precious")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    fill = {"csv": str(csv_path), "out": str(tmp_path / "out"), "notshards": str(tmp_path / "notshards")}
    fill["bert"] = str(tmp_path / "bert")
    proc = run_cli(*[a.format(**fill) for a in args])
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip() and " INFO " not in line]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert (tmp_path / "notshards" / "thesis.docx").exists()


def test_unknown_flag_is_reported_by_name():
    proc = run_cli("--input", "a", "--output", "b", "--colour", "red")
    assert proc.returncode == 2 and "unrecognized arguments: --colour red" in proc.stderr

"""Reading embedding shards for analysis: ok rows, embeddings, passthrough, duplicates, thumbnails on demand.

``write_shards`` and ``blobs`` build real Parquet shards following ``clustering.schema``; the other analysis test
modules import them from here.
"""

from __future__ import annotations

import functools
import hashlib
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from clustering import schema
from clustering.analysis.shards import (
    InputError,
    ThumbnailTap,
    find_duplicates,
    input_notes,
    iter_thumbnails,
    read_ok_rows,
    read_thumbnails,
)

MODEL_META = {"model": "openai/clip-vit-base-patch32", "dim": 32, "random_weights": False}


def blobs(n: int, *, dim: int = 32, clusters: int = 4, spread: float = 0.15, seed: int = 0):
    """``n`` unit vectors around ``clusters`` well-separated random centres, with their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.arange(n) % clusters
    X = centres[labels] + spread * rng.standard_normal((n, dim)) / np.sqrt(dim)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), labels


@functools.lru_cache(maxsize=1024)
def thumbnail(label: int, size: int = 24) -> bytes:
    """A small JPEG whose colour encodes ``label`` (-1, noise, included)."""
    colour = tuple(int(c) for c in np.random.default_rng(label + 1).integers(0, 255, 3))
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="JPEG", quality=70)
    return buffer.getvalue()


def write_shards(
    root: Path,
    X: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    duplicates_of: dict[int, int] | None = None,
    failed: int = 0,
    texts: list[str] | None = None,
    with_thumbnails: bool = True,
    rows_per_shard: int = 250,
    metadata: dict | None = None,
    dim: int | None = None,
    thumbnails: list[bytes | None] | None = None,
    accounts: list[str | None] | None = None,
    columns: dict[str, list] | None = None,
    id_prefix: str = "post",
    ids: list[str] | None = None,
) -> dict:
    """Write ``X`` as shards under ``root`` (ok rows), plus ``failed`` failed rows, and return what was written.

    ``duplicates_of`` maps an extra row number to the row it copies: the copy gets the same embedding and sha256 but
    its own id. Rows are interleaved: ok rows first within each shard, failed rows spread across shards.
    ``thumbnails`` (one per row of ``X``; default a flat tile coloured by label), ``accounts`` (default
    ``@user<i % 7>``) and extra passthrough ``columns`` (strings, one per row of ``X``) are copied by duplicates;
    failed rows get None.
    """
    root.mkdir(parents=True, exist_ok=True)
    n = len(X)
    dim = dim if dim is not None else (X.shape[1] if X.ndim == 2 and X.shape[1] else 32)
    labels = np.zeros(n, dtype=int) if labels is None else labels
    embeddings = [X[i] for i in range(n)]
    ids = list(ids) if ids is not None else [f"{id_prefix}-{i:05d}" for i in range(n)]
    hashes = [hashlib.sha256(X[i].tobytes()).hexdigest() for i in range(n)]
    row_labels = list(labels)
    for copy_number, (_, source) in enumerate(sorted((duplicates_of or {}).items())):
        embeddings.append(X[source])
        ids.append(f"repost-{copy_number:05d}-of-{source}")
        hashes.append(hashes[source])
        row_labels.append(labels[source])
    texts = texts if texts is not None else [f"post about topic {lab}" for lab in row_labels]
    statuses = ["ok"] * len(ids)
    errors: list[str | None] = [None] * len(ids)
    sources = list(range(n)) + [source for _, source in sorted((duplicates_of or {}).items())]
    if thumbnails is not None:
        thumbs: list[bytes | None] = [thumbnails[i] for i in sources]
    else:
        thumbs = [thumbnail(int(lab)) for lab in row_labels]
    extra = {name: [values[i] for i in sources] for name, values in (columns or {}).items()}
    for k in range(failed):
        ids.append(f"failed-{k:05d}")
        embeddings.append(None)
        hashes.append(None)
        statuses.append("http_error" if k % 2 else "decode_error")
        errors.append("404 Not Found" if k % 2 else "cannot identify image file")
        thumbs.append(None)
        texts.append(f"failed post {k}")
        row_labels.append(-1)
        for values in extra.values():
            values.append(None)
    total = len(ids)
    if accounts is not None:
        posters = [accounts[i] for i in sources] + [None] * failed
    else:
        posters = [f"@user{i % 7}" for i in range(total)]
    passthrough = pa.schema(
        [pa.field("post_text", pa.string()), pa.field("account", pa.string())]
        + [pa.field(name, pa.string()) for name in extra]
    )
    shard_schema = schema.shard_schema(passthrough, dim, {**MODEL_META, "dim": dim, **(metadata or {})})
    columns = {
        schema.ID: ids,
        schema.URL: [f"https://example.org/img/{i}.jpg" for i in ids],
        schema.STATUS: statuses,
        schema.ERROR: errors,
        schema.HTTP_STATUS: [200 if s == "ok" else 404 for s in statuses],
        schema.BYTES: [1000 if s == "ok" else None for s in statuses],
        schema.WIDTH: [64 if s == "ok" else None for s in statuses],
        schema.HEIGHT: [48 if s == "ok" else None for s in statuses],
        schema.SHA256: hashes,
        schema.THUMBNAIL: thumbs,
        schema.EMBEDDING: [None if e is None else np.asarray(e, dtype=np.float32).tolist() for e in embeddings],
        "post_text": texts,
        "account": posters,
        **extra,
    }
    table = pa.table(columns, schema=shard_schema)
    # Shuffle so failed rows and copies land in different shards, deterministically.
    order = np.random.default_rng(1).permutation(total)
    table = table.take(pa.array(order))
    if not with_thumbnails:
        table = table.drop_columns([schema.THUMBNAIL])
    for index, start in enumerate(range(0, max(total, 1), rows_per_shard)):
        pq.write_table(table.slice(start, rows_per_shard), root / f"part-{index:05d}.parquet")
    ok = [i for i, s in enumerate(statuses) if s == "ok"]
    return {
        "ids": ids,
        "ok_ids": [ids[i] for i in ok],
        "labels": dict(zip(ids, row_labels, strict=True)),
        "hashes": dict(zip(ids, hashes, strict=True)),
        "n_total": total,
        "n_ok": len(ok),
        "copies": {ids[n + k]: ids[source] for k, (_, source) in enumerate(sorted((duplicates_of or {}).items()))},
    }


@pytest.fixture()
def small_shards(tmp_path):
    X, labels = blobs(60, dim=16)
    written = write_shards(
        tmp_path / "shards", X, labels=labels, duplicates_of={60: 3, 61: 3, 62: 10}, failed=7, rows_per_shard=20
    )
    return tmp_path / "shards", X, written


def test_reads_only_ok_rows_with_passthrough_and_metadata(small_shards):
    root, _X, written = small_shards
    data = read_ok_rows(str(root))
    assert data.n_total == written["n_total"] == 70
    assert data.n_rows == written["n_ok"] == 63
    assert data.n_shards == 4
    assert data.status_counts["ok"] == 63
    assert data.status_counts["http_error"] + data.status_counts["decode_error"] == 7
    assert sorted(data.table[schema.ID].to_pylist()) == sorted(written["ok_ids"])
    assert data.passthrough == ["post_text", "account"]
    assert schema.THUMBNAIL not in data.table.column_names and schema.EMBEDDING not in data.table.column_names
    assert data.has_thumbnails
    assert data.metadata["model"] == MODEL_META["model"]
    # One embedding per distinct image: the 3 exact reposts share their image's.
    assert data.embeddings.dtype == np.float32 and data.embeddings.shape == (60, 16)


@pytest.mark.parametrize("keep_duplicates", [False, True])
def test_every_row_finds_its_images_embedding(small_shards, keep_duplicates):
    root, X, _written = small_shards
    data = read_ok_rows(str(root), keep_duplicates=keep_duplicates)
    assert len(data.embeddings) == len(data.points) == (63 if keep_duplicates else 60)
    assert data.points.tolist() == (list(range(63)) if keep_duplicates else data.duplicates.representatives.tolist())
    for row, key in enumerate(data.table[schema.ID].to_pylist()):
        source = int(key.split("-of-")[1]) if key.startswith("repost") else int(key.split("-")[1])
        np.testing.assert_array_equal(data.embeddings[data.point_of_row[row]], X[source])
        assert data.points[data.point_of_row[row]] == (row if keep_duplicates else data.duplicates.representatives[
            data.duplicates.inverse[row]])  # fmt: skip


def test_duplicates_share_a_representative(small_shards):
    root, _, written = small_shards
    data = read_ok_rows(str(root))
    dup = data.duplicates
    assert dup.n_unique == 60 and dup.n_copies == 3
    again = find_duplicates(data.table[schema.SHA256].to_pylist())  # from plain strings too
    assert again.inverse.tolist() == dup.inverse.tolist()
    ids = data.table[schema.ID].to_pylist()
    for row, key in enumerate(ids):
        representative = ids[dup.representatives[dup.inverse[row]]]
        assert written["hashes"][representative] == written["hashes"][key]
    assert dup.is_copy.sum() == 3
    assert not dup.is_copy[dup.representatives].any()


def test_find_duplicates_rows_without_hash_stand_alone():
    dup = find_duplicates(["a", None, "a", None, "b", "b", "b"])
    assert dup.representatives.tolist() == [0, 1, 3, 4]
    assert dup.inverse.tolist() == [0, 1, 0, 2, 3, 3, 3]
    assert dup.is_copy.tolist() == [False, False, True, False, False, True, True]
    empty = find_duplicates([])
    assert empty.n_unique == 0 and empty.inverse.shape == (0,)


def test_read_thumbnails_returns_only_requested_ids(small_shards):
    root, _, written = small_shards
    wanted = [*written["ok_ids"][:5], "failed-00000", "no-such-id"]
    thumbs = read_thumbnails(str(root), wanted)
    assert set(thumbs) == set(written["ok_ids"][:5])
    assert all(Image.open(io.BytesIO(blob)).format == "JPEG" for blob in thumbs.values())
    assert read_thumbnails(str(root), []) == {}


def test_one_thumbnail_pass_serves_every_point_and_keeps_the_montage_ones(small_shards):
    root, _, written = small_shards
    keep = written["ok_ids"][:4]
    tap = ThumbnailTap(str(root), keep)
    streamed = dict(tap())
    assert set(streamed) == set(written["ok_ids"])  # failed rows have no thumbnail
    for path in root.glob("part-*.parquet"):
        path.unlink()  # after the pass the kept thumbnails come from memory, not from a second read
    assert tap.kept() == {key: streamed[key] for key in keep}


def test_thumbnail_tap_without_a_pass_reads_only_what_it_keeps(small_shards):
    root, _, written = small_shards
    tap = ThumbnailTap(str(root), [written["ok_ids"][0], "no-such-id"])
    assert list(tap.kept()) == [written["ok_ids"][0]]
    assert dict(iter_thumbnails(str(root), ids=[])) == {}


def test_missing_thumbnail_column_is_reported_not_fatal(tmp_path):
    X, labels = blobs(10, dim=8)
    write_shards(tmp_path / "s", X, labels=labels, with_thumbnails=False)
    data = read_ok_rows(str(tmp_path / "s"))
    assert not data.has_thumbnails and data.n_rows == 10
    assert read_thumbnails(str(tmp_path / "s"), data.table[schema.ID].to_pylist()) == {}


def test_model_and_input_situation_are_stated(tmp_path):
    X, labels = blobs(4, dim=8)
    write_shards(tmp_path / "s", X, labels=labels, metadata={"model": "/tmp/tiny-clip", "random_weights": True})
    data = read_ok_rows(str(tmp_path / "s"))
    assert data.model == "/tmp/tiny-clip" and "random-weight test model (/tmp/tiny-clip)" in data.model_note
    assert input_notes(data, find_duplicates(data.table[schema.SHA256].to_pylist())) == (data.model_note,)
    for path in (tmp_path / "s").glob("part-*.parquet"):
        pq.write_table(pq.read_table(path).replace_schema_metadata(None), path)
    data = read_ok_rows(str(tmp_path / "s"))
    assert data.model.startswith("unknown") and data.model_note is None


def test_input_notes_for_empty_failed_and_identical_inputs(tmp_path):
    write_shards(tmp_path / "none", np.zeros((0, 8), np.float32), dim=8)
    data = read_ok_rows(str(tmp_path / "none"))
    assert input_notes(data, find_duplicates([])) == ("the shards hold no rows at all",)
    write_shards(tmp_path / "failed", np.zeros((0, 8), np.float32), failed=3, dim=8)
    data = read_ok_rows(str(tmp_path / "failed"))
    assert input_notes(data, find_duplicates([])) == (
        "none of the 3 rows has status ok (decode_error: 2, http_error: 1); nothing to cluster",
    )
    X, _ = blobs(1, dim=8)
    write_shards(tmp_path / "same", X, duplicates_of={1: 0, 2: 0})
    data = read_ok_rows(str(tmp_path / "same"))
    assert input_notes(data, find_duplicates(data.table[schema.SHA256].to_pylist())) == (
        "all 3 rows are copies of one image",
    )


def test_zero_ok_rows_give_an_empty_matrix_of_the_right_width(tmp_path):
    write_shards(tmp_path / "s", np.zeros((0, 8), np.float32), failed=5, dim=8)
    data = read_ok_rows(str(tmp_path / "s"))
    assert data.n_rows == 0 and data.n_total == 5
    assert data.embeddings.shape == (0, 8)


def test_missing_input_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="no embedding shards"):
        read_ok_rows(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no embedding shards"):
        read_ok_rows(str(tmp_path / "empty"))


def test_a_non_shard_parquet_is_rejected_by_name(tmp_path):
    (tmp_path / "s").mkdir()
    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "s" / "part-00000.parquet")
    with pytest.raises(InputError, match="missing column"):
        read_ok_rows(str(tmp_path / "s"))


def test_file_uri_reads_like_a_path(small_shards):
    root, _, written = small_shards
    data = read_ok_rows(root.resolve().as_uri())
    assert data.n_rows == written["n_ok"]


def test_variable_length_list_embeddings_are_read_too(tmp_path):
    (tmp_path / "s").mkdir()
    table = pa.table(
        {
            schema.ID: ["a", "b", "c"],
            schema.STATUS: ["ok", "timeout", "ok"],
            schema.EMBEDDING: pa.array([[1.0, 0.0], None, [0.0, 1.0]], pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, tmp_path / "s" / "part-00000.parquet")
    data = read_ok_rows(str(tmp_path / "s"))
    np.testing.assert_array_equal(data.embeddings, [[1.0, 0.0], [0.0, 1.0]])
    assert not data.has_thumbnails and data.metadata == {}


def test_ok_row_without_embedding_is_named(tmp_path):
    (tmp_path / "s").mkdir()
    table = pa.table(
        {
            schema.ID: ["a", "b"],
            schema.STATUS: ["ok", "ok"],
            schema.EMBEDDING: pa.array([[1.0, 0.0], None], pa.list_(pa.float32(), 2)),
        }
    )
    pq.write_table(table, tmp_path / "s" / "part-00000.parquet")
    with pytest.raises(InputError, match=r"part-00000\.parquet: 1 rows with status ok have no embedding"):
        read_ok_rows(str(tmp_path / "s"))

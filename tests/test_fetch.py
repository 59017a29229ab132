"""Download + decode of one chunk in one process (the fetch stage), and rows marked failed by the runner."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clustering import schema
from clustering.config import DecodeOptions, DownloadOptions, PreprocessSpec
from clustering.ingest.fetch import DECODE_SLICE, DECODER_CRASHED, FetchDecode, mark_failed
from tests.fixtures_images import EXPECTED_STATUS, FAST_DOWNLOAD

STAGE = FetchDecode(download=DownloadOptions(**FAST_DOWNLOAD), decode=DecodeOptions(), spec=PreprocessSpec())


def chunk(urls: list[str]) -> pa.Table:
    return pa.table({schema.WORK_ID: pa.array(range(len(urls)), pa.int64()), schema.URL: pa.array(urls, pa.string())})


def test_a_chunk_longer_than_a_decode_slice_keeps_its_rows_in_order_with_their_statuses(image_server):
    names = list(EXPECTED_STATUS) * 2  # 30 rows: two decode slices, decoded while the rest downloads
    assert len(names) > DECODE_SLICE
    out = STAGE(chunk([image_server.url(n) for n in names] + [image_server.url("bad/404")]))
    assert out[schema.WORK_ID].to_pylist() == list(range(len(names) + 1))
    assert out[schema.STATUS].to_pylist() == [EXPECTED_STATUS[n] for n in names] + ["http_error"]
    assert schema.CONTENT not in out.column_names  # the bytes stay in the worker
    ok = np.array(out[schema.STATUS].to_pylist()) == "ok"
    assert [p is not None for p in out[schema.PIXELS].to_pylist()] == ok.tolist()
    assert {len(p) for p in out[schema.PIXELS].to_pylist() if p is not None} == {224 * 224 * 3}


def test_a_chunk_marked_crashed_is_neither_fetched_nor_decoded(image_server):
    url = image_server.url("photo.jpg")
    before = image_server.hits["/photo.jpg"]
    marked = mark_failed(chunk([url]), schema.Status.DECODE_ERROR, DECODER_CRASHED)
    out = STAGE(marked)
    assert image_server.hits["/photo.jpg"] == before
    assert (out[schema.STATUS][0].as_py(), out[schema.ERROR][0].as_py()) == ("decode_error", DECODER_CRASHED)
    assert out[schema.PIXELS].to_pylist() == [None] and out[schema.URL].to_pylist() == [url]


def test_marking_keeps_the_reason_of_rows_an_earlier_stage_failed():
    batch = pa.table({"status": ["ok", "http_error", None], "error": [None, "HTTP 404 Not Found", None]})
    out = mark_failed(batch, schema.Status.EMBED_ERROR, "embedder process crashed")
    assert out["status"].to_pylist() == ["embed_error", "http_error", "embed_error"]
    assert out["error"].to_pylist() == ["embedder process crashed", "HTTP 404 Not Found", "embedder process crashed"]

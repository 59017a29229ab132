"""The fetch+decode stage on its own (no Ray): every row kept in order with a status, reposts fetched once, and a
decoder crash isolated to its row by the child process it runs in."""

from __future__ import annotations

import asyncio
import functools
import io
import os
import signal

import numpy as np
import pyarrow as pa
import pytest

from clustering import schema
from clustering.config import DecodeOptions, DownloadOptions, PreprocessSpec
from clustering.ingest import fetch
from clustering.ingest.decode import decode_batch, decode_image
from clustering.ingest.fetch import DECODE_SLICE, DECODER_CRASHED, FetchDecode
from clustering.ingest.isolate import IsolatedDecoder
from tests.fixtures_images import EXPECTED_STATUS, FAST_DOWNLOAD

CRASH_MARK = b"clipcluster-test-crash"


@pytest.fixture(scope="module")
def stage():
    return FetchDecode(download=DownloadOptions(**FAST_DOWNLOAD), decode=DecodeOptions(), spec=PreprocessSpec())


def run(stage: FetchDecode, table: pa.Table) -> pa.Table:
    return asyncio.run(stage(table))


def test_a_batch_longer_than_a_decode_slice_keeps_its_rows_and_columns_in_order(stage, image_server):
    names = list(EXPECTED_STATUS) * 2  # two decode slices, decoded while the rest downloads
    urls = [image_server.url(f"{n}?copy={i // len(EXPECTED_STATUS)}") for i, n in enumerate(names)]
    assert len(set(urls)) > DECODE_SLICE
    urls += [image_server.url("bad/404"), None]
    out = run(stage, pa.table({"post": range(len(urls)), "url": urls}))
    assert out["post"].to_pylist() == list(range(len(urls)))  # the input's columns, rows in order
    assert out[schema.STATUS].to_pylist() == [EXPECTED_STATUS[n] for n in names] + ["http_error", "invalid_url"]
    assert schema.CONTENT not in out.column_names  # the bytes stay in the actor
    ok = np.array(out[schema.STATUS].to_pylist()) == "ok"
    assert [p is not None for p in out[schema.PIXELS].to_pylist()] == ok.tolist()
    assert {len(p) for p in out[schema.PIXELS].to_pylist() if p is not None} == {224 * 224 * 3}


def test_reposts_in_a_batch_are_fetched_once_and_each_row_gets_the_result(stage, image_server):
    url = image_server.url("photo.jpg?repost-test")
    before = image_server.hits["/photo.jpg"]
    out = run(stage, pa.table({"url": [url, "http://", url, url]}))
    assert image_server.hits["/photo.jpg"] - before == 1
    assert out[schema.STATUS].to_pylist() == ["ok", "invalid_url", "ok", "ok"]
    assert len(set(out[schema.SHA256].to_pylist()) - {None}) == 1


def test_another_url_column_is_read_and_clashing_columns_are_refused(image_server):
    options = {"download": DownloadOptions(**FAST_DOWNLOAD), "decode": DecodeOptions(), "spec": PreprocessSpec()}
    named = FetchDecode(**options, url_column="media")
    out = run(named, pa.table({"media": [image_server.url("photo.jpg")]}))
    assert out[schema.STATUS].to_pylist() == ["ok"] and "url" not in out.column_names
    with pytest.raises(ValueError, match=r"already has columns \['status'\]"):
        run(named, pa.table({"media": ["http://x/a.png"], "status": ["mine"]}))


def crash_on_mark(content: bytes, options, spec):
    """A decoder that dies like a segfaulting native plugin on marked content (runs in the child process)."""
    if CRASH_MARK in content:
        os.kill(os.getpid(), signal.SIGKILL)
    return decode_image(content, options, spec)


def jpeg(color, comment: bytes = b"") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="JPEG", comment=comment)
    return buf.getvalue()


def test_a_decoder_crash_costs_its_own_row_and_every_other_row_decodes():
    decode, spec = DecodeOptions(), PreprocessSpec()
    contents = [jpeg((10 * i, 50, 90)) for i in range(10)]
    contents[6] = jpeg("red", CRASH_MARK)
    fetched = pa.table(
        {
            schema.URL: [f"http://h/{i}.jpg" for i in range(10)],
            schema.STATUS: ["ok"] * 9 + ["http_error"],
            schema.ERROR: [None] * 9 + ["HTTP 404"],
            schema.CONTENT: pa.array([*contents[:9], None], pa.binary()),
        }
    )
    isolated = IsolatedDecoder(
        functools.partial(decode_batch, options=decode, spec=spec, decoder=crash_on_mark),
        functools.partial(fetch._mark_crashed, options=decode, spec=spec),
    )
    try:
        out = isolated(fetched)
        assert isolated.crashes >= 2  # the slice was retried once whole, then split down to the lone row
        assert out[schema.URL].to_pylist() == fetched[schema.URL].to_pylist()
        assert out[schema.STATUS].to_pylist() == ["ok"] * 6 + ["decode_error", "ok", "ok", "http_error"]
        assert out[schema.ERROR][6].as_py() == DECODER_CRASHED
        assert out[schema.SHA256][6].as_py() is not None and out[schema.PIXELS][6].as_py() is None
        assert out[schema.ERROR][9].as_py() == "HTTP 404"  # an earlier failure keeps its own reason
        again = isolated(fetched.slice(0, 3))  # a new child took over: later slices decode as usual
        assert again[schema.STATUS].to_pylist() == ["ok"] * 3
    finally:
        isolated.close()

"""Download and decode one chunk of work items in one process, so raw image bytes never cross the object store.

A chunk is a table of ``work_id`` and ``url``. A chunk may arrive already failed (``status`` and ``error`` set): the
one row left when a chunk kept killing its worker. It skips download and decode and keeps that status, so every row
still comes out once. The result has the columns the embed stage needs (``pixels``) and the shard needs.

Nothing here knows Ray; :mod:`clustering.ingest.runner` runs :class:`FetchDecode` as a Ray task per chunk.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pyarrow as pa

from clustering import schema
from clustering.config import DecodeOptions, DownloadOptions, PreprocessSpec
from clustering.ingest.decode import decode_batch
from clustering.ingest.download import Downloader, FetchResult, add_fetch_columns

# The error of the one row left when bisecting a chunk that kept killing its worker (a native decoder crash).
DECODER_CRASHED = "decoder process crashed"
EMBEDDER_CRASHED = "embedder process crashed"
# Rows decoded together once downloaded: small enough that decoding starts while most of a chunk is still in flight.
DECODE_SLICE = 16


def mark_failed(batch: pa.Table, status: schema.Status, error: str) -> pa.Table:
    """``batch`` with its rows set to ``status``/``error``, except rows an earlier stage already failed (they keep
    their own reason): later stages pass failed rows through untouched."""
    n = batch.num_rows
    old_status = batch[schema.STATUS].to_pylist() if schema.STATUS in batch.column_names else [None] * n
    old_error = batch[schema.ERROR].to_pylist() if schema.ERROR in batch.column_names else [None] * n
    keep = [s not in (None, schema.Status.OK.value) for s in old_status]
    statuses = [s if k else status.value for s, k in zip(old_status, keep, strict=True)]
    errors = [e if k else error for e, k in zip(old_error, keep, strict=True)]
    batch = schema.set_column(batch, schema.STATUS, pa.array(statuses, pa.string()))
    return schema.set_column(batch, schema.ERROR, pa.array(errors, pa.string()))


@dataclasses.dataclass(frozen=True)
class FetchDecode:
    """Callable stage: fetch every URL of a chunk (see :class:`clustering.ingest.download.Downloader`), then decode.

    Parameters
    ----------
    download : DownloadOptions
        Concurrency, timeouts, caps, retries, address and local-file policy.
    decode : DecodeOptions
        Accepted formats, pixel and size limits, thumbnail size and quality.
    spec : PreprocessSpec
        The model's resize and crop.
    local_root : str, optional
        The image folder given as input, readable even with local files off.
    """

    download: DownloadOptions
    decode: DecodeOptions
    spec: PreprocessSpec
    local_root: str | None = None

    def __call__(self, chunk: pa.Table) -> pa.Table:
        if schema.STATUS in chunk.column_names:  # rows the runner marked failed: nothing to fetch or decode
            statuses, errors = chunk[schema.STATUS].to_pylist(), chunk[schema.ERROR].to_pylist()
            results = [FetchResult(s, e) for s, e in zip(statuses, errors, strict=True)]
            fetched = add_fetch_columns(chunk.select([schema.WORK_ID, schema.URL]), results)
            return decode_batch(fetched, options=self.decode, spec=self.spec)
        return asyncio.run(self._fetch_and_decode(chunk))

    async def _fetch_and_decode(self, chunk: pa.Table) -> pa.Table:
        """Decode each slice as soon as it has arrived, in a thread, while the rest downloads.

        Pillow releases the GIL while decoding and resizing, so the event loop keeps the sockets busy meanwhile: the
        task never sits idle waiting for the network, nor the network for the CPU. The slices share the downloader's
        limits on requests in flight.
        """
        downloader = Downloader(self.download, local_root=self.local_root)

        async def one(part: pa.Table) -> pa.Table:
            fetched = await downloader(part)
            return await asyncio.to_thread(decode_batch, fetched, options=self.decode, spec=self.spec)

        try:
            parts = [chunk.slice(i, DECODE_SLICE) for i in range(0, chunk.num_rows, DECODE_SLICE)]
            return pa.concat_tables(await asyncio.gather(*(one(p) for p in parts)))
        finally:
            await downloader.close()

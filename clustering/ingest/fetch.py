"""The fetch+decode stage: download each distinct URL of a batch once, decode it in a child process, keep every row.

:class:`FetchDecode` is a Ray Data callable class (one instance per actor of the stage's pool). Its aiohttp session
lives as long as the actor; its decoder runs in a child process (:class:`~clustering.ingest.isolate.IsolatedDecoder`),
so an image that crashes the decoder ends as one ``decode_error`` row and nothing one image does can fail the batch.
Raw image bytes stay inside the actor: what leaves it is the thumbnail and the uint8 CLIP crop.

Nothing here knows Ray; the stage is plain Arrow in, Arrow out, and runs as well in a test or a notebook.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading

import pyarrow as pa
import pyarrow.compute as pc

from clustering import schema
from clustering.config import DecodeOptions, DownloadOptions, PreprocessSpec
from clustering.ingest import attempts
from clustering.ingest import decode as decode_module
from clustering.ingest.decode import DecodeResult, decode_batch
from clustering.ingest.download import Downloader
from clustering.ingest.isolate import DECODER_CRASHED, IsolatedDecoder

# Rows decoded together once downloaded: small enough that decoding starts while most of a batch is still in flight.
DECODE_SLICE = 16
# The columns the stage adds; the input may hold none of them.
ADDED_COLUMNS = (
    schema.STATUS,
    schema.ERROR,
    schema.HTTP_STATUS,
    schema.BYTES,
    schema.WIDTH,
    schema.HEIGHT,
    schema.SHA256,
    schema.THUMBNAIL,
    schema.PIXELS,
)

__all__ = ["DECODER_CRASHED", "FetchDecode"]


class FetchDecode:
    """Callable stage: fetch every distinct URL of a batch (see :class:`~clustering.ingest.download.Downloader`),
    then decode it in a child process.

    Parameters
    ----------
    download : DownloadOptions
        Concurrency, timeouts, caps, retries, address and local-file policy.
    decode : DecodeOptions
        Accepted formats, pixel and size limits, thumbnail size and quality.
    spec : PreprocessSpec
        The model's resize and crop.
    url_column : str, default "url"
        The column holding the URLs; it must hold text.
    local_root : str, optional
        The image folder given as input, readable even with local files off.
    """

    def __init__(
        self,
        *,
        download: DownloadOptions,
        decode: DecodeOptions,
        spec: PreprocessSpec,
        url_column: str = schema.URL,
        local_root: str | None = None,
    ) -> None:
        self.url_column = url_column
        self.downloader = Downloader(download, local_root=local_root)
        # The decoder is looked up now, in this process: the child runs exactly this function.
        decoder = functools.partial(decode_batch, options=decode, spec=spec, decoder=decode_module.decode_image)
        crashed = functools.partial(_mark_crashed, options=decode, spec=spec)
        self.decoder = IsolatedDecoder(decoder, crashed)
        # The child imports Pillow and Arrow meanwhile: the actor is ready, and the first URLs download, at once.
        threading.Thread(target=self.decoder.start, name="decoder-start", daemon=True).start()

    async def __call__(self, batch: pa.Table) -> pa.Table:
        """``batch`` with the fetch and decode columns added; same rows, same order."""
        clashing = sorted(set(batch.column_names) & set(ADDED_COLUMNS))
        if clashing:
            raise ValueError(f"the input already has columns {clashing}, which the fetch+decode stage adds")
        urls = pc.cast(batch[self.url_column], pa.string())
        distinct = pc.unique(urls)  # reposts within a batch are fetched and decoded once
        work = pa.table({schema.URL: distinct})
        describe = f"{batch.num_rows} rows, first URL {urls[0].as_py() if len(urls) else None!r}"
        with attempts.attempt("fetch+decode", attempts.batch_key(distinct.to_pylist()), describe=describe):
            results = await self._fetch_and_decode(work)
        per_row = results.take(pc.index_in(urls, value_set=distinct))
        for name in ADDED_COLUMNS:
            batch = batch.append_column(name, per_row[name])
        return batch

    async def _fetch_and_decode(self, work: pa.Table) -> pa.Table:
        """Decode each slice as soon as it has arrived, while the rest downloads.

        The slices share the downloader's limits on requests in flight; the child process decodes one slice at a
        time while the event loop keeps the sockets busy, so neither waits for the other.
        """

        async def one(part: pa.Table) -> pa.Table:
            fetched = await self.downloader(part)
            return await asyncio.to_thread(self.decoder, fetched)

        parts = [work.slice(i, DECODE_SLICE) for i in range(0, work.num_rows, DECODE_SLICE)]
        decoded = await asyncio.gather(*(one(p) for p in parts))
        return pa.concat_tables(decoded) if decoded else _empty_result()

    def __del__(self) -> None:
        decoder = getattr(self, "decoder", None)
        if decoder is not None:
            decoder.close()


def _mark_crashed(fetched: pa.Table, reason: str, *, options: DecodeOptions, spec: PreprocessSpec) -> pa.Table:
    """The decoded form of ``fetched`` with every row still ``ok`` ended as ``decode_error`` ``reason``."""

    def crashed(content: bytes, options: DecodeOptions, spec: PreprocessSpec) -> DecodeResult:
        return DecodeResult(schema.Status.DECODE_ERROR.value, reason, sha256=hashlib.sha256(content).hexdigest())

    return decode_batch(fetched, options=options, spec=spec, decoder=crashed)


def _empty_result() -> pa.Table:
    return pa.table(
        {
            schema.URL: pa.array([], pa.string()),
            schema.STATUS: pa.array([], pa.string()),
            schema.ERROR: pa.array([], pa.string()),
            schema.HTTP_STATUS: pa.array([], pa.int32()),
            schema.BYTES: pa.array([], pa.int64()),
            schema.WIDTH: pa.array([], pa.int32()),
            schema.HEIGHT: pa.array([], pa.int32()),
            schema.SHA256: pa.array([], pa.string()),
            schema.THUMBNAIL: pa.array([], pa.binary()),
            schema.PIXELS: pa.array([], pa.binary()),
        }
    )

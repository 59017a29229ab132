"""Where each point's thumbnail goes: embedded in the page, or packed into a few sidecar chunk files.

Thumbnails stream in once, in shard order, and are spilled to a temporary file; distinct images (reposts share one)
are then laid out in the order the page needs them (:attr:`.explorer_payload.Payload.priority`: the cluster list's
exemplars first, then each cluster's gallery). The first ones are embedded in the page until a byte budget is spent;
the rest go into sidecar chunks of about :data:`CHUNK_BYTES`, so 1M thumbnails make a few hundred files, not a
million (one PUT each on an object store).

A chunk is a small script, ``clipclusterThumbs(build, k, "<base64>")``: browsers refuse ``fetch`` of ``file://``
URLs but run ``<script src>`` from them, so the page adds a chunk's script when it first needs one of its images.
The page's index (image length per image, first image per chunk) says where each image is inside its chunk.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import posixpath
import tempfile
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

__all__ = ["CHUNK_BYTES", "ChunkSink", "PlacedThumbnails", "ThumbnailSource", "place_thumbnails"]

# A callable that yields (id, thumbnail bytes) pairs afresh on every call: the shards, or a tap shared with montages.
ThumbnailSource = Callable[[], Iterable[tuple[str, bytes]]]

# Raw image bytes per sidecar chunk (the file is 4/3 of it in base64): 1M thumbnails of ~4.5 KB make ~1,100 files
# instead of 1M. Hovering a point whose chunk is not loaded yet shows its image after ~0.25 s in headless Chromium
# with 4 MiB chunks, ~0.5 s with 8 MiB (bench/explorer.py); a chunk loads once and serves its neighbours.
CHUNK_BYTES = 4 * 2**20
# Ids looked up in the assignments at once: one Arrow hash lookup per batch instead of a Python dict per point.
_LOOKUP_BATCH = 4096


@dataclasses.dataclass(frozen=True)
class PlacedThumbnails:
    """Every point's image and where each image is.

    Attributes
    ----------
    point_image : numpy.ndarray
        ``(n_points,)`` int64 image index per point, -1 when the point has none.
    lengths : numpy.ndarray
        ``(n_images,)`` byte length of each image, in layout order (embedded first, then chunk by chunk).
    chunks : list of dict
        ``{"number": 0 (embedded) or k, "src": None or the chunk file name, "first": first image, "count": images,
        "bytes": raw bytes}``.
    embedded : bytes
        The embedded images, concatenated.
    build : str
        Identifies this layout; a chunk of another build is refused by the page.
    notice : str or None
        One line the page shows when images are missing or left out.
    sidecar_bytes : int
        Bytes of the chunk files written.
    """

    point_image: np.ndarray
    lengths: np.ndarray
    chunks: list[dict]
    embedded: bytes
    build: str
    notice: str | None = None
    sidecar_bytes: int = 0

    @property
    def n_embedded(self) -> int:
        return sum(c["count"] for c in self.chunks if c["src"] is None)

    @property
    def n_sidecar(self) -> int:
        return sum(c["count"] for c in self.chunks if c["src"] is not None)

    @property
    def n_sidecar_files(self) -> int:
        return sum(1 for c in self.chunks if c["src"] is not None)

    @property
    def n_points_with_thumbnail(self) -> int:
        return int((self.point_image >= 0).sum())


class ChunkSink:
    """Writes sidecar chunk scripts ``thumbs-KKKKK.js`` into ``root`` (created on the first write)."""

    def __init__(self, fs: pafs.FileSystem, root: str) -> None:
        self.fs, self.root = fs, root
        self.bytes = 0
        self._made = False

    def write(self, name: str, data: bytes) -> None:
        if not self._made:
            self.fs.create_dir(self.root, recursive=True)
            self._made = True
        with self.fs.open_output_stream(posixpath.join(self.root, name)) as out:
            out.write(data)
        self.bytes += len(data)


def chunk_name(k: int) -> str:
    return f"thumbs-{k:05d}.js"


def place_thumbnails(
    ids: pa.Array,
    priority: np.ndarray,
    source: ThumbnailSource | None,
    *,
    budget: int,
    sink: ChunkSink | None,
    notice: str | None = None,
) -> PlacedThumbnails:
    """Read the thumbnails once and lay them out: embedded up to ``budget`` base64 bytes, then sidecar chunks.

    Parameters
    ----------
    ids : pyarrow.Array
        Row ids; a thumbnail joins every row with its id (the first thumbnail of an id wins).
    priority : numpy.ndarray
        Rows in the order the page needs their images; an image takes the earliest of its rows.
    source : callable or None
        Yields ``(id, bytes)``; None: no images, and ``notice`` says why.
    budget : int
        Base64 bytes the page may embed.
    sink : ChunkSink or None
        Where the rest goes; None (a page with no folder): the rest is left out and the notice says how many.
    """
    n = len(ids)
    empty = np.zeros(0, dtype=np.int64)
    if source is None or n == 0:
        return PlacedThumbnails(np.full(n, -1, np.int64), empty, [], b"", build="none", notice=notice)
    with tempfile.TemporaryFile(prefix="explorer-thumbs-") as spill:
        row_image, offsets, lengths, digests = _spill(ids, source, spill)
        first_row = pc.index_in(ids, value_set=ids).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        point_image = np.where(first_row >= 0, row_image[first_row], -1)  # rows sharing an id share its image
        rank = np.full(len(lengths), n, dtype=np.int64)
        position = np.empty(n, dtype=np.int64)
        position[priority] = np.arange(n)
        has = point_image >= 0
        np.minimum.at(rank, point_image[has], position[has])
        layout = np.argsort(rank, kind="stable")  # new image k is old image layout[k]
        new_index = np.empty(len(layout), dtype=np.int64)
        new_index[layout] = np.arange(len(layout))
        point_image = np.where(has, new_index[np.maximum(point_image, 0)], -1)
        lengths = lengths[layout]
        build = hashlib.blake2b(b"".join(digests[k] for k in layout), digest_size=8).hexdigest()
        encoded = 4 * ((lengths + 2) // 3)
        n_embedded = int(np.searchsorted(np.cumsum(encoded), budget, side="right"))
        embedded = b"".join(_read(spill, offsets[old], lengths[k]) for k, old in enumerate(layout[:n_embedded]))
        chunks = []
        if n_embedded:
            chunks.append({"number": 0, "src": None, "first": 0, "count": n_embedded, "bytes": len(embedded)})
        if sink is None:
            dropped = int((point_image >= n_embedded).sum())
            point_image = np.where(point_image >= n_embedded, -1, point_image)
            lengths = lengths[:n_embedded]
            if dropped:
                notice = f"{dropped:,} thumbnails left out: over the embed budget and this page has no sidecar folder."
        else:
            chunks += _write_chunks(spill, offsets[layout], lengths, n_embedded, sink=sink, build=build)
    return PlacedThumbnails(
        point_image=point_image,
        lengths=lengths,
        chunks=chunks,
        embedded=embedded,
        build=build,
        notice=notice,
        sidecar_bytes=sink.bytes if sink is not None else 0,
    )


def _spill(ids: pa.Array, source: ThumbnailSource, spill) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes]]:
    """Stream the source into ``spill``: the image of each row (-1: none); offset, length, digest of each image."""
    row_image = np.full(len(ids), -1, dtype=np.int64)
    offsets: list[int] = []
    lengths: list[int] = []
    digests: list[bytes] = []
    image_of: dict[bytes, int] = {}  # content digest -> image: reposts are stored once
    batch: list[tuple[str, bytes]] = []

    def flush() -> None:
        rows = pc.index_in(pa.array([key for key, _ in batch], pa.string()), value_set=ids).fill_null(-1)
        for (_, blob), row in zip(batch, rows.to_numpy(zero_copy_only=False).tolist(), strict=True):
            if row < 0 or row_image[row] >= 0:
                continue
            digest = hashlib.blake2b(blob, digest_size=16).digest()
            image = image_of.get(digest)
            if image is None:
                image = image_of[digest] = len(lengths)
                offsets.append(spill.tell())
                lengths.append(len(blob))
                digests.append(digest)
                spill.write(blob)
            row_image[row] = image
        batch.clear()

    for key, blob in source():
        if blob:
            batch.append((str(key), bytes(blob)))
            if len(batch) >= _LOOKUP_BATCH:
                flush()
    if batch:
        flush()
    return row_image, np.asarray(offsets, np.int64), np.asarray(lengths, np.int64), digests


def _read(spill, offset: int, length: int) -> bytes:
    spill.seek(int(offset))
    return spill.read(int(length))


def _write_chunks(
    spill, offsets: np.ndarray, lengths: np.ndarray, start: int, *, sink: ChunkSink, build: str
) -> list[dict]:
    """Images ``start..`` into chunk files of about CHUNK_BYTES each, in layout order."""
    chunks = []
    k = start
    while k < len(lengths):
        end = k + 1
        size = int(lengths[k])
        while end < len(lengths) and size + lengths[end] <= CHUNK_BYTES:
            size += int(lengths[end])
            end += 1
        data = b"".join(_read(spill, offsets[j], lengths[j]) for j in range(k, end))
        number = len(chunks) + 1
        script = b"".join([f'clipclusterThumbs("{build}",{number},"'.encode(), base64.b64encode(data), b'");\n'])
        sink.write(chunk_name(number), script)
        chunks.append({"number": number, "src": chunk_name(number), "first": k, "count": end - k, "bytes": size})
        k = end
    return chunks

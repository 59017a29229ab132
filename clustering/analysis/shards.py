"""Reading embedding shards for analysis: the ``ok`` rows, their embeddings as one matrix, exact duplicates, and
thumbnails in one streaming pass. Storage goes through :mod:`clustering.io`, so local folders and any pyarrow/fsspec
URI work alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from clustering import io, schema
from clustering.analysis.shard_types import InputError, check_schema, embedding_matrix, plain_ids, plain_table

__all__ = [
    "Duplicates",
    "InputError",
    "ShardData",
    "ThumbnailTap",
    "find_duplicates",
    "input_notes",
    "iter_thumbnails",
    "read_ok_rows",
    "read_thumbnails",
]


@dataclasses.dataclass(frozen=True)
class Duplicates:
    """Exact duplicates (same ``sha256``) among n rows.

    Attributes
    ----------
    representatives : numpy.ndarray
        int64 row indices of one row per distinct image (the first copy, in row order); rows without a hash are
        their own representative.
    inverse : numpy.ndarray
        int64 array of length n: row ``i`` is a copy of ``representatives[inverse[i]]``.
    is_copy : numpy.ndarray
        bool array of length n: True for every row that is not its image's representative (a repost).
    """

    representatives: np.ndarray
    inverse: np.ndarray
    is_copy: np.ndarray

    @property
    def n_unique(self) -> int:
        return len(self.representatives)

    @property
    def n_copies(self) -> int:
        return int(self.is_copy.sum())


@dataclasses.dataclass(frozen=True)
class ShardData:
    """The ``ok`` rows of an embedding dataset, and one embedding per point to cluster.

    Attributes
    ----------
    table : pyarrow.Table
        One row per ``ok`` input row, every shard column except ``embedding`` and ``thumbnail``, in shard order.
    embeddings : numpy.ndarray
        float32 array of shape (n_points, D): row ``i`` is the embedding of table row ``points[i]``. Exact copies of
        an image (same sha256) share their image's embedding, so it is held once; (0, D) when no row is ``ok``.
    duplicates : Duplicates
        Exact duplicates among the table's rows.
    points : numpy.ndarray
        int64 table row of each embedding: the distinct images (``duplicates.representatives``), or every row when
        read with ``keep_duplicates``.
    point_of_row : numpy.ndarray
        int64 per table row: the row of ``embeddings`` holding its image.
    metadata : dict
        Run metadata of the first shard (model id, dim, preprocessing, versions); {} when absent.
    n_total : int
        Rows in the shards, failed ones included.
    status_counts : dict
        Rows per status, ``ok`` included, most frequent first.
    passthrough : list of str
        Input columns carried through unchanged (everything the pipeline does not own).
    has_thumbnails : bool
        Whether the shards have a ``thumbnail`` column at all.
    n_shards : int
        Number of shard files read.
    """

    table: pa.Table
    embeddings: np.ndarray
    duplicates: Duplicates
    points: np.ndarray
    point_of_row: np.ndarray
    metadata: dict
    n_total: int
    status_counts: dict
    passthrough: list
    has_thumbnails: bool
    n_shards: int

    @property
    def n_rows(self) -> int:
        return self.table.num_rows

    @property
    def model(self) -> str:
        """The embedding model named in the shard metadata, or a line saying it is unknown."""
        return str(
            self.metadata.get("model") or self.metadata.get("model_id") or "unknown (no model id in the shard metadata)"
        )

    @property
    def model_note(self) -> str | None:
        """A warning when the shards were embedded by a random-weight test model, else None."""
        if not self.metadata.get("random_weights"):
            return None
        return (
            f"the shards were embedded by a random-weight test model ({self.model}): clusters say nothing "
            "about image content"
        )


def read_ok_rows(uri: str | Sequence[str], *, keep_duplicates: bool = False) -> ShardData:
    """Read the ``ok`` rows of every shard under ``uri``, with passthrough columns, and one embedding per point.

    Two passes over the shards: the row columns first, which give the exact duplicates (sha256), then the embeddings
    of the points only, written shard by shard into one matrix. A copy's embedding is its image's, so neither a
    row-level matrix nor the Arrow copy of all embeddings ever exists. Thumbnails are not loaded (they can be most of
    the bytes): :class:`ThumbnailTap` and :func:`read_thumbnails` stream them.

    Parameters
    ----------
    uri : str or sequence of str
        A folder or URI holding ``part-*.parquet`` shards, or several (an update reads the earlier analysis's shards and
        the new ones); a row whose id an earlier folder already holds is read once, from the first.
    keep_duplicates : bool, default False
        Every row is its own point (its embedding read from its own row) instead of one point per distinct image.

    Raises
    ------
    InputError
        ``uri`` holds no shards, a shard is unreadable, or the embeddings are unusable (missing, of mixed sizes, not
        finite).
    """
    uris = [uri] if isinstance(uri, str) else list(uri)
    paths = [path for one in uris for path in _shard_paths(one)]
    uri = uris[0] if len(uris) == 1 else ", ".join(uris)
    rows = _read_rows(paths)
    try:
        table = pa.concat_tables(rows.parts, promote_options="permissive").replace_schema_metadata(None)
    except pa.ArrowException as exc:
        raise InputError(f"--input {uri}: shards have incompatible schemas: {exc}") from None
    first = _first_of_each_id(table) if len(uris) > 1 else None
    if first is not None:
        table = table.take(pa.array(first))
    hashes = table[schema.SHA256] if schema.SHA256 in table.column_names else pa.nulls(table.num_rows, pa.string())
    duplicates = find_duplicates(hashes)
    n = table.num_rows
    if keep_duplicates:
        points, point_of_row = np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)
    else:
        points, point_of_row = duplicates.representatives, duplicates.inverse
    read_rows = points if first is None else first[points]  # rows of the tables as read, before ids repeated
    embeddings = _read_points(paths, rows.ok_positions, read_rows, uri=uri)
    pa.default_memory_pool().release_unused()  # Arrow's pool keeps the shards' freed buffers: 180 MB at 200k rows
    passthrough = [name for name in table.column_names if name not in schema.OWNED_COLUMNS]
    counts = dict(sorted(rows.statuses.items(), key=lambda item: (-item[1], item[0])))
    return ShardData(
        table=table,
        embeddings=embeddings,
        duplicates=duplicates,
        points=points,
        point_of_row=point_of_row,
        metadata=rows.metadata,
        n_total=rows.n_total,
        status_counts=counts,
        passthrough=passthrough,
        has_thumbnails=rows.has_thumbnails,
        n_shards=len(paths),
    )


@dataclasses.dataclass
class _Rows:
    """The first pass: the ok rows of each shard (without embeddings and thumbnails) and what the shards say."""

    parts: list[pa.Table] = dataclasses.field(default_factory=list)
    ok_positions: list[np.ndarray] = dataclasses.field(default_factory=list)
    statuses: dict[str, int] = dataclasses.field(default_factory=dict)
    metadata: dict = dataclasses.field(default_factory=dict)
    has_thumbnails: bool = False
    n_total: int = 0


def _shard_paths(uri: str) -> list[tuple[pafs.FileSystem, str]]:
    try:
        fs, _ = io.resolve(uri)
        paths = io.list_shards(uri)
    except (OSError, ValueError) as exc:
        raise InputError(f"--input {uri}: cannot be read: {exc}") from None
    if not paths:
        raise InputError(
            f"--input {uri}: no embedding shards ({io.SHARD_GLOB_PREFIX}*{io.SHARD_SUFFIX}) found; "
            "run jobs/embed.py first or check the path"
        )
    return [(fs, path) for path in paths]


def _first_of_each_id(table: pa.Table) -> np.ndarray | None:
    """Rows whose id no earlier row holds, ascending; None when every id is already unique."""
    codes = pc.dictionary_encode(table[schema.ID].combine_chunks().cast(pa.string())).indices
    codes = codes.to_numpy(zero_copy_only=False)
    _, first = np.unique(codes, return_index=True)
    return None if len(first) == len(codes) else np.sort(first).astype(np.int64)


def _read_rows(paths: list[tuple[pafs.FileSystem, str]]) -> _Rows:
    found = _Rows()
    for index, (fs, path) in enumerate(paths):
        try:
            shard_schema = pq.read_schema(path, filesystem=fs)
            if index == 0:
                found.metadata = schema.read_metadata(shard_schema)
            missing = {schema.ID, schema.STATUS, schema.EMBEDDING} - set(shard_schema.names)
            if missing:
                raise InputError(f"{path}: not an embedding shard, missing column(s) {', '.join(sorted(missing))}")
            check_schema(shard_schema, path)
            found.has_thumbnails = found.has_thumbnails or schema.THUMBNAIL in shard_schema.names
            columns = [name for name in shard_schema.names if name not in (schema.THUMBNAIL, schema.EMBEDDING)]
            table = pq.read_table(path, filesystem=fs, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: unreadable shard: {exc}") from None
        table = plain_table(table, path)  # the one place where pandas 3, Polars and DuckDB types become plain ones
        found.n_total += table.num_rows
        status = table[schema.STATUS].fill_null("(no status)").to_numpy(zero_copy_only=False).astype(str)
        values, counts = np.unique(status, return_counts=True)
        for name, count in zip(values, counts, strict=True):
            found.statuses[str(name)] = found.statuses.get(str(name), 0) + int(count)
        ok = np.flatnonzero(status == schema.Status.OK.value)
        found.ok_positions.append(ok)
        found.parts.append(table.take(pa.array(ok)))
    return found


def _read_points(paths: list[tuple], ok_positions: list[np.ndarray], points: np.ndarray, *, uri: str) -> np.ndarray:
    """The second pass: the embeddings of the ``points`` (table rows, ascending), one shard at a time."""
    slot = np.full(sum(len(ok) for ok in ok_positions), -1, dtype=np.int64)
    slot[points] = np.arange(len(points))
    matrix: np.ndarray | None = None
    width, start = 0, 0
    for (fs, path), ok in zip(paths, ok_positions, strict=True):
        try:
            column = pq.read_table(path, filesystem=fs, columns=[schema.EMBEDDING])[schema.EMBEDDING]
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: unreadable shard: {exc}") from None
        width = width or (column.type.list_size if pa.types.is_fixed_size_list(column.type) else 0)
        shard = embedding_matrix(column.take(pa.array(ok)), len(ok), where=path)
        wanted = slot[start : start + len(ok)]
        start += len(ok)
        if not len(ok):
            continue
        if matrix is None:
            matrix = np.empty((len(points), shard.shape[1]), dtype=np.float32)
        elif shard.shape[1] != matrix.shape[1]:
            sizes = sorted({shard.shape[1], matrix.shape[1]})
            raise InputError(f"--input {uri}: shards hold embeddings of different sizes {sizes}; mixed models?")
        keep = wanted >= 0
        matrix[wanted[keep]] = shard[keep]
    return matrix if matrix is not None else np.zeros((0, width), dtype=np.float32)


def find_duplicates(sha256: pa.Array | pa.ChunkedArray | Iterable[str | None]) -> Duplicates:
    """Group rows by content hash; the first row of each hash represents it, rows without a hash stand alone.

    Vectorised (Arrow dictionary encoding, one sort): no Python string per row.
    """
    hashes = sha256 if isinstance(sha256, (pa.Array, pa.ChunkedArray)) else pa.array(list(sha256), pa.string())
    if isinstance(hashes, pa.ChunkedArray):
        hashes = hashes.combine_chunks()
    n = len(hashes)
    encoded = pc.dictionary_encode(hashes if pa.types.is_binary(hashes.type) else hashes.cast(pa.string()))
    codes = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    missing = np.flatnonzero(encoded.is_null().to_numpy(zero_copy_only=False))
    codes[missing] = len(encoded.dictionary) + np.arange(missing.size)  # each row without a hash is its own image
    _, first, image = np.unique(codes, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # images numbered in order of their first row
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    representatives = first[order].astype(np.int64)
    inverse = rank[image].astype(np.int64)
    is_copy = np.arange(n) != representatives[inverse]
    return Duplicates(representatives=representatives, inverse=inverse, is_copy=is_copy)


def input_notes(data: ShardData, duplicates: Duplicates) -> tuple[str, ...]:
    """What a reader of the results must know about the input: no rows, no ``ok`` row, one image, a test model."""
    notes = []
    if data.n_total == 0:
        notes.append("the shards hold no rows at all")
    elif data.n_rows == 0:
        statuses = ", ".join(f"{status}: {count:,}" for status, count in data.status_counts.items())
        notes.append(f"none of the {data.n_total:,} rows has status ok ({statuses}); nothing to cluster")
    if data.n_rows > 1 and duplicates.n_unique == 1:
        notes.append(f"all {data.n_rows:,} rows are copies of one image")
    if data.model_note:
        notes.append(data.model_note)
    return tuple(notes)


def iter_thumbnails(uri: str | Sequence[str], *, ids: Collection[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """``(id, thumbnail)`` of every shard row that has one, in shard order; only the rows of ``ids`` when given.

    Reads only the ``id`` and ``thumbnail`` columns, one batch at a time, so memory stays bounded by a batch; shards
    without a thumbnail column are skipped.
    """
    wanted = None if ids is None else pa.array(sorted(set(ids)), type=pa.string())
    if wanted is not None and len(wanted) == 0:
        return
    for fs, path in (pair for one in ([uri] if isinstance(uri, str) else uri) for pair in _listed(one)):
        with fs.open_input_file(path) as source:
            parquet = pq.ParquetFile(source)
            if schema.THUMBNAIL not in parquet.schema_arrow.names:
                continue
            for batch in parquet.iter_batches(batch_size=4096, columns=[schema.ID, schema.THUMBNAIL]):
                keys = plain_ids(pa.chunked_array([batch.column(0)]), path)  # the id type the outputs use
                if wanted is not None:
                    keep = pc.is_in(keys, value_set=wanted)
                    batch, keys = batch.filter(keep), keys.filter(keep)
                for key, blob in zip(keys.to_pylist(), batch.column(1).to_pylist(), strict=True):
                    if blob:
                        yield key, blob


def _listed(uri: str) -> list[tuple[pafs.FileSystem, str]]:
    fs, _ = io.resolve(uri)
    return [(fs, path) for path in io.list_shards(uri)]


def read_thumbnails(uri: str | Sequence[str], ids: Iterable[str]) -> dict[str, bytes]:
    """The thumbnails of ``ids`` from the shards under ``uri`` (the first one of an id); ids without one are absent."""
    found: dict[str, bytes] = {}
    for key, blob in iter_thumbnails(uri, ids=set(ids)):
        found.setdefault(key, blob)
    return found


class ThumbnailTap:
    """One pass over the thumbnails for two readers: the explorer streams them all, the montages keep a few.

    Calling the tap yields every ``(id, thumbnail)`` (as :func:`iter_thumbnails`) and remembers the thumbnails of the
    ``keep`` ids on the way. :meth:`kept` returns those, reading just them when no full pass has run.
    """

    def __init__(self, uri: str | Sequence[str], keep: Collection[str]) -> None:
        self.uri = uri
        self.keep = frozenset(keep)
        self._kept: dict[str, bytes] = {}
        self._complete = False

    def __call__(self) -> Iterator[tuple[str, bytes]]:
        for key, blob in iter_thumbnails(self.uri):
            if key in self.keep:
                self._kept.setdefault(key, blob)
            yield key, blob
        self._complete = True

    def kept(self) -> dict[str, bytes]:
        """The thumbnails of the ``keep`` ids (an id without one is absent)."""
        if not self._complete:
            self._kept = read_thumbnails(self.uri, self.keep)
            self._complete = True
        return self._kept

"""Reading embedding shards for analysis: the ``ok`` rows, their embeddings as one matrix, exact duplicates, and
thumbnails on demand. Storage goes through :mod:`clustering.io`, so local folders and any pyarrow/fsspec URI work alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clustering import io, schema
from clustering.config import ConfigError

__all__ = ["Duplicates", "InputError", "ShardData", "find_duplicates", "read_ok_rows", "read_thumbnails"]


class InputError(ConfigError):
    """The input shards are missing or unusable; the message says which and why, in one line."""


@dataclasses.dataclass(frozen=True)
class ShardData:
    """The ``ok`` rows of an embedding dataset.

    Attributes
    ----------
    table : pyarrow.Table
        One row per ``ok`` input row, every shard column except ``embedding`` and ``thumbnail``, in shard order.
    embeddings : numpy.ndarray
        float32 array of shape (n, D), row ``i`` belonging to ``table`` row ``i``; (0, D) when no row is ``ok``.
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
    metadata: dict
    n_total: int
    status_counts: dict
    passthrough: list
    has_thumbnails: bool
    n_shards: int

    @property
    def n_rows(self) -> int:
        return self.table.num_rows


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


def _embedding_matrix(column: pa.ChunkedArray, n: int, *, where: str) -> np.ndarray:
    """A float32 (n, D) matrix from a (fixed-size) list column without Python-level loops."""
    if n == 0:
        dim = column.type.list_size if pa.types.is_fixed_size_list(column.type) else 0
        return np.zeros((0, max(dim, 0)), dtype=np.float32)
    array = column.combine_chunks()
    if array.null_count:
        raise InputError(f"{where}: {array.null_count} rows with status ok have no embedding")
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
    if lengths.min() != lengths.max():
        raise InputError(f"{where}: embeddings have different lengths ({lengths.min()} to {lengths.max()})")
    values = array.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    matrix = values.reshape(n, int(lengths[0]))
    if not np.isfinite(matrix).all():
        raise InputError(f"{where}: some embeddings hold NaN or infinite values")
    return matrix


def read_ok_rows(uri: str) -> ShardData:
    """Read the ``ok`` rows of every shard under ``uri``, with passthrough columns and embeddings.

    Thumbnails are not loaded (they can be most of the bytes); fetch the few a report needs with
    :func:`read_thumbnails`. Raises :class:`InputError` when ``uri`` holds no shards or a shard is unreadable.
    """
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
    ok_parts: list[pa.Table] = []
    matrices: list[np.ndarray] = []
    statuses: dict[str, int] = {}
    metadata: dict = {}
    has_thumbnails = False
    n_total = 0
    for index, path in enumerate(paths):
        try:
            shard_schema = pq.read_schema(path, filesystem=fs)
            if index == 0:
                metadata = schema.read_metadata(shard_schema)
            missing = {schema.ID, schema.STATUS, schema.EMBEDDING} - set(shard_schema.names)
            if missing:
                raise InputError(f"{path}: not an embedding shard, missing column(s) {', '.join(sorted(missing))}")
            has_thumbnails = has_thumbnails or schema.THUMBNAIL in shard_schema.names
            columns = [name for name in shard_schema.names if name != schema.THUMBNAIL]
            table = pq.read_table(path, filesystem=fs, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: unreadable shard: {exc}") from None
        n_total += table.num_rows
        values, counts = np.unique(table[schema.STATUS].to_numpy(zero_copy_only=False).astype(str), return_counts=True)
        for status, count in zip(values, counts, strict=True):
            statuses[str(status)] = statuses.get(str(status), 0) + int(count)
        ok = table.filter(pc.equal(table[schema.STATUS], schema.Status.OK.value))
        # Embeddings leave Arrow shard by shard, so the Arrow copy of all of them never exists at once.
        matrices.append(_embedding_matrix(ok[schema.EMBEDDING], ok.num_rows, where=path))
        ok_parts.append(ok.drop_columns([schema.EMBEDDING]))
    dims = {m.shape[1] for m in matrices if len(m)}
    if len(dims) > 1:
        raise InputError(f"--input {uri}: shards hold embeddings of different sizes {sorted(dims)}; mixed models?")
    try:
        table = pa.concat_tables(ok_parts, promote_options="permissive").replace_schema_metadata(None)
    except pa.ArrowException as exc:
        raise InputError(f"--input {uri}: shards have incompatible schemas: {exc}") from None
    if dims:
        embeddings = np.concatenate([m for m in matrices if len(m)])
    else:  # no ok row anywhere: an empty matrix as wide as the schema says
        embeddings = np.zeros((0, max((m.shape[1] for m in matrices), default=0)), dtype=np.float32)
    passthrough = [name for name in table.column_names if name not in schema.OWNED_COLUMNS]
    counts = dict(sorted(statuses.items(), key=lambda item: (-item[1], item[0])))
    return ShardData(
        table=table,
        embeddings=embeddings,
        metadata=metadata,
        n_total=n_total,
        status_counts=counts,
        passthrough=passthrough,
        has_thumbnails=has_thumbnails,
        n_shards=len(paths),
    )


def find_duplicates(sha256: Iterable[str | None]) -> Duplicates:
    """Group rows by content hash; the first row of each hash represents it, rows without a hash stand alone."""
    hashes = list(sha256)
    first_seen: dict[str, int] = {}
    representatives: list[int] = []
    inverse = np.empty(len(hashes), dtype=np.int64)
    is_copy = np.zeros(len(hashes), dtype=bool)
    for row, digest in enumerate(hashes):
        if digest is not None and digest in first_seen:
            inverse[row] = first_seen[digest]
            is_copy[row] = True
            continue
        position = len(representatives)
        representatives.append(row)
        inverse[row] = position
        if digest is not None:
            first_seen[digest] = position
    return Duplicates(representatives=np.asarray(representatives, dtype=np.int64), inverse=inverse, is_copy=is_copy)


def read_thumbnails(uri: str, ids: Iterable[str]) -> dict[str, bytes]:
    """The JPEG thumbnails of ``ids`` from the shards under ``uri``; ids without one are simply absent.

    Reads only the ``id`` and ``thumbnail`` columns, one shard at a time, so memory stays bounded by a shard.
    """
    wanted = pa.array(sorted(set(ids)), type=pa.string())
    if len(wanted) == 0:
        return {}
    fs, _ = io.resolve(uri)
    found: dict[str, bytes] = {}
    for path in io.list_shards(uri):
        if schema.THUMBNAIL not in pq.read_schema(path, filesystem=fs).names:
            continue
        table = pq.read_table(path, filesystem=fs, columns=[schema.ID, schema.THUMBNAIL])
        table = table.filter(pc.is_in(table[schema.ID], value_set=wanted))
        for key, blob in zip(table[schema.ID].to_pylist(), table[schema.THUMBNAIL].to_pylist(), strict=True):
            if blob is not None and key not in found:
                found[key] = blob
    return found

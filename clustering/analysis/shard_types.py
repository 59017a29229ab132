"""The column types of embedding shards, made plain once where shards are read.

Shards come from this project's ingest, but also from pandas 3, Polars, DuckDB or Spark, which write text as
``large_string``, ``string_view`` or dictionaries (categoricals), ids as integers, embeddings as lists of float16 or
float64. Every module after the reader sees one type per kind of column:

- text-like columns (``string``, ``large_string``, ``string_view``, ``dictionary<string>``, and bytes that are all
  valid UTF-8) become ``string``; other bytes ``binary``; any other dictionary is decoded to its values;
- ``id`` becomes ``string`` (integers and UTF-8 binary included; a missing id is refused);
- ``sha256`` becomes ``string`` (a raw binary digest as hex);
- ``status`` and ``url`` become ``string``;
- ``embedding`` may be a list, large list or fixed-size list of float16, float32 or float64 (read as float32);
- ``thumbnail`` may be any binary type (read as ``binary``);
- timestamps, dates and numbers are kept as they are (the post reader takes every unit and time zone).

A column whose type cannot serve its role gets one :class:`InputError` line naming the shard, the column and the type.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clustering import schema
from clustering.config import ConfigError

__all__ = ["InputError", "check_schema", "plain_column", "plain_ids", "plain_table"]


class InputError(ConfigError):
    """The input shards are missing or unusable; the message says which and why, in one line."""


def _is_text(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_)


def _is_bytes(type_: pa.DataType) -> bool:
    return pa.types.is_binary(type_) or pa.types.is_large_binary(type_) or pa.types.is_binary_view(type_)


def _is_list(type_: pa.DataType) -> bool:
    return pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_)


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary column as its values (Polars' and pandas' categoricals), anything else unchanged."""
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def plain_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """``column`` in the plain type of its kind: text as ``string``, bytes as ``binary``, dictionaries decoded.

    Bytes that are all valid UTF-8 are text: Parquet writers that predate the UTF-8 annotation (older Spark, Hive,
    Impala) store strings as plain byte arrays, which Arrow reads as binary.
    """
    column = _decoded(column)
    if _is_text(column.type) and not pa.types.is_string(column.type):
        return column.cast(pa.string())
    if _is_bytes(column.type):
        try:
            return column.cast(pa.string())
        except pa.ArrowInvalid:  # real bytes
            return column.cast(pa.binary())
    return column


def _as_text(column: pa.ChunkedArray, name: str, where: str, *, integers: bool = False) -> pa.ChunkedArray:
    """A column that must hold text (UTF-8 bytes included; integers too when ``integers``), as ``string``."""
    column = plain_column(column)
    type_ = column.type
    if not (pa.types.is_string(type_) or pa.types.is_binary(type_) or (integers and pa.types.is_integer(type_))):
        raise InputError(f"{where}: column {name!r} holds {type_}, not text")
    try:
        return column.cast(pa.string())
    except pa.ArrowInvalid:
        raise InputError(f"{where}: column {name!r} holds {type_} that is not UTF-8 text") from None


def plain_ids(column: pa.ChunkedArray, where: str) -> pa.ChunkedArray:
    """The ``id`` column as ``string``: outputs are joined and thumbnails looked up by id, so each row needs one."""
    ids = _as_text(column, schema.ID, where, integers=True)
    if ids.null_count:
        raise InputError(f"{where}: column {schema.ID!r} has {ids.null_count} missing value(s); every row needs an id")
    return ids


def _hex_digests(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Raw binary content hashes as the hex text the ingest writes, so both kinds group and print alike."""
    return pa.chunked_array([pa.array([None if v is None else v.hex() for v in column.to_pylist()], pa.string())])


def _is_hex_text(column: pa.ChunkedArray) -> bool:
    try:
        text = column.cast(pa.string())
    except pa.ArrowInvalid:
        return False
    return pc.all(pc.match_substring_regex(text, "^[0-9a-fA-F]*$")).as_py() is not False


def _plain_hashes(column: pa.ChunkedArray, where: str) -> pa.ChunkedArray:
    """Content hashes as hex text: hex already (as text or as its bytes), or raw digests encoded."""
    column = _decoded(column)
    if _is_bytes(column.type) and not _is_hex_text(column):
        return _hex_digests(column)
    return _as_text(column, schema.SHA256, where)


def plain_table(table: pa.Table, where: str) -> pa.Table:
    """Every column of a shard's ``table`` (``embedding`` and ``thumbnail`` excepted) in its plain type.

    Parameters
    ----------
    table : pyarrow.Table
        Columns read from one shard.
    where : str
        The shard, for error lines.

    Raises
    ------
    InputError
        A contract column whose type cannot serve its role (an id that is a list, a status that is a number) or a
        missing id.
    """
    for index, name in enumerate(table.column_names):
        column = table.column(index)
        if name == schema.ID:
            column = plain_ids(column, where)
        elif name in (schema.STATUS, schema.URL, schema.ERROR):
            column = _as_text(column, name, where)
        elif name == schema.SHA256:
            column = _plain_hashes(column, where)
        elif name == schema.THUMBNAIL:
            column = _decoded(column).cast(pa.binary())
        elif name != schema.EMBEDDING:
            column = plain_column(column)
        if column is not table.column(index):
            table = table.set_column(index, pa.field(name, column.type), column)
    return table


def check_schema(shard_schema: pa.Schema, where: str) -> None:
    """Refuse, in one line, an ``embedding`` that is not a list of floats or a ``thumbnail`` that is not bytes."""
    names = shard_schema.names
    if schema.EMBEDDING in names:
        type_ = shard_schema.field(schema.EMBEDDING).type
        if not (_is_list(type_) and pa.types.is_floating(type_.value_type)):
            raise InputError(
                f"{where}: column {schema.EMBEDDING!r} holds {type_}; expected a list of float16, float32 or float64"
            )
    if schema.THUMBNAIL in names:
        type_ = _decoded_type(shard_schema.field(schema.THUMBNAIL).type)
        if not (_is_bytes(type_) or pa.types.is_null(type_)):
            raise InputError(f"{where}: column {schema.THUMBNAIL!r} holds {type_}; expected JPEG bytes (binary)")


def _decoded_type(type_: pa.DataType) -> pa.DataType:
    return type_.value_type if pa.types.is_dictionary(type_) else type_


def embedding_matrix(column: pa.ChunkedArray, n: int, *, where: str) -> np.ndarray:
    """A float32 (n, D) matrix from a list, large list or fixed-size list column of floats, without Python loops."""
    if n == 0:
        dim = column.type.list_size if pa.types.is_fixed_size_list(column.type) else 0
        return np.zeros((0, max(dim, 0)), dtype=np.float32)
    array = column.combine_chunks()
    if array.null_count:
        raise InputError(f"{where}: {array.null_count} rows with status ok have no embedding")
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
    if lengths.min() != lengths.max():
        raise InputError(f"{where}: embeddings have different lengths ({lengths.min()} to {lengths.max()})")
    values = array.flatten()
    if values.null_count:
        raise InputError(f"{where}: some embeddings hold missing values")
    matrix = values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(n, int(lengths[0]))
    if not np.isfinite(matrix).all():
        raise InputError(f"{where}: some embeddings hold NaN or infinite values (or values too large for float32)")
    return matrix

"""The data contract between ingest and analysis: column names, statuses and the shard schema, in one place."""

from __future__ import annotations

import enum
import json

import pyarrow as pa

SCHEMA_VERSION = "1"
METADATA_KEY = b"clipcluster"


class Status(str, enum.Enum):
    """Outcome of one input row. Every row ends with exactly one of these."""

    OK = "ok"
    INVALID_URL = "invalid_url"
    BLOCKED_ADDRESS = "blocked_address"
    HTTP_ERROR = "http_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    TOO_LARGE = "too_large"
    NOT_IMAGE = "not_image"
    DECODE_ERROR = "decode_error"
    TOO_SMALL = "too_small"
    EMBED_ERROR = "embed_error"


# Columns the pipeline owns; everything else in the input is passthrough.
ID = "id"
URL = "url"
STATUS = "status"
ERROR = "error"
HTTP_STATUS = "http_status"
BYTES = "bytes"
WIDTH = "width"
HEIGHT = "height"
SHA256 = "sha256"
THUMBNAIL = "thumbnail"
EMBEDDING = "embedding"

RESULT_FIELDS = (
    pa.field(STATUS, pa.string(), nullable=False),
    pa.field(ERROR, pa.string()),
    pa.field(HTTP_STATUS, pa.int32()),
    pa.field(BYTES, pa.int64()),
    pa.field(WIDTH, pa.int32()),
    pa.field(HEIGHT, pa.int32()),
    pa.field(SHA256, pa.string()),
    pa.field(THUMBNAIL, pa.binary()),
)
OWNED_COLUMNS = frozenset([ID, URL, EMBEDDING, *(f.name for f in RESULT_FIELDS)])


def embedding_type(dim: int) -> pa.DataType:
    return pa.list_(pa.float32(), dim)


def shard_schema(passthrough: pa.Schema, dim: int, metadata: dict) -> pa.Schema:
    """Arrow schema of one embedding shard: contract columns first, passthrough columns after."""
    fields = [
        pa.field(ID, pa.string(), nullable=False),
        pa.field(URL, pa.string()),
        *RESULT_FIELDS,
        pa.field(EMBEDDING, embedding_type(dim)),
        *passthrough,
    ]
    return pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})


def read_metadata(schema: pa.Schema) -> dict:
    """The run metadata (model id, dim, preprocessing, versions) stored in a shard schema; {} when absent."""
    raw = (schema.metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def set_column(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    """``table`` with column ``name`` replaced in place, or appended when it is absent: how stages add results."""
    index = table.schema.get_field_index(name)
    return table.set_column(index, name, array) if index >= 0 else table.append_column(name, array)

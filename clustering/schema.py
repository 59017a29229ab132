"""The data contract: every name shared between modules, in one place.

Shard columns, statuses and the shard schema (ingest -> analysis); the columns handed between ingest stages; the
analysis output file names and assignment columns; which passthrough columns hold a post's text, date and account;
and how values become JSON. Stages import names from here rather than spelling them.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


# --- Inter-stage columns: handed from one ingest stage to the next, never written to a shard -----------------------
CONTENT = "content"  # downloaded bytes, download -> decode
PIXELS = "pixels"  # uint8 CLIP crop, decode -> embed

# --- Analysis output folder: file names (docs/analysis-outputs.md) -------------------------------------------------
ASSIGNMENTS = "assignments.parquet"
ASSIGNMENTS_CSV = "assignments.csv"
CLUSTERS_CSV = "clusters.csv"
CLUSTER_CHANGES_CSV = "cluster_changes.csv"
SWEEP_CSV = "sweep.csv"
SWEEP_JSON = "sweep.json"
METRICS_JSON = "metrics.json"
MAP_PNG = "map.png"
SWEEP_PNG = "sweep.png"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
EXPLORER_HTML = "explorer.html"
EXPLORER_FILES = "explorer_files"
MONTAGES = "montages"
REPOST_GROUPS_CSV = "repost_groups.csv"
OVER_TIME_PNG = "clusters_over_time.png"
COORDINATION_CSV = "coordination.csv"  # groups of accounts that posted the same images together (docs/coordination.md)
COORDINATED_PAIRS_CSV = "coordinated_pairs.csv"

# --- Assignment columns (assignments.parquet), beside ID, URL, SHA256 and the passthrough columns -------------------
X = "x"
Y = "y"
CLUSTER = "cluster"
PROBABILITY = "probability"
OUTLIER_SCORE = "outlier_score"
DUPLICATE_OF = "duplicate_of"
THEME = "theme"  # label of the coarse hierarchy level (int32, -1 noise)
SUBCLUSTER = "subcluster"  # label of the fine hierarchy level (int32, -1 noise)
REPOST_GROUP = "repost_group"  # near-duplicate group (int32, -1 when none)
POST_TIME = "post_time"  # the parsed post date (timestamp[ms, UTC], null when unknown)
REPOST_ORDER = "repost_order"  # place in its repost group's lineage (int32, 0 first post, null outside any group)
REPOST_DELAY = "repost_delay_s"  # seconds after its repost group's first post (int64, null when undated or none)
REPOST_VARIANT = "repost_variant"  # first, exact, same_picture, template or indirect (string, null outside a group)
COORDINATED_GROUP = "coordinated_group"  # coordinated group whose shared images this post is one of (int32, -1 none)
# Hierarchy levels, coarse to fine, and their label columns (clusters.csv ``level``, metrics.json ``hierarchy``).
LEVEL_COLUMNS = {"themes": THEME, "clusters": CLUSTER, "subclusters": SUBCLUSTER}


# --- Post columns: which passthrough columns hold a post's text, date and account -----------------------------------
# Well-known names, most specific first, matched case-insensitively.
TEXT_COLUMN_NAMES = ("text", "post_text", "caption", "full_text", "tweet_text", "body", "content", "message",
                     "description", "title")  # fmt: skip
DATE_COLUMN_NAMES = ("created_at", "date", "timestamp", "published", "published_at", "posted_at", "datetime", "time",
                     "created", "post_date")  # fmt: skip
ACCOUNT_COLUMN_NAMES = ("account", "user", "author", "username", "screen_name", "user_name", "user_screen_name",
                        "handle", "author_name", "channel")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class PostColumns:
    """Passthrough columns holding each post's text, date and account; None where the data has none."""

    text: str | None = None
    date: str | None = None
    account: str | None = None


def _is_string(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def _by_name(candidates: list[str], names: tuple[str, ...]) -> str | None:
    by_lower = {c.lower(): c for c in candidates}
    return next((by_lower[n] for n in names if n in by_lower), None)


def detect_text_column(table: pa.Table, candidates: list[str]) -> str | None:
    """The column holding the post text: a well-known name, else the string column with the longest mean length.

    Parameters
    ----------
    table : pyarrow.Table
        Any table holding the candidate columns (shards or assignments).
    candidates : list of str
        Passthrough column names to choose from.

    Returns
    -------
    str or None
        The column name, or None when no candidate holds strings.
    """
    strings = [c for c in candidates if _is_string(table.schema.field(c).type)]
    known = _by_name(strings, TEXT_COLUMN_NAMES)
    if known:
        return known
    best, best_len = None, 0.0
    for name in strings:
        values = table.column(name).drop_null()
        if len(values) == 0:
            continue
        mean_len = float(pc.mean(pc.utf8_length(values.cast(pa.large_string()))).as_py() or 0.0)
        if mean_len > best_len:
            best, best_len = name, mean_len
    return best


def detect_post_columns(
    table: pa.Table,
    candidates: list[str],
    *,
    text: str | None = None,
    date: str | None = None,
    account: str | None = None,
) -> PostColumns:
    """Text, date and account columns among ``candidates``: the given names win, else detection by name.

    A date column is also recognised by a timestamp or date type. Raises ``ConfigError`` naming the flag when a given
    name is not a column.
    """
    from clustering.config import ConfigError  # config imports nothing from here; keep the contract import-light

    for flag, name in (("--text-column", text), ("--date-column", date), ("--account-column", account)):
        if name is not None and name not in candidates:
            shown = ", ".join(candidates) or "none"
            raise ConfigError(f"{flag}: no column {name!r} in the data (passthrough columns: {shown})")
    # Nested columns (a Twitter export's "user" object) are never detected: they hold no single date or account.
    scalars = [c for c in candidates if not pa.types.is_nested(table.schema.field(c).type)]
    if date is None:
        date = _by_name(scalars, DATE_COLUMN_NAMES) or next(
            (c for c in scalars if pa.types.is_temporal(table.schema.field(c).type)), None
        )
    if account is None:
        account = _by_name(scalars, ACCOUNT_COLUMN_NAMES)
    if text is None:
        text = detect_text_column(table, [c for c in candidates if c not in (date, account)])
    return PostColumns(text=text, date=date, account=account)


def plain(value):
    """JSON-safe Python values: numpy scalars and arrays unwrapped, NaN and infinities as null, the rest as text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)

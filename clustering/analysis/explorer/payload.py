"""The explorer's data: an assignments table and the run summary turned into what the page reads.

Two parts (datamapplot's split between a small description and bulk arrays):

- ``header``: a small JSON document: the levels of the hierarchy with each cluster's name, keywords and parent, the
  clusterings offered, the passthrough columns, the post columns and the run summary. Its size grows with clusters,
  never with points.
- ``arrays``: every per-point value as a typed array or a NUL-joined text blob (:mod:`.explorer_encode`), packed,
  compressed and decoded in the page. Built vectorised from Arrow buffers: no Python object per point.

The contract columns (``theme``, ``subcluster``, ``repost_group``, ``post_time``, ``repost_order``, ``repost_delay_s``,
``coordinated_group``: :mod:`clustering.schema`) and the ``hierarchy``, ``posts``, ``reposts`` and ``coordination``
sections of ``metrics.json`` are described in docs/analysis-outputs.md; the history of a followed collection
(``batch``, ``label_source``, ``metrics.json`` ``batches``, a cluster's ``new`` and ``reviewed``) in docs/follow.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clustering import schema
from clustering.analysis.cluster.setting import setting_name
from clustering.analysis.explorer.encode import MAX_TEXT_CHARS, numeric_array, text_blob
from clustering.analysis.palette import hex_colours
from clustering.analysis.posts.columns import parse_dates
from clustering.analysis.posts.timeline import choose_period

__all__ = ["ALTERNATIVE_PREFIX", "Payload", "page_payload"]

ALTERNATIVE_PREFIX = f"{schema.CLUSTER}_mcs"
# Columns the page shows in their own places (or, for sha256, not at all: 64 characters a row that nobody reads).
_OWN_COLUMNS = frozenset(
    [schema.ID, schema.URL, schema.X, schema.Y, schema.PROBABILITY, schema.OUTLIER_SCORE, schema.SHA256,
     schema.DUPLICATE_OF, schema.REPOST_GROUP, schema.POST_TIME, schema.REPOST_ORDER, schema.REPOST_DELAY,
     schema.COORDINATED_GROUP]
)  # fmt: skip
# A text column with at most this share of distinct values is dictionary-encoded (accounts, dates, languages, ...).
DICTIONARY_MAX_UNIQUE_FRACTION = 0.5
# The cluster list shows this many exemplars (highest probability first); their thumbnails are placed first.
EXEMPLARS_PER_CLUSTER = 5
_MAX_KEYWORDS = 20
# The history of a followed collection (docs/follow.md): the batch that added each row and how its label was set.
BATCH_COLUMN = "batch"
LABEL_SOURCE_COLUMN = "label_source"
_HISTORY_COLUMNS = {"batch": BATCH_COLUMN, "label_source": LABEL_SOURCE_COLUMN}
_UNIT_SECONDS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


@dataclasses.dataclass(frozen=True)
class Payload:
    """What the page reads, before the thumbnails are placed.

    Attributes
    ----------
    header : dict
        JSON-safe description (sizes grow with clusters, not points); ``arrays`` keys are referenced from it.
    arrays : dict of str to numpy.ndarray or bytes
        Per-point typed arrays and NUL-joined text blobs, in packing order.
    ids : pyarrow.Array
        Row ids, to join the thumbnails on.
    priority : numpy.ndarray
        Rows ordered by how soon the page needs their thumbnail: cluster-list exemplars of every level first, then
        the chosen clusters' rows by probability (the galleries' order), noise last.
    """

    header: dict
    arrays: dict
    ids: pa.Array
    priority: np.ndarray

    @property
    def n(self) -> int:
        return int(self.header["n"])


def page_payload(table: pa.Table, metrics: dict, *, post: schema.PostColumns | None = None) -> Payload:
    """The page's data for an assignments ``table`` and the ``metrics.json`` document of its run.

    Parameters
    ----------
    table : pyarrow.Table
        ``assignments.parquet`` (or the same table in memory): ``id``, ``x``, ``y`` and ``cluster`` are required.
    metrics : dict
        ``metrics.json`` (may be empty): clusterings, hierarchy, post columns, model, input and the choice.
    post : schema.PostColumns, optional
        The run's post columns; default: ``metrics["posts"]``, else detected among the passthrough columns.
    """
    names = table.column_names
    for required in (schema.ID, schema.X, schema.Y, schema.CLUSTER):
        if required not in names:
            raise ValueError(
                f"{schema.ASSIGNMENTS}: missing required column {required!r} (see docs/analysis-outputs.md)"
            )
    n = table.num_rows
    arrays: dict[str, np.ndarray | bytes] = {}

    def floats(name: str) -> str | None:
        if name not in names:
            return None
        arrays[name] = numeric_array(_float_values(table.column(name)))
        return name

    header: dict[str, Any] = {"version": 2, "n": n, "x": floats(schema.X), "y": floats(schema.Y)}
    header["probability"] = floats(schema.PROBABILITY)
    header["outlier_score"] = floats(schema.OUTLIER_SCORE)
    header["id"] = _add_text(arrays, "id", table.column(schema.ID))
    header["url"] = _add_text(arrays, "url", table.column(schema.URL)) if schema.URL in names else None
    header["duplicate_of"] = (
        _add_text(arrays, "duplicate_of", table.column(schema.DUPLICATE_OF)) if schema.DUPLICATE_OF in names else None
    )
    header["repost_group"] = _add_labels(arrays, table, schema.REPOST_GROUP) if schema.REPOST_GROUP in names else None
    # The lineage view (a repost group's posts in order, delays) and the "posted together" filter; -1 where none.
    for key, column in (("repost_order", schema.REPOST_ORDER), ("repost_delay", schema.REPOST_DELAY),
                        ("coordinated_group", schema.COORDINATED_GROUP)):  # fmt: skip
        header[key] = _add_labels(arrays, table, column) if column in names else None
    header["coordination"] = _coordination(metrics)

    levels = _levels(table, metrics, arrays)
    clusterings = _clusterings(table, metrics, arrays)
    label_columns = {lv["column"] for lv in levels} | {c["column"] for c in clusterings}
    header["palette"] = hex_colours(_most_clusters(table, label_columns))
    header["history"] = _history(table, metrics, arrays)
    history_columns = {c for key, c in _HISTORY_COLUMNS.items() if header["history"][key]}  # shown in their places
    passthrough = [
        name
        for name in names
        if name not in _OWN_COLUMNS
        and name not in label_columns
        and name not in history_columns
        and not name.startswith(ALTERNATIVE_PREFIX)
        and not _is_binary(table.schema.field(name).type)
    ]
    posts_doc = metrics.get("posts") if isinstance(metrics.get("posts"), dict) else {}
    post = _post_columns(table, passthrough, posts_doc, post)
    columns = [
        _encode_column(arrays, k, name, table.column(name), account=name == post.account)
        for k, name in enumerate(passthrough)
    ]
    header.update(
        levels=levels,
        clusterings=clusterings,
        columns=columns,
        text_column=passthrough.index(post.text) if post.text in passthrough else None,
        account_column=passthrough.index(post.account) if post.account in passthrough else None,
        time=_times(arrays, table, post, posts_doc),
        posts={
            "text": post.text,
            "date": post.date,
            "account": post.account,
            "missing": [str(m) for m in posts_doc.get("missing") or []],
        },
        info=_info(metrics),
    )
    ids = table.column(schema.ID).combine_chunks().cast(pa.string())  # the type the thumbnail lookup batches have
    return Payload(header=header, arrays=arrays, ids=ids, priority=_priority(table, levels, clusterings))


# ------------------------------------------------------------------------------------------------ label columns
def _labels(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _add_labels(arrays: dict, table: pa.Table, column: str) -> str:
    key = f"labels/{column}"
    if key not in arrays:
        arrays[key] = numeric_array(_labels(table, column))
    return key


def _levels(table: pa.Table, metrics: dict, arrays: dict) -> list[dict]:
    """The hierarchy's levels present in ``table``, coarse to fine, each cluster with its name, keywords, parent."""
    names = set(table.column_names)
    hierarchy = metrics.get("hierarchy") if isinstance(metrics.get("hierarchy"), dict) else {}
    given = [lv for lv in hierarchy.get("levels") or [] if isinstance(lv, dict) and lv.get("column") in names]
    if not given:  # no description: the contract's level columns the table carries, without names
        given = [{"name": name, "column": column} for name, column in schema.LEVEL_COLUMNS.items() if column in names]
    out = []
    for level in given:
        clusters = [_cluster_info(c) for c in level.get("clusters") or [] if isinstance(c, dict)]
        out.append(
            {
                "name": _text(level.get("name")) or level["column"],
                "column": level["column"],
                "min_cluster_size": _cell(level.get("min_cluster_size")),
                "labels": _add_labels(arrays, table, level["column"]),
                "clusters": [c for c in clusters if c is not None],
            }
        )
    return out


def _cluster_info(entry: dict) -> dict | None:
    """One cluster of a level as the page shows it: every string cut, keywords as a short list of strings."""
    cluster = entry.get("cluster")
    if not isinstance(cluster, int) or isinstance(cluster, bool):
        return None
    parent = entry.get("parent")
    keywords = entry.get("keywords") or []
    if isinstance(keywords, str):  # clusters.csv style: ";"-separated
        keywords = [k for k in keywords.split(";") if k]
    return {
        "cluster": cluster,
        "parent": parent if isinstance(parent, int) and not isinstance(parent, bool) else -1,
        "size": _cell(entry.get("size")),
        "name": _text(entry.get("name")),
        "name_source": _text(entry.get("name_source")),
        "uncertain": bool(entry.get("uncertain")),
        "keywords": [_text(k, 100) for k in list(keywords)[:_MAX_KEYWORDS] if _text(k)],
        "mixed": [_text(k, 100) for k in list(entry.get("mixed_keywords") or [])[:_MAX_KEYWORDS] if _text(k)],
        "new": entry.get("new") is True,  # appeared in the latest batch (docs/follow.md)
        "reviewed": entry.get("reviewed") is True or entry.get("name_source") == "review",
    }


def _clusterings(table: pa.Table, metrics: dict, arrays: dict) -> list[dict]:
    """The chosen setting and the alternatives of ``metrics.json``, each with its labels array."""
    names = set(table.column_names)
    entries = [a for a in metrics.get("alternatives") or [] if isinstance(a, dict) and a.get("column")]
    if not any(a["column"] == schema.CLUSTER for a in entries):
        chosen = metrics.get("chosen") or {}
        setting = {k: chosen.get(k) for k in ("min_cluster_size", "min_samples", "selection")}
        entries.insert(0, {"column": schema.CLUSTER, **setting})
    if not metrics.get("alternatives"):  # no metrics: still offer any alternative columns the table carries
        entries += [{"column": name} for name in sorted(names) if name.startswith(ALTERNATIVE_PREFIX)]
    out, seen = [], set()
    for entry in entries:
        column = entry["column"]
        if column in seen or column not in names or not pa.types.is_integer(table.schema.field(column).type):
            continue
        seen.add(column)
        mcs, ms = entry.get("min_cluster_size"), entry.get("min_samples")
        if entry.get("label"):
            label = entry["label"]
        elif mcs is not None:
            label = setting_name(mcs, ms, entry.get("selection"))
        else:
            label = "chosen" if column == schema.CLUSTER else column
        out.append(
            {
                "column": column,
                "label": _text(label),
                "chosen": column == schema.CLUSTER,
                "min_cluster_size": _cell(mcs),
                "min_samples": _cell(ms),
                "labels": _add_labels(arrays, table, column),
            }
        )
    return out


def _priority(table: pa.Table, levels: list[dict], clusterings: list[dict]) -> np.ndarray:
    """Rows by how soon the page shows their thumbnail: list exemplars (every level and setting), then galleries."""
    n = table.num_rows
    prob = _float_values(table.column(schema.PROBABILITY)) if schema.PROBABILITY in table.column_names else np.zeros(n)
    prob = np.nan_to_num(prob, nan=0.0)
    rows = np.arange(n)
    chosen = _labels(table, schema.CLUSTER)
    # Gallery order of the chosen clustering: by cluster (noise last), highest probability first.
    gallery = np.lexsort((rows, -prob, np.where(chosen < 0, np.iinfo(np.int64).max, chosen)))
    score = np.empty(n, dtype=np.int64)
    score[gallery] = EXEMPLARS_PER_CLUSTER * n + np.arange(n)
    for column in dict.fromkeys([lv["column"] for lv in levels] + [c["column"] for c in clusterings]):
        labels = _labels(table, column)
        order = np.lexsort((rows, -prob, labels))
        order = order[labels[order] >= 0]
        if not order.size:
            continue
        sorted_labels = labels[order]
        starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
        rank_in_cluster = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
        sizes = np.diff(np.r_[starts, order.size])
        size_rank = np.empty(len(starts), dtype=np.int64)
        size_rank[np.lexsort((sorted_labels[starts], -sizes))] = np.arange(len(starts))
        cluster_rank = np.repeat(size_rank, sizes)
        keep = rank_in_cluster < EXEMPLARS_PER_CLUSTER
        exemplar_score = rank_in_cluster[keep] * n + cluster_rank[keep]
        np.minimum.at(score, order[keep], exemplar_score)
    return np.argsort(score, kind="stable")


def _most_clusters(table: pa.Table, columns: set[str]) -> int:
    """Clusters of the view with the most: the palette the page needs (label k takes colour k)."""
    highest = [pc.max(table.column(c)).as_py() for c in columns if c in table.column_names]
    return max((int(h) + 1 for h in highest if h is not None), default=0)


# ------------------------------------------------------------------------------------------------ history
def _history(table: pa.Table, metrics: dict, arrays: dict) -> dict:
    """The batch that added each row and how its label was set (docs/follow.md), when the table has them.

    The header part: ``batch`` (an array key or None), ``latest`` (the largest batch), ``label_source`` (dictionary
    codes and values, or None), ``batches`` (``metrics.json`` ``batches``) and ``input`` (``metrics.json`` ``input`` as
    it is, a path or a list of them: a review's ``analysis.input``). A ``batch`` column that is not integer is left to
    the passthrough columns.
    """
    out: dict[str, Any] = {
        "batch": None,
        "latest": 0,
        "label_source": None,
        "batches": _batches(metrics),
        "input": _input(metrics.get("input")),
    }
    if BATCH_COLUMN in table.column_names and pa.types.is_integer(table.schema.field(BATCH_COLUMN).type):
        batch = _labels(table, BATCH_COLUMN)
        arrays["history/batch"] = numeric_array(batch)
        out.update(batch="history/batch", latest=int(batch.max()) if batch.size else 0)
    if LABEL_SOURCE_COLUMN in table.column_names:
        array = table.column(LABEL_SOURCE_COLUMN).combine_chunks()
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            array = _as_text(array)
        encoded = pc.dictionary_encode(array)
        arrays["history/label_source"] = numeric_array(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False))
        arrays["history/label_source/dict"] = text_blob(encoded.dictionary)
        out["label_source"] = {"codes": "history/label_source", "dict": "history/label_source/dict",
                               "size": len(encoded.dictionary)}  # fmt: skip
    return out


def _batches(metrics: dict) -> list[dict]:
    """``metrics.json`` ``batches``, oldest first: each batch's number, kind, date, rows and input, as the page shows
    them (entries without an integer ``batch`` are left out)."""
    out = []
    for entry in metrics.get("batches") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("batch"), int) or isinstance(entry["batch"], bool):
            continue
        rows = entry.get("rows")
        out.append(
            {
                "batch": entry["batch"],
                "kind": _text(entry.get("kind")),
                "created": _text(entry.get("created")),
                "rows": rows if isinstance(rows, int) and not isinstance(rows, bool) else None,
                "input": _input(entry.get("input")),
            }
        )
    return out


def _input(value: Any) -> Any:
    """An ``input`` of ``metrics.json`` as it is: a path, or a list of them (an update reads several inputs)."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [_text(v, MAX_TEXT_CHARS) for v in value]
    return _cell(value)


# ------------------------------------------------------------------------------------------------ posts
def _coordination(metrics: dict) -> dict:
    """The window and repetition of the "posted together" groups (``metrics.json["coordination"]``), for the page's
    wording; nulls when the run did not analyse them."""
    found = metrics.get("coordination") if isinstance(metrics.get("coordination"), dict) else {}
    return {
        "window": _cell(found.get("window_seconds")),
        "min_repetition": _cell(found.get("min_repetition")),
        "reason": _text(found.get("reason")),
    }


def _post_columns(
    table: pa.Table, passthrough: list[str], posts_doc: dict, post: schema.PostColumns | None
) -> schema.PostColumns:
    if posts_doc:
        named = {k: posts_doc.get(k) if posts_doc.get(k) in table.column_names else None for k in ("text", "date")}
        account = posts_doc.get("account")
        return schema.PostColumns(**named, account=account if account in table.column_names else None)
    return post or schema.detect_post_columns(table, passthrough)


def _times(arrays: dict, table: pa.Table, post: schema.PostColumns, posts_doc: dict) -> dict:
    """Each row's post time as whole seconds after the earliest (-1: none), the period, or why there is none."""
    seconds = _post_seconds(table, post.date)
    no_column = {"key": None, "note": "No timeline: the data has no date column (set one with --date-column)."}
    if seconds is None:
        return no_column
    valid = seconds != np.iinfo(np.int64).min
    if not valid.any() and post.date is None:  # the run wrote post_time, all null: it had no date column
        return no_column
    if not valid.any():
        return {"key": None, "note": f"No timeline: no value of the date column {post.date!r} could be read as a date."}
    origin = int(seconds[valid].min())
    arrays["time"] = numeric_array(np.where(valid, seconds - origin, -1))
    period = posts_doc.get("period")
    if period not in ("day", "week"):
        period = choose_period(seconds[valid].astype("datetime64[s]"))
    unparseable = posts_doc.get("dates_unparseable")
    return {
        "key": "time",
        "origin": origin,
        "period": period,
        "column": post.date,
        "n_dated": int(valid.sum()),
        "unparseable": unparseable if isinstance(unparseable, int) else None,
    }


def _post_seconds(table: pa.Table, date_column: str | None) -> np.ndarray | None:
    """Epoch seconds per row (int64 minimum where unknown): ``post_time`` if the run wrote it, else the date column."""
    missing = np.iinfo(np.int64).min
    if schema.POST_TIME in table.column_names and pa.types.is_timestamp(table.schema.field(schema.POST_TIME).type):
        column = table.column(schema.POST_TIME)
        ticks = column.cast(pa.int64()).fill_null(missing).to_numpy(zero_copy_only=False)
        per_second = _UNIT_SECONDS[column.type.unit]
        return np.where(ticks == missing, missing, np.floor_divide(ticks, per_second))
    if date_column is None or date_column not in table.column_names:
        return None
    values = parse_dates(table.column(date_column)).values  # an older folder: parse as the analysis does
    return np.where(np.isnat(values), missing, values.astype("datetime64[s]").astype(np.int64))


# ------------------------------------------------------------------------------------------------ passthrough
def _add_text(arrays: dict, key: str, column: pa.ChunkedArray) -> dict:
    """A text column as a blob, plus a null mask when some values are null (the page shows them as missing)."""
    array = column.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = _as_text(array)
    arrays[key] = text_blob(array)
    out = {"text": key, "nulls": None}
    if array.null_count:
        arrays[f"{key}/nulls"] = np.ascontiguousarray(pc.is_null(array).to_numpy(zero_copy_only=False), dtype="u1")
        out["nulls"] = f"{key}/nulls"
    return out


def _encode_column(arrays: dict, k: int, name: str, column: pa.ChunkedArray, *, account: bool) -> dict:
    """One passthrough column: numbers as float64 (NaN for none), text as a blob or dictionary-encoded."""
    type_ = column.type
    out: dict[str, Any] = {"name": _text(str(name), MAX_TEXT_CHARS)}
    if _is_number(type_) and not account and not _beyond_doubles(column):
        arrays[f"col{k}"] = numeric_array(_float_values(column), precise=True)
        return {**out, "kind": "number", "values": f"col{k}"}
    array = column.combine_chunks()
    array = array if pa.types.is_string(array.type) or pa.types.is_large_string(array.type) else _as_text(array)
    if account:  # compared as the analysis compares them: trimmed, blank means none
        array = pc.utf8_trim_whitespace(array)
        array = pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array)
    distinct = pc.count_distinct(array).as_py() if len(array) else 0
    if account or (len(array) and distinct <= DICTIONARY_MAX_UNIQUE_FRACTION * len(array)):
        encoded = pc.dictionary_encode(array)
        arrays[f"col{k}/codes"] = numeric_array(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False))
        arrays[f"col{k}/dict"] = text_blob(encoded.dictionary)
        return {
            **out,
            "kind": "string",
            "codes": f"col{k}/codes",
            "dict": f"col{k}/dict",
            "size": len(encoded.dictionary),
        }
    return {**out, "kind": "string", **_add_text(arrays, f"col{k}", pa.chunked_array([array]))}


def _as_text(array: pa.Array) -> pa.Array:
    """Any column as text: Arrow's cast where it has one; nested values (lists, structs) as JSON, value by value."""
    try:
        return array.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else _cell(v) for v in array.to_pylist()], pa.string())


def _beyond_doubles(column: pa.ChunkedArray) -> bool:
    """Integers a double (a JavaScript number) would change: such columns are shown as text."""
    if not pa.types.is_integer(column.type) or column.null_count == len(column):
        return False
    bounds = pc.min_max(column).as_py()
    return max(abs(bounds["min"]), abs(bounds["max"])) > 2**53


def _float_values(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)


def _is_number(type_: pa.DataType) -> bool:
    return pa.types.is_integer(type_) or pa.types.is_floating(type_)


def _is_binary(type_: pa.DataType) -> bool:
    return pa.types.is_binary(type_) or pa.types.is_large_binary(type_) or pa.types.is_fixed_size_binary(type_)


# ------------------------------------------------------------------------------------------------ summary cells
def _info(metrics: dict) -> dict:
    chosen = metrics.get("chosen") or {}
    selection = metrics.get("selection") or {}
    return {
        "model": _cell(metrics.get("model")),
        "input": _cell(metrics.get("input")),
        "n_rows": _cell(metrics.get("n_rows")),
        "n_unique": _cell(metrics.get("n_unique")),
        "rule": _cell(selection.get("rule")),
        "reason": _cell(selection.get("reason")),
        "chosen": {k: _cell(v) for k, v in chosen.items() if isinstance(v, (str, int, float, bool))},
        "reposts": {k: _cell(v) for k, v in (metrics.get("reposts") or {}).items() if isinstance(v, (int, float))},
    }


def _text(value: Any, limit: int = 200) -> str | None:
    """A short display string (names, labels, keywords), or None."""
    if value is None or isinstance(value, (bytes, bytearray)):
        return None
    text = value if isinstance(value, str) else str(_cell(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(value: Any) -> Any:
    """A JSON-safe scalar: NaN/inf -> None, huge ints, dates, nested values and the rest -> (cut) strings."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value, MAX_TEXT_CHARS)
    if isinstance(value, int):
        return value if abs(value) <= 2**53 - 1 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (list, tuple, dict)):
        return _text(json.dumps(value, default=str, ensure_ascii=False), MAX_TEXT_CHARS)
    return _text(str(value), MAX_TEXT_CHARS)

"""The explorer's data: an assignments table and the run summary turned into the JSON the page reads.

Coordinates, probabilities and labels travel as little-endian typed arrays in base64 (labels in the smallest integer
type that holds them); strings as JSON arrays, cut at :data:`MAX_TEXT_CHARS`; repetitive string columns (accounts,
dates) dictionary-encoded. Every value is made JSON-safe here; the page inserts them as text only.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
from typing import Any

import numpy as np
import pyarrow as pa

from clustering import schema

__all__ = ["MAX_TEXT_CHARS", "encode_array", "page_payload"]

# Columns of assignments.parquet that the page shows in their own places (or, for sha256, not at all: 64 characters a
# row would add 3 MB at 50k points for a value nobody reads); every other non-binary column is passthrough metadata.
_OWN_COLUMNS = frozenset(
    [
        schema.ID,
        schema.URL,
        schema.X,
        schema.Y,
        schema.CLUSTER,
        schema.PROBABILITY,
        schema.OUTLIER_SCORE,
        schema.SHA256,
        schema.DUPLICATE_OF,
    ]
)
ALTERNATIVE_PREFIX = f"{schema.CLUSTER}_mcs"
# Long texts are cut so one pathological row cannot bloat the page; 2,000 characters hold any social-media post.
MAX_TEXT_CHARS = 2000
# A string column with fewer distinct values than this fraction of rows is dictionary-encoded (accounts, dates, ...).
DICTIONARY_MAX_UNIQUE_FRACTION = 0.5
# JS numbers are doubles: integers beyond 2**53 would silently change, so they travel as strings.
_MAX_SAFE_INT = 2**53 - 1


def page_payload(table: pa.Table, metrics: dict, *, post: schema.PostColumns | None = None) -> dict:
    """The page's data for an assignments ``table`` and the ``metrics.json`` document of its run.

    Parameters
    ----------
    table : pyarrow.Table
        ``assignments.parquet`` (or the same table in memory): ``id``, ``x``, ``y`` and ``cluster`` are required.
    metrics : dict
        ``metrics.json`` (may be empty): the clusterings offered, the model, the input and the choice.
    post : schema.PostColumns, optional
        The run's post columns; default: detected among the table's passthrough columns.
    """
    names = table.column_names
    for required in (schema.ID, schema.X, schema.Y, schema.CLUSTER):
        if required not in names:
            raise ValueError(
                f"{schema.ASSIGNMENTS}: missing required column {required!r} (see docs/analysis-outputs.md)"
            )
    n = table.num_rows
    clusterings = _clusterings(table, metrics)
    cluster_columns = {c["column"] for c in clusterings} | {
        name
        for name in names
        if name.startswith(ALTERNATIVE_PREFIX) and pa.types.is_integer(table.schema.field(name).type)
    }
    passthrough = [
        name
        for name in names
        if name not in _OWN_COLUMNS and name not in cluster_columns and not _is_binary(table.schema.field(name).type)
    ]
    text_column = (post or schema.detect_post_columns(table, passthrough)).text

    def floats(name: str) -> dict | None:
        if name not in names:
            return None
        return encode_array(table.column(name).to_numpy(zero_copy_only=False).astype("<f4"))

    chosen = metrics.get("chosen") or {}
    selection = metrics.get("selection") or {}
    return {
        "version": 1,
        "n": n,
        "x": floats(schema.X),
        "y": floats(schema.Y),
        "probability": floats(schema.PROBABILITY),
        "outlier_score": floats(schema.OUTLIER_SCORE),
        "id": _strings(table.column(schema.ID)),
        "url": _strings(table.column(schema.URL)) if schema.URL in names else [None] * n,
        "duplicate_of": _strings(table.column(schema.DUPLICATE_OF)) if schema.DUPLICATE_OF in names else None,
        "clusterings": clusterings,
        "text_column": text_column if text_column in passthrough else None,
        "columns": [_encode_column(name, table.column(name)) for name in passthrough],
        "info": {
            "model": _cell(metrics.get("model")),
            "input": _cell(metrics.get("input")),
            "n_rows": _cell(metrics.get("n_rows")),
            "n_unique": _cell(metrics.get("n_unique")),
            "rule": _cell(selection.get("rule")),
            "reason": _cell(selection.get("reason")),
            "chosen": {k: _cell(v) for k, v in chosen.items() if isinstance(v, (str, int, float, bool))},
        },
    }


def _clusterings(table: pa.Table, metrics: dict) -> list[dict]:
    """The chosen setting and the alternatives of ``metrics.json``, each with its labels column."""
    names = set(table.column_names)
    entries = [a for a in metrics.get("alternatives") or [] if isinstance(a, dict) and a.get("column")]
    if not any(a["column"] == schema.CLUSTER for a in entries):
        chosen = metrics.get("chosen") or {}
        entries.insert(0, {"column": schema.CLUSTER, **{k: chosen.get(k) for k in ("min_cluster_size", "min_samples")}})
    if not metrics.get("alternatives"):  # no metrics: still offer any alternative columns the table carries
        entries += [{"column": name} for name in sorted(names) if name.startswith(ALTERNATIVE_PREFIX)]
    out, seen = [], set()
    for entry in entries:
        column = entry["column"]
        if column in seen or column not in names:
            continue
        seen.add(column)
        labels = table.column(column).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        mcs, ms = entry.get("min_cluster_size"), entry.get("min_samples")
        if entry.get("label"):
            label = entry["label"]
        elif mcs is not None:
            label = f"min_cluster_size={mcs}, min_samples={ms}"
        else:
            label = "chosen" if column == schema.CLUSTER else column
        out.append(
            {
                "column": column,
                "label": str(label),
                "chosen": column == schema.CLUSTER,
                "min_cluster_size": _cell(mcs),
                "min_samples": _cell(ms),
                "labels": encode_array(labels),
            }
        )
    return out


def encode_array(values: np.ndarray) -> dict:
    """A numeric array as little-endian base64, in the smallest of int8/int16/int32 or float32."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        for dtype in ("<i1", "<i2", "<i4"):
            info = np.iinfo(dtype)
            if info.min <= lo and hi <= info.max:
                break
        else:
            raise ValueError(f"integer values out of int32 range ({lo}..{hi})")
    else:
        dtype = "<f4"
    return {"dtype": dtype[1:], "b64": base64.b64encode(np.ascontiguousarray(arr, dtype=dtype).tobytes()).decode()}


def _strings(column: pa.ChunkedArray) -> list[str | None]:
    return [None if v is None else _clip(str(v)) for v in column.to_pylist()]


def _encode_column(name: str, column: pa.ChunkedArray) -> dict:
    """One passthrough column, values made JSON-safe; repetitive strings dictionary-encoded."""
    values = [_cell(v) for v in column.to_pylist()]
    kind = "number" if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) else "string"
    out: dict = {"name": str(name), "kind": kind}
    if kind == "string" and values:
        distinct = {v for v in values if v is not None}
        if len(distinct) <= DICTIONARY_MAX_UNIQUE_FRACTION * len(values):
            order = sorted(distinct, key=str)
            code = {v: i for i, v in enumerate(order)}
            out["dict"] = order
            out["codes"] = encode_array(np.array([-1 if v is None else code[v] for v in values], dtype=np.int64))
            return out
    out["values"] = values
    return out


def _cell(value: Any) -> Any:
    """A JSON-safe page cell: NaN/inf -> None, huge ints, dates, lists and the rest -> (cut) strings.

    Unlike :func:`clustering.schema.plain` (files), a cell must stay one short scalar: nested values become JSON text,
    dates ISO text, and integers a double cannot hold exactly become strings.
    """
    if value is None or isinstance(value, (bool, str)):
        return _clip(value) if isinstance(value, str) else value
    if isinstance(value, int):
        return value if abs(value) <= _MAX_SAFE_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, (list, tuple, dict)):
        return _clip(json.dumps(value, default=str, ensure_ascii=False))
    return _clip(str(value))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"


def _is_binary(type_: pa.DataType) -> bool:
    return pa.types.is_binary(type_) or pa.types.is_large_binary(type_) or pa.types.is_fixed_size_binary(type_)

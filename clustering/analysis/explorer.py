"""``explorer.html``: one self-contained, offline, interactive map of the analysed images.

Computing the page data is kept apart from rendering it (datamapplot's split): :meth:`Explorer.from_output_dir` reads
``assignments.parquet`` and ``metrics.json`` (the contract in ``docs/analysis-outputs.md``) into a JSON-ready payload;
:meth:`Explorer.save` streams the thumbnails from the embedding shards, embeds them as data URIs up to a byte budget,
writes the rest to a sidecar folder, and renders the Jinja template around the vendored-free JS/CSS in ``templates/``.

Security model: every value from the data (ids, URLs, texts, column names, the title) reaches the page only inside a
``<script type="application/json">`` block whose JSON has ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, so nothing in
the data can close the block; the page script inserts data with ``textContent`` and attribute setters only, and a
Content-Security-Policy pins the one script that may run by its hash.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import hashlib
import html
import json
import math
import posixpath
import urllib.parse
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from clustering import io as cio
from clustering import schema

__all__ = ["Explorer", "ExplorerResult", "build_explorer", "detect_text_column", "script_json"]

ASSIGNMENTS = "assignments.parquet"
METRICS = "metrics.json"
PAGE_NAME = "explorer.html"
DEFAULT_EMBED_BUDGET = 25 * 2**20

# Columns of assignments.parquet that the page shows in their own places (or, for sha256, not at all: 64 characters a
# row would add 3 MB at 50k points for a value nobody reads); every other non-binary column is passthrough metadata.
_OWN_COLUMNS = frozenset(
    [schema.ID, schema.URL, "x", "y", "cluster", "probability", "outlier_score", schema.SHA256, "duplicate_of"]
)
# Names that usually hold the post text, most specific first; otherwise the longest string passthrough column wins.
TEXT_COLUMN_NAMES = ("text", "post_text", "caption", "full_text", "tweet_text", "body", "content", "message",
                     "description", "title")  # fmt: skip
# Long texts are cut so one pathological row cannot bloat the page; 2,000 characters hold any social-media post.
MAX_TEXT_CHARS = 2000
# A string column with fewer distinct values than this fraction of rows is dictionary-encoded (accounts, dates, ...).
DICTIONARY_MAX_UNIQUE_FRACTION = 0.5
# Sidecar thumbnails go into buckets of this many files, so no folder holds 50k entries.
SIDECAR_BUCKET = 1000
# JS numbers are doubles: integers beyond 2**53 would silently change, so they travel as strings.
_MAX_SAFE_INT = 2**53 - 1

_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026", 0x2028: "\\u2028", 0x2029: "\\u2029"}
_IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"GIF8", "image/gif", "gif"),
)


@dataclass(frozen=True)
class ExplorerResult:
    """What :func:`build_explorer` wrote.

    Attributes
    ----------
    path : str
        The page (``explorer.html``).
    n_points : int
        Points on the map (rows of ``assignments.parquet``).
    n_embedded_thumbnails : int
        Distinct thumbnails embedded in the page as data URIs (identical images are stored once).
    n_sidecar_thumbnails : int
        Distinct thumbnails written as files under the sidecar folder (``explorer_files/``).
    bytes : int
        Size of the page itself; the sidecar folder is counted in ``sidecar_bytes``.
    sidecar_bytes : int
        Total size of the sidecar files (0 when everything fits in the page).
    n_points_with_thumbnail : int
        Points whose image can be shown.
    notice : str or None
        The one line the page shows when thumbnails are missing (no shards, no thumbnail column), else None.
    """

    path: str
    n_points: int
    n_embedded_thumbnails: int
    n_sidecar_thumbnails: int
    bytes: int
    sidecar_bytes: int = 0
    n_points_with_thumbnail: int = 0
    notice: str | None = None


def script_json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>``, ``&``, U+2028/2029 escaped.

    With those escaped the text can never contain ``</script`` or ``<!--``, so data cannot end the block.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.translate(_JSON_ESCAPES)


def detect_text_column(table: pa.Table, candidates: list[str]) -> str | None:
    """The passthrough column holding the post text: a well-known name, else the longest string column.

    Parameters
    ----------
    table : pyarrow.Table
        The assignments table.
    candidates : list of str
        Passthrough column names to choose from.

    Returns
    -------
    str or None
        The column name, or None when no candidate holds strings.
    """
    strings = [c for c in candidates if _is_string(table.schema.field(c).type)]
    by_lower = {c.lower(): c for c in strings}
    for name in TEXT_COLUMN_NAMES:
        if name in by_lower:
            return by_lower[name]
    best, best_len = None, 0.0
    for name in strings:
        values = table.column(name).drop_null()
        if len(values) == 0:
            continue
        mean_len = float(pc.mean(pc.utf8_length(values.cast(pa.large_string()))).as_py() or 0.0)
        if mean_len > best_len:
            best, best_len = name, mean_len
    return best


def build_explorer(
    output_dir: str | Path,
    *,
    shards: str | None = None,
    embed_budget_bytes: int = DEFAULT_EMBED_BUDGET,
    title: str | None = None,
) -> ExplorerResult:
    """Write ``explorer.html`` (and ``explorer_files/`` if needed) into an analysis output folder.

    Parameters
    ----------
    output_dir : str or Path
        The analysis output folder (local path or URI) holding ``assignments.parquet`` and ``metrics.json``.
    shards : str, optional
        Embedding shards to take thumbnails from, joined on ``id``. Default: ``metrics.json["input"]``. When they
        cannot be found or lack a ``thumbnail`` column the explorer works without images and says so in one line.
    embed_budget_bytes : int, default 25 MiB
        Bytes of base64 data URIs the page may embed; thumbnails beyond it go to ``explorer_files/`` next to the page
        and are referenced relatively, so the page and that folder travel together.
    title : str, optional
        Page title. Default: ``"Image map · <folder name>"``.

    Returns
    -------
    ExplorerResult
    """
    explorer = Explorer.from_output_dir(output_dir, shards=shards, title=title)
    fs, root = _resolve_dir(output_dir)
    return explorer.save(posixpath.join(root, PAGE_NAME), embed_budget_bytes=embed_budget_bytes, filesystem=fs)


class Explorer:
    """The explorer's data, computed once, rendered by :meth:`save`, :meth:`to_html` or in a notebook.

    Build it with :meth:`from_output_dir`; the constructor takes the payload it produces.
    """

    def __init__(self, payload: dict, thumbnail_source: str | None, notice: str | None) -> None:
        self.payload = payload
        self.thumbnail_source = thumbnail_source
        self.notice = notice

    @property
    def n_points(self) -> int:
        return int(self.payload["n"])

    @classmethod
    def from_output_dir(
        cls, output_dir: str | Path, *, shards: str | None = None, title: str | None = None
    ) -> Explorer:
        """Read an analysis output folder (see ``docs/analysis-outputs.md``) into an :class:`Explorer`.

        Parameters
        ----------
        output_dir : str or Path
            Folder or URI holding ``assignments.parquet`` (required) and ``metrics.json`` (optional here).
        shards : str, optional
            Where the thumbnails are; default ``metrics.json["input"]``.
        title : str, optional
            Page title; default ``"Image map · <folder name>"``.
        """
        if title is not None and not isinstance(title, str):
            raise TypeError(f"title must be a string or None, got {type(title).__name__}")
        fs, root = _resolve_dir(output_dir)
        assignments_path = posixpath.join(root, ASSIGNMENTS)
        if not cio.exists(fs, assignments_path):
            raise FileNotFoundError(f"output_dir: no {ASSIGNMENTS} in {output_dir}")
        table = pq.read_table(assignments_path, filesystem=fs)
        metrics_path = posixpath.join(root, METRICS)
        metrics = json.loads(cio.read_text(fs, metrics_path)) if cio.exists(fs, metrics_path) else {}

        payload = _payload(table, metrics)
        payload["title"] = title or f"Image map · {posixpath.basename(root.rstrip('/')) or root}"

        source, notice = _locate_thumbnails(shards if shards is not None else metrics.get("input"), fs, root)
        return cls(payload, source, notice)

    def save(
        self,
        path: str | Path,
        *,
        embed_budget_bytes: int = DEFAULT_EMBED_BUDGET,
        filesystem: pafs.FileSystem | None = None,
    ) -> ExplorerResult:
        """Write the page to ``path`` and, when thumbnails exceed the budget, ``<stem>_files/`` beside it.

        Parameters
        ----------
        path : str or Path
            Where the page goes (local path or URI, or a path on ``filesystem``).
        embed_budget_bytes : int, default 25 MiB
            Bytes of data URIs embedded in the page; the rest become sidecar files.
        filesystem : pyarrow.fs.FileSystem, optional
            Filesystem ``path`` lives on; default: resolved from ``path``.
        """
        _check_budget(embed_budget_bytes)
        if filesystem is None:
            fs, page = _resolve_dir(path)
        else:
            fs, page = filesystem, str(path)
        parent, name = posixpath.split(page)
        stem = name.rsplit(".", 1)[0] if "." in name else name
        sidecar_dir = posixpath.join(parent, f"{stem}_files")
        if cio.exists(fs, sidecar_dir):  # stale thumbnails of an earlier build would linger and mislead
            fs.delete_dir(sidecar_dir)
        sink = _SidecarSink(fs, sidecar_dir)
        thumbs = _collect_thumbnails(self, embed_budget_bytes, sink)
        text = self._render(thumbs, sidecar_base=urllib.parse.quote(f"{stem}_files") + "/thumbs/")
        _write_atomic(fs, page, text.encode())
        return ExplorerResult(
            path=page,
            n_points=self.n_points,
            n_embedded_thumbnails=len(thumbs.embedded),
            n_sidecar_thumbnails=sink.count,
            bytes=fs.get_file_info(page).size,
            sidecar_bytes=sink.bytes,
            n_points_with_thumbnail=thumbs.n_points_with_thumbnail,
            notice=thumbs.notice,
        )

    def to_html(self, *, embed_budget_bytes: int = DEFAULT_EMBED_BUDGET) -> str:
        """The page as one string, with no sidecar: thumbnails beyond the budget are left out (and the page says so)."""
        _check_budget(embed_budget_bytes)
        return self._render(_collect_thumbnails(self, embed_budget_bytes, None), sidecar_base="")

    def _repr_html_(self) -> str:
        page = self.to_html(embed_budget_bytes=8 * 2**20)  # notebooks choke on much bigger cell outputs
        return (
            '<iframe style="width:100%;height:720px;border:0" sandbox="allow-scripts allow-downloads" '
            f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
        )

    def _render(self, thumbs: _Thumbnails, *, sidecar_base: str) -> str:
        payload = dict(self.payload)
        payload["thumbs"] = {
            "index": _encode_array(thumbs.index),
            "n_embedded": len(thumbs.embedded),
            "sidecar_base": sidecar_base,
            "sidecar_bucket": SIDECAR_BUCKET,
            "sidecar_ext": thumbs.sidecar_ext,
        }
        payload["notice"] = thumbs.notice
        return _render_page(payload, thumbs.embedded)


# --------------------------------------------------------------------------------------------------- page payload
def _payload(table: pa.Table, metrics: dict) -> dict:
    names = table.column_names
    for required in (schema.ID, "x", "y", "cluster"):
        if required not in names:
            raise ValueError(f"{ASSIGNMENTS}: missing required column {required!r} (see docs/analysis-outputs.md)")
    n = table.num_rows
    clusterings = _clusterings(table, metrics)
    cluster_columns = {c["column"] for c in clusterings} | {
        name for name in names if name.startswith("cluster_mcs") and pa.types.is_integer(table.schema.field(name).type)
    }
    passthrough = [
        name
        for name in names
        if name not in _OWN_COLUMNS
        and name not in cluster_columns
        and name != schema.THUMBNAIL
        and not _is_binary(table.schema.field(name).type)
    ]
    text_column = detect_text_column(table, passthrough)

    def floats(name: str) -> dict | None:
        if name not in names:
            return None
        return _encode_array(table.column(name).to_numpy(zero_copy_only=False).astype("<f4"))

    chosen = metrics.get("chosen") or {}
    selection = metrics.get("selection") or {}
    return {
        "version": 1,
        "n": n,
        "x": floats("x"),
        "y": floats("y"),
        "probability": floats("probability"),
        "outlier_score": floats("outlier_score"),
        "id": _strings(table.column(schema.ID)),
        "url": _strings(table.column(schema.URL)) if schema.URL in names else [None] * n,
        "duplicate_of": _strings(table.column("duplicate_of")) if "duplicate_of" in names else None,
        "clusterings": clusterings,
        "text_column": text_column,
        "columns": [_encode_column(name, table.column(name)) for name in passthrough],
        "info": {
            "model": _plain(metrics.get("model")),
            "input": _plain(metrics.get("input")),
            "n_rows": _plain(metrics.get("n_rows")),
            "n_unique": _plain(metrics.get("n_unique")),
            "rule": _plain(selection.get("rule")),
            "reason": _plain(selection.get("reason")),
            "chosen": {k: _plain(v) for k, v in chosen.items() if isinstance(v, (str, int, float, bool))},
        },
    }


def _clusterings(table: pa.Table, metrics: dict) -> list[dict]:
    """The chosen setting and the alternatives of ``metrics.json``, each with its labels column."""
    names = set(table.column_names)
    entries = [a for a in metrics.get("alternatives") or [] if isinstance(a, dict) and a.get("column")]
    if not any(a["column"] == "cluster" for a in entries):
        chosen = metrics.get("chosen") or {}
        entries.insert(0, {"column": "cluster", **{k: chosen.get(k) for k in ("min_cluster_size", "min_samples")}})
    if not metrics.get("alternatives"):  # no metrics: still offer any alternative columns the table carries
        entries += [{"column": name} for name in sorted(names) if name.startswith("cluster_mcs")]
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
            label = "chosen" if column == "cluster" else column
        out.append(
            {
                "column": column,
                "label": str(label),
                "chosen": column == "cluster",
                "min_cluster_size": _plain(mcs),
                "min_samples": _plain(ms),
                "labels": _encode_array(labels),
            }
        )
    return out


def _encode_array(values: np.ndarray) -> dict:
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
    values = [_plain(v) for v in column.to_pylist()]
    kind = "number" if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) else "string"
    out: dict = {"name": str(name), "kind": kind}
    if kind == "string" and values:
        distinct = {v for v in values if v is not None}
        if len(distinct) <= DICTIONARY_MAX_UNIQUE_FRACTION * len(values):
            order = sorted(distinct, key=str)
            code = {v: i for i, v in enumerate(order)}
            out["dict"] = order
            out["codes"] = _encode_array(np.array([-1 if v is None else code[v] for v in values], dtype=np.int64))
            return out
    out["values"] = values
    return out


def _plain(value: Any) -> Any:
    """A JSON-safe scalar: NaN/inf -> None, huge ints, dates, lists and the rest -> strings."""
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


def _is_string(tp: pa.DataType) -> bool:
    return (
        pa.types.is_string(tp)
        or pa.types.is_large_string(tp)
        or (pa.types.is_dictionary(tp) and _is_string(tp.value_type))
    )


def _is_binary(tp: pa.DataType) -> bool:
    return pa.types.is_binary(tp) or pa.types.is_large_binary(tp) or pa.types.is_fixed_size_binary(tp)


# ------------------------------------------------------------------------------------------------------ thumbnails
@dataclass
class _Thumbnails:
    index: np.ndarray  # per point: >= 0 embedded slot, <= -2 sidecar file (-2 - k), -1 none
    embedded: list[str] = dataclasses.field(default_factory=list)
    sidecar_ext: dict[str, str] = dataclasses.field(default_factory=dict)  # only for files that are not .jpg
    n_points_with_thumbnail: int = 0
    notice: str | None = None


class _SidecarSink:
    """Writes sidecar thumbnails ``thumbs/BBB/K.ext``, creating folders as it goes."""

    def __init__(self, fs: pafs.FileSystem, root: str) -> None:
        self.fs, self.root = fs, root
        self.count = 0
        self.bytes = 0
        self._made: set[str] = set()

    def write(self, data: bytes, ext: str) -> int:
        k = self.count
        folder = posixpath.join(self.root, "thumbs", f"{k // SIDECAR_BUCKET:03d}")
        if folder not in self._made:
            self.fs.create_dir(folder, recursive=True)
            self._made.add(folder)
        with self.fs.open_output_stream(posixpath.join(folder, f"{k}.{ext}")) as out:
            out.write(data)
        self.count += 1
        self.bytes += len(data)
        return k


def _locate_thumbnails(shards: str | None, fs: pafs.FileSystem, root: str) -> tuple[str | None, str | None]:
    """The shards URI to read thumbnails from, or None and the one-line reason the page will show."""
    if not shards:
        return None, "No thumbnails: metrics.json names no input shards and none were given; showing points only."
    candidates = [shards]
    if "://" not in shards and not Path(shards).is_absolute() and isinstance(fs, pafs.LocalFileSystem):
        candidates.append(posixpath.join(root, shards))  # a run's relative input, seen from the output folder
    for uri in candidates:
        try:
            paths = cio.list_shards(uri)
        except (OSError, pa.ArrowException, ValueError):
            continue
        if paths:
            shard_fs, _ = cio.resolve(uri)
            if not any(schema.THUMBNAIL in pq.read_schema(p, filesystem=shard_fs).names for p in paths):
                return None, f"No thumbnails: the shards at {shards} have no thumbnail column; showing points only."
            return uri, None
    return None, f"No thumbnails: no embedding shards found at {shards}; showing points only."


def _collect_thumbnails(explorer: Explorer, budget: int, sink: _SidecarSink | None) -> _Thumbnails:
    """Stream ``id, thumbnail`` from the shards; embed distinct images until the budget is spent, then sidecar."""
    n = explorer.n_points
    thumbs = _Thumbnails(index=np.full(n, -1, dtype=np.int32), notice=explorer.notice)
    if explorer.thumbnail_source is None:
        return thumbs
    rows_of: dict[str, list[int]] = {}
    for i, id_ in enumerate(explorer.payload["id"]):
        rows_of.setdefault(id_, []).append(i)
    slot_of: dict[bytes, int] = {}  # content digest -> code, so reposts of one image are stored once
    spent, dropped = 0, 0
    fs, _ = cio.resolve(explorer.thumbnail_source)
    for path in cio.list_shards(explorer.thumbnail_source):
        with fs.open_input_file(path) as src:
            parquet = pq.ParquetFile(src)
            if schema.THUMBNAIL not in parquet.schema_arrow.names:
                continue
            for batch in parquet.iter_batches(batch_size=4096, columns=[schema.ID, schema.THUMBNAIL]):
                ids = batch.column(0).to_pylist()
                blobs = batch.column(1).to_pylist()
                for id_, blob in zip(ids, blobs, strict=True):
                    rows = rows_of.pop(id_, None)  # first shard row of an id wins
                    if rows is None or not blob:
                        continue
                    digest = hashlib.blake2b(blob, digest_size=16).digest()
                    code = slot_of.get(digest)
                    if code is None:
                        mime, ext = _sniff(blob)
                        uri = f"data:{mime};base64,{base64.b64encode(blob).decode()}"
                        if spent + len(uri) <= budget:
                            spent += len(uri)
                            code = len(thumbs.embedded)
                            thumbs.embedded.append(uri)
                        elif sink is not None:
                            k = sink.write(blob, ext)
                            if ext != "jpg":
                                thumbs.sidecar_ext[str(k)] = ext
                            code = -2 - k
                        else:
                            dropped += len(rows)
                            continue
                        slot_of[digest] = code
                    thumbs.index[rows] = code
    thumbs.n_points_with_thumbnail = int((thumbs.index != -1).sum())
    if dropped:
        thumbs.notice = f"{dropped:,} thumbnails left out: over the embed budget and this page has no sidecar folder."
    return thumbs


def _sniff(blob: bytes) -> tuple[str, str]:
    for signature, mime, ext in _IMAGE_SIGNATURES:
        if blob.startswith(signature):
            return mime, ext
    if blob[:4] == b"RIFF" and blob[8:12] == b"WEBP":
        return "image/webp", "webp"
    return "image/jpeg", "jpg"  # the shard contract says JPEG; browsers sniff the bytes anyway


# ------------------------------------------------------------------------------------------------------- rendering
def _template_text(name: str) -> str:
    return resources.files("clustering.analysis").joinpath("templates", *name.split("/")).read_text(encoding="utf-8")


def _render_page(payload: dict, embedded: list[str]) -> str:
    # The JS and CSS are static files, inserted verbatim (not parsed as Jinja, so `{{` in code is harmless).
    js = _template_text("explorer/explorer.js")
    css = _template_text("explorer/explorer.css")
    if "</script" in js.lower() or "</style" in css.lower():
        raise RuntimeError("explorer templates must not contain </script or </style")
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _template_text(name)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    page = env.get_template("explorer.html.j2").render(
        title=payload["title"],
        script=jinja2.utils.markupsafe.Markup(js),
        style=jinja2.utils.markupsafe.Markup(css),
        script_hash=_csp_hash(js),
        style_hash=_csp_hash(css),
        data_json=jinja2.utils.markupsafe.Markup(script_json(payload)),
        thumbs_json=jinja2.utils.markupsafe.Markup(script_json(embedded)),
    )
    return page


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


# ---------------------------------------------------------------------------------------------------------- storage
def _resolve_dir(uri: str | Path) -> tuple[pafs.FileSystem, str]:
    """Filesystem and absolute path for a local path (made absolute) or a URI."""
    text = str(uri)
    if "://" not in text:
        text = str(Path(text).expanduser().resolve())
    return cio.resolve(text)


def _write_atomic(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """The page appears complete or not at all (a rename on local disks; object stores publish a PUT whole)."""
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, path)
    else:
        with fs.open_output_stream(path) as out:
            out.write(data)


def _check_budget(embed_budget_bytes: int) -> None:
    if isinstance(embed_budget_bytes, bool) or not isinstance(embed_budget_bytes, int) or embed_budget_bytes < 0:
        raise ValueError(f"embed_budget_bytes must be a non-negative integer, got {embed_budget_bytes!r}")

"""Read the user's URL table (CSV/TSV, Parquet, JSONL, a text file of URLs, or a folder of images) into Arrow.

The result has the contract's ``id`` and ``url`` columns first and every other input column carried unchanged. Input
that cannot be ingested row by row is refused up front with one :class:`ConfigError` line: no rows, a URL column that
does not hold one string per row, ids that repeat or are empty.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.json as pajson
import pyarrow.parquet as pq

from clustering import io, schema
from clustering.config import ConfigError

URL_COLUMN_CANDIDATES = ("url", "image_url", "media_url", "img_url")
FOLDER_ID = "relative_path"  # a folder of images is identified by each file's path inside the folder
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff")
TABLE_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".txt": "txt",
}
# How many offending values an error line quotes: enough to recognise the problem, short enough for one line.
SHOWN_VALUES = 3


@dataclass(frozen=True)
class InputTable:
    """The rows to ingest: ``table`` starts with ``id``, ``url``; ``passthrough`` names the carried columns.

    ``local_root`` is the image folder given as ``--input`` (resolved, absolute), whose files the download stage may
    read even with local files off; None for a URL table, whose local paths stay behind ``--allow-local-files``.
    """

    table: pa.Table
    url_column: str
    passthrough: tuple[str, ...]
    local_root: str | None = None

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def read_input(uri: str, *, url_column: str | None = None, id_column: str | None = None) -> InputTable:
    """Read ``uri`` and normalise it to ``id``, ``url`` + passthrough columns.

    Parameters
    ----------
    uri : str
        Local path or pyarrow/fsspec URI of a table, a text file with one URL per line, or a folder of images.
    url_column : str, optional
        Column holding the image URL; by default the first of ``url``, ``image_url``, ``media_url``, ``img_url``.
    id_column : str, optional
        Column holding a row id; by default the id is a stable hash of the URL (with ``-k`` for its k-th repeat).
    """
    fs, path = io.resolve(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise ConfigError(f"--input: {uri} does not exist")
    local_root = None
    if info.type == pafs.FileType.Directory:
        raw = _read_directory(fs, path, uri)
        if FOLDER_ID in raw.column_names:  # a folder of images, not of Parquet files
            id_column = id_column or FOLDER_ID
            local_root = os.path.realpath(path)
    else:
        raw = _read_file(fs, path, uri)
    if raw.num_rows == 0:
        raise ConfigError(
            f"--input: {uri} has no rows (columns: {', '.join(raw.column_names) or 'none'}); nothing to ingest"
        )
    if url_column is None and "url" not in raw.column_names:
        url_column = _detect_url_column(raw, uri)
    url_column = url_column or "url"
    for option, column in (("--url-column", url_column), ("--id-column", id_column)):
        if column is not None and column not in raw.column_names:
            raise ConfigError(f"{option}: {column!r} is not a column of {uri} (columns: {', '.join(raw.column_names)})")
    urls = _text_column(raw, url_column, option="--url-column", uri=uri, integers_ok=False)
    if id_column:
        ids = _text_column(raw, id_column, option="--id-column", uri=uri, integers_ok=True)
        _check_ids(ids, id_column, uri)
    else:
        ids = pa.array(url_ids(urls.to_pylist()), pa.string())
    passthrough = [c for c in raw.column_names if c not in (url_column, id_column)]
    clashing = sorted(set(passthrough) & schema.OWNED_COLUMNS)
    if clashing:
        raise ConfigError(f"--input: columns {clashing} clash with output columns; rename them in {uri}")
    table = pa.table({schema.ID: ids, schema.URL: urls, **{c: raw[c] for c in passthrough}})
    return InputTable(table=table, url_column=url_column, passthrough=tuple(passthrough), local_root=local_root)


def url_ids(urls: list[str | None]) -> list[str]:
    """Stable ids from URLs: a 16-hex-digit SHA-1 prefix, suffixed ``-k`` for the k-th repeat (reposts stay rows)."""
    seen: Counter[str] = Counter()
    ids = []
    for url in urls:
        base = hashlib.sha1((url or "").encode()).hexdigest()[:16]
        ids.append(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return ids


def _is_text(tp: pa.DataType, *, integers_ok: bool) -> bool:
    if pa.types.is_dictionary(tp):
        return _is_text(tp.value_type, integers_ok=integers_ok)
    return (
        pa.types.is_null(tp)
        or pa.types.is_string(tp)
        or pa.types.is_large_string(tp)
        or pa.types.is_binary(tp)
        or pa.types.is_large_binary(tp)
        or (integers_ok and pa.types.is_integer(tp))
    )


def _text_column(raw: pa.Table, column: str, *, option: str, uri: str, integers_ok: bool) -> pa.ChunkedArray:
    """``column`` as strings, or one line naming its type: a URL or id column holds one scalar per row."""
    tp = raw.schema.field(column).type
    wanted = "text or integers" if integers_ok else "text (one URL string per row)"
    if not _is_text(tp, integers_ok=integers_ok):
        raise ConfigError(f"{option}: column {column!r} of {uri} holds {tp}, not {wanted}")
    try:
        return pc.cast(raw[column], pa.string())
    except pa.ArrowInvalid:  # binary that is not UTF-8
        raise ConfigError(f"{option}: column {column!r} of {uri} holds {tp} that is not UTF-8 text") from None


def _check_ids(ids: pa.ChunkedArray, column: str, uri: str) -> None:
    """Refuse ids that repeat or are empty: output rows are joined and explored by id, so each must name one row."""
    empty = pc.or_kleene(pc.is_null(ids), pc.equal(pc.utf8_trim_whitespace(ids), ""))
    empty_rows = pc.indices_nonzero(pc.fill_null(empty, True)).to_pylist()
    counts = pc.value_counts(pc.drop_null(ids))
    repeats = [
        (value, count)
        for value, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
        if count > 1 and value.strip()
    ]
    problems = []
    if repeats:
        problems.append(f"{len(repeats)} repeated id(s) ({_first_few([f'{_short(v)!r} x{n}' for v, n in repeats])})")
    if empty_rows:
        problems.append(f"{len(empty_rows)} empty id(s) (data rows {_first_few([str(i + 1) for i in empty_rows])})")
    if problems:
        raise ConfigError(
            f"--id-column: {column!r} of {uri} has {' and '.join(problems)}; ids must be unique and non-empty "
            "(leave --id-column out to use URL hashes)"
        )


def _short(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _first_few(items: list[str]) -> str:
    return ", ".join(items[:SHOWN_VALUES]) + (", ..." if len(items) > SHOWN_VALUES else "")


def _detect_url_column(raw: pa.Table, uri: str) -> str:
    lowered = {c.lower(): c for c in raw.column_names}
    for candidate in URL_COLUMN_CANDIDATES:
        if candidate in lowered:
            return lowered[candidate]
    raise ConfigError(
        f"--url-column: none of {', '.join(URL_COLUMN_CANDIDATES)} found in {uri}; "
        f"pick one of: {', '.join(raw.column_names)}"
    )


def _read_file(fs: pafs.FileSystem, path: str, uri: str) -> pa.Table:
    suffix = posixpath.splitext(path)[1].lower()
    kind = TABLE_SUFFIXES.get(suffix)
    if kind is None:
        raise ConfigError(f"--input: cannot tell the format of {uri}; use .csv, .tsv, .parquet, .jsonl or .txt")
    try:
        if kind == "parquet":
            return pq.read_table(path, filesystem=fs)
        with fs.open_input_stream(path) as stream:
            data = stream.read()
        if kind == "txt":
            lines = [line.strip() for line in data.decode("utf-8-sig").splitlines()]
            return pa.table(
                {"url": pa.array([line for line in lines if line and not line.startswith("#")], pa.string())}
            )
        if kind == "jsonl":  # pyarrow refuses an empty file outright; it is a table without rows
            return pajson.read_json(pa.BufferReader(data)) if data.strip() else pa.table({})
        parse = pacsv.ParseOptions(delimiter="\t" if kind == "tsv" else ",", newlines_in_values=True)
        # Ids and URLs must never be reinterpreted as numbers or dates: read text-like columns as strings.
        convert = pacsv.ConvertOptions(strings_can_be_null=False)
        return pacsv.read_csv(pa.BufferReader(data), parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"--input: cannot read {uri} as {kind}: {str(exc).splitlines()[0]}") from None


def _read_directory(fs: pafs.FileSystem, path: str, uri: str) -> pa.Table:
    """A folder of Parquet files is a dataset; a folder of images (the workshop case) becomes one row per image."""
    infos = [i for i in fs.get_file_info(pafs.FileSelector(path, recursive=True)) if i.type == pafs.FileType.File]
    parquet = sorted(i.path for i in infos if i.path.endswith((".parquet", ".pq")))
    if parquet:
        return pa.concat_tables([pq.read_table(p, filesystem=fs) for p in parquet], promote_options="permissive")
    images = sorted(i.path for i in infos if i.path.lower().endswith(IMAGE_SUFFIXES))
    if not images:
        raise ConfigError(f"--input: folder {uri} holds neither Parquet files nor images ({', '.join(IMAGE_SUFFIXES)})")
    if not (isinstance(fs, pafs.LocalFileSystem) or Path(uri).is_dir()):  # a relative path resolves through fsspec
        raise ConfigError(f"--input: image folders must be local; list remote images in a table instead ({uri})")
    names = [posixpath.relpath(p, path) for p in images]
    names = pa.array(names, pa.string())
    return pa.table({"url": pa.array(images, pa.string()), FOLDER_ID: names, "filename": names})

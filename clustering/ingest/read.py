"""Read the user's URL table (CSV/TSV, Parquet, JSONL, a text file of URLs, or a folder of images) into Arrow.

The result has the contract's ``id`` and ``url`` columns first and every other input column carried unchanged.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections import Counter
from dataclasses import dataclass

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


@dataclass(frozen=True)
class InputTable:
    """The rows to ingest: ``table`` starts with ``id``, ``url``; ``passthrough`` names the carried columns."""

    table: pa.Table
    url_column: str
    passthrough: tuple[str, ...]

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
    if info.type == pafs.FileType.Directory:
        raw = _read_directory(fs, path, uri)
        if id_column is None and FOLDER_ID in raw.column_names:
            id_column = FOLDER_ID
    else:
        raw = _read_file(fs, path, uri)
    if url_column is None and raw.num_rows and "url" not in raw.column_names:
        url_column = _detect_url_column(raw, uri)
    url_column = url_column or "url"
    if url_column not in raw.column_names:
        raise ConfigError(
            f"--url-column: {url_column!r} is not a column of {uri} (columns: {', '.join(raw.column_names)})"
        )
    if id_column is not None and id_column not in raw.column_names:
        raise ConfigError(
            f"--id-column: {id_column!r} is not a column of {uri} (columns: {', '.join(raw.column_names)})"
        )
    urls = pc.cast(raw[url_column], pa.string())
    ids = pc.cast(raw[id_column], pa.string()) if id_column else pa.array(url_ids(urls.to_pylist()), pa.string())
    passthrough = [c for c in raw.column_names if c not in (url_column, id_column)]
    clashing = sorted(set(passthrough) & schema.OWNED_COLUMNS)
    if clashing:
        raise ConfigError(f"--input: columns {clashing} clash with output columns; rename them in {uri}")
    table = pa.table({schema.ID: ids, schema.URL: urls, **{c: raw[c] for c in passthrough}})
    return InputTable(table=table, url_column=url_column, passthrough=tuple(passthrough))


def url_ids(urls: list[str | None]) -> list[str]:
    """Stable ids from URLs: a 16-hex-digit SHA-1 prefix, suffixed ``-k`` for the k-th repeat (reposts stay rows)."""
    seen: Counter[str] = Counter()
    ids = []
    for url in urls:
        base = hashlib.sha1((url or "").encode()).hexdigest()[:16]
        ids.append(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return ids


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
        if kind == "jsonl":
            return pajson.read_json(pa.BufferReader(data))
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
    if not isinstance(fs, pafs.LocalFileSystem):
        raise ConfigError(f"--input: image folders must be local; list remote images in a table instead ({uri})")
    names = [posixpath.relpath(p, path) for p in images]
    names = pa.array(names, pa.string())
    return pa.table({"url": pa.array(images, pa.string()), FOLDER_ID: names, "filename": names})

"""Read the user's URL table (CSV/TSV, Parquet, JSONL, a text file of URLs, or a folder of images) into Arrow.

The result has the contract's ``id`` and ``url`` columns first and every other input column carried unchanged. Input
that cannot be ingested row by row is refused with one :class:`ConfigError` line: no rows, a URL column that does not
hold one string per row, ids that repeat or are empty.

Tables are streamed: :func:`open_input` reads only the first block, and :meth:`InputSource.fragments` reads the rest
block by block, in fragments of a given number of rows (one per shard), so the driver never holds the whole input.
Each pass computes the ids afresh (the ``-k`` repeat counter keeps one small entry per distinct URL) and checks them;
a pass over the whole input raises, at its end, for problems only the whole input shows (repeated ids).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections import Counter
from collections.abc import Callable, Iterator
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
# Bytes of CSV/JSON parsed at a time (and over which column types are inferred), and Parquet rows per batch: a few
# tens of MB on the driver whatever the input's size.
READ_BLOCK_BYTES = 16 * 2**20
PARQUET_BATCH_ROWS = 64 * 1024


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


@dataclass(frozen=True)
class InputPart:
    """One file of the input (or an image folder's listing): what one Ray Data read task reads, in order.

    ``name`` is the file's path inside the input folder ("" for an input that is one file); ``blocks`` gives a fresh
    pass over its raw rows.
    """

    name: str
    blocks: Callable[[], Iterator[pa.Table]]
    size_bytes: int | None = None


@dataclass(frozen=True)
class InputScan:
    """What one pass over the whole input found: rows per part (``--limit`` applied) and the input's fingerprint."""

    rows_per_part: tuple[int, ...]
    fingerprint: str

    @property
    def rows(self) -> int:
        return sum(self.rows_per_part)


@dataclass(frozen=True)
class InputSource:
    """An input opened for streaming: its columns are known, its rows are read on demand, part by part.

    Attributes
    ----------
    uri : str
        The input as given.
    url_column, id_column : str, str or None
        The input columns holding URLs and ids (``id_column`` None: ids are URL hashes).
    passthrough : tuple of str
        The other columns, carried unchanged.
    passthrough_schema : pyarrow.Schema
        Their types.
    local_root : str or None
        See :class:`InputTable`.
    limit : int or None
        Only the first ``limit`` rows are read.
    parts : tuple of InputPart
        The input's files in order; each is read by one task, so ids are computed where the rows are read.
    """

    uri: str
    url_column: str
    id_column: str | None
    passthrough: tuple[str, ...]
    passthrough_schema: pa.Schema
    local_root: str | None
    limit: int | None
    parts: tuple[InputPart, ...]

    def read_part(self, index: int, *, rows: int | None = None, check: _IdCheck | None = None) -> Iterator[pa.Table]:
        """Part ``index`` normalised to ``id``, ``url`` and the passthrough columns, at most ``rows`` rows.

        Default ids are a SHA-1 prefix of the URL with ``-k`` for its k-th repeat within the part; in an input of
        several files the part's name is hashed with the URL, so the same URL in two files gets two ids.
        """
        part = self.parts[index]
        ids = _UrlIds(prefix=f"{part.name}\n" if len(self.parts) > 1 else "") if self.id_column is None else None
        done = 0
        for raw in part.blocks():
            if rows is not None:
                raw = raw.slice(0, rows - done)
            done += raw.num_rows
            yield self._normalise(raw, ids, check)
            if rows is not None and done >= rows:
                return

    def scan(self) -> InputScan:
        """One pass over the input: rows per part, the fingerprint, and every check that needs all of it.

        Raises :class:`ConfigError` for input that cannot be ingested (a URL column of the wrong type in a later block,
        repeated or empty ids).
        """
        check = _IdCheck(self.id_column, self.uri) if self.id_column is not None else None
        fingerprint = Fingerprint()
        counts = []
        left = self.limit
        for index in range(len(self.parts)):
            if left == 0:
                counts.append(0)
                continue
            rows = 0
            for table in self.read_part(index, rows=left, check=check):
                fingerprint.update(table)
                rows += table.num_rows
            counts.append(rows)
            left = None if left is None else left - rows
        if check is not None:
            check.raise_if_bad()
        return InputScan(tuple(counts), fingerprint.hexdigest())

    def fragments(self, rows: int) -> Iterator[pa.Table]:
        """The whole input normalised, in tables of ``rows`` rows (the last one shorter); checks as :meth:`scan`."""
        check = _IdCheck(self.id_column, self.uri) if self.id_column is not None else None
        pending: list[pa.Table] = []
        buffered = 0
        left = self.limit
        for index in range(len(self.parts)):
            for table in self.read_part(index, rows=left, check=check):
                left = None if left is None else left - table.num_rows
                pending.append(table)
                buffered += table.num_rows
                while buffered >= rows:
                    merged = pa.concat_tables(pending, promote_options="permissive")
                    yield merged.slice(0, rows)
                    pending, buffered = [merged.slice(rows)], buffered - rows
            if left == 0:
                break
        if check is not None:
            check.raise_if_bad()
        if buffered:
            yield pa.concat_tables(pending, promote_options="permissive")

    def _normalise(self, raw: pa.Table, ids: _UrlIds | None, check: _IdCheck | None) -> pa.Table:
        urls = _as_text(raw[self.url_column], self.url_column, option="--url-column", uri=self.uri)
        if ids is not None:
            row_ids = pa.array(ids.next(urls.to_pylist()), pa.string())
        else:
            row_ids = _as_text(raw[self.id_column], self.id_column, option="--id-column", uri=self.uri)
            if check is not None:
                check.update(row_ids.to_pylist())
        return pa.table({schema.ID: row_ids, schema.URL: urls, **{c: raw[c] for c in self.passthrough}})


class Fingerprint:
    """Identity of an input for resume, computed block by block: same ids, URLs and order give the same digest."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.rows = 0

    def update(self, table: pa.Table) -> None:
        ids, urls = table[schema.ID].to_pylist(), table[schema.URL].to_pylist()
        self._digest.update("".join(f"{i}\t{u}\n" for i, u in zip(ids, urls, strict=True)).encode())
        self.rows += table.num_rows

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def open_input(
    uri: str, *, url_column: str | None = None, id_column: str | None = None, limit: int | None = None
) -> InputSource:
    """Open ``uri`` for streaming: detect the format and the columns, check their types, read no more than a block.

    Parameters
    ----------
    uri : str
        Local path or pyarrow/fsspec URI of a table, a text file with one URL per line, or a folder of images.
    url_column : str, optional
        Column holding the image URL; by default the first of ``url``, ``image_url``, ``media_url``, ``img_url``.
    id_column : str, optional
        Column holding a row id; by default the id is a stable hash of the URL (with ``-k`` for its k-th repeat).
    limit : int, optional
        Read only the first ``limit`` rows.
    """
    fs, path = io.resolve(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise ConfigError(f"--input: {uri} does not exist")
    local_root = None
    if info.type == pafs.FileType.Directory:
        parts = _directory_parts(fs, path, uri)
        first = next(parts[0].blocks(), None)
        if first is not None and FOLDER_ID in first.column_names:  # a folder of images, not of Parquet files
            id_column = id_column or FOLDER_ID
            local_root = os.path.realpath(path)
    else:
        parts = (InputPart("", _file_batches(fs, path, uri), info.size),)
        first = next((b for b in parts[0].blocks() if b.num_rows), None)
    if first is None or first.num_rows == 0:
        first = next((b for p in parts[1:] for b in p.blocks() if b.num_rows), None)
    if first is None or first.num_rows == 0:
        columns = ", ".join(_columns(parts[0].blocks)) or "none"
        raise ConfigError(f"--input: {uri} has no rows (columns: {columns}); nothing to ingest")
    names = first.column_names
    if url_column is None and "url" not in names:
        url_column = _detect_url_column(names, uri)
    url_column = url_column or "url"
    for option, column in (("--url-column", url_column), ("--id-column", id_column)):
        if column is not None and column not in names:
            raise ConfigError(f"{option}: {column!r} is not a column of {uri} (columns: {', '.join(names)})")
    _check_text_type(first.schema.field(url_column).type, url_column, option="--url-column", uri=uri)
    if id_column:
        _check_text_type(first.schema.field(id_column).type, id_column, option="--id-column", uri=uri)
    passthrough = [c for c in names if c not in (url_column, id_column)]
    clashing = sorted(set(passthrough) & schema.OWNED_COLUMNS)
    if clashing:
        raise ConfigError(f"--input: columns {clashing} clash with output columns; rename them in {uri}")
    return InputSource(
        uri=uri,
        url_column=url_column,
        id_column=id_column,
        passthrough=tuple(passthrough),
        passthrough_schema=pa.schema([first.schema.field(c) for c in passthrough]),
        local_root=local_root,
        limit=limit,
        parts=parts,
    )


def read_input(uri: str, *, url_column: str | None = None, id_column: str | None = None) -> InputTable:
    """Read all of ``uri`` at once, normalised to ``id``, ``url`` + passthrough columns (see :func:`open_input`)."""
    source = open_input(uri, url_column=url_column, id_column=id_column)
    table = pa.concat_tables(list(source.fragments(PARQUET_BATCH_ROWS)))
    return InputTable(
        table=table, url_column=source.url_column, passthrough=source.passthrough, local_root=source.local_root
    )


def url_ids(urls: list[str | None]) -> list[str]:
    """Stable ids from URLs: a 16-hex-digit SHA-1 prefix, suffixed ``-k`` for the k-th repeat (reposts stay rows)."""
    return _UrlIds().next(urls)


class _UrlIds:
    """:func:`url_ids` over a stream: the repeat counter carries from one batch to the next. ``prefix`` is hashed
    before each URL (the file's name in an input of several files)."""

    def __init__(self, prefix: str = "") -> None:
        self._seen: Counter[str] = Counter()
        self._prefix = prefix

    def next(self, urls: list[str | None]) -> list[str]:
        ids = []
        for url in urls:
            base = hashlib.sha1(f"{self._prefix}{url or ''}".encode()).hexdigest()[:16]
            ids.append(base if self._seen[base] == 0 else f"{base}-{self._seen[base]}")
            self._seen[base] += 1
        return ids


class _IdCheck:
    """Repeated and empty ids over a whole pass: one hash per distinct id, values kept only for the message."""

    def __init__(self, column: str, uri: str) -> None:
        self.column, self.uri = column, uri
        self._seen: set[int] = set()
        self._repeats: dict[int, list] = {}  # hash -> [value (first few only), count]
        self._empty_rows: list[int] = []
        self._empty = self._rows = 0

    def update(self, ids: list[str | None]) -> None:
        for value in ids:
            self._rows += 1
            if value is None or not value.strip():
                self._empty += 1
                if len(self._empty_rows) <= SHOWN_VALUES:
                    self._empty_rows.append(self._rows)
                continue
            key = hash(value)
            if key in self._repeats:
                self._repeats[key][1] += 1
            elif key in self._seen:
                self._repeats[key] = [value if len(self._repeats) < SHOWN_VALUES else None, 2]
            else:
                self._seen.add(key)

    def raise_if_bad(self) -> None:
        """Refuse ids that repeat or are empty: output rows are joined and explored by id, so each must name one."""
        problems = []
        if self._repeats:
            shown = [f"{_short(v)!r} x{n}" for v, n in self._repeats.values() if v is not None]
            if len(self._repeats) > SHOWN_VALUES:
                shown.append("")  # _first_few adds "..." when there are more
            problems.append(f"{len(self._repeats)} repeated id(s) ({_first_few(shown)})")
        if self._empty:
            rows = [str(r) for r in self._empty_rows] + ([""] if self._empty > len(self._empty_rows) else [])
            problems.append(f"{self._empty} empty id(s) (data rows {_first_few(rows)})")
        if problems:
            raise ConfigError(
                f"--id-column: {self.column!r} of {self.uri} has {' and '.join(problems)}; ids must be unique and "
                "non-empty (leave --id-column out to use URL hashes)"
            )


def _is_text(tp: pa.DataType, *, integers_ok: bool) -> bool:
    if pa.types.is_dictionary(tp):
        return _is_text(tp.value_type, integers_ok=integers_ok)
    return (
        pa.types.is_null(tp)
        or pa.types.is_string(tp)
        or pa.types.is_large_string(tp)
        or pa.types.is_string_view(tp)
        or pa.types.is_binary(tp)
        or pa.types.is_large_binary(tp)
        or pa.types.is_binary_view(tp)
        or (integers_ok and pa.types.is_integer(tp))
    )


def _check_text_type(tp: pa.DataType, column: str, *, option: str, uri: str) -> None:
    """One line naming the type unless ``column`` holds one scalar per row (ids may also be integers)."""
    integers_ok = option == "--id-column"
    if not _is_text(tp, integers_ok=integers_ok):
        wanted = "text or integers" if integers_ok else "text (one URL string per row)"
        raise ConfigError(f"{option}: column {column!r} of {uri} holds {tp}, not {wanted}")


def _as_text(values: pa.ChunkedArray, column: str, *, option: str, uri: str) -> pa.ChunkedArray:
    _check_text_type(values.type, column, option=option, uri=uri)  # a later block may hold another type
    try:
        return pc.cast(values, pa.string())
    except pa.ArrowInvalid:  # binary that is not UTF-8
        raise ConfigError(f"{option}: column {column!r} of {uri} holds {values.type} that is not UTF-8 text") from None


def _short(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _first_few(items: list[str]) -> str:
    return ", ".join(items[:SHOWN_VALUES]) + (", ..." if len(items) > SHOWN_VALUES else "")


def _detect_url_column(names: list[str], uri: str) -> str:
    lowered = {c.lower(): c for c in names}
    for candidate in URL_COLUMN_CANDIDATES:
        if candidate in lowered:
            return lowered[candidate]
    raise ConfigError(
        f"--url-column: none of {', '.join(URL_COLUMN_CANDIDATES)} found in {uri}; pick one of: {', '.join(names)}"
    )


def _columns(batches: Callable[[], Iterator[pa.Table]]) -> list[str]:
    """Column names of an input without rows (a header, an empty Parquet file), for the error line."""
    return next(batches(), pa.table({})).column_names


def _file_batches(fs: pafs.FileSystem, path: str, uri: str) -> Callable[[], Iterator[pa.Table]]:
    """A function giving a fresh pass over the file's rows, block by block."""
    suffix = posixpath.splitext(path)[1].lower()
    kind = TABLE_SUFFIXES.get(suffix)
    if kind is None:
        raise ConfigError(f"--input: cannot tell the format of {uri}; use .csv, .tsv, .parquet, .jsonl or .txt")
    readers = {"parquet": _parquet_blocks, "txt": _text_blocks, "jsonl": _json_blocks, "csv": _csv_blocks}

    def batches() -> Iterator[pa.Table]:
        try:
            yield from readers.get(kind, _csv_blocks)(fs, path, kind)
        except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
            raise ConfigError(f"--input: cannot read {uri} as {kind}: {str(exc).splitlines()[0]}") from None

    return batches


def _parquet_blocks(fs: pafs.FileSystem, path: str, kind: str) -> Iterator[pa.Table]:
    with fs.open_input_file(path) as handle:
        parquet = pq.ParquetFile(handle)
        yielded = False
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            yielded = True
            yield pa.Table.from_batches([batch])
        if not yielded:  # no rows: still say which columns there are
            yield parquet.schema_arrow.empty_table()


def _text_blocks(fs: pafs.FileSystem, path: str, kind: str) -> Iterator[pa.Table]:
    """One URL per line; blank lines and ``#`` comments skipped."""
    with fs.open_input_stream(path) as stream:
        rest, first = b"", True
        while True:
            data = stream.read(READ_BLOCK_BYTES)
            text = rest + data
            lines = text.split(b"\n")
            rest = lines.pop() if data else b""
            decoded = [
                line.decode("utf-8-sig" if first and i == 0 else "utf-8").strip() for i, line in enumerate(lines)
            ]
            first = False
            urls = [line for line in decoded if line and not line.startswith("#")]
            yield pa.table({"url": pa.array(urls, pa.string())})
            if not data:
                return


def _json_blocks(fs: pafs.FileSystem, path: str, kind: str) -> Iterator[pa.Table]:
    with fs.open_input_stream(path) as stream:
        if not stream.read(READ_BLOCK_BYTES).strip():  # pyarrow refuses an empty file outright: a table without rows
            yield pa.table({})
            return
    with fs.open_input_stream(path) as stream:
        for batch in pajson.open_json(stream, read_options=pajson.ReadOptions(block_size=READ_BLOCK_BYTES)):
            yield pa.Table.from_batches([batch])


def _csv_blocks(fs: pafs.FileSystem, path: str, kind: str) -> Iterator[pa.Table]:
    parse = pacsv.ParseOptions(delimiter="\t" if kind == "tsv" else ",", newlines_in_values=True)
    # Ids and URLs must never be reinterpreted as numbers or dates: read text-like columns as strings.
    convert = pacsv.ConvertOptions(strings_can_be_null=False)
    with fs.open_input_stream(path) as stream:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=READ_BLOCK_BYTES),
            parse_options=parse,
            convert_options=convert,
        )
        yielded = False
        for batch in reader:
            yielded = True
            yield pa.Table.from_batches([batch])
        if not yielded:  # a header without rows
            yield reader.schema.empty_table()


def _directory_parts(fs: pafs.FileSystem, path: str, uri: str) -> tuple[InputPart, ...]:
    """A folder of Parquet files is a dataset, one part per file; a folder of images becomes one row per image."""
    infos = [i for i in fs.get_file_info(pafs.FileSelector(path, recursive=True)) if i.type == pafs.FileType.File]
    parquet = sorted((i for i in infos if i.path.endswith((".parquet", ".pq"))), key=lambda i: i.path)
    if parquet:
        unified = pa.unify_schemas(
            [pq.read_schema(i.path, filesystem=fs) for i in parquet], promote_options="permissive"
        )

        def file_blocks(file: str) -> Callable[[], Iterator[pa.Table]]:
            def blocks() -> Iterator[pa.Table]:
                for block in _parquet_blocks(fs, file, "parquet"):
                    yield pa.concat_tables([unified.empty_table(), block], promote_options="permissive")

            return blocks

        return tuple(InputPart(posixpath.relpath(i.path, path), file_blocks(i.path), i.size) for i in parquet)
    images = sorted(i.path for i in infos if i.path.lower().endswith(IMAGE_SUFFIXES))
    if not images:
        raise ConfigError(f"--input: folder {uri} holds neither Parquet files nor images ({', '.join(IMAGE_SUFFIXES)})")
    if not (isinstance(fs, pafs.LocalFileSystem) or Path(uri).is_dir()):  # a relative path resolves through fsspec
        raise ConfigError(f"--input: image folders must be local; list remote images in a table instead ({uri})")
    names = pa.array([posixpath.relpath(p, path) for p in images], pa.string())
    table = pa.table({"url": pa.array(images, pa.string()), FOLDER_ID: names, "filename": names})
    return (InputPart("", lambda: iter([table])),)

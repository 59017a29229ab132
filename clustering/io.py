"""Storage: one layer for local paths and any pyarrow/fsspec URI (s3://, gs://, ...), kept apart from compute."""

from __future__ import annotations

import posixpath
import uuid

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

SHARD_GLOB_PREFIX = "part-"
SHARD_SUFFIX = ".parquet"


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """Filesystem and path for a local path or URI. S3 honours AWS_ENDPOINT_URL, as pyarrow does."""
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, ValueError):
        pass
    import fsspec  # schemes pyarrow lacks natively (gs via gcsfs, memory://, ...)

    fs, path = fsspec.core.url_to_fs(uri)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def shard_name(index: int) -> str:
    return f"{SHARD_GLOB_PREFIX}{index:05d}{SHARD_SUFFIX}"


def list_shards(uri: str) -> list[str]:
    """Paths of the finished shards under ``uri``, sorted; temporary files are never listed."""
    fs, root = resolve(uri)
    if not exists(fs, root):
        return []
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=False))
    names = [
        i.path
        for i in infos
        if i.type == pafs.FileType.File
        and posixpath.basename(i.path).startswith(SHARD_GLOB_PREFIX)
        and i.path.endswith(SHARD_SUFFIX)
    ]
    return sorted(names)


def read_shards(uri: str, *, columns: list[str] | None = None) -> pa.Table:
    """All shards under ``uri`` as one table (schema metadata of the first shard kept)."""
    fs, _ = resolve(uri)
    paths = list_shards(uri)
    if not paths:
        raise FileNotFoundError(f"no embedding shards ({SHARD_GLOB_PREFIX}*{SHARD_SUFFIX}) found in {uri}")
    tables = [pq.read_table(p, filesystem=fs, columns=columns) for p in paths]
    return pa.concat_tables(tables, promote_options="permissive")


def _temporary_path(path: str) -> str:
    return posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")


def write_parquet_atomic(table: pa.Table, fs: pafs.FileSystem, path: str) -> None:
    """Write ``table`` so that ``path`` appears complete or not at all.

    Local filesystems get a hidden temporary file and a rename; object stores make a PUT visible only when complete.
    """
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = _temporary_path(path)
        pq.write_table(table, tmp, filesystem=fs)
        fs.move(tmp, path)
    else:
        pq.write_table(table, path, filesystem=fs)


def write_bytes_atomic(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write ``data`` so that ``path`` appears complete or not at all, as :func:`write_parquet_atomic` does."""
    target = _temporary_path(path) if isinstance(fs, pafs.LocalFileSystem) else path
    with fs.open_output_stream(target) as out:
        out.write(data)
    if target != path:
        fs.move(target, path)


def write_text(fs: pafs.FileSystem, path: str, text: str) -> None:
    with fs.open_output_stream(path) as out:
        out.write(text.encode())


def read_text(fs: pafs.FileSystem, path: str) -> str:
    with fs.open_input_stream(path) as src:
        return src.read().decode()

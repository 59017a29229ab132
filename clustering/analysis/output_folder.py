"""The analysis output folder: which files a run owns, the check before any work, and every write into it.

File names come from :mod:`clustering.schema` (the contract in ``docs/analysis-outputs.md``). A run refuses a file or a
foreign non-empty folder before computing anything, removes only its own files from an earlier run, and writes each
file atomically through :mod:`clustering.io`, so a reader never sees half a file, locally or on an object store.
"""

from __future__ import annotations

import csv
import io as stdio
import json
import os
import posixpath
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from clustering import io, schema
from clustering.config import ConfigError

__all__ = [
    "OUTLIERS_MONTAGE",
    "OWNED_DIRS",
    "OWNED_FILES",
    "REPOSTS_MONTAGE",
    "OutputFolder",
    "absolute",
    "montage_name",
]

# Files and folders a run owns in its output folder; --overwrite removes exactly these, nothing else.
OWNED_FILES = (
    schema.ASSIGNMENTS,
    schema.ASSIGNMENTS_CSV,
    schema.CLUSTERS_CSV,
    schema.CLUSTER_CHANGES_CSV,
    "neighbours.npz",
    schema.REPOST_GROUPS_CSV,
    schema.COORDINATION_CSV,
    schema.COORDINATED_PAIRS_CSV,
    schema.SWEEP_CSV,
    schema.SWEEP_JSON,
    schema.METRICS_JSON,
    schema.MAP_PNG,
    schema.SWEEP_PNG,
    schema.OVER_TIME_PNG,
    schema.REPORT_MD,
    schema.REPORT_HTML,
    schema.EXPLORER_HTML,
)
OWNED_DIRS = (schema.MONTAGES, schema.EXPLORER_FILES)
OUTLIERS_MONTAGE = posixpath.join(schema.MONTAGES, "outliers.jpg")
REPOSTS_MONTAGE = posixpath.join(schema.MONTAGES, "reposts.jpg")


def montage_name(cluster: int) -> str:
    """Path of a cluster's montage inside the output folder."""
    return posixpath.join(schema.MONTAGES, f"cluster_{cluster:03d}.jpg")


def absolute(uri: str) -> str:
    """Local paths made absolute (so metrics.json and log lines work from any folder); URIs unchanged."""
    return uri if "://" in uri else os.path.abspath(os.path.expanduser(uri))


class OutputFolder:
    """An analysis output folder, a local path or a URI, written through one pyarrow filesystem resolved once."""

    def __init__(self, uri: str) -> None:
        self.uri = absolute(str(uri))
        self.fs, self.root = io.resolve(self.uri)

    def path(self, name: str) -> str:
        """Path of ``name`` on :attr:`fs`."""
        return posixpath.join(self.root, name)

    def display(self, name: str) -> str:
        """How a user reaches ``name``: an absolute local path, or the URI."""
        return posixpath.join(self.uri, name)

    def exists(self, name: str) -> bool:
        return io.exists(self.fs, self.path(name))

    def check(self, *, overwrite: bool) -> None:
        """Refuse a file, or a non-empty folder without ``overwrite``, before any work is done."""
        info = self.fs.get_file_info(self.root)
        if info.type == pafs.FileType.File:
            raise ConfigError(f"--output {self.uri} is a file; give a folder")
        non_empty = info.type == pafs.FileType.Directory and self.fs.get_file_info(pafs.FileSelector(self.root))
        if non_empty and not overwrite:
            raise ConfigError(
                f"--output {self.uri} already exists and is not empty; pass --overwrite to replace its analysis"
            )

    def prepare(self) -> None:
        """Create the folder and remove this job's own files from an earlier run (nothing else is touched)."""
        if self.fs.get_file_info(self.root).type == pafs.FileType.Directory:
            for name in OWNED_FILES:
                if self.exists(name):
                    self.fs.delete_file(self.path(name))
            for name in OWNED_DIRS:
                if self.exists(name):
                    self.fs.delete_dir(self.path(name))
        self.fs.create_dir(self.root, recursive=True)

    # --- writing -------------------------------------------------------------------------------------------------
    def write_bytes(self, name: str, data: bytes) -> None:
        """Write ``name`` (its folder created first), complete or not at all."""
        parent = posixpath.dirname(name)
        if parent:
            self.fs.create_dir(self.path(parent), recursive=True)
        io.write_bytes_atomic(self.fs, self.path(name), data)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode())

    def write_json(self, name: str, value) -> None:
        """``value`` as indented JSON, made JSON-safe by :func:`clustering.schema.plain` (NaN becomes null)."""
        self.write_text(name, json.dumps(schema.plain(value), indent=2, allow_nan=False) + "\n")

    def write_parquet(self, name: str, table: pa.Table) -> None:
        io.write_parquet_atomic(table, self.fs, self.path(name))

    def write_table_csv(self, name: str, table: pa.Table) -> None:
        """``table`` as CSV for spreadsheets: nested and binary columns dropped, text kept."""
        keep = [f.name for f in table.schema if not _is_nested_or_binary(f.type)]
        buffer = pa.BufferOutputStream()
        pacsv.write_csv(table.select(keep), buffer)
        self.write_bytes(name, buffer.getvalue().to_pybytes())

    def write_rows_csv(self, name: str, rows: Sequence[dict], *, empty_columns: Sequence[str]) -> None:
        """One CSV row per dict (columns in first-seen order, None as empty); only ``empty_columns`` when no rows."""
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        buffer = stdio.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns or list(empty_columns), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in schema.plain(row).items()})
        self.write_text(name, buffer.getvalue())

    # --- reading back (only ``--explorer-only`` does) ------------------------------------------------------------
    def read_json(self, name: str) -> dict:
        """A JSON file of the folder, or {} when it is absent."""
        return json.loads(io.read_text(self.fs, self.path(name))) if self.exists(name) else {}

    def read_parquet(self, name: str) -> pa.Table:
        return pq.read_table(self.path(name), filesystem=self.fs)


def _is_nested_or_binary(type_: pa.DataType) -> bool:
    return pa.types.is_nested(type_) or pa.types.is_binary(type_) or pa.types.is_large_binary(type_)

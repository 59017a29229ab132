"""The URL table as a Ray Data source: one read task per input file, ids computed where the rows are read.

Why not ``ray.data.read_csv`` and its siblings: a default id is the URL's hash with ``-k`` for its k-th repeat, and a
row's place among its repeats is only known to the task that reads its file in order. Ray Data's checkpoint filter
(resume) runs right after the read, so the ids must exist there. This source reads each file with the readers of
:mod:`clustering.ingest.read` (CSV/TSV, Parquet, JSONL, text, an image folder's listing; local or any pyarrow/fsspec
URI), under Ray Data's read operator: parallel over files, streamed block by block, shown in the dashboard as
``ReadUrlTable``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pyarrow as pa
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from clustering.ingest.read import InputScan, InputSource


class UrlTableDatasource(Datasource):
    """Ray Data :class:`~ray.data.Datasource` over an opened input.

    Parameters
    ----------
    source : InputSource
        The input, opened by :func:`clustering.ingest.read.open_input`.
    scan : InputScan
        Rows per part from the scan (``--limit`` applied there): each read task reads exactly that many.
    """

    def __init__(self, source: InputSource, scan: InputScan) -> None:
        super().__init__()
        self.source = source
        self.scan = scan

    def get_name(self) -> str:
        return "ReadUrlTable"

    def estimate_inmemory_data_size(self) -> int | None:
        sizes = [p.size_bytes for p in self.source.parts]
        return None if None in sizes else sum(sizes)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None, data_context=None):
        tasks = []
        for index, rows in enumerate(self.scan.rows_per_part):
            if rows == 0:
                continue
            part = self.source.parts[index]
            metadata = BlockMetadata(
                num_rows=rows, size_bytes=part.size_bytes, input_files=[part.name or self.source.uri], exec_stats=None
            )
            read = functools.partial(_read_part, self.source, index, rows)
            tasks.append(ReadTask(read, metadata, per_task_row_limit=per_task_row_limit))
        return tasks


def _read_part(source: InputSource, index: int, rows: int) -> Iterator[pa.Table]:
    yield from source.read_part(index, rows=rows)

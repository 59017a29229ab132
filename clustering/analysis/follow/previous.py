"""An earlier analysis folder read back for an update (``--update``) or to keep its cluster ids (``--previous``).

What an analysis keeps so that it can be followed (``docs/follow.md``): ``assignments.parquet`` (ids, labels of every
level and alternative, map coordinates, ``batch``, ``label_source``), ``metrics.json`` (the shards it read, the
setting, the batches, the hierarchy's names) and ``neighbours.npz`` (the kNN graph of its distinct images, by id, so
repost groups extend without a new search). The embeddings stay in the shards, read again from ``metrics.json``
``input``.
"""

from __future__ import annotations

import dataclasses
import functools
import io as stdio

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clustering import schema
from clustering.analysis.output_folder import OutputFolder
from clustering.analysis.shards import InputError

NEIGHBOURS = "neighbours.npz"


@dataclasses.dataclass(frozen=True)
class PreviousAnalysis:
    """The files of an earlier analysis that following it needs."""

    uri: str
    metrics: dict
    assignments: pa.Table
    neighbours: dict | None
    sweep_rows: list[dict]

    @property
    def inputs(self) -> list[str]:
        """The shard folders it read (an update reads several)."""
        found = self.metrics.get("input")
        return [found] if isinstance(found, str) else list(found or [])

    @property
    def batches(self) -> list[dict]:
        """Its batches; an analysis written before batches existed is batch 0."""
        first = {"batch": 0, "kind": "analysis", "created": None, "rows": self.assignments.num_rows,
                 "input": self.metrics.get("input")}  # fmt: skip
        return list(self.metrics.get("batches") or [first])

    @functools.cached_property
    def _ids(self) -> pa.Array:
        return self.assignments[schema.ID].combine_chunks().cast(pa.string())

    def rows_of(self, ids: pa.Array) -> np.ndarray:
        """Row of each id in ``assignments.parquet``, -1 where it was not analysed."""
        found = pc.index_in(ids.cast(pa.string()), value_set=self._ids)
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)

    def column(self, name: str, rows: np.ndarray, missing):
        """Values of ``name`` at ``rows`` (``missing`` where a row is -1 or the column is absent), as numpy."""
        if name not in self.assignments.column_names:
            return np.full(len(rows), missing)
        values = self.assignments[name].to_numpy(zero_copy_only=False)
        out = np.full(len(rows), missing, dtype=values.dtype if values.dtype != object else object)
        present = rows >= 0
        out[present] = values[rows[present]]
        return out

    def label_columns(self) -> list[str]:
        """The int label columns other than the chosen one: theme, subcluster and the alternatives."""
        names = [schema.THEME, schema.SUBCLUSTER]
        names += [n for n in self.assignments.column_names if n.startswith(f"{schema.CLUSTER}_mcs")]
        return [n for n in names if n in self.assignments.column_names]

    def reviewed_names(self) -> dict[int, str]:
        """Chosen-level clusters a person named, by id."""
        for level in self.metrics.get("hierarchy", {}).get("levels", []):
            if level.get("column") == schema.CLUSTER:
                return {c["cluster"]: c["name"] for c in level["clusters"] if c.get("name_source") == "review"}
        return {}


def read_previous(uri: str, *, flag: str) -> PreviousAnalysis:
    """Read the analysis folder ``uri``; one line naming what is missing (``InputError``) when it cannot be followed."""
    out = OutputFolder(uri)
    for name in (schema.ASSIGNMENTS, schema.METRICS_JSON):
        if not out.exists(name):
            raise InputError(f"{flag} {out.uri}: not an analysis folder (no {name}); run jobs/analyze.py there first")
    metrics = out.read_json(schema.METRICS_JSON)
    with out.fs.open_input_file(out.path(schema.ASSIGNMENTS)) as source:
        assignments = pq.read_table(source)
    neighbours = None
    if out.exists(NEIGHBOURS):
        with out.fs.open_input_file(out.path(NEIGHBOURS)) as source:
            content = source.read()
        with np.load(stdio.BytesIO(content), allow_pickle=False) as saved:
            neighbours = {key: saved[key] for key in saved.files}
    sweep_rows = out.read_json(schema.SWEEP_JSON) if out.exists(schema.SWEEP_JSON) else []
    return PreviousAnalysis(out.uri, metrics, assignments, neighbours, list(sweep_rows))


def neighbours_bytes(ids: list[str], indices: np.ndarray, distances: np.ndarray) -> bytes:
    """``neighbours.npz``: the distinct images' ids (their first row's) and their kNN graph over those images."""
    buffer = stdio.BytesIO()
    np.savez_compressed(buffer, ids=np.asarray(ids, dtype=str), indices=indices.astype(np.int32),
                        distances=distances.astype(np.float32))  # fmt: skip
    return buffer.getvalue()

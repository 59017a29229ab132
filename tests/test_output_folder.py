"""The analysis output folder: the check before a run, what --overwrite removes, and the writers (local and fsspec)."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from clustering import schema
from clustering.analysis.output_folder import OWNED_DIRS, OWNED_FILES, OutputFolder, montage_name
from clustering.config import ConfigError


def test_check_refuses_a_file_and_a_foreign_folder_before_any_work(tmp_path):
    OutputFolder(str(tmp_path / "new")).check(overwrite=False)  # a missing folder is fine
    (tmp_path / "empty").mkdir()
    OutputFolder(str(tmp_path / "empty")).check(overwrite=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file; give a folder"):
        OutputFolder(str(tmp_path / "file")).check(overwrite=True)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty; pass --overwrite"):
        OutputFolder(str(tmp_path / "used")).check(overwrite=False)
    OutputFolder(str(tmp_path / "used")).check(overwrite=True)


def test_prepare_removes_exactly_the_runs_own_files(tmp_path):
    out = OutputFolder(str(tmp_path))
    for name in OWNED_FILES:
        (tmp_path / name).write_text("old")
    for name in OWNED_DIRS:
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "sub" / "old.jpg").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("user file")
    (tmp_path / "mine").mkdir()
    out.prepare()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "user file"


def test_local_writes_are_atomic_and_make_their_folder(tmp_path):
    out = OutputFolder(str(tmp_path / "out"))
    out.prepare()
    out.write_bytes(montage_name(7), b"jpeg")
    out.write_json(schema.METRICS_JSON, {"x": np.float32(0.5), "nan": math.nan, "ids": np.arange(2), "t": (1, "a")})
    assert (tmp_path / "out" / "montages" / "cluster_007.jpg").read_bytes() == b"jpeg"
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == {"x": 0.5, "nan": None, "ids": [0, 1],
                                                                            "t": [1, "a"]}  # fmt: skip
    leftovers = [p.name for p in (tmp_path / "out").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert out.display(schema.REPORT_HTML) == str(tmp_path / "out" / "report.html")


def test_relative_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = OutputFolder("analysis")
    assert out.uri == str(tmp_path / "analysis")


def test_csv_writers(tmp_path):
    out = OutputFolder(str(tmp_path))
    out.write_rows_csv("empty.csv", [], empty_columns=("cluster", "size"))
    assert (tmp_path / "empty.csv").read_text() == "cluster,size\n"
    rows = [{"a": 1, "b": None}, {"b": math.nan, "c": "x,y"}]
    out.write_rows_csv("rows.csv", rows, empty_columns=("unused",))
    assert (tmp_path / "rows.csv").read_text() == 'a,b,c\n1,,\n,,"x,y"\n'  # first-seen columns, None and NaN empty
    table = pa.table({"id": ["a"], "blob": pa.array([b"\xff"], pa.binary()), "tags": [[1, 2]], "text": ["t"]})
    out.write_table_csv("table.csv", table)
    assert (tmp_path / "table.csv").read_text().splitlines() == ['"id","text"', '"a","t"']


def test_object_store_style_filesystem_round_trip():
    out = OutputFolder("memory://clipcluster-test/analysis")
    out.prepare()
    out.write_json(schema.METRICS_JSON, {"n_rows": 3})
    out.write_parquet(schema.ASSIGNMENTS, pa.table({"id": ["a", "b"]}))
    assert out.read_json(schema.METRICS_JSON) == {"n_rows": 3}
    assert out.read_parquet(schema.ASSIGNMENTS)["id"].to_pylist() == ["a", "b"]
    assert out.read_json("absent.json") == {}
    assert out.display(schema.METRICS_JSON) == "memory://clipcluster-test/analysis/metrics.json"
    with pytest.raises(ConfigError, match="--overwrite"):
        out.check(overwrite=False)

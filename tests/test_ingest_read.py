"""Reading the URL table in every supported format, column detection and id rules."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clustering.config import ConfigError
from clustering.ingest.read import read_input, url_ids

ROWS = [
    {"post_id": "p1", "image_url": "http://example.org/a.jpg", "text": "first", "likes": 3},
    {"post_id": "p2", "image_url": "http://example.org/b.jpg", "text": "second, with comma", "likes": 5},
    {"post_id": "p3", "image_url": "http://example.org/a.jpg", "text": "repost", "likes": 0},
]


def write_formats(tmp_path):
    table = pa.Table.from_pylist(ROWS)
    paths = {
        "parquet": tmp_path / "in.parquet",
        "jsonl": tmp_path / "in.jsonl",
        "csv": tmp_path / "in.csv",
        "tsv": tmp_path / "in.tsv",
    }
    pq.write_table(table, paths["parquet"])
    paths["jsonl"].write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    header = list(ROWS[0])
    paths["csv"].write_text(
        ",".join(header)
        + "\n"
        + "\n".join(",".join(f'"{r[h]}"' if "," in str(r[h]) else str(r[h]) for h in header) for r in ROWS)
        + "\n"
    )
    paths["tsv"].write_text("\t".join(header) + "\n" + "\n".join("\t".join(str(r[h]) for h in header) for r in ROWS))
    return paths


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv", "tsv"])
def test_every_table_format_detects_url_column_and_keeps_passthrough(tmp_path, fmt):
    inp = read_input(str(write_formats(tmp_path)[fmt]))
    assert inp.url_column == "image_url"
    assert inp.table.column_names[:2] == ["id", "url"]
    assert inp.table["url"].to_pylist() == [r["image_url"] for r in ROWS]
    assert inp.table["text"].to_pylist() == [r["text"] for r in ROWS]
    assert set(inp.passthrough) == {"post_id", "text", "likes"}


def test_id_column_is_used_and_removed_from_passthrough(tmp_path):
    inp = read_input(str(write_formats(tmp_path)["csv"]), id_column="post_id")
    assert inp.table["id"].to_pylist() == ["p1", "p2", "p3"]
    assert "post_id" not in inp.passthrough


def test_repeated_urls_stay_rows_with_distinct_stable_ids():
    ids = url_ids(["u", "v", "u", "u"])
    assert len(set(ids)) == 4
    assert ids[2] == ids[0] + "-1" and ids[3] == ids[0] + "-2"
    assert url_ids(["u", "v", "u", "u"]) == ids


def test_text_file_of_urls_skips_blanks_and_comments(tmp_path):
    path = tmp_path / "urls.txt"
    path.write_text("# my urls\nhttp://x/1.png\n\nhttp://x/2.png\n")
    assert read_input(str(path)).table["url"].to_pylist() == ["http://x/1.png", "http://x/2.png"]


def test_folder_of_images_uses_relative_paths_as_ids(tmp_path):
    from PIL import Image

    (tmp_path / "sub").mkdir()
    Image.new("RGB", (20, 20), "red").save(tmp_path / "a.png")
    Image.new("RGB", (20, 20), "blue").save(tmp_path / "sub" / "b.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    inp = read_input(str(tmp_path))
    assert inp.table["id"].to_pylist() == ["a.png", "sub/b.jpg"]
    assert all(u.startswith(str(tmp_path)) for u in inp.table["url"].to_pylist())


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"url_column": "nope"}, "--url-column: 'nope' is not a column"), ({"id_column": "nope"}, "--id-column")],
)
def test_bad_columns_name_the_option(tmp_path, kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        read_input(str(write_formats(tmp_path)["csv"]), **kwargs)


def test_undetectable_url_column_lists_the_columns(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("link,text\nhttp://x/1.png,hi\n")
    with pytest.raises(ConfigError, match="pick one of: link, text"):
        read_input(str(path))


def test_missing_and_unknown_inputs_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_input(str(tmp_path / "missing.csv"))
    odd = tmp_path / "in.xlsx"
    odd.write_text("x")
    with pytest.raises(ConfigError, match="cannot tell the format"):
        read_input(str(odd))


def test_passthrough_column_clashing_with_output_is_refused(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("url,status\nhttp://x/1.png,posted\n")
    with pytest.raises(ConfigError, match="clash"):
        read_input(str(path))

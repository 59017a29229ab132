"""Reading the URL table in every supported format, column detection and id rules."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clustering.config import ConfigError
from clustering.ingest.read import read_input, url_ids

ROOT = Path(__file__).resolve().parents[1]

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
    assert inp.local_root == str(tmp_path.resolve())  # the download stage may read inside this folder only


def test_relative_image_folder_is_local(tmp_path, monkeypatch):
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (20, 20), "red").save(tmp_path / "imgs" / "a.png")
    monkeypatch.chdir(tmp_path)
    inp = read_input("imgs")
    assert inp.table["id"].to_pylist() == ["a.png"]
    assert inp.local_root == str((tmp_path / "imgs").resolve())


def test_url_tables_grant_no_local_root(tmp_path):
    assert read_input(str(write_formats(tmp_path)["csv"])).local_root is None
    folder = tmp_path / "dataset"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(ROWS), folder / "part.parquet")
    assert read_input(str(folder)).local_root is None  # a folder of Parquet files is a URL table too


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


# --- input that cannot be ingested row by row: one line each --------------------------------------------------------


def write_empty_inputs(tmp_path) -> dict[str, Path]:
    paths = {
        "csv": tmp_path / "header.csv",
        "txt": tmp_path / "comments.txt",
        "parquet": tmp_path / "empty.parquet",
        "jsonl": tmp_path / "empty.jsonl",
    }
    paths["csv"].write_text("url,text\n")
    paths["txt"].write_text("# nothing yet\n\n")
    pq.write_table(pa.table({"url": pa.array([], pa.string())}), paths["parquet"])
    paths["jsonl"].write_text("")
    return paths


@pytest.mark.parametrize("fmt", ["csv", "txt", "parquet", "jsonl"])
def test_zero_rows_is_one_clear_error(tmp_path, fmt):
    path = write_empty_inputs(tmp_path)[fmt]
    with pytest.raises(ConfigError, match=r"^--input: .* has no rows .*nothing to ingest$"):
        read_input(str(path))


@pytest.mark.parametrize(
    ("values", "type_name"),
    [
        ([["http://x/a.png", "http://x/b.png"], ["http://x/c.png"]], "list<item: string>"),
        ([{"href": "http://x/a.png"}, {"href": "http://x/b.png"}], "struct<href: string>"),
        ([1, 2], "int64"),
        ([1.5, 2.5], "double"),
    ],
)
def test_url_column_of_the_wrong_type_names_column_and_type(tmp_path, values, type_name):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"url": v, "text": "t"}) + "\n" for v in values))
    with pytest.raises(ConfigError) as info:
        read_input(str(path))
    message = str(info.value)
    assert message.startswith("--url-column: column 'url' of ")
    assert f"holds {type_name}, not text" in message
    assert "\n" not in message


def test_binary_url_column_is_read_when_utf8_and_refused_when_not(tmp_path):
    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    pq.write_table(pa.table({"url": pa.array([b"http://x/a.png"], pa.binary())}), good)
    pq.write_table(pa.table({"url": pa.array([b"\xff\xfe"], pa.binary())}), bad)
    assert read_input(str(good)).table["url"].to_pylist() == ["http://x/a.png"]
    with pytest.raises(ConfigError, match=r"--url-column: column 'url' of .* holds binary that is not UTF-8 text"):
        read_input(str(bad))


def test_dictionary_and_null_url_columns_are_text(tmp_path):
    dictionary, null = tmp_path / "dictionary.parquet", tmp_path / "null.parquet"
    pq.write_table(pa.table({"url": pa.array(["http://x/a.png", "http://x/a.png"]).dictionary_encode()}), dictionary)
    pq.write_table(pa.table({"url": pa.array([None, None], pa.null())}), null)
    assert read_input(str(dictionary)).table["url"].to_pylist() == ["http://x/a.png"] * 2
    assert read_input(str(null)).table["url"].to_pylist() == [None, None]  # rows stay, each an invalid_url later


def write_ids(tmp_path, ids) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"post_id": i, "url": f"http://x/{n}.png"}) + "\n" for n, i in enumerate(ids)))
    return path


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        (["a", "a", "b"], "has 1 repeated id(s) ('a' x2)"),
        (["a", "a", ""], "has 1 repeated id(s) ('a' x2) and 1 empty id(s) (data rows 3)"),
        (["a", None, " ", "b"], "has 2 empty id(s) (data rows 2, 3)"),
        (["a", "a", "b", "b", "c", "c", "d", "d", "e"], "has 4 repeated id(s) ('a' x2, 'b' x2, 'c' x2, ...)"),
        ([1, 2, 1], "has 1 repeated id(s) ('1' x2)"),
    ],
)
def test_repeated_or_empty_ids_are_refused_with_count_and_examples(tmp_path, ids, expected):
    with pytest.raises(ConfigError) as info:
        read_input(str(write_ids(tmp_path, ids)), id_column="post_id")
    message = str(info.value)
    assert message.startswith("--id-column: 'post_id' of ")
    assert expected in message
    assert message.endswith("ids must be unique and non-empty (leave --id-column out to use URL hashes)")


def test_integer_ids_are_read_as_text(tmp_path):
    inp = read_input(str(write_ids(tmp_path, [10, 20, 30])), id_column="post_id")
    assert inp.table["id"].to_pylist() == ["10", "20", "30"]


def test_nested_id_column_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"--id-column: column 'post_id' of .* holds list<item: int64>, not text"):
        read_input(str(write_ids(tmp_path, [[1], [2]])), id_column="post_id")


def test_long_repeated_ids_are_shortened_in_the_message(tmp_path):
    with pytest.raises(ConfigError) as info:
        read_input(str(write_ids(tmp_path, ["x" * 5000] * 2)), id_column="post_id")
    assert len(str(info.value)) < 400


def load_embed_job():
    spec = importlib.util.spec_from_file_location("embed_job", ROOT / "jobs" / "embed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", ["zero-rows", "list-urls", "repeated-ids"])
def test_entrypoint_prints_one_line_and_exits_2(tmp_path, capsys, case):
    inputs = {
        "zero-rows": (write_empty_inputs(tmp_path)["csv"], [], "has no rows"),
        "list-urls": (tmp_path / "lists.jsonl", [], "holds list<item: string>"),
        "repeated-ids": (write_ids(tmp_path, ["a", "a"]), ["--id-column", "post_id"], "1 repeated id(s) ('a' x2)"),
    }
    (tmp_path / "lists.jsonl").write_text(json.dumps({"url": ["http://x/a.png"]}) + "\n")
    path, extra, needle = inputs[case]
    code = load_embed_job().main(["--input", str(path), "--output", str(tmp_path / "out"), *extra])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert len(err) == 1 and err[0].startswith("embed.py: error: ") and needle in err[0], err
    assert not list((tmp_path / "out").glob("*.parquet"))  # refused before any shard was written

"""The explorer's payload and thumbnail packing, read back the way the page reads them (no browser needed)."""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from clustering.analysis.explorer import thumbnails
from clustering.analysis.explorer.build import Explorer, build_explorer
from clustering.analysis.explorer.encode import MAX_TEXT_CHARS, numeric_array, pack_arrays, text_blob
from clustering.analysis.explorer.payload import EXEMPLARS_PER_CLUSTER, page_payload
from clustering.analysis.explorer.thumbnails import ChunkSink, place_thumbnails
from clustering.analysis.palette import hex_colours
from tests.test_explorer import XSS_ACCOUNT, XSS_COLUMN, XSS_KEYWORD, XSS_NAME, cluster_names, write_output_folder

_TYPES = {"i1": "<i1", "u1": "<u1", "i2": "<i2", "u2": "<u2", "i4": "<i4", "u4": "<u4", "f4": "<f4", "f8": "<f8"}


def unpack(directory: dict, text: str) -> dict:
    """The arrays of a packed buffer, decoded as the page decodes them (typed views; text split on NUL)."""
    raw = gzip.decompress(base64.b64decode(text))
    out = {}
    for name, d in directory.items():
        if d["dtype"] == "utf8":
            out[name] = raw[d["offset"] : d["offset"] + d["length"]].decode("utf-8").split("\x00")
        else:
            dtype = np.dtype(_TYPES[d["dtype"]])
            assert d["offset"] % dtype.itemsize == 0  # the page views it in place
            out[name] = np.frombuffer(raw, dtype=dtype, count=d["length"], offset=d["offset"])
    return out


def read_page(path: str | Path) -> tuple[dict, dict]:
    """The header and the decoded arrays of a written explorer.html."""
    html = Path(path).read_text()
    header = json.loads(re.search(r'id="explorer-data">(.*?)</script>', html, re.S).group(1))
    packed = re.search(r'id="explorer-bin">(.*?)</script>', html, re.S).group(1)
    return header, unpack(header["arrays"], packed)


def decoded(payload) -> dict:
    """A payload's arrays as the page sees them."""
    return unpack(*pack_arrays(payload.arrays))


def text_values(header: dict, arrays: dict, spec: dict) -> list:
    values = arrays[spec["text"]]
    nulls = arrays[spec["nulls"]] if spec.get("nulls") else None
    return [None if nulls is not None and nulls[i] else v for i, v in enumerate(values)]


def column_values(header: dict, arrays: dict, name: str) -> list:
    col = next(c for c in header["columns"] if c["name"] == name)
    if col["kind"] == "number":
        return [None if np.isnan(v) else float(v) for v in arrays[col["values"]]]
    if "codes" in col:
        dictionary = arrays[col["dict"]]
        return [None if c < 0 else dictionary[c] for c in arrays[col["codes"]]]
    return text_values(header, arrays, col)


# ------------------------------------------------------------------------------------------------ encoding
def test_numeric_arrays_take_the_smallest_exact_type():
    assert numeric_array(np.array([-1, 5])).dtype.str == "|i1"
    assert numeric_array(np.array([0, 200])).dtype.str == "|u1"
    assert numeric_array(np.array([-1, 40_000])).dtype.str == "<i4"
    assert numeric_array(np.array([0, 3_000_000_000])).dtype.str == "<u4"
    assert numeric_array(np.array([-1, 2**40])).dtype.str == "<f8"  # a double holds it exactly
    assert numeric_array(np.array([0.5])).dtype.str == "<f4"
    assert numeric_array(np.array([0.5]), precise=True).dtype.str == "<f8"
    with pytest.raises(ValueError, match="2\\*\\*53"):
        numeric_array(np.array([0, 2**60]))


def test_text_blobs_split_back_into_the_values():
    values = ["plain", None, "", "héllo wörld 😀 #tag", "nul\x00inside", "x" * (MAX_TEXT_CHARS + 50)]
    blob = text_blob(pa.chunked_array([pa.array(values[:3]), pa.array(values[3:])]))
    back = blob.decode("utf-8").split("\x00")
    assert back[:5] == ["plain", "", "", "héllo wörld 😀 #tag", "nul\ufffdinside"]
    assert len(back[5]) == MAX_TEXT_CHARS and back[5].endswith("…")
    assert text_blob(pa.array([], pa.string())) == b""
    assert text_blob(pa.array(["only"])) == b"only"


def test_packed_arrays_round_trip_aligned_and_deterministic():
    arrays = {"a": numeric_array(np.array([1, -2, 3])), "t": text_blob(pa.array(["x", "yz"])),
              "b": numeric_array(np.array([0.25, 1.5]), precise=True)}  # fmt: skip
    directory, text = pack_arrays(arrays)
    back = unpack(directory, text)
    assert back["a"].tolist() == [1, -2, 3] and back["t"] == ["x", "yz"] and back["b"].tolist() == [0.25, 1.5]
    assert pack_arrays(arrays) == (directory, text)  # no timestamp in the gzip header: same bytes every build


# ------------------------------------------------------------------------------------------------ the payload
@pytest.fixture(scope="module")
def contract(tmp_path_factory) -> dict:
    info = write_output_folder(tmp_path_factory.mktemp("payload"), n=240, n_clusters=6, seed=4, xss_row=True)
    info["table"] = pq.read_table(info["output"] / "assignments.parquet")
    info["payload"] = page_payload(info["table"], info["metrics"])
    return info


def test_levels_carry_names_keywords_and_parents(contract):
    levels = contract["payload"].header["levels"]
    assert [(lv["name"], lv["column"]) for lv in levels] == [
        ("themes", "theme"),
        ("clusters", "cluster"),
        ("subclusters", "subcluster"),
    ]
    themes, clusters, _ = levels
    by_id = {c["cluster"]: c for c in clusters["clusters"]}
    name, keywords = cluster_names("clusters", 3)
    assert by_id[3]["name"] == name and by_id[3]["keywords"] == keywords and by_id[3]["parent"] == 1
    assert by_id[1]["uncertain"] and not by_id[3]["uncertain"]
    assert themes["clusters"][0]["name"] == XSS_NAME  # as data: the page shows it as text
    assert by_id[0]["keywords"][0] == XSS_KEYWORD
    arrays = contract["payload"].arrays
    assert arrays[themes["labels"]].tolist() == contract["theme"].tolist()


def test_posts_times_accounts_and_reposts(contract):
    payload = contract["payload"]
    header, arrays = payload.header, decoded(payload)
    time = header["time"]
    seconds = contract["post_time"].astype(np.int64)
    assert time["origin"] == seconds.min() and time["period"] == "day" and time["n_dated"] == contract["n"]
    assert (arrays["time"] + time["origin"]).tolist() == seconds.tolist()
    assert header["posts"] == {"text": "post_text", "date": "date", "account": "account", "missing": []}
    account = header["columns"][header["account_column"]]
    assert account["name"] == "account" and "codes" in account  # always dictionary-encoded: the filter uses codes
    names = arrays[account["dict"]]
    assert [names[c] for c in arrays[account["codes"]]] == contract["accounts"]
    assert XSS_ACCOUNT in names
    assert arrays[header["repost_group"]].tolist() == contract["repost"].tolist()


def test_page_round_trip_of_every_column(contract, tmp_path):
    out = contract["output"]
    result = build_explorer(out)
    header, arrays = read_page(result.path)
    n = contract["n"]
    assert text_values(header, arrays, header["id"]) == contract["ids"]
    assert text_values(header, arrays, header["url"]) == contract["urls"]
    assert column_values(header, arrays, "post_text") == contract["texts"]
    assert column_values(header, arrays, "account") == contract["accounts"]
    assert np.allclose(arrays["x"], contract["table"]["x"].to_numpy())
    assert arrays["probability"].tolist() == contract["probability"].tolist()
    assert len(arrays["thumb"]) == n and (arrays["thumb"] >= 0).all()
    # the passthrough columns; the contract's own columns (levels, times, reposts) have their places
    assert [c["name"] for c in header["columns"]] == ["post_text", "account", "date", XSS_COLUMN]


def test_without_post_time_the_date_column_is_parsed_and_without_dates_the_page_says_why(contract):
    table = contract["table"].drop_columns(["post_time"])
    time = page_payload(table, {}).header["time"]
    assert time["origin"] == contract["post_time"].astype(np.int64).min() and time["column"] == "date"
    none = page_payload(table.drop_columns(["date"]), {}).header["time"]
    assert none["key"] is None and "no date column" in none["note"]
    bad = table.set_column(table.column_names.index("date"), "date", pa.array(["soon"] * table.num_rows))
    assert "could be read as a date" in page_payload(bad, {}).header["time"]["note"]
    # A run without a date column writes post_time all null: the page says there is no date column, not "None".
    undated = contract["table"].drop_columns(["date"])
    undated = undated.set_column(undated.column_names.index("post_time"), "post_time",
                                 pa.nulls(undated.num_rows, pa.timestamp("ms", tz="UTC")))  # fmt: skip
    note = page_payload(undated, {}).header["time"]["note"]
    assert "no date column" in note and "None" not in note


def test_the_page_carries_the_runs_palette_for_every_cluster_of_every_view(contract):
    header = page_payload(contract["table"], {}).header
    most = max(int(pc.max(contract["table"][c]).as_py()) + 1 for c in ("cluster", "theme", "subcluster")
               if c in contract["table"].column_names)  # fmt: skip
    assert header["palette"] == hex_colours(most)


def test_other_column_types_reach_the_page_as_text_or_numbers():
    n = 4
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(n)],
            "x": pa.array([0.0, 1.0, 2.0, 3.0], pa.float32()),
            "y": pa.array([0.0, 1.0, 2.0, 3.0], pa.float32()),
            "cluster": pa.array([0, 0, 1, -1], pa.int32()),
            "likes": pa.array([1, None, 3, 4], pa.int64()),
            "huge": pa.array([2**60, 1, 2, 3], pa.int64()),
            "flag": pa.array([True, False, None, True]),
            "tags": pa.array([["a", "b"], [], None, ["c"]]),
            "lang": pa.array(["fr", "fr", "en", "fr"]),
        }
    )
    payload = page_payload(table, {})
    header, arrays = payload.header, decoded(payload)
    assert column_values(header, arrays, "likes") == [1.0, None, 3.0, 4.0]
    assert column_values(header, arrays, "huge") == [str(2**60), "1", "2", "3"]  # a double would change 2**60
    assert column_values(header, arrays, "flag") == ["true", "false", None, "true"]
    assert column_values(header, arrays, "tags") == ['["a", "b"]', "[]", None, '["c"]']
    assert "codes" in next(c for c in header["columns"] if c["name"] == "lang")  # 2 distinct of 4: a dictionary
    assert header["levels"] == [{"name": "clusters", "column": "cluster", "min_cluster_size": None,
                                 "labels": "labels/cluster", "clusters": []}]  # fmt: skip


def test_priority_puts_every_levels_exemplars_first(contract):
    payload = contract["payload"]
    table = contract["table"]
    prob = table["probability"].to_numpy()
    first = set(payload.priority[: 3 * EXEMPLARS_PER_CLUSTER].tolist())
    for column in ("theme", "cluster", "subcluster"):
        labels = table[column].to_numpy()
        for label in set(labels.tolist()) - {-1}:
            rows = np.flatnonzero(labels == label)
            best = rows[np.argmax(prob[rows])]
            assert best in payload.priority[: 40 * EXEMPLARS_PER_CLUSTER]  # every cluster's best image early
    biggest = np.bincount(table["cluster"].to_numpy()[table["cluster"].to_numpy() >= 0]).argmax()
    rows = np.flatnonzero(table["cluster"].to_numpy() == biggest)
    assert rows[np.argmax(prob[rows])] in first
    assert sorted(payload.priority.tolist()) == list(range(contract["n"]))


# ------------------------------------------------------------------------------------------------ thumbnails
def _jpeg_like(k: int, size: int) -> bytes:
    return b"\xff\xd8\xff" + k.to_bytes(4, "big") + bytes(size - 7)


def test_thumbnails_are_embedded_by_priority_then_chunked(tmp_path, monkeypatch):
    monkeypatch.setattr(thumbnails, "CHUNK_BYTES", 3000)
    n = 20
    ids = pa.array([f"r{i}" for i in range(n)])
    images = {f"r{i}": _jpeg_like(i, 1000) for i in range(n)}
    images["r7"] = images["r3"]  # a repost: one image for two rows
    priority = np.arange(n)[::-1]  # the page wants r19 first
    sink = ChunkSink(pa.fs.LocalFileSystem(), str(tmp_path / "side"))
    placed = place_thumbnails(ids, priority, lambda: iter(images.items()), budget=4 * 1336, sink=sink)
    assert placed.n_embedded == 4 and placed.point_image[[19, 18, 17, 16]].tolist() == [0, 1, 2, 3]
    assert placed.point_image[3] == placed.point_image[7] and len(placed.lengths) == n - 1
    assert placed.embedded == b"".join(images[f"r{i}"] for i in (19, 18, 17, 16))
    files = sorted((tmp_path / "side").iterdir())
    assert placed.n_sidecar_files == len(files) == 5 and placed.n_sidecar == n - 1 - 4
    assert sink.bytes == placed.sidecar_bytes == sum(f.stat().st_size for f in files)
    # every image can be found where the index says, in the chunk the page would load
    for chunk in placed.chunks[1:]:
        text = (tmp_path / "side" / chunk["src"]).read_text()
        build, number, b64 = re.fullmatch(r'clipclusterThumbs\("(\w+)",(\d+),"([^"]*)"\);\n', text).groups()
        assert build == placed.build and int(number) == chunk["number"]
        data = base64.b64decode(b64)
        assert len(data) == chunk["bytes"] <= 3000
        offset = 0
        for image in range(chunk["first"], chunk["first"] + chunk["count"]):
            row = int(np.flatnonzero(placed.point_image == image)[0])
            assert data[offset : offset + placed.lengths[image]] == images[f"r{row}"]
            offset += placed.lengths[image]


def test_thumbnails_without_a_folder_are_left_out_and_said(tmp_path):
    ids = pa.array(["a", "b", "c", "a"])  # a repeated id shares its image
    images = [("a", _jpeg_like(1, 600)), ("b", _jpeg_like(2, 600)), ("zz", _jpeg_like(3, 600))]
    placed = place_thumbnails(ids, np.arange(4), lambda: iter(images), budget=900, sink=None)
    assert placed.point_image.tolist() == [0, -1, -1, 0]
    assert placed.notice == "1 thumbnails left out: over the embed budget and this page has no sidecar folder."
    assert place_thumbnails(ids, np.arange(4), None, budget=0, sink=None, notice="why").notice == "why"


def test_same_page_twice_is_byte_identical(contract, tmp_path):
    explorer = Explorer.from_output_dir(contract["output"])
    assert explorer.to_html() == explorer.to_html()

"""Every column type users' tools write, in both jobs: Arrow's variants, pandas 3, Polars and DuckDB tables.

pandas 3, Polars and DuckDB write text as ``large_string`` (Polars' categoricals as dictionaries, Arrow's newest readers
as ``string_view``), ids as integers, dates as timestamps of any unit and time zone, embeddings as lists of any float
width. Each cell of the matrix below either reads exactly as the plain ``string``/``float32`` reference does, or is
refused with one line naming the column and its type (exit status 2 from the job).

- The analysis reader: one reference shard, then one column at a time swapped for a variant type.
- The analysis job: posts shards written by pandas 3, Polars and DuckDB themselves, names to accounts filled.
- The ingest job: URL tables written by the same three tools (and pandas' CSV with its missing values).
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib.util
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from clustering import io as cio
from clustering import schema
from clustering.analysis.posts.columns import read_posts
from clustering.analysis.shards import iter_thumbnails, read_ok_rows
from clustering.config import ConfigError
from tests.test_shards import blobs, thumbnail

REPO = Path(__file__).resolve().parents[1]
N = 40
DIM = 8
ACCOUNTS = ["101", "102", None, "103"]  # digits, so integer account columns mean the same accounts
MIDNIGHT = np.datetime64("2024-01-05T00:00:00", "s")
DAY = np.timedelta64(86_400, "s")


# --------------------------------------------------------------------------------------------- reference shard
def reference_columns() -> dict[str, pa.Array]:
    """The plain-typed shard every variant is compared with; nulls in every nullable column."""
    rng = np.random.default_rng(0)
    # Values exactly representable in float16, so every float width reads back the same float32 matrix.
    vectors = rng.normal(size=(N, DIM)).astype(np.float16).astype(np.float32)
    dates = [None if i % 9 == 4 else MIDNIGHT + (i % 6) * DAY for i in range(N)]
    return {
        schema.ID: pa.array([str(1000 + i) for i in range(N)], pa.string()),
        schema.URL: pa.array([None if i == 3 else f"https://example.org/{i}.jpg" for i in range(N)], pa.string()),
        schema.STATUS: pa.array(["ok" if i % 10 else "http_error" for i in range(N)], pa.string()),
        schema.SHA256: pa.array([f"{i % 30:064x}" if i % 10 else None for i in range(N)], pa.string()),
        schema.THUMBNAIL: pa.array([thumbnail(i % 3) if i % 10 else None for i in range(N)], pa.binary()),
        schema.EMBEDDING: pa.array([v.tolist() if i % 10 else None for i, v in enumerate(vectors)],
                                   pa.list_(pa.float32(), DIM)),
        "text": pa.array([None if i % 7 == 2 else f"#tag{i % 3} post {i}" for i in range(N)], pa.string()),
        "created_at": pa.array(dates, pa.timestamp("s")),
        "account": pa.array([ACCOUNTS[i % 4] for i in range(N)], pa.string()),
        "tag": pa.array([None if i % 5 == 1 else f"t{i % 4}" for i in range(N)], pa.string()),
    }  # fmt: skip


def write_shard(root: Path, columns: dict[str, pa.Array]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), root / "part-00000.parquet")
    return root


def read_back(root: Path) -> dict:
    """Everything downstream modules read from a shard folder, as plain Python and numpy values."""
    data = read_ok_rows(str(root))
    table = data.table
    posts = read_posts(table, schema.detect_post_columns(table, data.passthrough))
    return {
        "types": {name: table.schema.field(name).type for name in table.column_names},
        "rows": {name: table[name].to_pylist() for name in table.column_names},
        "embeddings": data.embeddings,
        "point_of_row": data.point_of_row,
        "statuses": data.status_counts,
        "post_columns": posts.columns,
        "texts": posts.texts.tolist(),
        "dates": posts.dates.values,
        "accounts": [posts.accounts.name_of(code) for code in posts.accounts.codes],
        "thumbnails": dict(iter_thumbnails(str(root))),
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return read_back(write_shard(tmp_path_factory.mktemp("reference"), reference_columns()))


def test_the_reference_reads_as_plain_types(reference):
    # The matrix below is only as strong as its reference: every role found, every value present.
    assert reference["post_columns"] == schema.PostColumns(text="text", date="created_at", account="account")
    assert reference["types"][schema.ID] == pa.string() and len(reference["rows"][schema.ID]) == 36
    assert reference["embeddings"].dtype == np.float32 and reference["embeddings"].shape == (27, DIM)  # 9 exact reposts
    assert sum(d is not None for d in reference["accounts"]) == 28 and len(reference["thumbnails"]) == 36
    assert np.isnat(reference["dates"]).sum() == 4


# ------------------------------------------------------------------------------------------- variants that work
def text_variants(values: pa.Array) -> dict[str, pa.Array]:
    return {
        "large_string": values.cast(pa.large_string()),
        "string_view": values.cast(pa.string_view()),
        "dictionary<string>": values.dictionary_encode(),
        "dictionary<large_string>": values.cast(pa.large_string()).dictionary_encode(),
        "binary": values.cast(pa.binary()),
    }


def timestamp_variants(values: pa.Array) -> dict[str, pa.Array]:
    variants = {}
    for unit in ("s", "ms", "us", "ns"):
        variants[f"timestamp[{unit}]"] = values.cast(pa.timestamp(unit))
        for zone in ("UTC", "America/New_York", "+05:30"):
            # The same instants: tz-aware Arrow timestamps store UTC.
            variants[f"timestamp[{unit}, tz={zone}]"] = values.cast(pa.timestamp(unit)).cast(pa.timestamp(unit, zone))
    return variants


def date_string_variants(values: pa.Array) -> dict[str, pa.Array]:
    """The same instants (midnights, UTC) spelled as the tools and APIs users export from spell them."""
    instants = values.to_pylist()
    shapes = [
        lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"),  # ISO with Z
        lambda t: t.strftime("%Y-%m-%d %H:%M:%S+00:00"),  # pandas' CSV of a tz-aware column
        lambda t: t.strftime("%a %b %d %H:%M:%S +0000 %Y"),  # Twitter v1 created_at
        lambda t: str(int(t.replace(tzinfo=dt.timezone.utc).timestamp())),  # epoch seconds as text
        lambda t: t.strftime("%Y-%m-%d"),  # a day
        lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.000+00:00"),  # JavaScript's toISOString with an offset
    ]
    mixed = [None if t is None else shapes[i % len(shapes)](t) for i, t in enumerate(instants)]
    strings = pa.array(mixed, pa.string())
    as_other_types = {f"mixed date strings as {k}": v for k, v in text_variants(strings).items()}
    return {"mixed date strings": strings, **as_other_types}


def embedding_variants(values: pa.Array) -> dict[str, pa.Array]:
    rows = values.to_pylist()
    variants = {}
    for name, float_type in (("float16", pa.float16()), ("float32", pa.float32()), ("float64", pa.float64())):
        cells = [None if r is None else np.asarray(r, dtype=float_type.to_pandas_dtype()) for r in rows]
        variants[f"list<{name}>"] = pa.array(cells, pa.list_(float_type))
        variants[f"large_list<{name}>"] = pa.array(cells, pa.large_list(float_type))
        variants[f"fixed_size_list<{name}>[{DIM}]"] = pa.array(cells, pa.list_(float_type, DIM))
    return variants


def integer_variants(values: pa.Array) -> dict[str, pa.Array]:
    return {"int64": values.cast(pa.int64()), "int32": values.cast(pa.int32()), "uint64": values.cast(pa.uint64())}


def float_account_variant(values: pa.Array) -> dict[str, pa.Array]:
    # pandas keeps integer user ids with a missing value as float64 with NaN.
    numbers = [float("nan") if v is None else float(v) for v in values.to_pylist()]
    return {"float64 with NaN": pa.array(numbers, pa.float64())}


def matrix() -> list[tuple[str, str, pa.Array]]:
    base = reference_columns()
    ids = {**text_variants(base[schema.ID]), **integer_variants(base[schema.ID])}
    cells = [(schema.ID, k, v) for k, v in ids.items()]
    for column in (schema.URL, schema.STATUS, schema.SHA256, "text", "account", "tag"):
        cells += [(column, k, v) for k, v in text_variants(base[column]).items()]
    cells += [("account", k, v) for k, v in integer_variants(base["account"]).items()]
    cells += [("account", k, v) for k, v in float_account_variant(base["account"]).items()]
    cells += [("created_at", k, v) for k, v in timestamp_variants(base["created_at"]).items()]
    cells += [("created_at", k, v) for k, v in date_string_variants(base["created_at"]).items()]
    cells.append(("created_at", "date32", base["created_at"].cast(pa.date32())))
    cells.append(("created_at", "date64", base["created_at"].cast(pa.date64())))
    cells += [(schema.EMBEDDING, k, v) for k, v in embedding_variants(base[schema.EMBEDDING]).items()]
    thumbs = base[schema.THUMBNAIL]
    cells += [(schema.THUMBNAIL, "large_binary", thumbs.cast(pa.large_binary()))]
    cells += [(schema.THUMBNAIL, "binary_view", thumbs.cast(pa.binary_view()))]
    raw_digests = pa.array([None if h is None else bytes.fromhex(h) for h in base[schema.SHA256].to_pylist()])
    cells.append((schema.SHA256, "binary digest", raw_digests))
    return cells  # fmt: skip


MATRIX = matrix()


@pytest.mark.parametrize(("column", "variant", "values"), MATRIX, ids=[f"{c}: {v}" for c, v, _ in MATRIX])
def test_every_variant_reads_as_the_plain_reference(tmp_path, reference, column, variant, values):
    columns = {**reference_columns(), column: values}
    assert pa.table(columns).schema.field(column).type == values.type  # the variant really is in the file's table
    got = read_back(write_shard(tmp_path, columns))
    # Dates and numbers keep the user's type (time zone included): the post reader takes every one of them.
    numeric = pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
    kept = {"created_at"} | ({column} if numeric else set())
    assert drop(got["types"], kept) == drop(reference["types"], kept), "downstream modules see the plain types only"
    assert drop(got["rows"], kept) == drop(reference["rows"], kept)
    for key in ("statuses", "post_columns", "texts", "accounts", "thumbnails"):
        assert got[key] == reference[key], key
    assert np.array_equal(got["embeddings"], reference["embeddings"])
    assert np.array_equal(got["point_of_row"], reference["point_of_row"])
    assert np.array_equal(got["dates"].astype(np.int64), reference["dates"].astype(np.int64))  # NaT included


def drop(mapping: dict, keys: set) -> dict:
    return {k: v for k, v in mapping.items() if k not in keys}


def test_passthrough_columns_of_other_types_are_carried_as_they_are(tmp_path):
    extra = {
        "likes": pa.array(range(N), pa.int64()),
        "score": pa.array([decimal.Decimal(i) / 4 for i in range(N)], pa.decimal128(9, 2)),
        "hashtags": pa.array([[f"#t{i % 3}", "#all"] for i in range(N)], pa.list_(pa.large_string())),
        "user": pa.array([{"id": i, "name": f"u{i}"} for i in range(N)]),
        "seen_at": pa.array(MIDNIGHT + np.arange(N) * DAY).cast(pa.timestamp("ns", "Europe/Paris")),
    }
    got = read_back(write_shard(tmp_path, {**reference_columns(), **extra}))
    assert got["types"]["likes"] == pa.int64() and got["types"]["score"] == pa.decimal128(9, 2)
    assert got["types"]["seen_at"] == pa.timestamp("ns", "Europe/Paris")
    assert got["types"]["hashtags"] == pa.list_(pa.large_string())  # nested columns are the user's; kept
    assert got["rows"]["likes"] == [i for i in range(N) if i % 10]


# ------------------------------------------------------------------------------------ variants refused in a line
REFUSED = [
    (schema.ID, pa.array([None, *[str(i) for i in range(1, N)]], pa.large_string()), "column 'id' has 1 missing"),
    (schema.ID, pa.array([[i] for i in range(N)]), "column 'id' holds list<element: int64>, not text"),
    (schema.ID, pa.array([b"\xff\xfe" + bytes([i]) for i in range(N)]), "column 'id' holds binary that is not UTF-8"),
    (schema.STATUS, pa.array(range(N), pa.int8()), "column 'status' holds int8, not text"),
    (schema.EMBEDDING, pa.array([[i] * DIM for i in range(N)], pa.list_(pa.int32())), "holds list<element: int32>"),
    (schema.EMBEDDING, pa.array(["0.1,0.2"] * N), "expected a list of float16, float32 or float64"),
    (schema.THUMBNAIL, pa.array(["jpeg"] * N), "column 'thumbnail' holds string; expected JPEG bytes"),
]


@pytest.mark.parametrize(("column", "values", "message"), REFUSED, ids=[f"{c}: {v.type}" for c, v, _ in REFUSED])
def test_unusable_types_are_refused_in_one_line(tmp_path, column, values, message):
    root = write_shard(tmp_path, {**reference_columns(), column: values})
    with pytest.raises(ConfigError, match=r"part-00000\.parquet") as caught:
        read_ok_rows(str(root))
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("column", "values", "flag"),
    [
        ("text", pa.array([["a", "b"]] * N), "--text-column: column 'text' cannot be read as post data"),
        ("text", pa.array([b"\xff\xfe"] * N), "--text-column: column 'text' cannot be read as post data"),
        ("account", pa.array([{"id": 1}] * N), "--account-column: column 'account' cannot be read as post data"),
    ],
)
def test_post_columns_without_text_are_refused_naming_the_flag(tmp_path, column, values, flag):
    data = read_ok_rows(str(write_shard(tmp_path, {**reference_columns(), column: values})))
    forced = {"text": "text", "account": "account"}[column]
    columns = schema.detect_post_columns(data.table, data.passthrough, **{column: forced})
    with pytest.raises(ConfigError, match=flag) as caught:
        read_posts(data.table, columns)
    assert str(values.type).split("<")[0] in str(caught.value)


def test_the_job_refuses_a_missing_id_with_exit_status_2(tmp_path):
    columns = reference_columns()
    missing_first = pa.array([None, *columns[schema.ID][1:].to_pylist()])
    root = write_shard(tmp_path / "shards", {**columns, schema.ID: missing_first})
    done = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "analyze.py"), "--input", str(root), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"analyze.py: error: {root / 'part-00000.parquet'}: column 'id' has 1 missing value(s); every row needs an id"
    ]


# ------------------------------------------------------------------------- posts tables written by users' tools
TOPICS = 4
N_POSTS = 240


def posts_frame() -> pd.DataFrame:
    """Posts about four topics (one hashtag each), each topic posted by its own accounts over its own days."""
    X, labels = blobs(N_POSTS, dim=32, clusters=TOPICS, seed=3)
    start = pd.Timestamp("2024-03-01", tz="UTC")
    return pd.DataFrame(
        {
            "id": np.arange(N_POSTS, dtype=np.int64) + 5000,
            "url": [f"https://example.org/{i}.jpg" for i in range(N_POSTS)],
            "status": "ok",
            "sha256": [f"{i:064x}" for i in range(N_POSTS)],
            "embedding": list(X),
            "text": [f"#topic{label} rally downtown {i % 5}" for i, label in enumerate(labels)],
            "created_at": [start + pd.Timedelta(days=int(label) * 3, hours=i % 24) for i, label in enumerate(labels)],
            "account": [f"@voice{label}_{i % 3}" for i, label in enumerate(labels)],
        }
    )


def write_with_pandas(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path)


def write_with_polars(frame: pd.DataFrame, path: Path) -> None:
    table = pl.DataFrame(
        {
            "id": frame["id"].to_numpy(),
            "url": frame["url"].tolist(),
            "status": pl.Series(frame["status"].tolist(), dtype=pl.Categorical),
            "sha256": frame["sha256"].tolist(),
            "embedding": pl.Series(np.stack(frame["embedding"]).astype(np.float32)).cast(pl.Array(pl.Float32, 32)),
            "text": frame["text"].tolist(),
            "created_at": pl.Series(frame["created_at"].dt.tz_localize(None).tolist()).dt.replace_time_zone("UTC"),
            "account": pl.Series(frame["account"].tolist(), dtype=pl.Categorical),
        }
    )
    table.write_parquet(path)


def write_with_duckdb(frame: pd.DataFrame, path: Path) -> None:
    posts = frame.assign(embedding=[v.astype(np.float64).tolist() for v in frame["embedding"]])  # DOUBLE[]
    connection = duckdb.connect()
    connection.register("posts", posts)
    connection.execute(f"COPY (SELECT * FROM posts) TO '{path}' (FORMAT PARQUET)")
    connection.close()


WRITERS = {"pandas 3": write_with_pandas, "polars": write_with_polars, "duckdb": write_with_duckdb}


def test_pandas_is_version_3():
    # pandas 3's default string dtype is what made the analysis crash; the tables below must be written by it.
    assert int(pd.__version__.split(".")[0]) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("writer", WRITERS)
def test_posts_written_by_users_tools_go_through_the_analysis(tmp_path, writer):
    shards = tmp_path / "shards"
    shards.mkdir()
    WRITERS[writer](posts_frame(), shards / "part-00000.parquet")
    written = pq.read_schema(shards / "part-00000.parquet")
    assert not pa.types.is_string(written.field("text").type) or writer == "duckdb"  # large_string where they use it
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(REPO / "jobs" / "analyze.py"), "--input", str(shards), "--output", str(out),
         "--no-explorer", "--n-epochs", "60"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    clusters = pd.read_csv(out / "clusters.csv", keep_default_na=False)
    clusters = clusters[clusters["level"] == "clusters"]
    assert len(clusters) == TOPICS
    assert sorted(clusters["keywords"].str.split(";").str[0]) == [f"#topic{t}" for t in range(TOPICS)]
    for column in ("name", "first_seen", "last_seen", "peak_period", "top_account", "top_accounts"):
        assert (clusters[column] != "").all(), column
    assert (clusters["accounts"] == 3).all() and (clusters["dated_posts"] == clusters["size"]).all()
    assignments = pd.read_parquet(out / "assignments.parquet")
    assert sorted(assignments["id"]) == sorted(str(i) for i in posts_frame()["id"])


# --------------------------------------------------------------------------- URL tables written by users' tools
def load_embed_job():
    spec = importlib.util.spec_from_file_location("embed_job", REPO / "jobs" / "embed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def url_frame(server) -> pd.DataFrame:
    """Good images, a 404 and missing URLs, with integer ids and typed post columns."""
    urls = [server.url(name) for name in ("photo.jpg", "alpha.png", "photo.webp", "rotated.jpg", "palette.png")]
    urls += [server.url("bad/404"), None, server.url("photo.jpg")]
    return pd.DataFrame(
        {
            "post_id": np.arange(len(urls), dtype=np.int64) * 7 + 11,
            "media_url": urls,
            "text": [None if i == 2 else f"post {i}" for i in range(len(urls))],
            "created_at": pd.date_range("2024-05-01", periods=len(urls), freq="h", tz="Europe/Berlin"),
            "account": pd.Categorical([f"@a{i % 3}" for i in range(len(urls))]),
        }
    )


def write_urls_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, na_rep="NaN")  # pandas' spelling of a missing value when asked for one


def write_urls_polars(frame: pd.DataFrame, path: Path) -> None:
    pl.from_pandas(frame).write_parquet(path)


def write_urls_duckdb(frame: pd.DataFrame, path: Path) -> None:
    connection = duckdb.connect()
    connection.register("urls", frame.astype({"account": str}))
    connection.execute(f"COPY (SELECT * FROM urls) TO '{path}' (FORMAT PARQUET)")
    connection.close()


URL_WRITERS = {
    "pandas 3 parquet": ("urls.parquet", lambda f, p: f.to_parquet(p)),
    "pandas 3 csv": ("urls.csv", write_urls_csv),
    "polars": ("urls.parquet", write_urls_polars),
    "duckdb": ("urls.parquet", write_urls_duckdb),
}


@pytest.mark.slow
@pytest.mark.parametrize("writer", URL_WRITERS)
def test_url_tables_written_by_users_tools_come_out_row_for_row(
    ray_local, image_server, tiny_model_dir, tmp_path, writer
):
    name, write = URL_WRITERS[writer]
    frame = url_frame(image_server)
    write(frame, tmp_path / name)
    out = tmp_path / "shards"
    args = ["--input", str(tmp_path / name), "--output", str(out), "--model", tiny_model_dir, "--id-column",
            "post_id", "--allow-private-networks", "--rows-per-shard", "3", "--no-progress"]  # fmt: skip
    assert load_embed_job().main(args) == 0
    table = cio.read_shards(str(out))
    by_id = {row["id"]: row for row in table.to_pylist()}
    assert sorted(by_id) == sorted(str(i) for i in frame["post_id"]), "every row once, ids as their decimal text"
    statuses = [by_id[str(i)]["status"] for i in frame["post_id"]]
    assert statuses == ["ok"] * 5 + ["http_error", "invalid_url", "ok"]
    assert by_id[str(frame["post_id"][6])]["error"] == "no URL"
    texts = [by_id[str(i)]["text"] for i in frame["post_id"]]
    missing = "NaN" if writer == "pandas 3 csv" else None  # passthrough cells are carried as written, never re-read
    assert texts == [missing if i == 2 else f"post {i}" for i in range(len(frame))]
    times = pc.cast(table["created_at"], pa.timestamp("s", "UTC")).to_pylist() if writer != "pandas 3 csv" else None
    if times is not None:  # typed timestamps are carried as they are, time zone included
        expected = dict(zip(frame["post_id"].astype(str), frame["created_at"].dt.tz_convert("UTC"), strict=True))
        assert all(t == expected[key] for key, t in zip(table["id"].to_pylist(), times, strict=True))

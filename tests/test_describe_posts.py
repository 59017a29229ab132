"""The post analysis in one call, on the demo sample decoded and embedded as ingest does (tiny CLIP)."""

from __future__ import annotations

import csv

import numpy as np
import pyarrow as pa
import pytest

from clustering import schema
from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.posts import names
from clustering.analysis.posts.columns import read_posts
from clustering.analysis.posts.describe import PostOptions, analyse_posts
from clustering.analysis.shards import find_duplicates
from clustering.config import DecodeOptions, PreprocessSpec
from clustering.devtools.sample import make_sample
from clustering.ingest.clip_embedder import ClipEmbedder, model_info, preprocess_dict
from clustering.ingest.decode import decode_image
from clustering.schema import detect_post_columns

CLUSTER_COLUMNS = ["name", "name_source", "name_uncertain", "name_scores", "keywords", "possibly_mixed",
                   "mixed_keywords", "first_seen", "last_seen", "peak_period", "peak_posts", "dated_posts", "posts",
                   "accounts", "top_account", "top_account_share", "top_accounts", "coordinated_posts",
                   "coordinated_share", "account_herfindahl"]  # fmt: skip


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, tiny_model_dir):
    """The sample's ok rows as the analysis holds them: table, embeddings, thumbnails by id, labels = true kinds."""
    info = make_sample(tmp_path_factory.mktemp("sample"), n_images=90, seed=0)
    with info.manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    options, spec = DecodeOptions(), PreprocessSpec()
    decoded = [decode_image((info.outdir / r["path"]).read_bytes(), options, spec) for r in rows]
    keep = [i for i, d in enumerate(decoded) if d.status == "ok"]
    rows, decoded = [rows[i] for i in keep], [decoded[i] for i in keep]
    embedder = ClipEmbedder(model=tiny_model_dir, preprocess=preprocess_dict(model_info(tiny_model_dir).preprocess))
    height, width = spec.crop
    pixels = np.stack([np.frombuffer(d.pixels, np.uint8).reshape(height, width, 3) for d in decoded])
    table = pa.table({name: [r[name] for r in rows] for name in rows[0]}).append_column(
        "sha256", pa.array([d.sha256 for d in decoded])
    )
    kinds = sorted({r["kind"] for r in rows})
    return {
        "table": table,
        "embeddings": embedder.embed(pixels),
        "thumbnails": {r["post_id"]: d.thumbnail for r, d in zip(rows, decoded, strict=True)},
        "labels": np.array([kinds.index(r["kind"]) for r in rows]),
        "model": tiny_model_dir,
    }


def run_analysis_of_posts(sample_run, levels=None, **overrides):
    table = sample_run["table"]
    duplicates = find_duplicates(table["sha256"].to_pylist())
    points, point_of_row = duplicates.representatives, duplicates.inverse  # exact copies folded, as the job does
    ids = table["post_id"].to_pylist()
    candidates = [c for c in table.column_names if c not in ("post_id", "url", "sha256")]
    posts = read_posts(table, detect_post_columns(table, candidates))
    reader_calls = []

    def read_thumbnails(wanted):
        reader_calls.append(len(wanted))
        return {i: sample_run["thumbnails"][i] for i in wanted}

    arguments = {
        "posts": posts,
        "embeddings": sample_run["embeddings"][points],  # one per distinct image, as ShardData holds them
        "ids": ids,
        "metadata": {"model": sample_run["model"], "random_weights": True},
        "points": points,
        "point_of_row": point_of_row,
        "thumbnails": read_thumbnails,
        **overrides,
    }
    levels = levels if levels is not None else {"clusters": sample_run["labels"]}
    return analyse_posts(levels, chosen="clusters", **arguments), reader_calls


def test_one_call_gives_every_cluster_column_a_repost_column_and_notes(sample_run):
    result, reader_calls = run_analysis_of_posts(sample_run)
    n_clusters = int(sample_run["labels"].max()) + 1
    columns = result.cluster_columns("clusters", n_clusters)
    assert list(columns) == CLUSTER_COLUMNS
    assert all(len(values) == n_clusters for values in columns.values())
    assert all(name for name in columns["name"]) and set(columns["name_source"]) == {"keywords"}
    assert all(peak and len(peak) == 10 for peak in columns["peak_period"])  # daily: a four-week sample
    assert len(reader_calls) == 1 and reader_calls[0] <= len(sample_run["thumbnails"])  # candidates only
    rows = result.row_columns()
    group, post_time = rows[schema.REPOST_GROUP], rows[schema.POST_TIME]
    assert group.type == pa.int32() and len(group) == sample_run["table"].num_rows
    assert post_time.type == pa.timestamp("ms", tz="UTC") and len(post_time) == len(group)
    dates = result.posts.dates
    assert post_time.null_count == dates.n_missing + dates.n_unparseable > 0  # the sample leaves a few dates out
    known = ~np.isnat(dates.values)
    assert (post_time.to_numpy(zero_copy_only=False)[known].astype("datetime64[s]") == dates.values[known]).all()
    assert result.repost_table.num_rows == result.reposts.n_groups > 0
    assert result.notes[-3] == "names come from keywords: the model has random weights, so it gives no zero-shot names"
    assert result.notes[-2].startswith(f"repost groups: {result.reposts.n_groups} images or near-duplicates")
    assert result.notes[-1].startswith("posted together: no accounts posted the same images within 60 seconds")


def test_every_repost_of_a_viral_image_lands_in_its_originals_group(sample_run):
    result, _ = run_analysis_of_posts(sample_run)
    table = sample_run["table"]
    ids = table["post_id"].to_pylist()
    row = {post_id: i for i, post_id in enumerate(ids)}
    group = result.reposts.group
    reposts = [(i, row[source]) for i, source in enumerate(table["repost_of"].to_pylist()) if source]
    assert reposts
    for repost, original in reposts:
        assert group[original] >= 0 and group[repost] == group[original]
    # A group never mixes two different pictures: each holds one original with its reposts and re-saved copies.
    truth = [r or d or w or i for r, d, w, i in zip(table["repost_of"].to_pylist(), table["duplicate_of"].to_pylist(),
                                                    table["posted_with"].to_pylist(), ids, strict=True)]  # fmt: skip
    for number in range(result.reposts.n_groups):
        assert len({truth[i] for i in np.flatnonzero(group == number)}) == 1


def test_options_come_from_the_config_and_missing_columns_are_said(sample_run, tmp_path):
    prompts = tmp_path / "labels.txt"
    prompts.write_text("a banner\n")
    config = AnalyzeConfig(input="in", output="out", label_prompts=str(prompts), replace_label_prompts=True,
                           period="week", keywords=2)  # fmt: skip
    options = PostOptions.from_config(config)
    assert options.vocabulary == ("a banner",) and options.period == "week" and options.keywords == 2
    table = sample_run["table"].select(["post_id", "sha256"])
    bare = read_posts(table, detect_post_columns(table, []))
    result, _ = run_analysis_of_posts(sample_run, posts=bare, thumbnails=None, options=options)
    assert [n.split(" (")[0] for n in result.notes[:3]] == ["no text column", "no date column", "no account column"]
    assert result.notes[-2].endswith("not confirmed by perceptual hashes (no thumbnails))")
    assert result.notes[-1] == "posted together: not analysed (no account column; name one with --account-column)"
    assert result.coordination is None and result.concentration is None
    columns = result.cluster_columns("clusters", 7)  # one label more than the data holds: its cells are empty
    assert columns["keywords"][:6] == [None] * 6 and columns["name"][6] is None
    assert columns["posts"][:6] == np.bincount(sample_run["labels"]).tolist()


def test_every_level_is_described_with_the_text_tower_loaded_once(sample_run, monkeypatch):
    loads = []
    original = names.TextTower.__init__

    def counting(self, *args, **kwargs):
        loads.append(args)
        original(self, *args, **kwargs)

    monkeypatch.setattr(names.TextTower, "__init__", counting)
    labels = sample_run["labels"]
    themes = np.where(labels >= 0, labels // 2, -1)  # pairs of kinds make one theme
    metadata = {"model": sample_run["model"]}  # random weights not flagged: the zero-shot path runs on every level
    result, _ = run_analysis_of_posts(sample_run, {"themes": themes, "clusters": labels}, metadata=metadata)
    assert len(loads) == 1
    assert set(result.levels) == {"themes", "clusters"}
    n_themes = int(themes.max()) + 1
    theme_columns = result.cluster_columns("themes", n_themes)
    assert set(theme_columns["name_source"]) == {"zero-shot"} and all(theme_columns["name"])
    assert theme_columns["posts"] == np.bincount(themes).tolist()
    # A theme's keywords come from all its posts: here each theme holds two kinds, each with its own hashtag.
    for theme in range(n_themes):
        kinds = [theme * 2, theme * 2 + 1]
        kind_tags = {result.levels["clusters"].keywords.of(k)[0] for k in kinds if k <= labels.max()}
        assert kind_tags & set(theme_columns["keywords"][theme].split(";"))
    assert result.period == "day" and result.posts_summary()["period"] == "day"


def test_summaries_for_metrics_json(sample_run):
    result, _ = run_analysis_of_posts(sample_run)
    posts = result.posts_summary()
    assert (posts["text"], posts["date"], posts["account"]) == ("post_text", "created_at", "account")
    assert posts["missing"] == [] and posts["dates_unparseable"] == result.posts.dates.n_unparseable
    reposts = result.reposts_summary()
    sizes = np.bincount(result.reposts.group[result.reposts.group >= 0])
    assert reposts["groups"] == result.reposts.n_groups == len(sizes)
    assert reposts["rows_in_groups"] == sizes.sum() and reposts["largest"] == sizes.max()
    assert result.repost_table.column("posts").to_pylist()[0] == reposts["largest"]

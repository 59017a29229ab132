"""The tables a run writes, from hand-made sweep results: no UMAP, no HDBSCAN, every edge case in milliseconds.

``shard_data``, ``setting`` and ``make_run`` build an :class:`AnalysisRun` from labels chosen by the test; the report
and explorer tests import them from here.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pyarrow as pa
import pytest

from clustering import schema
from clustering.analysis import tables
from clustering.analysis.config import AnalyzeConfig
from clustering.analysis.hierarchy import levels_from_sweep
from clustering.analysis.read import ShardData, find_duplicates
from clustering.analysis.result import AnalysisRun, Clustering
from clustering.analysis.select import Selection
from clustering.analysis.sweep import SettingResult


def shard_data(
    n_points: int,
    *,
    copies: dict[int, int] | None = None,
    texts: list | None = None,
    has_thumbnails: bool = True,
    metadata: dict | None = None,
    extra: dict | None = None,
) -> ShardData:
    """``n_points`` distinct images ``p0..`` then, per ``copies`` entry (row -> point), a repost ``c<row>``."""
    copies = copies or {}
    points = list(range(n_points)) + [copies[row] for row in sorted(copies)]
    ids = [f"p{i}" for i in range(n_points)] + [f"c{row}" for row in sorted(copies)]
    columns = {
        schema.ID: ids,
        schema.URL: [f"https://example.org/{i}.jpg" for i in ids],
        schema.STATUS: ["ok"] * len(ids),
        schema.SHA256: [f"hash-{p}" for p in points],
        "post_text": texts if texts is not None else [f"text of {i}" for i in ids],
        **(extra or {}),
    }
    table = pa.table(columns)
    passthrough = [c for c in table.column_names if c not in schema.OWNED_COLUMNS]
    duplicates = find_duplicates(table[schema.SHA256])
    return ShardData(
        table=table,
        embeddings=np.zeros((duplicates.n_unique, 4), np.float32),
        duplicates=duplicates,
        points=duplicates.representatives,
        point_of_row=duplicates.inverse,
        metadata=metadata or {"model": "test-model"},
        n_total=len(ids),
        status_counts={"ok": len(ids)},
        passthrough=passthrough,
        has_thumbnails=has_thumbnails,
        n_shards=1,
    )


def setting(labels, *, mcs: int = 5, ms: int = 3, probabilities=None, outlier_scores=None) -> SettingResult:
    """A sweep result with the given per-point ``labels`` (probability 1 and outlier score 0 unless given)."""
    labels = np.asarray(labels, dtype=np.int64)
    n_clusters = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    return SettingResult(
        min_cluster_size=mcs,
        min_samples=ms,
        labels=labels,
        probabilities=np.ones(len(labels)) if probabilities is None else np.asarray(probabilities, float),
        outlier_scores=np.zeros(len(labels)) if outlier_scores is None else np.asarray(outlier_scores, float),
        persistence=np.linspace(0.9, 0.1, n_clusters),
        dbcv=0.5,
        seconds=0.01,
    )


def make_run(data: ShardData, results: list[SettingResult] | None, *, runner_ups=(), **options) -> AnalysisRun:
    """A run over ``data`` whose sweep produced ``results`` (the first chosen); None: nothing was swept."""
    config = AnalyzeConfig(input="shards", output="out", **options)
    duplicates, points = data.duplicates, data.points
    rng = np.random.default_rng(0)
    if results is None:
        clustering = Clustering(map_coords=rng.normal(size=(len(points), 2)).astype(np.float32))
    else:
        rows = [{"min_cluster_size": r.min_cluster_size, "min_samples": r.min_samples, "clusters": r.n_clusters}
                for r in results]  # fmt: skip
        clustering = Clustering(
            map_coords=rng.normal(size=(len(points), 2)).astype(np.float32),
            results=dict(enumerate(results)),
            rows=rows,
            selection=Selection(index=0, rule="test rule", reason="test reason", runner_ups=list(runner_ups)),
            levels=levels_from_sweep(rows, 0),
            params={"sweep": {"min_samples": [3]}},
        )
    outcome = tables.assemble_outcome(clustering, duplicates, data.point_of_row, alternatives=config.alternatives)
    return AnalysisRun(
        config=config,
        input_uri="/data/shards",
        data=data,
        duplicates=duplicates,
        clustering=clustering,
        outcome=outcome,
        post=schema.detect_post_columns(data.table, data.passthrough),
        notes=outcome.notes,
    )


# ------------------------------------------------------------------------------------------------ labels
def test_relabel_by_size_numbers_clusters_from_the_largest_down():
    labels, old_of_new = tables.relabel_by_size(np.array([2, 2, 0, 1, 1, -1, 1, 0, 2]))
    # sizes: 0 -> 2 rows, 1 -> 3, 2 -> 3; ties (1 and 2) keep the lower old label first
    assert labels.tolist() == [1, 1, 2, 0, 0, -1, 0, 2, 1]
    assert old_of_new.tolist() == [1, 2, 0]
    noise, order = tables.relabel_by_size(np.array([-1, -1]))
    assert noise.tolist() == [-1, -1] and order.size == 0


def test_copies_take_their_images_labels_scores_and_point():
    data = shard_data(4, copies={4: 1, 5: 1})
    run = make_run(data, [setting([0, 1, 1, -1], probabilities=[0.9, 0.8, 0.7, 0.0], outlier_scores=[0, 1, 2, 3])])
    outcome = run.outcome
    assert outcome.labels.tolist() == [1, 0, 0, -1, 0, 0]  # cluster 1 (3 rows with its copies) becomes the largest
    assert outcome.probabilities.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.0, 0.8, 0.8])
    assert outcome.outlier_scores[4] == outcome.outlier_scores[5] == outcome.outlier_scores[1] == 1
    np.testing.assert_array_equal(outcome.coords[4], outcome.coords[1])
    assert outcome.group_size.tolist() == [1, 3, 1, 1, 3, 3]
    assert outcome.is_copy.tolist() == [False, False, False, False, True, True]


def test_nothing_swept_means_every_row_is_noise_without_scores():
    run = make_run(shard_data(3), None)
    outcome = run.outcome
    assert outcome.labels.tolist() == [-1, -1, -1] and not outcome.swept
    assert outcome.probabilities.tolist() == [0, 0, 0] and outcome.n_clusters == 0
    assert outcome.noise_fraction == 1.0 and outcome.notes == () and outcome.alternatives == []
    assert tables.top_outliers(outcome, 5) == []  # no GLOSH scores without a sweep
    empty = make_run(shard_data(0), None).outcome
    assert math.isnan(empty.noise_fraction) and empty.labels.size == 0


@pytest.mark.parametrize(
    ("labels", "note"),
    [
        ([-1, -1, -1, -1], "the chosen setting labels every row as noise"),
        ([0, 0, 0, -1], "only one cluster was found"),
        ([0, 0, 1, 1], None),
    ],
)
def test_what_the_chosen_setting_found_is_stated(labels, note):
    notes = make_run(shard_data(4), [setting(labels)]).outcome.notes
    assert notes == () if note is None else len(notes) == 1 and notes[0].startswith(note)


# ------------------------------------------------------------------------------------------------ hierarchy
CHOSEN = [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, -1, -1]  # min_cluster_size 5: four clusters
COARSER = [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, -1, -1]  # 9: cluster 0 alone, clusters 1-3 together
FINER = [0, 0, 1, 2, 2, 2, 3, 3, 4, -1, 5, 5]  # 2: splits clusters 0 and 3; its cluster 5 lies in chosen noise


def three_levels() -> AnalysisRun:
    settings = [setting(CHOSEN, mcs=5), setting(COARSER, mcs=9), setting(FINER, mcs=2)]
    return make_run(shard_data(12), settings, runner_ups=(0, 1, 2))


def test_themes_and_subclusters_nest_around_the_chosen_clusters_numbered_by_size():
    outcome = three_levels().outcome
    themes, clusters, subclusters = outcome.hierarchy.levels
    assert [lv.name for lv in outcome.hierarchy.levels] == ["themes", "clusters", "subclusters"]
    assert [lv.min_cluster_size for lv in outcome.hierarchy.levels] == [9, 5, 2]
    assert clusters.labels.tolist() == outcome.labels.tolist() == CHOSEN  # the chosen clustering, unchanged
    assert themes.labels.tolist() == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, -1, -1]  # the 7-row theme is theme 0
    assert themes.parents.tolist() == [-1, -1] and clusters.parents.tolist() == [1, 0, 0, 0]
    # Restricted to rows clustered one level up (FINER's cluster 5 goes), then numbered from the largest down.
    assert subclusters.labels.tolist() == [1, 1, 3, 0, 0, 0, 2, 2, 4, -1, -1, -1]
    assert subclusters.parents.tolist() == [1, 0, 2, 0, 3]
    for fine, coarse in ((clusters, themes), (subclusters, clusters)):
        member = fine.labels >= 0
        assert (coarse.labels[member] == fine.parents[fine.labels[member]]).all()  # every row sits in its parent
    assert all(lv.labels.dtype == np.int32 and lv.parents.dtype == np.int32 for lv in outcome.hierarchy.levels)


def test_a_sweep_without_coarser_or_finer_settings_has_the_chosen_level_only():
    outcome = make_run(shard_data(4), [setting([0, 0, 1, 1])]).outcome
    assert [lv.name for lv in outcome.hierarchy.levels] == ["clusters"]
    assert make_run(shard_data(3), None).outcome.hierarchy.levels[0].labels.tolist() == [-1, -1, -1]


def test_clusters_csv_has_a_row_per_cluster_per_level_with_its_parent():
    run = three_levels()
    rows = tables.cluster_table(run)
    assert [(r["level"], r["cluster"], r["parent"], r["size"]) for r in rows] == [
        ("themes", 0, -1, 7), ("themes", 1, -1, 3),
        ("clusters", 0, 1, 3), ("clusters", 1, 0, 3), ("clusters", 2, 0, 2), ("clusters", 3, 0, 2),
        ("subclusters", 0, 1, 3), ("subclusters", 1, 0, 2), ("subclusters", 2, 2, 2), ("subclusters", 3, 0, 1),
        ("subclusters", 4, 3, 1),
    ]  # fmt: skip
    theme = rows[0]
    assert theme["exemplar_ids"] == "p3;p4;p5;p6;p7;p8;p9" and theme["mean_probability"] is None
    assert theme["persistence"] is None and rows[2]["persistence"] == pytest.approx(0.9)
    members = run.outcome.hierarchy.levels[0].labels == 0
    assert theme["x"] == pytest.approx(run.outcome.coords[members, 0].mean(), abs=1e-5)


def test_assignments_carry_one_int32_label_column_per_level():
    run = three_levels()
    table = tables.assignments_table(run)
    assert table.column_names[8:11] == ["duplicate_of", "theme", "subcluster"]
    assert table.schema.field("theme").type == table.schema.field("subcluster").type == pa.int32()
    by_id = dict(zip(table["id"].to_pylist(), table["subcluster"].to_pylist(), strict=True))
    assert [by_id[f"p{i}"] for i in range(12)] == [1, 1, 3, 0, 0, 0, 2, 2, 4, -1, -1, -1]


def test_metrics_hierarchy_lists_levels_coarse_to_fine_with_names_and_keywords():
    run = three_levels()
    extra = {"name": ["a", None], "name_source": ["keywords", None], "name_uncertain": [False, False],
             "keywords": ["#a;b", None]}  # fmt: skip
    run = dataclasses.replace(run, cluster_columns={"themes": extra})
    document = tables.hierarchy_document(run)
    assert document["chosen"] == "clusters"
    assert [(lv["name"], lv["column"], lv["min_cluster_size"]) for lv in document["levels"]] == [
        ("themes", "theme", 9), ("clusters", "cluster", 5), ("subclusters", "subcluster", 2)
    ]  # fmt: skip
    assert document["levels"][0]["clusters"] == [
        {"cluster": 0, "parent": -1, "size": 7, "name": "a", "name_source": "keywords", "uncertain": False,
         "keywords": ["#a", "b"], "mixed_keywords": []},
        {"cluster": 1, "parent": -1, "size": 3, "name": None, "name_source": None, "uncertain": False, "keywords": [],
         "mixed_keywords": []},
    ]  # fmt: skip
    assert [c["parent"] for c in document["levels"][2]["clusters"]] == [1, 0, 2, 0, 3]
    assert tables.metrics_document(run, notes=[], timings={})["hierarchy"] == document


def test_runner_ups_become_relabelled_columns_and_alternatives():
    chosen = setting([0, 0, 1, 1, 1, -1], mcs=5)
    finer = setting([1, 1, 0, 2, 2, 2], mcs=2)  # relabelled by size: old 2 (3 rows) -> 0, old 1 (2) -> 1, old 0 -> 2
    coarser = setting([0, 0, 0, 0, 0, -1], mcs=9)
    run = make_run(shard_data(6), [chosen, finer, coarser], runner_ups=(0, 1, 2), alternatives=1)
    outcome = run.outcome
    assert list(outcome.alternative_labels) == ["cluster_mcs2_ms3"]  # the chosen row is not its own runner-up
    assert outcome.alternative_labels["cluster_mcs2_ms3"].tolist() == [1, 1, 2, 0, 0, 0]
    assert [a["column"] for a in outcome.alternatives] == ["cluster", "cluster_mcs2_ms3"]
    assert outcome.alternatives[0]["label"] == "chosen: min_cluster_size=5, min_samples=3"
    assert outcome.alternatives[1]["label"] == "runner-up 1: min_cluster_size=2, min_samples=3"
    assert outcome.alternatives[1]["clusters"] == 3 and outcome.alternatives[1]["noise_fraction"] == 0.0


def test_row_order_is_cluster_then_probability_noise_last():
    labels = [1, -1, 0, 1, 0, -1]
    probabilities = [0.5, 0.0, 0.7, 0.9, 0.7, 0.0]
    outcome = make_run(shard_data(6), [setting(labels, probabilities=probabilities)]).outcome
    # old 0 and old 1 both have 2 rows: the lower old label becomes cluster 0
    assert outcome.order.tolist() == [2, 4, 3, 0, 1, 5]


# ------------------------------------------------------------------------------------------------ ranking
def test_ranked_rows_skip_copies_respect_limit_clusters_and_keep():
    data = shard_data(6, copies={6: 0, 7: 0}, texts=["a", "", "c", "d", "e", "f", "copy", "copy"])
    probabilities = [0.9, 0.8, 0.7, 0.95, 0.6, 0.5]
    run = make_run(data, [setting([0, 0, 0, 1, 1, -1], probabilities=probabilities)])
    ranked = tables.ranked_rows(run.outcome, limit=2)
    assert ranked == {0: [0, 1], 1: [3, 4]}  # copies 6, 7 of row 0 are passed over; noise row 5 never appears
    assert tables.ranked_rows(run.outcome, limit=5, clusters=[1]) == {1: [3, 4]}
    with_text = tables.ranked_rows(run.outcome, limit=5, keep=lambda row: bool(run.texts[row]))
    assert with_text == {0: [0, 2], 1: [3, 4]}


def test_top_outliers_are_distinct_images_highest_first_ties_in_row_order():
    data = shard_data(4, copies={4: 3})
    run = make_run(data, [setting([0, 0, -1, -1], outlier_scores=[0.1, 0.5, 0.5, 0.9])])
    assert tables.top_outliers(run.outcome, 10) == [3, 1, 2, 0]  # row 4 (copy of 3) is not listed again
    assert tables.top_outliers(run.outcome, 2) == [3, 1]


# ------------------------------------------------------------------------------------------------ tables
def test_cluster_table_counts_rows_copies_exemplars_and_centroids():
    data = shard_data(5, copies={5: 0, 6: 0})
    probabilities = [0.6, 0.9, 0.8, 0.5, 0.0]
    run = make_run(data, [setting([0, 0, 0, 1, -1], probabilities=probabilities)])
    rows = tables.cluster_table(run)
    assert [(r["level"], r["cluster"], r["parent"]) for r in rows] == [("clusters", 0, -1), ("clusters", 1, -1)]
    first = rows[0]
    assert (first["size"], first["duplicates"]) == (5, 2)
    assert first["exemplar_ids"] == "p1;p2;p0"  # distinct images only, highest probability first
    assert first["mean_probability"] == pytest.approx((0.6 * 3 + 0.9 + 0.8) / 5)
    members = run.outcome.labels == 0
    assert first["x"] == pytest.approx(run.outcome.coords[members, 0].mean(), abs=1e-5)
    assert first["persistence"] == pytest.approx(0.9)
    assert list(first) == list(tables.CLUSTER_COLUMNS)
    assert tables.cluster_table(make_run(shard_data(3), [setting([-1, -1, -1])])) == []


def test_cluster_and_row_columns_of_later_features_are_merged_in_place():
    run = make_run(shard_data(4), [setting([0, 0, 1, -1])])
    names = pa.array(["cats", "dogs", "noise", "cats"])  # in shard row order
    run = dataclasses.replace(
        run, cluster_columns={"clusters": {"name": ["cats", "dogs"]}}, row_columns={"repost_group": names}
    )
    assert [r["name"] for r in tables.cluster_table(run)] == ["cats", "dogs"]
    table = tables.assignments_table(run)
    assert table.column_names.index("repost_group") == table.column_names.index("post_text") - 1
    by_id = dict(zip(table["id"].to_pylist(), table["repost_group"].to_pylist(), strict=True))
    assert by_id == {"p0": "cats", "p1": "dogs", "p2": "noise", "p3": "cats"}
    with pytest.raises(ValueError, match=r"cluster_columns\['clusters'\]\['name'\] has 1 values for 2 clusters"):
        tables.cluster_table(dataclasses.replace(run, cluster_columns={"clusters": {"name": ["cats"]}}))
    with pytest.raises(ValueError, match=r"row_columns\['x2'\] has 2 values for 4 rows"):
        tables.assignments_table(dataclasses.replace(run, row_columns={"x2": pa.array([1, 2])}))


def test_assignments_follow_the_contract_and_never_overwrite_owned_columns():
    data = shard_data(3, copies={3: 2}, extra={"duplicate_of": ["x", "y", "z", "w"], "account": list("abcd")})
    run = make_run(data, [setting([0, 0, 1], probabilities=[0.5, 0.9, 1.0])])
    table = tables.assignments_table(run)
    assert table.column_names == ["id", "url", "x", "y", "cluster", "probability", "outlier_score", "sha256",
                                  "duplicate_of", "post_text", "account"]  # fmt: skip
    assert table["id"].to_pylist() == ["p1", "p0", "p2", "c3"]  # cluster 0 by probability, then cluster 1
    assert table["duplicate_of"].to_pylist() == [None, None, None, "p2"]  # the analysis' column, not the input's
    assert table.schema.field("cluster").type == pa.int32() and table.schema.field("x").type == pa.float32()


def test_metrics_document_records_the_run():
    run = make_run(shard_data(4, copies={4: 0}), [setting([0, 0, 1, 1])])
    document = tables.metrics_document(run, notes=["a note"], timings={"read": 0.5, "total": 1.0})
    assert list(document) == ["input", "model", "model_random_weights", "n_total_rows", "status_counts", "n_rows",
                              "n_unique", "n_duplicates", "keep_duplicates", "n_clusters", "noise_fraction", "params",
                              "chosen", "selection", "runner_ups", "alternatives", "granularity", "timings",
                              "metric_docs", "notes", "shard_metadata", "hierarchy"]  # fmt: skip
    assert (document["n_rows"], document["n_unique"], document["n_duplicates"]) == (5, 4, 1)
    assert document["model"] == "test-model" and document["notes"] == ["a note"]
    assert document["params"]["config"]["output"] == "out" and document["chosen"] == run.clustering.rows[0]
    assert document["selection"]["rule"] == "test rule" and document["timings"] == {"read": 0.5, "total": 1.0}

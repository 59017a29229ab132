"""The Analyze job end to end: real shards in, the output folder of docs/analysis-outputs.md out.

One module-scoped run on 4 well-separated blobs (with failed rows, exact reposts and hostile post text) feeds most
assertions; the CLI is exercised in subprocesses for its exit codes and one-line errors.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from clustering.analysis import AnalyzeConfig, documents, gpu, run_analysis
from clustering.analysis.cluster.select import partition_key
from clustering.config import ConfigError
from tests.test_shards import MODEL_META, blobs, thumbnail, write_shards

ALWAYS = (
    "assignments.parquet",
    "assignments.csv",
    "clusters.csv",
    "repost_groups.csv",
    "coordination.csv",
    "coordinated_pairs.csv",
    "sweep.csv",
    "sweep.json",
    "metrics.json",
    "map.png",
    "sweep.png",
    "clusters_over_time.png",
    "report.md",
    "report.html",
)

REPO = Path(__file__).resolve().parents[1]
N_POINTS = 400
N_COPIES = 24
N_FAILED = 12
GRID = "8,15,30"
MIN_SAMPLES = (3, 5)
HOSTILE = "<script>alert('x')</script> & <img src=x onerror=alert(1)>"


def fast_config(input_dir: Path, output_dir: Path, **overrides) -> AnalyzeConfig:
    """Small, quick settings: few epochs, a three-value grid, no explorer unless asked."""
    values = {
        "input": str(input_dir),
        "output": str(output_dir),
        "min_cluster_sizes": GRID,
        "min_samples": MIN_SAMPLES,
        "n_epochs": 30,
        "silhouette_sample_size": 300,
        "explorer": False,
        "progress": False,
        **overrides,
    }
    return AnalyzeConfig(**values)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyze") / "shards"
    X, labels = blobs(N_POINTS, dim=32, clusters=4)
    texts = [f"post {i}: {HOSTILE}" for i in range(N_POINTS)] + [f"repost {k}" for k in range(N_COPIES)]
    # Copies of the first N_COPIES points, some copied twice.
    copies = {N_POINTS + k: k % (N_COPIES // 2) for k in range(N_COPIES)}
    written = write_shards(root, X, labels=labels, duplicates_of=copies, failed=N_FAILED, texts=texts)
    return root, written


@pytest.fixture(scope="module")
def analysis(shards, tmp_path_factory):
    root, written = shards
    out = tmp_path_factory.mktemp("analyze") / "out"
    result = run_analysis(fast_config(root, out, max_montages=3, alternatives=2))
    return result, out, written


def test_every_output_file_exists_and_parses(analysis):
    result, out, _ = analysis
    for name in ALWAYS:
        assert (out / name).is_file(), name
    pq.read_table(out / "assignments.parquet")
    pd.read_csv(out / "assignments.csv")
    pd.read_csv(out / "clusters.csv")
    pd.read_csv(out / "sweep.csv")
    json.loads((out / "sweep.json").read_text())
    json.loads((out / "metrics.json").read_text())
    pd.read_csv(out / "repost_groups.csv")
    for png in ("map.png", "sweep.png", "clusters_over_time.png"):
        assert Image.open(out / png).format == "PNG"
    montages = sorted((out / "montages").iterdir())
    assert [m.name for m in montages] == ["cluster_000.jpg", "cluster_001.jpg", "cluster_002.jpg", "outliers.jpg",
                                          "reposts.jpg"]  # fmt: skip
    assert all(Image.open(m).format == "JPEG" for m in montages)
    assert result.report_html == str(out / "report.html")
    assert Path(result.report_html).is_absolute()


def test_assignments_follow_the_contract(analysis):
    _result, out, written = analysis
    table = pq.read_table(out / "assignments.parquet")
    assert table.num_rows == written["n_ok"] == N_POINTS + N_COPIES
    assert sorted(table["id"].to_pylist()) == sorted(written["ok_ids"])
    fixed = ["id", "url", "x", "y", "cluster", "probability", "outlier_score", "sha256", "duplicate_of"]
    assert table.column_names[: len(fixed)] == fixed
    metrics = json.loads((out / "metrics.json").read_text())
    level_columns = [lv["column"] for lv in metrics["hierarchy"]["levels"] if lv["column"] != "cluster"]
    alternatives = [entry["column"] for entry in metrics["alternatives"][1:]]  # runner-ups, then the ladder's
    assert sum(entry["label"].startswith("runner-up") for entry in metrics["alternatives"]) == 2
    assert {rung["column"] for rung in metrics["granularity"]} <= {"cluster", *alternatives}
    assert table.column_names[len(fixed) :] == [*level_columns, *alternatives, "repost_group", "post_time",
                                                "repost_order", "repost_delay_s", "repost_variant",
                                                "coordinated_group", "batch", "label_source", "post_text",
                                                "account"]  # fmt: skip
    types_ = {f.name: f.type for f in table.schema}
    assert types_["x"] == types_["y"] == types_["probability"] == types_["outlier_score"] == pa.float32()
    assert types_["cluster"] == pa.int32() and all(types_[c] == pa.int32() for c in alternatives)
    assert "thumbnail" not in table.column_names and "embedding" not in table.column_names
    csv = pd.read_csv(out / "assignments.csv")
    assert len(csv) == table.num_rows and "post_text" in csv.columns


def test_assignments_are_sorted_by_cluster_then_probability_noise_last(analysis):
    _, out, _ = analysis
    frame = pq.read_table(out / "assignments.parquet").to_pandas()
    key = list(zip(frame.cluster < 0, frame.cluster, -frame.probability, strict=True))
    assert key == sorted(key)


def test_clusters_recover_the_blobs(analysis):
    result, out, written = analysis
    frame = pq.read_table(out / "assignments.parquet").to_pandas()
    truth = frame.id.map(written["labels"])
    assert result.n_clusters == 4
    assert adjusted_rand_score(truth, frame.cluster) > 0.9
    sizes = frame[frame.cluster >= 0].cluster.value_counts().sort_index().tolist()
    assert sizes == sorted(sizes, reverse=True)  # clusters are numbered from the largest down


def test_duplicates_share_everything_and_are_counted(analysis):
    result, out, _written = analysis
    frame = pq.read_table(out / "assignments.parquet").to_pandas().set_index("id")
    copies = frame[frame.duplicate_of.notna()]
    assert len(copies) == N_COPIES
    # The representative is the first copy in shard order (not necessarily the "original" post).
    groups = frame.groupby("sha256")
    assert all(group.duplicate_of.isna().sum() == 1 for _, group in groups)
    assert sum(len(group) - 1 for _, group in groups) == N_COPIES
    for _, row in copies.iterrows():
        original = frame.loc[row.duplicate_of]
        assert pd.isna(original.duplicate_of)
        for column in ("cluster", "probability", "outlier_score", "x", "y", "sha256"):
            assert row[column] == original[column], column
    assert result.n_unique == N_POINTS
    clusters = pd.read_csv(out / "clusters.csv")
    assert list(clusters.columns)[:10] == list(documents.CLUSTER_COLUMNS)
    assert {"name", "keywords", "first_seen", "last_seen", "peak_period", "posts", "accounts",
            "top_account_share"} <= set(clusters.columns)  # fmt: skip
    clusters = clusters[clusters.level == "clusters"]
    clustered_copies = copies[copies.cluster >= 0]
    assert clusters.duplicates.sum() == len(clustered_copies)
    per_cluster = clustered_copies.cluster.value_counts()
    for _, row in clusters.iterrows():
        assert row.duplicates == per_cluster.get(row.cluster, 0)
        assert row["size"] == (frame.cluster == row.cluster).sum()
        exemplars = row.exemplar_ids.split(";")
        assert 1 <= len(exemplars) <= 8
        assert frame.loc[exemplars].duplicate_of.isna().all()  # exemplars are distinct images
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_rows"] == N_POINTS + N_COPIES and metrics["n_unique"] == N_POINTS
    assert metrics["n_duplicates"] == N_COPIES
    html = (out / "report.html").read_text()
    assert "reposts" in html and f"{N_COPIES} exact reposts" in html


def test_sweep_has_one_row_per_setting(analysis):
    _, out, _ = analysis
    sweep = pd.read_csv(out / "sweep.csv")
    expected = {(m, s) for m in (8, 15, 30) for s in MIN_SAMPLES}
    eom, leaf = sweep[sweep.selection == "eom"], sweep[sweep.selection == "leaf"]
    assert len(eom) + len(leaf) == len(sweep)  # no other selection method
    assert len(eom) == len(expected)
    assert set(zip(eom.min_cluster_size, eom.min_samples, strict=True)) == expected
    # A leaf row only where it differs from the EOM row of the same sizes: at most one per setting.
    assert set(zip(leaf.min_cluster_size, leaf.min_samples, strict=True)) <= expected
    assert not leaf.duplicated(["min_cluster_size", "min_samples"]).any()
    rows = json.loads((out / "sweep.json").read_text())
    assert len(rows) == len(sweep)


def test_metrics_json_records_the_choice(analysis):
    result, out, _ = analysis
    metrics = json.loads((out / "metrics.json").read_text())
    rows = json.loads((out / "sweep.json").read_text())
    index = metrics["selection"]["index"]
    assert metrics["chosen"] == rows[index]
    assert metrics["chosen"]["min_cluster_size"] == result.chosen["min_cluster_size"]
    assert {"rule", "reason", "pinned"} <= set(metrics["selection"])
    assert metrics["selection"]["pinned"] is False
    assert metrics["model"] == MODEL_META["model"]
    assert metrics["input"] == str(Path(metrics["input"]).resolve())
    first = metrics["alternatives"][0]
    assert first["column"] == "cluster"
    assert (first["min_cluster_size"], first["min_samples"]) == (
        metrics["chosen"]["min_cluster_size"],
        metrics["chosen"]["min_samples"],
    )
    table = pq.read_table(out / "assignments.parquet")
    chosen_key = partition_key(table["cluster"].fill_null(-1).to_numpy())
    for alternative in metrics["alternatives"][1:]:
        if alternative["label"].startswith("runner-up"):  # a runner-up is another clustering, not a copy
            assert partition_key(table[alternative["column"]].fill_null(-1).to_numpy()) != chosen_key
        leaf = "_leaf" if alternative["selection"] == "leaf" else ""
        setting = f"mcs{alternative['min_cluster_size']}_ms{alternative['min_samples']}{leaf}"
        assert alternative["column"] == f"cluster_{setting}"
        assert alternative["column"] in table.column_names
        assert alternative["noise_fraction"] == pytest.approx(
            float(np.mean(table[alternative["column"]].to_numpy() < 0))
        )
    assert all(r in rows for r in metrics["runner_ups"])
    for step in ("read", "reduce", "sweep", "metrics", "selection", "outputs", "plots", "montages", "report"):
        assert step in metrics["timings"], step
    assert list(metrics["timings"])[-1] == "total"
    assert metrics["metric_docs"]


def test_report_references_only_files_that_exist(analysis):
    _, out, _ = analysis
    html = (out / "report.html").read_text()
    targets = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert "map.png" in targets and "sweep.png" in targets and "montages/cluster_000.jpg" in targets
    for target in targets:
        assert "://" not in target and not target.startswith("/"), target
        assert (out / target).exists(), target
    markdown = (out / "report.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", markdown):
        assert (out / target).exists(), target


def test_report_escapes_passthrough_text(analysis):
    _, out, _ = analysis
    html = (out / "report.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(" in html
    markdown = (out / "report.md").read_text()
    assert "<script>" not in markdown and "<img" not in markdown


def test_report_states_model_parameters_and_selection(analysis):
    _result, out, _ = analysis
    html = (out / "report.html").read_text()
    assert MODEL_META["model"] in html
    assert "Rule:" in html and "Why:" in html
    assert "min_cluster_size" in html and "config.n_neighbors" in html
    assert "<th>modularity_filled</th>" in html  # the rule's score is a column of the sweep table
    # The rule reads plainly in the Markdown report too (no "&lt;=" from escaping comparison signs).
    rule = re.search(r"^\*\*Rule:\*\* (.*)$", (out / "report.md").read_text(), re.M).group(1)
    assert rule.endswith("among settings with at most 50% noise and at least 2 clusters") and "&" not in rule
    # The glossary is there but folded, so that the clusters follow the sweep without a page of definitions.
    glossary = re.search(r"<details class=\"docs\"><summary>What the metrics mean.*?</details>", html, re.S)
    assert glossary and "<dt>modularity_filled</dt>" in glossary.group(0)
    assert "montages are drawn for the 3 largest of 4 clusters" in html


def test_summary_lines_end_with_the_report_path(analysis):
    result, out, _ = analysis
    lines = result.summary_lines()
    assert lines[-1] == f"report: {out / 'report.html'}"
    assert any(line.startswith("chosen: min_cluster_size=") for line in lines)


def test_existing_output_is_refused_then_overwritten(analysis, shards, tmp_path):
    root, _ = shards
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    with pytest.raises(ConfigError, match="--overwrite"):
        run_analysis(fast_config(root, out))
    (out / "montages").mkdir()
    (out / "montages" / "cluster_999.jpg").write_bytes(b"stale")
    result = run_analysis(fast_config(root, out, overwrite=True, min_cluster_sizes="15", min_samples=(5,)))
    assert (out / "keep.txt").read_text() == "user file"  # only the job's own files are replaced
    assert not (out / "montages" / "cluster_999.jpg").exists()
    assert result.n_rows == N_POINTS + N_COPIES


def test_pinned_setting_is_chosen_and_added_to_the_grid(shards, tmp_path):
    root, _ = shards
    result = run_analysis(
        fast_config(
            root,
            tmp_path / "out",
            min_cluster_sizes="8,30",
            min_samples=(5,),
            pin_min_cluster_size=12,
            pin_min_samples=4,
        )
    )
    assert (result.chosen["min_cluster_size"], result.chosen["min_samples"]) == (12, 4)
    assert result.selection["pinned"] is True
    sweep = pd.read_csv(tmp_path / "out" / "sweep.csv")
    assert (sweep.selection == "eom").sum() == 3 * 2  # {8, 12, 30} x {4, 5}


def test_keep_duplicates_clusters_every_copy(shards, tmp_path):
    root, written = shards
    result = run_analysis(fast_config(root, tmp_path / "out", keep_duplicates=True, min_samples=(5,)))
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["keep_duplicates"] is True
    assert result.n_rows == written["n_ok"]
    frame = pq.read_table(tmp_path / "out" / "assignments.parquet").to_pandas()
    assert frame.duplicate_of.notna().sum() == N_COPIES  # still flagged as reposts
    assert (pd.read_csv(tmp_path / "out" / "sweep.csv").n == written["n_ok"]).all()  # each setting clustered every row
    assert "every copy was clustered" in (tmp_path / "out" / "report.html").read_text()


def test_explorer_is_built_at_the_end_and_can_be_rebuilt_alone(shards, tmp_path):
    root, _ = shards
    out = tmp_path / "out"
    result = run_analysis(fast_config(root, out, explorer=True, min_samples=(5,)))
    assert result.explorer_html == str(out / "explorer.html")
    page = (out / "explorer.html").read_text()
    assert "<script>alert(" not in page  # the explorer escapes the hostile post text too
    assert 'href="explorer.html"' in (out / "report.html").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert "explorer" in metrics["timings"]
    report_before = (out / "report.html").read_bytes()
    (out / "explorer.html").unlink()
    rebuilt = run_analysis(AnalyzeConfig(output=str(out), explorer_only=True))
    assert rebuilt.n_rows == result.n_rows and rebuilt.chosen == result.chosen
    assert (out / "report.html").read_bytes() == report_before  # nothing else is rewritten
    # The page built from the run in memory and the one rebuilt from the folder show the same data and images.
    assert (out / "explorer.html").read_text() == page


# ----------------------------------------------------------------------------------------------------------- CLI
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / "analyze.py"), *args], capture_output=True, text=True, timeout=300
    )


def load_job():
    spec = importlib.util.spec_from_file_location("analyze_job", REPO / "jobs" / "analyze.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--output", "OUT"), "--input is required"),
        (("--input", "SHARDS", "--output", "OUT", "--min-samples", "0"), "--min-samples"),
        (("--input", "SHARDS", "--output", "OUT", "--min-cluster-sizes", "9:3"), "--min-cluster-sizes"),
        (("--input", "SHARDS", "--output", "OUT", "--max-noise", "2"), "--max-noise"),
        (("--input", "SHARDS", "--output", "OUT", "--resolution", "0"), "--resolution must be a positive number"),
        (("--input", "SHARDS", "--output", "OUT", "--cluster-selection", "eom,tree"), "--cluster-selection"),
        (("--input", "SHARDS", "--output", "OUT", "--n-neighbors", "many"), "n_neighbors"),
        (("--input", "MISSING", "--output", "OUT"), "no embedding shards"),
        (("--input", "SHARDS", "--output", "EXISTING"), "--overwrite"),
        (("--output", "OUT", "--explorer-only"), "run the analysis first"),
        (("--input", "SHARDS", "--output", "OUT", "--date-column", "posted"), "--date-column: no column 'posted'"),
        (("--input", "SHARDS", "--output", "OUT", "--label-prompts", "EMPTY"), "--label-prompts: "),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(shards, tmp_path, capsys, caplog, args, message):
    root, _ = shards
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "something").write_text("x")
    empty = tmp_path / "labels.txt"
    empty.write_text("# no label here\n")
    paths = {
        "SHARDS": str(root),
        "OUT": str(tmp_path / "out"),
        "MISSING": str(tmp_path / "missing"),
        "EXISTING": str(existing),
        "EMPTY": str(empty),
    }
    caplog.set_level(logging.INFO)
    code = load_job().main([paths.get(a, a) for a in args])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("analyze.py: error:") and message in lines[0]
    assert not any(r.getMessage().startswith("reduce:") for r in caplog.records)  # refused before the reduction


def test_cli_error_in_a_real_process_is_one_line_without_traceback(tmp_path):
    done = run_cli("--input", str(tmp_path / "missing"), "--output", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"analyze.py: error: --input {tmp_path / 'missing'}: no embedding shards (part-*.parquet) found; "
        "run jobs/embed.py first or check the path"
    ]
    assert done.stdout == ""


def test_job_runs_from_yaml_with_flag_overrides(shards, tmp_path, capsys, caplog):
    root, written = shards
    config = tmp_path / "analyze.yaml"
    config.write_text(
        f"input: {root}\noutput: {tmp_path / 'out'}\nmin-cluster-sizes: [8, 30]\nmin_samples: 5\n"
        "n_epochs: 30\nexplorer: false\nprogress: false\nalternatives: 3\n"
    )
    caplog.set_level(logging.INFO)
    code = load_job().main(["--config", str(config), "--alternatives", "1"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"report: {tmp_path / 'out' / 'report.html'}"
    assert any(line.startswith("chosen: min_cluster_size=") for line in lines)
    logged = [r.getMessage() for r in caplog.records]
    for step in ("read:", "reduce:", "sweep:", "metrics:", "selection:", "outputs:", "plots:", "montages:", "report:"):
        assert any(m.startswith(step) for m in logged), step  # one log line per step, with its time
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["params"]["sweep"]["min_cluster_sizes"] == [8, 30]
    assert sum(a["label"].startswith("runner-up") for a in metrics["alternatives"]) == 1  # the flag beat the YAML's 3
    assert metrics["n_rows"] == written["n_ok"]


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        load_job().main(["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    for flag in (
        "--input",
        "--output",
        "--cluster-dims",
        "--map",
        "--seed",
        "--n-neighbors",
        "--min-dist",
        "--map-min-dist",
        "--n-epochs",
        "--min-cluster-sizes",
        "--min-samples",
        "--max-noise",
        "--resolution",
        "--pin-min-cluster-size",
        "--pin-min-samples",
        "--silhouette-sample-size",
        "--alternatives",
        "--keep-duplicates",
        "--explorer-only",
        "--no-explorer",
        "--overwrite",
        "--config",
    ):
        assert flag in help_text, flag


def test_thumbnail_montage_shows_the_clusters_exemplars(analysis):
    _, out, written = analysis
    clusters = pd.read_csv(out / "clusters.csv")
    exemplars = clusters[clusters.level == "clusters"].exemplar_ids.iloc[0].split(";")
    sheet = Image.open(out / "montages" / "cluster_000.jpg").convert("RGB")
    for i, key in enumerate(exemplars):  # the first tiles are the exemplars, in order (5 tiles of 128 px a row)
        x, y = 4 + (i % 5) * 132 + 64, 4 + (i // 5) * 132 + 40
        expected = Image.open(io.BytesIO(thumbnail(written["labels"][key]))).convert("RGB").getpixel((12, 12))
        assert np.abs(np.subtract(sheet.getpixel((x, y)), expected)).max() < 24, (i, key)


# ------------------------------------------------------------------------------- posts: names, time, accounts, reposts
N_TOPICS = 4
PER_TOPIC = 90
REPOSTED = 5  # this image (topic 1) is posted again 20 times, re-encoded and resized
N_REPOSTS = 20
BURST_DAY = "2025-09-10"  # half of topic 2's posts fall on this day
TRIO = ("trio_a", "trio_b", "trio_c")  # the only accounts posting topic 0
HOSTILE_ACCOUNT = "<b onmouseover=alert(3)>mallory</b>"
HOSTILE_LABELS = ('<img src=x onerror="alert(4)"> a poster', "<script>alert(5)</script> a flag")


def patterned(seed: int, size: int = 96) -> Image.Image:
    """A picture of its own: a random 4x4 colour grid, so unrelated pictures have unrelated perceptual hashes."""
    grid = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(grid).resize((size, size), Image.Resampling.NEAREST)


def jpeg(image: Image.Image, *, quality: int = 85, scale: float = 1.0) -> bytes:
    if scale != 1.0:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def topic_posts(n: int, topics: np.ndarray, rng: np.random.Generator) -> tuple[list, list, list]:
    """Texts (a topic hashtag among filler words and hostile markup), accounts and ISO dates of ``n`` posts."""
    filler = ["soleil", "plage", "train", "café", "livre", "match", "pluie", "musique", "ville", "jardin"]
    texts, accounts, dates = [], [], []
    for i in range(n):
        topic = int(topics[i])
        words = " ".join(rng.choice(filler, size=3, replace=False))
        texts.append(f"{words} #sujet{topic} {HOSTILE}")
        if topic == 0:
            accounts.append(TRIO[i % 3])
        else:
            accounts.append(HOSTILE_ACCOUNT if i % 10 == 3 else f"user{rng.integers(0, 40)}")
        day = 10 if topic == 2 and i % 2 == 0 else int(rng.integers(1, 21))
        dates.append(f"2025-09-{day:02d}T{rng.integers(0, 24):02d}:15:00+02:00")
    for i in (7, 8, 9):
        dates[i] = "not a date"
    dates[10] = ""
    return texts, accounts, dates


@pytest.fixture(scope="module")
def posts_analysis(tmp_path_factory, tiny_model_dir):
    rng = np.random.default_rng(7)
    X, topics = blobs(N_TOPICS * PER_TOPIC, dim=32, clusters=N_TOPICS, spread=0.08)
    copies = X[REPOSTED] + 0.01 * rng.standard_normal((N_REPOSTS, 32)) / np.sqrt(32)
    X = np.vstack([X, copies / np.linalg.norm(copies, axis=1, keepdims=True)]).astype(np.float32)
    topics = np.concatenate([topics, np.full(N_REPOSTS, topics[REPOSTED])])
    texts, accounts, dates = topic_posts(len(X), topics, rng)
    thumbnails = [jpeg(patterned(i)) for i in range(N_TOPICS * PER_TOPIC)] + [
        jpeg(patterned(REPOSTED), quality=40 + 2 * k, scale=0.5 + 0.02 * k) for k in range(N_REPOSTS)
    ]
    root = tmp_path_factory.mktemp("posts")
    written = write_shards(
        root / "shards",
        X,
        labels=topics,
        texts=texts,
        thumbnails=thumbnails,
        accounts=accounts,
        columns={"created_at": dates},
        failed=4,
        metadata={"model": tiny_model_dir, "random_weights": False},  # the tiny CLIP's text tower names clusters
    )
    prompts = root / "labels.txt"
    prompts.write_text("\n".join(HOSTILE_LABELS) + "\n", encoding="utf-8")
    config = fast_config(
        root / "shards",
        root / "out",
        label_prompts=str(prompts),
        replace_label_prompts=True,
        min_cluster_sizes="8,30",
        min_samples=(5,),
        # The topics are the clusters; min_cluster_size 8 also separates the repost burst: a sub-cluster of its topic.
        pin_min_cluster_size=30,
    )
    result = run_analysis(config)
    return result, root / "out", written


def cluster_of_topic(out: Path, written: dict, topic: int) -> int:
    frame = pq.read_table(out / "assignments.parquet").to_pandas()
    return int(frame[frame.id.map(written["labels"]) == topic].cluster.mode()[0])


def chosen_clusters(out: Path) -> pd.DataFrame:
    frame = pd.read_csv(out / "clusters.csv", keep_default_na=False, na_values=[""])
    return frame[frame.level == "clusters"].set_index("cluster")


def test_a_topics_hashtag_is_among_its_clusters_keywords_and_names_are_zero_shot(posts_analysis):
    result, out, written = posts_analysis
    assert result.n_clusters == N_TOPICS
    clusters = chosen_clusters(out)
    for topic in range(N_TOPICS):
        assert f"#sujet{topic}" in clusters.loc[cluster_of_topic(out, written, topic), "keywords"].split(";")
    assert set(clusters.name_source) == {"zero-shot"} and set(clusters.name) <= set(HOSTILE_LABELS)


def test_the_burst_day_is_the_peak_period_inside_first_and_last_seen(posts_analysis):
    _, out, written = posts_analysis
    row = chosen_clusters(out).loc[cluster_of_topic(out, written, 2)]
    assert row.peak_period == BURST_DAY
    assert row.first_seen[:10] <= BURST_DAY <= row.last_seen[:10]
    assert (out / "clusters_over_time.png").is_file()
    assert Image.open(out / "clusters_over_time.png").format == "PNG"


def test_a_topic_posted_by_three_accounts_has_a_top_share_of_at_least_a_third(posts_analysis):
    _, out, written = posts_analysis
    row = chosen_clusters(out).loc[cluster_of_topic(out, written, 0)]
    assert row.accounts == 3 and row.top_account in TRIO
    assert row.top_account_share == pytest.approx(1 / 3, abs=1e-6)  # the trio posts in turn: exactly a third each


def test_twenty_reencoded_resized_copies_form_one_repost_group_and_nothing_else_does(posts_analysis):
    _, out, written = posts_analysis
    frame = pq.read_table(out / "assignments.parquet").to_pandas().set_index("id")
    assert str(frame.repost_group.dtype) == "int32"
    copies = [written["ids"][i] for i in [REPOSTED, *range(N_TOPICS * PER_TOPIC, N_TOPICS * PER_TOPIC + N_REPOSTS)]]
    assert frame.loc[copies].repost_group.nunique() == 1 and frame.loc[copies[0]].repost_group >= 0
    assert (frame.drop(index=copies).repost_group == -1).all()  # unrelated images join no group
    groups = pd.read_csv(out / "repost_groups.csv")
    assert len(groups) == 1 and groups.posts[0] == N_REPOSTS + 1 and groups.accounts[0] >= 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["reposts"]["groups"], metrics["reposts"]["largest"]) == (1, N_REPOSTS + 1)


def test_post_times_are_parsed_dates_and_metrics_say_what_was_unreadable(posts_analysis):
    _, out, written = posts_analysis
    table = pq.read_table(out / "assignments.parquet")
    assert table.schema.field("post_time").type == pa.timestamp("ms", tz="UTC")
    assert table["post_time"].null_count == 4  # three unparseable, one blank
    frame = table.to_pandas().set_index("id")
    first = frame.loc[written["ids"][0]]
    assert first.post_time == pd.Timestamp(first.created_at).tz_convert("UTC")  # "+02:00" read as an instant
    posts = json.loads((out / "metrics.json").read_text())["posts"]
    assert posts == {"text": "post_text", "date": "created_at", "account": "account", "missing": [],
                     "dates_unparseable": 3, "dates_missing": 1, "period": "day"}  # fmt: skip
    html = (out / "report.html").read_text()
    assert "Post columns: text: post_text; date: created_at (3 unparseable, 1 missing); account: account." in html


def test_the_repost_burst_is_a_subcluster_of_its_topic_and_every_level_is_a_label_column(posts_analysis):
    _, out, written = posts_analysis
    metrics = json.loads((out / "metrics.json").read_text())
    levels = metrics["hierarchy"]["levels"]
    table = pq.read_table(out / "assignments.parquet")
    clusters = pd.read_csv(out / "clusters.csv")
    assert [lv["name"] for lv in levels] == list(dict.fromkeys(clusters.level)) == ["clusters", "subclusters"]
    frame = table.to_pandas().set_index("id")
    burst = [written["ids"][i] for i in [REPOSTED, *range(N_TOPICS * PER_TOPIC, N_TOPICS * PER_TOPIC + N_REPOSTS)]]
    subcluster = frame.loc[burst].subcluster
    assert subcluster.nunique() == 1 and (frame.subcluster == subcluster.iloc[0]).sum() == len(burst)
    assert levels[1]["clusters"][subcluster.iloc[0]]["parent"] == cluster_of_topic(out, written, 1)
    for coarse, fine in itertools.pairwise(levels):
        labels = table[fine["column"]].to_numpy()
        above = table[coarse["column"]].to_numpy()
        parents = np.array([c["parent"] for c in fine["clusters"]])
        assert (above[labels >= 0] == parents[labels[labels >= 0]]).all()  # every row sits in its parent
    for level in levels:
        assert table.schema.field(level["column"]).type == pa.int32()
        sizes = np.bincount(table[level["column"]].to_numpy() + 1, minlength=len(level["clusters"]) + 1)[1:]
        assert [c["size"] for c in level["clusters"]] == sizes.tolist()
        assert (clusters.level == level["name"]).sum() == len(level["clusters"])


def test_the_report_shows_names_timelines_accounts_and_reposts(posts_analysis):
    _, out, _ = posts_analysis
    html = (out / "report.html").read_text()
    for heading in ("Clusters over time", "Most active accounts", "Most reposted images"):
        assert f"<h2>{heading}</h2>" in html, heading
    assert 'src="clusters_over_time.png"' in html and 'src="montages/reposts.jpg"' in html
    assert (out / "montages" / "reposts.jpg").is_file()
    assert "#sujet0" in html and "trio_a" in html


def test_post_text_accounts_and_names_stay_inert_in_the_browser(posts_analysis):
    from tests.browser import launch_chromium

    _, out, _ = posts_analysis
    with launch_chromium() as browser:
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto((out / "report.html").resolve().as_uri())
        page.wait_for_load_state("load")
        for summary in page.query_selector_all("summary"):
            summary.click()  # open the hierarchy: names inside it render too
        page.mouse.move(10, 10)
        text = page.inner_text("body")
        injected = page.evaluate(
            "() => document.querySelectorAll('script, img[src=\"x\"], [onerror], [onmouseover]').length"
        )
    assert dialogs == [] and injected == 0
    assert HOSTILE in text and HOSTILE_ACCOUNT in text  # shown as text, not parsed as markup
    assert any(label in text for label in HOSTILE_LABELS)
    markdown = (out / "report.md").read_text()
    assert "<script>" not in markdown and "<img" not in markdown and "<b " not in markdown


# ------------------------------------------------------------------------------------ threads, cache and the GPU
def test_metrics_json_lists_the_choice_at_every_resolution(analysis):
    _, out, _ = analysis
    metrics = json.loads((out / "metrics.json").read_text())
    ladder = metrics["granularity"]
    assert len(ladder) >= 2
    assert ladder[0]["resolution_from"] == 0.25 and ladder[-1]["resolution_to"] == 4.0
    assert all(a["resolution_to"] == b["resolution_from"] for a, b in itertools.pairwise(ladder))
    assert [rung["clusters"] for rung in ladder] == sorted(rung["clusters"] for rung in ladder)  # coarse to fine
    chosen = [rung for rung in ladder if rung["column"] == "cluster"]
    assert len(chosen) == 1 and chosen[0]["resolution_from"] <= 0.8 <= chosen[0]["resolution_to"]
    table = pq.read_table(out / "assignments.parquet")
    for rung in ladder:
        labels = table[rung["column"]].to_numpy()
        assert rung["clusters"] == len(set(labels[labels >= 0].tolist()))
    report = (out / "report.html").read_text()
    assert "<h3>Granularity</h3>" in report and all(f"<code>{rung['column']}</code>" in report for rung in ladder)


def test_metrics_json_states_how_the_layouts_ran_and_where(analysis):
    _, out, _ = analysis
    metrics = json.loads((out / "metrics.json").read_text())
    params = metrics["params"]
    assert params["backend"] == gpu.detect().reason  # here: "CPU: cuML is not installed" unless a GPU is present
    assert params["reduction"]["init"] == "pca" and params["reduction"]["threads"] >= 1
    assert params["reduction"]["layout"].startswith("reproducible") and params["parallel_layout"].startswith(
        "reproducible (auto"
    )


def test_without_cuml_the_cpu_path_is_chosen_and_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "cuml", None)  # an import of cuML fails, as where it is not installed
    assert gpu.detect("auto") == gpu.Backend(False, "CPU: cuML is not installed")
    assert gpu.detect("cpu") == gpu.Backend(False, "CPU: requested")
    with pytest.raises(ConfigError, match="--backend gpu: cuML is not installed"):
        gpu.detect("gpu")


def test_backend_gpu_without_cuml_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "cuml", None)
    code = load_job().main(["--input", str(tmp_path), "--output", str(tmp_path / "out"), "--backend", "gpu"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--backend gpu: cuML is not installed" in lines[0]


def _python(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | env
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    return done.stdout.strip()


def test_the_compile_cache_defaults_to_a_user_folder_before_numba_loads(tmp_path):
    code = "from clustering.cli import keep_compile_cache as k; print(k()); import numba; print(numba.config.CACHE_DIR)"
    chosen, used = _python(code, XDG_CACHE_HOME=str(tmp_path)).splitlines()
    assert chosen == used == str(tmp_path / "clipcluster" / "numba") and Path(chosen).is_dir()
    mine = str(tmp_path / "mine")
    assert _python(code, XDG_CACHE_HOME=str(tmp_path), NUMBA_CACHE_DIR=mine).splitlines() == [mine, mine]


@pytest.mark.parametrize("job", ["analyze", "embed", "pipeline"])
def test_entrypoints_load_numba_only_after_the_cache_is_set(job):
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('job', 'jobs/{job}.py'); "
        "spec.loader.exec_module(importlib.util.module_from_spec(spec)); print('numba' in sys.modules)"
    )
    assert _python(code) == "False"

"""The generated demo sample: deterministic, every kind present, near-duplicates and broken files where promised."""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pytest
from PIL import Image

from clustering.config import DecodeOptions, PreprocessSpec
from clustering.devtools.sample import BROKEN, KINDS, MANIFEST_COLUMNS, main, make_sample
from clustering.ingest.decode import decode_image

N = 60  # 51 originals (8-9 per kind), 6 near-duplicates, 3 broken files: seconds, not minutes


def read_manifest(info) -> list[dict]:
    with info.manifest.open(newline="") as handle:
        return list(csv.DictReader(handle))


def digest_tree(root) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    info = make_sample(tmp_path_factory.mktemp("sample"), n_images=N, seed=0)
    return info, read_manifest(info)


def test_same_seed_same_bytes(sample, tmp_path):
    info, _ = sample
    again = make_sample(tmp_path / "again", n_images=N, seed=0)
    assert digest_tree(again.outdir) == digest_tree(info.outdir)


def test_other_seed_other_images(sample, tmp_path):
    info, _ = sample
    other = make_sample(tmp_path / "other", n_images=N, seed=1)
    assert digest_tree(other.outdir) != digest_tree(info.outdir)


def test_manifest_columns_and_rows(sample):
    info, rows = sample
    assert info.n_rows == N == len(rows)
    assert tuple(rows[0]) == MANIFEST_COLUMNS
    assert len({r["post_id"] for r in rows}) == N
    assert all(r["post_text"].strip() for r in rows)
    assert all((info.outdir / r["path"]).is_file() and r["url"] == r["path"] for r in rows)


def test_every_kind_is_present_and_balanced(sample):
    info, rows = sample
    counts = {kind: sum(r["kind"] == kind for r in rows) for kind in KINDS}
    assert min(counts.values()) >= 8 and max(counts.values()) - min(counts.values()) <= 3
    assert info.counts == {**counts, BROKEN: 3}


def test_images_decode_with_sizes_in_range(sample):
    info, rows = sample
    for row in rows:
        if row["kind"] == BROKEN:
            continue
        with Image.open(info.outdir / row["path"]) as img:
            assert img.format in ("PNG", "JPEG")
            # Originals are 64-256 px; near-duplicates lose at most 8 % per side to their crop.
            assert min(img.size) >= 54 and max(img.size) <= 256


def test_broken_files_fail_as_expected(sample):
    info, rows = sample
    options, spec = DecodeOptions(), PreprocessSpec()
    broken = {r["path"].split("_", 1)[1]: r for r in rows if r["kind"] == BROKEN}
    statuses = {
        name: decode_image((info.outdir / r["path"]).read_bytes(), options, spec).status for name, r in broken.items()
    }
    assert statuses == {"truncated.jpg": "decode_error", "html.jpg": "not_image", "empty.jpg": "not_image"}


def box_colours(info, row) -> np.ndarray:
    """4x4 box-averaged colours: robust to a small crop, brightness change and JPEG re-encoding."""
    with Image.open(info.outdir / row["path"]) as img:
        return np.asarray(img.convert("RGB").resize((4, 4), Image.Resampling.BOX), float)


def test_near_duplicates_are_closest_to_their_original_but_not_copies(sample):
    info, rows = sample
    originals = [r for r in rows if r["kind"] != BROKEN and not r["duplicate_of"]]
    dups = [r for r in rows if r["duplicate_of"]]
    assert len(dups) == info.near_duplicates == N // 10
    for dup in dups:
        colours = box_colours(info, dup)
        nearest = min(originals, key=lambda r: np.abs(box_colours(info, r) - colours).mean())
        assert nearest["post_id"] == dup["duplicate_of"]
        assert dup["kind"] == nearest["kind"]
        assert (info.outdir / dup["path"]).read_bytes() != (info.outdir / nearest["path"]).read_bytes()


def test_kinds_are_visually_distinct(sample):
    """A nearest-centroid classifier on crude image statistics separates the kinds: they are not all alike."""
    info, rows = sample
    feats, labels = [], []
    for row in rows:
        if row["kind"] == BROKEN or row["duplicate_of"]:
            continue
        grey = np.asarray(Image.open(info.outdir / row["path"]).convert("L").resize((64, 64)), float) / 255
        edges = np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()
        hist = np.histogram(grey, bins=8, range=(0, 1))[0] / grey.size
        feats.append([edges * 10, grey.std() * 4, (hist > 0.02).sum() / 8])
        labels.append(row["kind"])
    feats, labels = np.array(feats), np.array(labels)
    centroids = {k: feats[labels == k].mean(axis=0) for k in KINDS}
    predicted = [min(centroids, key=lambda k: np.linalg.norm(f - centroids[k])) for f in feats]
    accuracy = np.mean(np.array(predicted) == labels)
    assert accuracy > 0.5  # chance is 1/6


def test_url_prefix_and_cli(tmp_path, capsys):
    main([str(tmp_path), "--n-images", "12", "--seed", "3", "--url-prefix", "http://127.0.0.1:8000/"])
    assert "wrote 12 rows" in capsys.readouterr().out
    with (tmp_path / "urls.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(r["url"] == "http://127.0.0.1:8000/" + r["path"] for r in rows)


def test_too_few_images_is_refused(tmp_path):
    with pytest.raises(ValueError, match="n_images must be at least 10"):
        make_sample(tmp_path, n_images=5)

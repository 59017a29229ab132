"""Repost groups: real image files through the real decode and embed path (tiny CLIP), perceptual hashes, tables."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from clustering.analysis.posts.columns import parse_accounts
from clustering.analysis.posts.reposts import (
    RepostGroups,
    find_repost_groups,
    hash_similarity,
    perceptual_hash,
    perceptual_hashes,
    repost_group_table,
)
from clustering.analysis.shards import find_duplicates
from clustering.analysis.space.knn_graph import knn_graph
from clustering.config import DecodeOptions, PreprocessSpec
from clustering.devtools.sample import GENERATORS
from clustering.ingest.clip_embedder import ClipEmbedder, model_info, preprocess_dict
from clustering.ingest.decode import decode_image

N_COPIES = 20


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def poster(seed: int, text: str = "RASSEMBLEMENT") -> Image.Image:
    """A flyer-like picture: a gradient background, a few bold shapes and a text line."""
    rng = np.random.default_rng(seed)
    img = GENERATORS["gradient"](rng, 320, 240)
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = rng.uniform(0, 220), rng.uniform(0, 150)
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.rectangle((x0, y0, x0 + rng.uniform(40, 100), y0 + rng.uniform(30, 90)), fill=fill)
    draw.text((20, 200), f"{text} {seed} PLACE DE LA REPUBLIQUE", fill=(0, 0, 0))
    return img


def unrelated_images() -> list[Image.Image]:
    """Pictures that are not copies of one another: other posters and every generated kind."""
    rng = np.random.default_rng(7)
    images = [poster(seed) for seed in range(100, 106)]
    for _, generate in sorted(GENERATORS.items()):
        images.extend(generate(rng, int(rng.integers(120, 300)), int(rng.integers(120, 300))) for _ in range(2))
    return images


def reposted_copies(original: Image.Image) -> list[bytes]:
    """Twenty reposts: resized to 50-95 % and re-encoded at JPEG quality 40-90, two of them byte-identical."""
    rng = np.random.default_rng(3)
    copies = []
    for index in range(N_COPIES - 2):
        scale = rng.uniform(0.5, 0.95)
        size = (int(original.width * scale), int(original.height * scale))
        resized = original.resize(size, Image.Resampling.BICUBIC if index % 2 else Image.Resampling.LANCZOS)
        copies.append(jpeg(resized, quality=int(rng.integers(40, 91))))
    return [*copies, copies[0], copies[1]]  # exact reposts too: the same bytes, folded by sha256


@pytest.fixture(scope="module")
def collection(tmp_path_factory, tiny_model_dir):
    """Real files on disk, decoded and embedded as ingest does: the original, its copies, unrelated images."""
    folder = tmp_path_factory.mktemp("reposts")
    original = poster(1)
    blobs = [jpeg(original, 95), *reposted_copies(original), *(jpeg(img) for img in unrelated_images())]
    paths = []
    for index, blob in enumerate(blobs):
        path = folder / f"post{index:03d}.jpg"
        path.write_bytes(blob)
        paths.append(path)
    options, spec = DecodeOptions(), PreprocessSpec()
    decoded = [decode_image(path.read_bytes(), options, spec) for path in paths]
    assert all(d.status == "ok" for d in decoded)
    info = model_info(tiny_model_dir)
    embedder = ClipEmbedder(model=tiny_model_dir, preprocess=preprocess_dict(info.preprocess), batch_size=16)
    height, width = spec.crop
    pixels = np.stack([np.frombuffer(d.pixels, np.uint8).reshape(height, width, 3) for d in decoded])
    duplicates = find_duplicates([d.sha256 for d in decoded])
    return {
        "embeddings": embedder.embed(pixels)[duplicates.representatives],
        "duplicates": duplicates,
        "thumbnails": [decoded[row].thumbnail for row in duplicates.representatives],
        "n_related": 1 + N_COPIES,
    }


def loader(thumbnails):
    return lambda indices: [thumbnails[i] for i in indices]


def test_twenty_reencoded_resized_copies_form_one_group_and_unrelated_images_join_none(collection):
    groups = find_repost_groups(
        collection["embeddings"],
        inverse=collection["duplicates"].inverse,
        thumbnails=loader(collection["thumbnails"]),
    )
    related = collection["n_related"]
    assert groups.n_groups == 1
    assert (groups.group[:related] == 0).all()
    assert (groups.group[related:] == -1).all()
    assert groups.rejected_pairs > 0  # the random-weight CLIP found candidates that only the hash told apart


def test_the_reductions_knn_graph_gives_the_same_groups(collection):
    X = collection["embeddings"]
    graph = knn_graph(X, n_neighbors=15, metric="cosine")
    inverse = collection["duplicates"].inverse
    passed = find_repost_groups(X, inverse=inverse, knn=graph, thumbnails=loader(collection["thumbnails"]))
    computed = find_repost_groups(X, inverse=inverse, thumbnails=loader(collection["thumbnails"]))
    assert (passed.group == computed.group).all()


def test_without_thumbnails_candidates_stand_on_similarity_alone(collection):
    X = collection["embeddings"]
    inverse = collection["duplicates"].inverse
    groups = find_repost_groups(X, inverse=inverse, min_similarity=0.9999)
    assert groups.rejected_pairs == 0 and groups.unconfirmed_pairs == groups.candidate_pairs
    missing = find_repost_groups(X, inverse=inverse, thumbnails=lambda idx: [None] * len(idx))
    assert missing.unconfirmed_pairs == missing.candidate_pairs > 0


def test_the_hash_survives_reencoding_and_resizing_but_not_another_picture():
    original = poster(5)
    reference = perceptual_hash(jpeg(original))
    copy = perceptual_hash(jpeg(original.resize((200, 150)), quality=45))
    other = perceptual_hash(jpeg(poster(6)))
    assert hash_similarity(reference, copy)[0] > 0.98
    assert hash_similarity(reference, other)[0] < 0.9
    hashes, valid = perceptual_hashes([jpeg(original), None, b"not an image", jpeg(Image.new("RGB", (64, 64)))])
    assert valid.tolist() == [True, False, False, False]  # missing, unreadable and flat images have no hash
    assert hashes.shape == (4, 189) and np.allclose(np.linalg.norm(hashes[0]), 1.0, atol=1e-5)


def test_exact_duplicates_alone_form_a_group():
    X = np.eye(4, dtype=np.float32)  # four unrelated images
    inverse = np.array([0, 1, 1, 2, 3, 1])  # image 1 posted three times
    groups = find_repost_groups(X, inverse=inverse)
    assert groups.group.tolist() == [-1, 0, 0, -1, -1, 0] and groups.candidate_pairs == 0


def test_groups_are_numbered_largest_first():
    X = np.array([[1, 0, 0], [0.999, 0.0447, 0], [0, 1, 0], [0, 0.9999, 0.01414], [0, 0.9995, 0.0316], [0, 0, 1]])
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    groups = find_repost_groups(X, min_similarity=0.99)
    assert groups.group.tolist() == [1, 1, 0, 0, 0, -1] and groups.n_groups == 2


def test_group_table_records_size_first_poster_dates_and_accounts():
    X = np.eye(3, dtype=np.float32)
    inverse = np.array([0, 0, 0, 1, 2, 2])
    groups = find_repost_groups(X, inverse=inverse)
    dates = np.array(["2025-09-10T12:00", "2025-09-10T09:00", "NaT", "2025-09-01", "NaT", "NaT"], dtype="datetime64[s]")
    accounts = parse_accounts(["relay", "origin", "relay", "solo", "a", "b"])
    table = repost_group_table(groups, ["r0", "r1", "r2", "r3", "r4", "r5"], dates=dates, accounts=accounts,
                               labels=[3, 3, -1, 0, 5, 5])  # fmt: skip
    rows = table.to_pylist()
    assert rows[0] == {
        "repost_group": 0,
        "posts": 3,
        "images": 1,
        "first_id": "r1",
        "first_poster": "origin",
        "first_seen": "2025-09-10T09:00:00Z",
        "last_seen": "2025-09-10T12:00:00Z",
        "accounts": 2,
        "cluster": 3,
    }
    assert rows[1]["first_id"] == "r4" and rows[1]["first_seen"] is None and rows[1]["cluster"] == 5
    bare = repost_group_table(groups, ["r0", "r1", "r2", "r3", "r4", "r5"]).to_pylist()
    assert bare[0]["first_id"] == "r0" and bare[0]["first_poster"] is None and bare[0]["accounts"] is None


def test_degenerate_inputs_give_valid_results():
    assert find_repost_groups(np.zeros((0, 8), np.float32)).n_groups == 0
    one = find_repost_groups(np.ones((1, 8), np.float32) / np.sqrt(8), inverse=np.array([0, 0]))
    assert one.group.tolist() == [0, 0]
    with pytest.raises(ValueError, match="min_similarity must be in"):
        find_repost_groups(np.eye(2, dtype=np.float32), min_similarity=0)
    with pytest.raises(ValueError, match="inverse must index the 2 images"):
        find_repost_groups(np.eye(2, dtype=np.float32), inverse=np.array([0, 2]))


def test_images_named_by_row_give_the_groups_of_their_copied_embeddings():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 16)).astype(np.float32)
    X[10:14] = X[10] + 0.01 * rng.standard_normal((4, 16))  # one near-duplicate group among the rows
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    images = np.array([0, 2, 4, 10, 11, 12, 13, 20, 21])  # the distinct images are every other row and the group
    inverse = np.repeat(np.arange(len(images)), 2)  # two posts per image
    copied = find_repost_groups(X[images], inverse=inverse)
    by_row = find_repost_groups(X, images=images, inverse=inverse)
    assert by_row.group.tolist() == copied.group.tolist()
    assert by_row.n_groups == copied.n_groups == 6  # the near-duplicates, and each other image posted twice
    assert len(set(by_row.group[6:14].tolist())) == 1  # the four near-duplicates (posts 6-13) form one group


def test_rejected_candidates_are_kept_as_template_pairs_and_grouped_images_keep_their_hashes(collection):
    groups = find_repost_groups(
        collection["embeddings"],
        inverse=collection["duplicates"].inverse,
        thumbnails=loader(collection["thumbnails"]),
    )
    assert groups.template_pairs.shape == (groups.rejected_pairs, 2)
    assert (groups.template_pairs[:, 0] < groups.template_pairs[:, 1]).all()
    hashes = groups.hashes
    image_group = np.full(len(collection["embeddings"]), -1)
    image_group[groups.image] = groups.group
    assert (image_group[hashes.images] >= 0).all() and hashes.valid.all()  # only grouped images are kept
    assert set(hashes.images.tolist()) == set(np.flatnonzero(image_group >= 0).tolist())
    vectors, valid = hashes.lookup(np.array([hashes.images[0], len(image_group) - 1]))
    assert valid.tolist() == [True, False] and np.allclose(vectors[1], 0.0)
    # Without thumbnails there is nothing to keep; the older positional construction still works.
    bare = find_repost_groups(collection["embeddings"], inverse=collection["duplicates"].inverse)
    assert bare.hashes is None and bare.template_pairs.shape == (0, 2)
    legacy = RepostGroups(bare.group, bare.image, bare.n_groups, 0, 0, 0)
    assert legacy.template_pairs.shape == (0, 2) and legacy.hashes is None

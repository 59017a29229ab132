"""Repost groups: the same picture posted again, re-encoded, resized or lightly cropped, across the whole collection.

Exact copies (same sha256) are one image already. Near-duplicates are found among the distinct images in two steps:

1. candidates: pairs of kNN neighbours whose embeddings have cosine similarity >= ``min_similarity`` (the kNN graph
   the reduction already computed, or one computed here), so the cost grows with n * k, never n**2;
2. confirmation: where both thumbnails exist, their perceptual hashes must have cosine similarity >=
   ``min_hash_similarity``. Two different pictures of one scene can be close in CLIP space; their hashes differ.

The perceptual hash is the 8x8 lowest-frequency DCT coefficients of each colour channel of a 32x32 thumbnail, DC
left out (so brightness shifts do not count), as a unit vector of 189 numbers. Not the 64 bits of the classic pHash:
its bits are signs of coefficients relative to their median, and on smooth images (gradients, skies, flat posters)
most coefficients sit near that median, so re-encoding alone flipped a median 24 of 64 bits of a generated gradient,
while the vector's similarity stayed >= 0.998; colour also tells apart two pictures with one grey pattern.

Confirmed pairs are joined into connected components; every component with two or more posts is a repost group.
The candidates the hash rejected are kept as ``template_pairs`` (CLIP-close, hash-far: a meme format reused with new
content), and the hashes of the grouped images as ``hashes``, for the lineage's variants (``lineage.py``).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
from PIL import Image, UnidentifiedImageError

from clustering.analysis.defaults import MIN_HASH_SIMILARITY, MIN_SIMILARITY
from clustering.analysis.posts.columns import Accounts

__all__ = [
    "ImageHashes",
    "RepostGroups",
    "find_repost_groups",
    "hash_similarity",
    "perceptual_hash",
    "perceptual_hashes",
    "repost_group_table",
]

# Neighbours per image searched when no kNN graph is passed in (the reduction's default n_neighbors is 15).
NEIGHBOURS = 16
_CHUNK_ROWS = 16_384  # rows gathered at once: two 32 MiB float32 blocks at 512-D (image and neighbour), whatever n
_HASH_SIDE = 32  # thumbnail side the DCT runs on
_HASH_FREQUENCIES = 8  # the 8x8 lowest frequencies of each channel, DC excluded: 3 * 63 numbers
_HASH_SIZE = 3 * (_HASH_FREQUENCIES**2 - 1)

ThumbnailLoader = Callable[[np.ndarray], Sequence[bytes | None]]


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II basis: ``D @ x`` is the DCT of a length-n signal."""
    k = np.arange(n)[:, None]
    basis = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    return basis


_DCT = _dct_matrix(_HASH_SIDE)


def perceptual_hash(image: bytes) -> np.ndarray | None:
    """Perceptual hash of an encoded image: a float32 unit vector of 189 numbers; None when unreadable or flat.

    Colour 32x32 (box-filtered), 2-D DCT per channel, the 8x8 lowest frequencies without DC. Compare two hashes
    with a dot product (:func:`hash_similarity`).
    """
    try:
        with Image.open(io.BytesIO(image)) as img:
            img.draft("RGB", (_HASH_SIDE, _HASH_SIDE))  # JPEG: decode at a reduced scale, several times faster
            rgb = img.convert("RGB").resize((_HASH_SIDE, _HASH_SIDE), Image.Resampling.BOX)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None
    channels = np.asarray(rgb, dtype=np.float64).transpose(2, 0, 1)  # (3, 32, 32)
    coefficients = (_DCT @ channels @ _DCT.T)[:, :_HASH_FREQUENCIES, :_HASH_FREQUENCIES]
    vector = coefficients.reshape(3, -1)[:, 1:].ravel()
    norm = np.linalg.norm(vector)
    return (vector / norm).astype(np.float32) if norm > 1e-6 else None  # a flat image has no pattern to compare


def perceptual_hashes(images: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of many images: ``(hashes, valid)``, a float32 (n, 189) matrix and a bool array; rows of missing,
    unreadable or flat images are zero and invalid."""
    hashes = np.zeros((len(images), _HASH_SIZE), dtype=np.float32)
    valid = np.zeros(len(images), dtype=bool)
    for row, blob in enumerate(images):
        found = None if blob is None else perceptual_hash(blob)
        if found is not None:
            hashes[row], valid[row] = found, True
    return hashes, valid


def hash_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of perceptual hashes, row by row (1: the same picture)."""
    return np.einsum("ij,ij->i", np.atleast_2d(a), np.atleast_2d(b))


@dataclasses.dataclass(frozen=True)
class ImageHashes:
    """Perceptual hashes of some distinct images.

    Attributes
    ----------
    images : numpy.ndarray
        int64 image indices, ascending.
    vectors : numpy.ndarray
        float32 ``(len(images), 189)`` unit hashes (:func:`perceptual_hash`); zero rows where ``valid`` is False.
    valid : numpy.ndarray
        bool per image: its thumbnail was present, readable and not flat.
    """

    images: np.ndarray
    vectors: np.ndarray
    valid: np.ndarray

    def lookup(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, valid)`` of ``images``; an image not held here is invalid, with a zero vector."""
        images = np.asarray(images, dtype=np.int64)
        if not len(self.images):
            return np.zeros((len(images), _HASH_SIZE), np.float32), np.zeros(len(images), dtype=bool)
        position = np.minimum(np.searchsorted(self.images, images), len(self.images) - 1)
        valid = (self.images[position] == images) & self.valid[position]
        return np.where(valid[:, None], self.vectors[position], 0.0).astype(np.float32), valid


def _no_pairs() -> np.ndarray:
    return np.zeros((0, 2), np.int64)


@dataclasses.dataclass(frozen=True)
class RepostGroups:
    """Repost groups of n rows.

    Attributes
    ----------
    group : numpy.ndarray
        int64 per row: its repost group, -1 when the row's image was posted once. Groups are numbered from the
        largest (most rows) down; ties by first row.
    image : numpy.ndarray
        int64 per row: its distinct image (the ``inverse`` given, or the row itself).
    n_groups : int
    candidate_pairs : int
        Neighbour pairs with cosine similarity >= ``min_similarity``.
    rejected_pairs : int
        Candidates whose thumbnails' hashes are less similar than ``min_hash_similarity``.
    unconfirmed_pairs : int
        Candidates kept on similarity alone: a thumbnail was missing or unreadable.
    template_pairs : numpy.ndarray
        int64 ``(rejected_pairs, 2)`` image pairs ``(i, j)``, i < j, that were candidates (CLIP-close) but whose
        hashes were far: the same template with new content. Empty without thumbnails.
    hashes : ImageHashes or None
        The hashes of the images in a group that were hashed (those in candidate pairs); None without thumbnails.
    """

    group: np.ndarray
    image: np.ndarray
    n_groups: int
    candidate_pairs: int
    rejected_pairs: int
    unconfirmed_pairs: int
    template_pairs: np.ndarray = dataclasses.field(default_factory=_no_pairs)
    hashes: ImageHashes | None = None


def find_repost_groups(
    embeddings: np.ndarray,
    *,
    images: np.ndarray | None = None,
    inverse: np.ndarray | None = None,
    knn=None,
    thumbnails: ThumbnailLoader | None = None,
    min_similarity: float = MIN_SIMILARITY,
    min_hash_similarity: float = MIN_HASH_SIMILARITY,
    seed: int | None = 42,
) -> RepostGroups:
    """Group rows whose images are exact or near-duplicates of each other.

    Parameters
    ----------
    embeddings : numpy.ndarray
        ``(m, d)`` L2-normalised embeddings of the distinct images (after folding exact duplicates), or of every row
        with ``images`` naming the rows that are the distinct images.
    images : numpy.ndarray, optional
        The row of ``embeddings`` holding each distinct image (e.g. ``Duplicates.representatives``): the embeddings
        are read through it chunk by chunk, never copied whole. Default: each row of ``embeddings`` is one image.
    inverse : numpy.ndarray, optional
        int per row: the row's distinct image (``clustering.analysis.shards.Duplicates.inverse``). Default: one row
        per image.
    knn : clustering.analysis.space.knn_graph.KnnGraph, optional
        A neighbour graph over the same ``m`` images (``indices`` ``(m, k)``, the image itself first), as the
        reduction computes it. When None, a cosine graph with ``NEIGHBOURS`` neighbours is computed here.
    thumbnails : callable, optional
        ``loader(image_indices) -> sequence of JPEG bytes or None``, asked once for the images in candidate pairs
        only (e.g. ``read_thumbnails`` on their ids). None: candidates are kept on similarity alone.
    min_similarity : float, default MIN_SIMILARITY
        Cosine similarity a neighbour pair needs to be a candidate, in (0, 1].
    min_hash_similarity : float, default MIN_HASH_SIMILARITY
        Perceptual-hash similarity two thumbnails need, in [-1, 1].
    seed : int or None, default 42
        Seed of the kNN search when it is computed here (pynndescent above 40,000 images).

    Returns
    -------
    RepostGroups
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    X = np.asarray(embeddings, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (images, dim), got shape {X.shape}")
    if not 0.0 < min_similarity <= 1.0:
        raise ValueError(f"min_similarity must be in (0, 1], got {min_similarity}")
    if not -1.0 <= min_hash_similarity <= 1.0:
        raise ValueError(f"min_hash_similarity must be in [-1, 1], got {min_hash_similarity}")
    rows = np.arange(X.shape[0], dtype=np.int64) if images is None else np.asarray(images, dtype=np.int64)
    m = len(rows)
    image = np.arange(m, dtype=np.int64) if inverse is None else np.asarray(inverse, dtype=np.int64)
    if len(image) and (image.min() < 0 or image.max() >= m):
        raise ValueError(f"inverse must index the {m} images")
    pairs = _candidate_pairs(X, rows, knn, min_similarity, seed)
    keep, unconfirmed, hashes = _confirm(pairs, thumbnails, min_hash_similarity)
    confirmed = pairs[keep]
    graph = coo_matrix((np.ones(len(confirmed)), (confirmed[:, 0], confirmed[:, 1])), shape=(m, m))
    _, component = connected_components(graph, directed=False)
    row_component = component[image] if m else image
    group, n_groups = _number_groups(row_component)
    template_pairs = pairs[~keep]
    return RepostGroups(
        group,
        image,
        n_groups,
        len(pairs),
        len(template_pairs),
        unconfirmed,
        template_pairs=template_pairs,
        hashes=_grouped_hashes(hashes, group, image, m),
    )


def _candidate_pairs(X: np.ndarray, images: np.ndarray, knn, min_similarity: float, seed: int | None) -> np.ndarray:
    """Unique (i, j), i < j, neighbour pairs of images (``X[images]``) with cosine similarity >= min_similarity, as an
    (p, 2) int64 array of image indices."""
    m = len(images)
    if m < 2:
        return np.zeros((0, 2), np.int64)
    if knn is None:
        from clustering.analysis.space.knn_graph import knn_graph

        knn = knn_graph(X[images], n_neighbors=min(NEIGHBOURS, m), metric="cosine", seed=seed)
    indices = np.asarray(knn.indices, dtype=np.int64)
    if indices.shape[0] != m:
        raise ValueError(f"knn has {indices.shape[0]} rows for {m} images")
    left, right = [], []
    for start in range(0, m, _CHUNK_ROWS):  # bounded memory: one chunk of gathered neighbour vectors at a time
        rows = np.arange(start, min(start + _CHUNK_ROWS, m))
        own = X[images[rows]]
        for column in indices[rows, 1:].T:
            valid = (column >= 0) & (column != rows)  # pynndescent marks missing neighbours with -1
            # Similarity from the embeddings themselves, whatever metric or approximation built the graph; only
            # the few close pairs survive to be deduplicated, so no sort over all n * k pairs.
            similarity = np.einsum("ij,ij->i", own, X[images[np.where(valid, column, rows)]])
            close = valid & (similarity >= min_similarity)
            left.append(np.minimum(rows[close], column[close]))
            right.append(np.maximum(rows[close], column[close]))
    keys = np.unique(np.concatenate(left) * m + np.concatenate(right)) if left else np.zeros(0, np.int64)
    return np.stack([keys // m, keys % m], axis=1)


def _confirm(
    pairs: np.ndarray, thumbnails: ThumbnailLoader | None, minimum: float
) -> tuple[np.ndarray, int, ImageHashes | None]:
    """Which candidate pairs survive the hash check, how many were kept without one, and the hashes computed."""
    keep = np.ones(len(pairs), dtype=bool)
    if thumbnails is None or not len(pairs):
        return keep, len(pairs), None
    images = np.unique(pairs)
    blobs = thumbnails(images)
    if len(blobs) != len(images):
        raise ValueError(f"the thumbnail loader returned {len(blobs)} items for {len(images)} images")
    hashes, valid = perceptual_hashes(blobs)
    a, b = np.searchsorted(images, pairs[:, 0]), np.searchsorted(images, pairs[:, 1])
    both = valid[a] & valid[b]
    far = both & (hash_similarity(hashes[a], hashes[b]) < minimum)
    keep &= ~far
    return keep, int((~both).sum()), ImageHashes(images, hashes, valid)


def _grouped_hashes(hashes: ImageHashes | None, group: np.ndarray, image: np.ndarray, m: int) -> ImageHashes | None:
    """Only the hashes of images in a repost group are kept: the lineage compares a group's copies with its first."""
    if hashes is None:
        return None
    image_group = np.full(m, -1, dtype=np.int64)
    image_group[image] = group
    grouped = image_group[hashes.images] >= 0
    return ImageHashes(hashes.images[grouped], hashes.vectors[grouped], hashes.valid[grouped])


def _number_groups(component: np.ndarray) -> tuple[np.ndarray, int]:
    """Components with >= 2 rows become groups 0, 1, ... by size (descending), then first row; the rest -1."""
    if not len(component):
        return np.zeros(0, np.int64), 0
    ids, first_row, inverse, sizes = np.unique(component, return_index=True, return_inverse=True, return_counts=True)
    grouped = np.flatnonzero(sizes >= 2)
    order = grouped[np.lexsort((first_row[grouped], -sizes[grouped]))]
    number = np.full(len(ids), -1, dtype=np.int64)
    number[order] = np.arange(len(order))
    return number[inverse], len(order)


def repost_group_table(
    groups: RepostGroups,
    ids,
    *,
    dates: np.ndarray | None = None,
    accounts: Accounts | None = None,
    labels=None,
) -> pa.Table:
    """One row per repost group: the ``repost_groups.csv`` table.

    Parameters
    ----------
    groups : RepostGroups
    ids : sequence of str
        Row ids (the ``id`` column), in the order of ``groups.group``.
    dates : numpy.ndarray, optional
        Per-row ``datetime64`` (NaT unknown). Without dates "first" means first in row order.
    accounts : Accounts, optional
    labels : array-like of int, optional
        Per-row cluster labels: each group gets the cluster most of its rows belong to.

    Returns
    -------
    pyarrow.Table
        ``repost_group``, ``posts``, ``images`` (distinct files), ``first_id`` (the earliest post: its thumbnail
        shows the group), ``first_poster``, ``first_seen``, ``last_seen`` (ISO 8601 UTC), ``accounts`` (distinct),
        ``cluster``; sorted by group number. Unknown values are null.
    """
    member = np.flatnonzero(groups.group >= 0)
    group = groups.group[member]
    g = groups.n_groups
    seconds = _seconds(dates, len(groups.group))[member]
    # Earliest dated post first (undated after), then row order: the first row of each group in this order is
    # its first post.
    order = np.lexsort((member, seconds, group))
    starts = np.searchsorted(group[order], np.arange(g))
    first = member[order[starts]]
    posts = np.bincount(group, minlength=g)
    dated = seconds != _UNDATED
    first_seen = np.full(g, _UNDATED)
    last_seen = np.full(g, np.iinfo(np.int64).min)
    np.minimum.at(first_seen, group[dated], seconds[dated])
    np.maximum.at(last_seen, group[dated], seconds[dated])
    has_date = np.bincount(group[dated], minlength=g) > 0
    columns = {
        "repost_group": pa.array(np.arange(g), pa.int64()),
        "posts": pa.array(posts, pa.int64()),
        "images": pa.array(_distinct_per_group(group, groups.image[member], g), pa.int64()),
        "first_id": pa.array([str(ids[i]) for i in first], pa.string()),
        "first_poster": pa.array(
            [accounts.name_of(int(accounts.codes[i])) for i in first] if accounts is not None else [None] * g,
            pa.string(),
        ),
        "first_seen": pa.array(_iso(first_seen, has_date), pa.string()),
        "last_seen": pa.array(_iso(last_seen, has_date), pa.string()),
        "accounts": pa.array(
            _distinct_per_group(group, np.asarray(accounts.codes)[member], g) if accounts is not None else [None] * g,
            pa.int64(),
        ),
        "cluster": pa.array(_majority(group, member, labels, g), pa.int64()),
    }
    return pa.table(columns)


_UNDATED = np.iinfo(np.int64).max


def _seconds(dates: np.ndarray | None, n: int) -> np.ndarray:
    if dates is None:
        return np.full(n, _UNDATED)
    values = np.asarray(dates, dtype="datetime64[s]")
    return np.where(np.isnat(values), _UNDATED, values.astype(np.int64))


def _iso(seconds: np.ndarray, valid: np.ndarray) -> list[str | None]:
    return [f"{np.datetime64(int(s), 's')}Z" if ok else None for s, ok in zip(seconds, valid, strict=True)]


def _distinct_per_group(group: np.ndarray, values: np.ndarray, g: int) -> np.ndarray:
    """How many distinct non-negative ``values`` each of the ``g`` groups holds."""
    values = np.asarray(values, dtype=np.int64)
    known = values >= 0
    width = int(values[known].max()) + 1 if known.any() else 1
    pairs = np.unique(group[known] * width + values[known])
    return np.bincount(pairs // width, minlength=g)


def _majority(group, member, labels, g: int) -> list | np.ndarray:
    """The label most rows of each group carry (ties: the lowest label); null without labels."""
    if labels is None:
        return [None] * g
    values = np.asarray(labels, dtype=np.int64)[member]
    offset = values.min() if len(values) else 0
    width = int(values.max() - offset + 1) if len(values) else 1
    pairs, counts = np.unique(group * width + (values - offset), return_counts=True)
    owner = pairs // width
    order = np.lexsort((pairs, -counts, owner))
    best = order[np.searchsorted(owner[order], np.arange(g))]
    return pairs[best] % width + offset

"""Synthetic CLIP-like embeddings with known labels, for tests, benchmarks and choosing defaults.

Real CLIP image embeddings of a social-media collection look roughly like this: unit vectors in a narrow cone (random
pairs have cosine ~0.2-0.5, not 0), themes made of a few related sub-topics, clusters of very different sizes and
tightness, a large background of one-off images that belong to no theme, and bursts of near-identical reposts.
:func:`make_blobs_on_sphere` builds each of these on purpose, so a clustering can be scored against the truth.
:func:`make_topic_posts` builds issue 22's harder case: topics that share nothing but the common direction, as far
from each other as from the background, which UMAP can still lay out side by side.
"""

from __future__ import annotations

import numpy as np


def make_blobs_on_sphere(
    n: int,
    *,
    dim: int = 512,
    n_clusters: int = 20,
    noise_fraction: float = 0.2,
    duplicate_bursts: int = 10,
    seed: int = 0,
    cluster_spread: tuple[float, float] = (0.7, 1.1),
    sibling_similarity: float = 0.55,
    cone_weight: float = 0.6,
    size_skew: float = 0.8,
    burst_size: tuple[int, int] = (8, 40),
    burst_jitter: float = 0.02,
    satellite_share: float = 0.7,
    background_spread: tuple[float, float] = (1.8, 3.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs on the unit sphere with background noise and near-duplicate bursts.

    Parameters
    ----------
    n : int
        Total number of points (>= 1).
    dim : int, default 512
        Embedding dimension (>= 2).
    n_clusters : int, default 20
        Number of true clusters (>= 1). Centres come in sibling groups of two or three around a shared "theme"
        direction, so some clusters are close to each other (as sub-topics are).
    noise_fraction : float, default 0.2
        Share of points in the background, in [0, 1); label -1. See ``satellite_share``.
    duplicate_bursts : int, default 10
        Number of near-duplicate bursts (>= 0): each copies one random cluster member ``burst_size`` times with a tiny
        jitter and keeps that member's label (a repost storm inside a theme).
    seed : int, default 0
        Seed of the generator; equal arguments give identical output.
    cluster_spread : (float, float), default (0.7, 1.1)
        Range of the per-cluster noise scale ``s``: a member is ``normalise(centre + s * g / sqrt(dim))`` with ``g``
        standard normal, so its cosine to the centre is about ``1 / sqrt(1 + s**2)`` (0.82 to 0.67).
    sibling_similarity : float, default 0.55
        Cosine between sibling centres' theme-specific parts, in [0, 1).
    cone_weight : float, default 0.6
        Weight of the direction shared by every point (the CLIP "cone"), >= 0.
    size_skew : float, default 0.8
        Sigma of the log-normal cluster weights (0 gives equal sizes).
    burst_size : (int, int), default (8, 40)
        Inclusive range of points per burst.
    burst_jitter : float, default 0.02
        Noise scale of burst copies (cosine to the source ~0.9998).
    satellite_share : float, default 0.7
        Share of the background drawn loosely around a random cluster's centre (noise scale ``background_spread``);
        the rest is unrelated to every cluster, half as deep in the cone.
    background_spread : (float, float), default (1.8, 3.0)
        Range of the satellites' noise scale (cosine to the host centre ~0.49 to 0.32).

    Returns
    -------
    X : np.ndarray
        ``(n, dim)`` float32, every row of unit L2 norm, rows in random order.
    labels : np.ndarray
        ``(n,)`` int64 true cluster ids ``0 .. n_clusters - 1``, ``-1`` for background.
    """
    _check(
        n,
        dim=dim,
        n_clusters=n_clusters,
        noise_fraction=noise_fraction,
        duplicate_bursts=duplicate_bursts,
        cluster_spread=cluster_spread,
        sibling_similarity=sibling_similarity,
        cone_weight=cone_weight,
    )
    if not (1 <= burst_size[0] <= burst_size[1]):
        raise ValueError(f"burst_size must be (low, high) with 1 <= low <= high, got {burst_size}")
    if burst_jitter < 0:
        raise ValueError(f"burst_jitter must be >= 0, got {burst_jitter}")
    if not 0.0 <= satellite_share <= 1.0:
        raise ValueError(f"satellite_share must be in [0, 1], got {satellite_share}")
    if not 0.0 < background_spread[0] <= background_spread[1]:
        raise ValueError(f"background_spread must be (low, high) with 0 < low <= high, got {background_spread}")
    rng = np.random.default_rng(seed)

    cone = _unit(rng.standard_normal(dim))
    n_background = round(n * noise_fraction)
    n_clustered = n - n_background
    bursts = _burst_sizes(rng, duplicate_bursts, burst_size, n_clustered, n_clusters)
    n_members = n_clustered - int(bursts.sum())

    # Themes hold 1-3 sibling clusters; a centre mixes the cone, its theme and its own direction.
    centres = np.empty((n_clusters, dim))
    theme = _unit(rng.standard_normal(dim))
    left_in_theme = 0
    for k in range(n_clusters):
        if left_in_theme == 0:
            theme = _unit(rng.standard_normal(dim))
            left_in_theme = int(rng.integers(1, 4))
        own = _unit(rng.standard_normal(dim))
        specific = _unit(np.sqrt(sibling_similarity) * theme + np.sqrt(1 - sibling_similarity) * own)
        centres[k] = _unit(cone_weight * cone + specific)
        left_in_theme -= 1

    weights = rng.lognormal(0.0, size_skew, n_clusters)
    sizes = _split(rng, n_members, weights)
    spreads = rng.uniform(cluster_spread[0], cluster_spread[1], n_clusters)

    parts, labels = [], []
    for k, size in enumerate(sizes):
        noise = rng.standard_normal((size, dim)) * (spreads[k] / np.sqrt(dim))
        parts.append(centres[k] + noise)
        labels.append(np.full(size, k))
    members = _unit(np.concatenate(parts)) if parts else np.empty((0, dim))
    member_labels = np.concatenate(labels) if labels else np.empty(0, dtype=np.int64)

    burst_parts, burst_labels = [], []
    for size in bursts:
        if len(members) == 0:
            break
        source = int(rng.integers(len(members)))
        jitter = rng.standard_normal((size, dim)) * (burst_jitter / np.sqrt(dim))
        burst_parts.append(_unit(members[source] + jitter))
        burst_labels.append(np.full(size, member_labels[source]))

    # Background: one-off images. Most are loose satellites of a random cluster (cosine to its centre ~0.3-0.5,
    # against 0.67-0.82 for members): their nearest neighbours are that cluster's members, only farther. The rest are
    # unrelated to every theme and sit less deep in the cone than the clusters do, so they do not group with each
    # other either (uniform directions deep in the cone would: in 512-D they are all equally close to one another).
    n_satellites = round(n_background * satellite_share)
    hosts = rng.integers(n_clusters, size=n_satellites)
    wide = rng.uniform(background_spread[0], background_spread[1], (n_satellites, 1))
    satellites = centres[hosts] + rng.standard_normal((n_satellites, dim)) * (wide / np.sqrt(dim))
    loose = 0.5 * cone_weight * cone + _unit(rng.standard_normal((n_background - n_satellites, dim)))
    background = _unit(np.concatenate([satellites, loose]))

    X = np.concatenate([members, *burst_parts, background]).astype(np.float32)
    y = np.concatenate([member_labels, *burst_labels, np.full(n_background, -1)]).astype(np.int64)
    # Renormalise after the float32 cast so every row is unit length to float32 precision.
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    order = rng.permutation(n)
    return X[order], y[order]


def make_topic_posts(
    *,
    topics: int = 8,
    per_topic: int = 400,
    background: int = 1_100,
    bursts: int = 5,
    burst_size: int = 20,
    dim: int = 512,
    within: float = 0.76,
    between: float = 0.59,
    siblings: int = 1,
    sibling_similarity: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Topics around one common direction, mutually unrelated in the original space (issue 22's held-out shape).

    A member is ``sqrt(between) * common + sqrt(within - between) * own + sqrt(1 - within) * noise``: cosine about
    ``within`` inside a topic, ``between`` across topics, and ``between`` to the background too (background images
    have only the common part and noise). Bursts copy a random topic member with a tiny jitter and keep its topic.

    Parameters
    ----------
    topics, per_topic, background : int
        Topics, images per topic, background images (defaults: 8 x 400 and 1,100, 25 % of 4,400 with the bursts).
    bursts, burst_size : int
        Near-duplicate bursts and their size.
    dim : int
        Embedding dimension.
    within, between : float
        Mean cosine inside a topic and between topics (and to the background), ``0 <= between < within < 1``.
    siblings, sibling_similarity : int, float
        Topics come in groups of ``siblings`` whose own directions share ``sibling_similarity`` of their square
        (0: every topic unrelated): the harder variant, where UMAP lays several topics side by side.
    seed : int

    Returns
    -------
    X : np.ndarray
        ``(n, dim)`` float32 unit rows in random order, ``n = topics * per_topic + bursts * burst_size + background``.
    labels : np.ndarray
        int64 topic per row, -1 for the background.
    """
    if not 0.0 <= between < within < 1.0:
        raise ValueError(f"need 0 <= between < within < 1, got between={between}, within={within}")
    if topics < 1 or per_topic < 1 or siblings < 1 or not 0.0 <= sibling_similarity < 1.0:
        raise ValueError("topics, per_topic and siblings must be positive, sibling_similarity in [0, 1)")
    rng = np.random.default_rng(seed)
    common = _unit(rng.standard_normal(dim))
    own = []
    for k in range(topics):
        if k % siblings == 0:
            shared = rng.standard_normal(dim)
        mixed = np.sqrt(sibling_similarity) * _unit(shared) + np.sqrt(1 - sibling_similarity) * _unit(
            rng.standard_normal(dim)
        )
        own.append(_unit(mixed))  # random: by chance a little closer to some topics (and the common part) than others
    a, b, c = np.sqrt(between), np.sqrt(within - between), np.sqrt(1.0 - within)
    parts, labels = [], []
    for k in range(topics):
        noise = rng.standard_normal((per_topic, dim)) / np.sqrt(dim)
        parts.append(a * common + b * own[k] + c * noise)
        labels.append(np.full(per_topic, k))
    for _ in range(bursts):
        k = int(rng.integers(topics))
        source = parts[k][int(rng.integers(per_topic))]
        parts.append(source + 0.02 * rng.standard_normal((burst_size, dim)) / np.sqrt(dim))
        labels.append(np.full(burst_size, k))
    parts.append(a * common + np.sqrt(1.0 - between) * rng.standard_normal((background, dim)) / np.sqrt(dim))
    labels.append(np.full(background, -1))
    X = _unit(np.concatenate(parts)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.concatenate(labels).astype(np.int64)
    order = rng.permutation(len(X))
    return X[order], y[order]


def _check(n, *, dim, n_clusters, noise_fraction, duplicate_bursts, cluster_spread, sibling_similarity, cone_weight):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if dim < 2:
        raise ValueError(f"dim must be >= 2, got {dim}")
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    if not (0.0 <= noise_fraction < 1.0):
        raise ValueError(f"noise_fraction must be in [0, 1), got {noise_fraction}")
    if duplicate_bursts < 0:
        raise ValueError(f"duplicate_bursts must be >= 0, got {duplicate_bursts}")
    if not (0.0 < cluster_spread[0] <= cluster_spread[1]):
        raise ValueError(f"cluster_spread must be (low, high) with 0 < low <= high, got {cluster_spread}")
    if not (0.0 <= sibling_similarity < 1.0):
        raise ValueError(f"sibling_similarity must be in [0, 1), got {sibling_similarity}")
    if cone_weight < 0:
        raise ValueError(f"cone_weight must be >= 0, got {cone_weight}")


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(norm == 0, 1.0, norm)


def _burst_sizes(rng, count: int, size_range: tuple[int, int], n_clustered: int, n_clusters: int) -> np.ndarray:
    """Burst sizes; bursts are dropped (last first) until they use at most a third of the clustered points and every
    cluster keeps at least one member of its own."""
    sizes = list(rng.integers(size_range[0], size_range[1] + 1, count))
    budget = max(0, min(n_clustered // 3, n_clustered - n_clusters))
    while sizes and sum(sizes) > budget:
        sizes.pop()
    return np.asarray(sizes, dtype=np.int64)


def _split(rng, total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into ``len(weights)`` parts proportional to ``weights``, each >= 1 while total allows."""
    k = len(weights)
    if total <= 0:
        return np.zeros(k, dtype=np.int64)
    base = np.ones(k, dtype=np.int64) if total >= k else np.zeros(k, dtype=np.int64)
    rest = total - int(base.sum())
    if rest:
        base += rng.multinomial(rest, weights / weights.sum())
    return base

"""Whether the original embedding space keeps two groups of images apart: the test behind split_merge.py.

A group (one cluster, or the union of two) is split in two, and two figures say whether the split is real:

- **Significance (SigClust).** The split is 2-means in the span of the group's top :data:`SUBSPACE` principal
  components, the better of the starts from the signs of the first two; its cluster index ``CI = within-children /
  total sum of squares`` is compared with the CIs of :data:`NULL_ROUNDS` seeded clusters drawn from one Gaussian with
  the group's own principal variances, split the same way (Liu, Hayes, Nobel and Marron, "Statistical significance of
  clustering for high-dimension, low-sample size data", JASA 2008). One blob, however elongated, gives a CI near
  ``1 - 2/pi * lambda_1 / sum``; two groups give less. p = (1 + null CIs at most the group's) / (rounds + 1).
- **Effect.** Significance alone splits large groups on small structure, and a repost burst inside a topic is as
  non-Gaussian as anything. So each child must also be closer to itself than to the other, as its images see it: for
  an image, the mean cosine to its :data:`LOCAL` most similar images of its own child minus that to the other
  child's; per child, the median of that gap over the median spread (one minus the first). Local, so a child holding
  several topics still sees each of them apart from the other child (a mean over all pairs would dilute it).
  Near-copies (cosine :data:`NEAR_COPY` or more) are one picture: a burst of 20
  re-encodes is one image, whose own child holds nothing else (gap 0), and it counts once among another image's most
  similar. Figures, on issue 22's CLIP-like shape: two topics (cosine 0.76 within, 0.59 between) 0.7 on both sides;
  a topic and a burst of its own reposts 0.0; a tight topic beside a loose gathering of background about 0.7 on the
  topic's side and 0.0 on the background's.

The p-value is computed only when the effect leaves the decision open (:attr:`SplitTest.p_value` is lazy): most
clusters of a real collection fail on the effect, and the null is the expensive part. Seeded: the same input gives
the same figures.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

__all__ = [
    "ALPHA", "MIN_EFFECT", "MIN_SEPARATION", "NEAR_COPY", "SAME", "SplitTest", "mean_similarity", "near_copy_groups",
    "split_test",
]  # fmt: skip

# Significance level: one false split in a hundred unimodal groups.
ALPHA = 0.01
# Gaussian clusters drawn for the null: 99 rounds make 0.01 the smallest p-value, reached when no round is split as
# well as the data.
NULL_ROUNDS = 99
# Minimum effect: a child's images are closer to their own child than to the other by a quarter of their spread.
MIN_EFFECT = 0.25
# Minimum separation: between the children, similarity falls at least halfway from a child's own to the collection's.
MIN_SEPARATION = 0.5
# Merges need the opposite: neither child closer to itself than to the other by more than this share of its spread,
# about twice the gap's spread over random halves of one topic (0.05). Between SAME and MIN_EFFECT nothing changes.
SAME = 0.1
# A diffuse child's images have nearest images in it no closer than this share of the collection's spread above its
# average: issue 22's background 0.06; a bag of small real groups (the emoji set's) about 0.4.
DIFFUSE = 0.2
# Most similar images of each child an image is compared with, and images per child that compare (a seeded sample).
LOCAL = 10
LOCAL_SAMPLE = 300
# Images this similar are copies of one picture: re-encodes and resizes of one image (about 0.99 in CLIP). Not the
# repost candidates' 0.92 (reposts.py MIN_SIMILARITY, which a perceptual hash then confirms): joined transitively,
# 0.92 chained an emoji subgroup's skin-tone variants and neighbouring gestures into one "picture".
NEAR_COPY = 0.97
# Mean cosine of a collection up to which NEAR_COPY holds as it is: issue 22's CLIP-like posts (0.59). Above it the bar
# rises so that it keeps the same share of the collection's mean distance (near_copy_groups).
COPY_REFERENCE = 0.6
# Principal components the split and its null work in: the directions a split can follow; the rest is noise that adds
# about the same to every CI.
SUBSPACE = 20
# Images of one group that 2-means splits, a seeded sample above this (the others join the closer child): the CI of
# a sample of 1,000 is within 0.01 of the whole group's on issue 22's topics, and the principal components of 1,000
# images of 1,280-D features take 0.1 s (2,000: 0.6 s).
MAX_TESTED = 1_000
_LLOYD_ROUNDS = 30
# 2-means starts: the signs of the first two principal components.
STARTS = 2


@dataclasses.dataclass(frozen=True)
class SplitTest:
    """A 2-way split of a group and the figures that say whether the original space keeps it.

    Attributes
    ----------
    children : np.ndarray
        bool per image of the group: True for the second child.
    cluster_index : float
        Within-children / total sum of squares of the split in the principal subspace (lower: more apart).
    gaps : tuple of float
        Per child, its images' median local gap to the other child over their spread (module docstring).
    within : tuple of float
        Mean cosine similarity inside each child.
    between : float
        Mean cosine similarity between the children.
    collection : float
        Mean cosine similarity of the whole collection: what any two of its images share.
    nearest : tuple of float
        Per child, its images' median similarity to their most similar images of their own child.
    """

    children: np.ndarray
    cluster_index: float
    gaps: tuple[float, float]
    within: tuple[float, float]
    between: float
    collection: float
    nearest: tuple[float, float]
    null: np.ndarray = dataclasses.field(repr=False, compare=False)  # the null's draws, used by p_value only

    @functools.cached_property
    def p_value(self) -> float:
        """Share of Gaussian null clusters that 2-means splits at least as well (computed on first use)."""
        rounds = len(self.null)
        null_index = _two_means_batch(self.null - self.null.mean(axis=1, keepdims=True))
        return float((1 + np.count_nonzero(null_index <= self.cluster_index)) / (rounds + 1))

    @property
    def effect(self) -> float:
        """The smaller of the children's gaps: each sees the other apart by at least this much."""
        return min(self.gaps)

    @property
    def separation(self) -> tuple[float, float]:
        """Per child, how far the similarity between the children falls from the child's own towards the
        collection's: 1 when the children are as unrelated as any two images, 0 when as alike as the child itself;
        0 for a child no more alike than the collection."""
        return tuple((w - self.between) / (w - self.collection) if w > self.collection else 0.0 for w in self.within)  # type: ignore[return-value]

    def apart(self, child: int, *, min_effect: float = MIN_EFFECT) -> bool:
        """Whether ``child`` stands apart from the other child, locally and against the collection."""
        return self.gaps[child] >= min_effect and self.separation[child] >= MIN_SEPARATION

    def splits(self, *, alpha: float = ALPHA, min_effect: float = MIN_EFFECT) -> bool:
        """Each child apart from the other, and the split significant."""
        both = self.apart(0, min_effect=min_effect) and self.apart(1, min_effect=min_effect)
        return both and self.p_value <= alpha

    def merges(self) -> bool:
        """Neither child closer to itself than to the other beyond the gap's own noise (:data:`SAME`). A split that
        is merely not significant is no evidence that the children are one: on real features the null's power is
        low, and merging on it alone chained the emoji set's 22 clusters into 6."""
        return max(self.gaps) < SAME

    def diffuse_child(self, *, alpha: float = ALPHA, min_effect: float = MIN_EFFECT) -> int | None:
        """The child (0 or 1) that is background beside the other: its images are no more alike than the
        collection's, on average (noise.diffuse_clusters' definition) and among their nearest (:data:`DIFFUSE`),
        the other child stands apart from it, and the split is significant. None otherwise."""
        for child in (0, 1):
            loose = self.within[child] <= self.collection and self.cohesion[child] < DIFFUSE
            if loose and self.apart(1 - child, min_effect=min_effect) and self.p_value <= alpha:
                return child
        return None

    @property
    def cohesion(self) -> tuple[float, float]:
        """Per child, how much closer its images' nearest images of the child are than the collection's average,
        over the collection's spread (``1 - collection``)."""
        spread = max(1.0 - self.collection, 1e-9)
        return tuple((n - self.collection) / spread for n in self.nearest)  # type: ignore[return-value]

    def figures(self, *, first: int = 0) -> dict:
        """The figures for ``metrics.json``, per-child ones with child ``first`` first; the p-value when computed."""
        order = (first, 1 - first)
        found = {
            "gaps": [round(self.gaps[i], 3) for i in order],
            "separation": [round(self.separation[i], 3) for i in order],
            "within": [round(self.within[i], 4) for i in order],
            "between": round(self.between, 4),
            "collection": round(self.collection, 4),
            "cohesion": [round(self.cohesion[i], 3) for i in order],
            "cluster_index": round(self.cluster_index, 4),
        }
        if "p_value" in self.__dict__:  # computed: the effect alone did not decide
            found["p_value"] = round(self.p_value, 4)
        return found


def split_test(
    X: np.ndarray,
    group: np.ndarray,
    *,
    collection: float,
    copies: np.ndarray | None = None,
    children: np.ndarray | None = None,
    seed: int = 0,
    rounds: int = NULL_ROUNDS,
) -> SplitTest:
    """Split the images ``group`` of ``X`` in two (or take ``children``) and measure the split.

    Parameters
    ----------
    X : np.ndarray
        ``(n, d)`` unit rows.
    group : np.ndarray
        Indices of the images, at least 4.
    collection : float
        Mean cosine similarity of the whole collection (:func:`mean_similarity` of all of ``X``).
    copies : np.ndarray, optional
        Near-copy group of every row of ``X`` (:func:`near_copy_groups`); default: every row its own.
    children : np.ndarray, optional
        A split to measure instead of the 2-means one (bool per image of ``group``).
    seed : int, default 0
        Seeds the samples and the null.
    rounds : int, default NULL_ROUNDS
        Null clusters drawn (when the p-value is asked for).
    """
    rng = np.random.default_rng(seed)
    group = np.asarray(group)
    tested = np.arange(len(group))
    if len(group) > MAX_TESTED:
        tested = np.sort(rng.choice(len(group), MAX_TESTED, replace=False))
    scores, variances = _principal_scores(np.asarray(X[group[tested]], dtype=np.float64))
    if children is None:
        found = _two_means(scores)
        children = _spread(X, group, tested, found)
        index = _cluster_index(scores, found)
    else:
        index = _cluster_index(scores, children[tested])
    copies = np.arange(len(X)) if copies is None else copies
    within, between = _similarities(X, group, children)
    gaps, nearest = _local_gaps(X, group, children, copies, rng)
    return SplitTest(
        children=children,
        cluster_index=index,
        gaps=gaps,
        within=within,
        between=between,
        collection=collection,
        nearest=nearest,
        null=rng.standard_normal((rounds, *scores.shape)) * np.sqrt(variances),
    )


def _principal_scores(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred points in the span of their top :data:`SUBSPACE` principal components, and those variances.

    Only the top eigenpairs are computed, of the smaller of the covariance (d x d) and the Gram matrix (n x n): a
    full eigendecomposition of a 1,280-D covariance took a second a test.
    """
    from scipy.linalg import eigh

    n, d = points.shape
    centred = points - points.mean(axis=0)
    keep = min(SUBSPACE, n - 1, d)
    if keep < 1:
        return np.zeros((n, 0)), np.zeros(0)
    small = centred.T @ centred if d <= n else centred @ centred.T
    values, vectors = eigh(small, subset_by_index=[len(small) - keep, len(small) - 1], driver="evr")
    values, vectors = np.maximum(values[::-1], 0.0), vectors[:, ::-1]
    scores = centred @ vectors if d <= n else vectors * np.sqrt(values)  # Gram: scores are U * singular values
    return scores, values / max(n - 1, 1)


def _two_means(scores: np.ndarray) -> np.ndarray:
    """2-means of centred points, the better of the starts from the signs of their first :data:`STARTS` principal
    components: the second child."""
    return _best_of_starts(scores[None])[0]


def _two_means_batch(samples: np.ndarray) -> np.ndarray:
    """The CI of the 2-means split of each of a stack of centred samples ``(rounds, n, r)``, all at once, by the same
    procedure as :func:`_two_means`."""
    children = _best_of_starts(samples)
    return np.array([_cluster_index(sample, split) for sample, split in zip(samples, children, strict=True)])


def _best_of_starts(samples: np.ndarray) -> np.ndarray:
    """Per sample, the 2-means split with the lowest CI over the starts (Lloyd finds a local optimum only: from the
    first component alone, a topic of 400 beside 708 background images was split 963 / 145 inside the background)."""
    _, vectors = np.linalg.eigh(np.einsum("bni,bnj->bij", samples, samples))
    best, best_index = None, None
    for start in range(1, min(STARTS, samples.shape[2]) + 1):
        children = _lloyd(samples, np.einsum("bni,bi->bn", samples, vectors[:, :, -start]) > 0)
        index = np.array([_cluster_index(sample, split) for sample, split in zip(samples, children, strict=True)])
        if best is None:
            best, best_index = children, index
        else:
            better = index < best_index
            best[better], best_index[better] = children[better], index[better]
    return best


def _lloyd(samples: np.ndarray, children: np.ndarray) -> np.ndarray:
    """Lloyd's 2-means on each sample of ``(rounds, n, r)`` from the given children."""
    for _ in range(_LLOYD_ROUNDS):
        counts = children.sum(axis=1, keepdims=True)
        second = np.einsum("bn,bni->bi", children, samples) / np.maximum(counts, 1)
        first = np.einsum("bn,bni->bi", ~children, samples) / np.maximum(children.shape[1] - counts, 1)
        # Closer to the second mean: |x - s|^2 < |x - f|^2, i.e. 2 x.(s - f) > |s|^2 - |f|^2.
        margin = 2 * np.einsum("bni,bi->bn", samples, second - first)
        closer = margin > ((second**2).sum(axis=1) - (first**2).sum(axis=1))[:, None]
        if np.array_equal(closer, children):
            break
        children = closer
    return children


def _cluster_index(scores: np.ndarray, children: np.ndarray) -> float:
    """Within-children over total sum of squares; 1 when a child is empty."""
    total = float(((scores - scores.mean(axis=0)) ** 2).sum())
    if children.all() or not children.any() or total <= 0.0:
        return 1.0
    within = sum(float(((part - part.mean(axis=0)) ** 2).sum()) for part in (scores[~children], scores[children]))
    return within / total


def _spread(X: np.ndarray, group: np.ndarray, tested: np.ndarray, found: np.ndarray) -> np.ndarray:
    """The split of the tested sample spread over the whole group: the sample keeps its children, the others join
    the child whose mean is nearer (euclidean, as 2-means assigns; a dot product favours the tighter child's longer
    mean)."""
    if len(tested) == len(group):
        return found
    sample = group[tested]
    means = np.stack([X[sample[~found]].mean(axis=0), X[sample[found]].mean(axis=0)]).astype(np.float64)
    points = np.asarray(X[group], dtype=np.float64)
    distances = (means**2).sum(axis=1)[None, :] - 2 * points @ means.T  # |x - m|^2 less |x|^2, the same for both
    children = distances[:, 1] < distances[:, 0]
    children[tested] = found
    return children


def _similarities(X: np.ndarray, group: np.ndarray, children: np.ndarray) -> tuple[tuple[float, float], float]:
    """Mean cosine inside each child (pairs of distinct images) and between the two, from the children's sums."""
    parts = [group[~children], group[children]]
    sums = [np.asarray(X[part], dtype=np.float64).sum(axis=0) for part in parts]
    within = tuple(
        float((s @ s - len(p)) / (len(p) * (len(p) - 1))) if len(p) > 1 else 1.0
        for p, s in zip(parts, sums, strict=True)
    )
    between = float(sums[0] @ sums[1] / (len(parts[0]) * len(parts[1]))) if all(len(p) for p in parts) else 0.0
    return (within[0], within[1]), between


def mean_similarity(X: np.ndarray) -> float:
    """Mean cosine similarity of the pairs of distinct rows of unit ``X``."""
    n = len(X)
    if n < 2:
        return 1.0
    total = np.asarray(X, dtype=np.float64).sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def _local_gaps(X, group, children, copies, rng):
    """Per child, the median local gap of (a sample of) its images to the other child, over their median spread;
    and per child, its images' median similarity to their most similar images of it.

    Both sides offer an image the same number of pictures (the smaller side's count; from the larger side a seeded
    sample per image), so that the best of many is never compared with the best of a few.
    """
    parts = [group[~children], group[children]]
    gaps, nearest = [], []
    for side in (0, 1):
        own, other = parts[side], parts[1 - side]
        if not len(own) or not len(other):
            gaps.append(0.0)
            nearest.append(1.0)
            continue
        probe = own if len(own) <= LOCAL_SAMPLE else np.sort(rng.choice(own, LOCAL_SAMPLE, replace=False))
        points = np.asarray(X[probe], dtype=np.float64)
        to_own, mine = _per_picture(points @ np.asarray(X[own], dtype=np.float64).T, copies[own], copies[probe])
        to_other, _ = _per_picture(points @ np.asarray(X[other], dtype=np.float64).T, copies[other], None)
        pictures = min(to_own.shape[1], to_other.shape[1])
        to_own = _top_mean(to_own, mine | _left_out(rng, to_own.shape, pictures))
        to_other = _top_mean(to_other, _left_out(rng, to_other.shape, pictures))
        alone = np.isnan(to_own)  # an image with nothing but copies of itself is not apart from anything
        gap = np.where(alone, 0.0, to_own - to_other)
        spread = np.median(1.0 - to_own[~alone]) if (~alone).any() else 1.0
        gaps.append(float(np.median(gap) / max(float(spread), 1e-6)))
        nearest.append(float(np.median(to_own[~alone])) if (~alone).any() else 1.0)
    return (gaps[0], gaps[1]), (nearest[0], nearest[1])


def _left_out(rng: np.random.Generator, shape: tuple[int, int], size: int) -> np.ndarray:
    """For each row, the columns left out of a seeded sample of ``size`` of them (none when there are no more)."""
    columns = shape[1]
    if size >= columns:
        return np.zeros(shape, dtype=bool)
    keys = rng.random(shape)
    return keys > np.partition(keys, size - 1, axis=1)[:, size - 1 : size]


def _per_picture(similarities: np.ndarray, columns: np.ndarray, rows: np.ndarray | None):
    """Each row's similarity to each picture (the best of its near-copies), and whether that picture is the row's."""
    order = np.argsort(columns, kind="stable")
    ordered = columns[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    best = np.maximum.reduceat(similarities[:, order], starts, axis=1)
    own = np.zeros(best.shape, dtype=bool) if rows is None else rows[:, None] == ordered[starts][None, :]
    return best, own


def _top_mean(similarities: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Per row, the mean of its :data:`LOCAL` largest similarities leaving out ``excluded``; NaN when none is left."""
    filled = np.where(excluded, -np.inf, similarities)
    take = min(LOCAL, filled.shape[1])
    top = np.partition(filled, filled.shape[1] - take, axis=1)[:, -take:]
    finite = np.isfinite(top)
    counts = finite.sum(axis=1)
    return np.where(counts > 0, np.where(finite, top, 0.0).sum(axis=1) / np.maximum(counts, 1), np.nan)


def near_copy_groups(distances: np.ndarray, neighbours: np.ndarray, *, collection: float = 0.0) -> np.ndarray:
    """Per point, a group id it shares with its near-copies: kNN neighbours at cosine :data:`NEAR_COPY` or more
    (cosine distance ``distances``), joined transitively, so a burst of re-encodes is one group.

    In a collection whose images are all alike (mean cosine ``collection`` above :data:`COPY_REFERENCE`, as with a
    random-weight model, or a set of one kind of picture) the bar rises with it: a near-copy's distance must stay the
    same share of the collection's mean distance. Otherwise distinct images of one cluster pass 0.97, chain into one
    "picture" across clusters, and every cluster looks like every other.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    bar = max(NEAR_COPY, 1.0 - (1.0 - NEAR_COPY) * (1.0 - collection) / (1.0 - COPY_REFERENCE))
    n = len(neighbours)
    source = np.repeat(np.arange(n), neighbours.shape[1] - 1)
    target = np.asarray(neighbours[:, 1:]).ravel()
    close = (1.0 - np.asarray(distances[:, 1:]).ravel()) >= bar
    graph = coo_matrix((np.ones(int(close.sum())), (source[close], target[close])), shape=(n, n))
    return connected_components(graph, directed=False)[1]

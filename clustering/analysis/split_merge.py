"""The original space has the last word: split a chosen cluster its embeddings keep apart, merge two they cannot.

HDBSCAN clusters the 10-D UMAP layout, and UMAP sometimes lays out two or three topics side by side that the original
embeddings keep plainly apart (issue 22: three topics of 400 posts, cosine 0.76 within each and 0.59 between, came out
as one cluster of 1,222), or cuts a topic's own repost burst off as a cluster of its own. After the selection, the
chosen clusters are tested in the original space with :mod:`.split_test`:

1. **Merges.** Each cluster and its most similar adjacent cluster (centroid cosine; adjacent: kNN edges between them
   in the original space) are merged when the original space cannot tell them apart: neither side is apart from the
   other (a boundary that is merely not significant is not enough). Most similar pairs first; a merged cluster is
   tested again with its new most similar neighbour. A cluster is tested against its most similar neighbour only, so
   there are at most about as many tests as clusters.
2. **Splits.** Every cluster is split in two when both halves are apart from each other and the split is significant,
   both keeping ``min_cluster_size`` images; each half is tested again, down to that size.
3. **Background split off.** When a significant split leaves one half apart from the other while the other is no
   more alike than the collection as a whole (noise.diffuse_clusters' definition), that half is labelled noise: a
   topic that HDBSCAN joined to a loose gathering of background keeps only the topic.

A pair where one side is apart and the other is not, and neither is diffuse, is left as it is: the tests change only
what the original space is clear about. Every decision is kept with its figures (:class:`Decision`), for the report's
"Why" and ``metrics.json``. Pure compute; seeded.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from clustering.analysis.hierarchy import compact_labels
from clustering.analysis.split_test import ALPHA, MIN_EFFECT, mean_similarity, near_copy_groups, split_test

__all__ = ["Decision", "Refinement", "refine", "refined_setting"]


@dataclasses.dataclass(frozen=True)
class Decision:
    """One merge, split or background split: the clusters it took (their labels then), the sizes of its two sides
    (for "background": kept, then labelled noise) and the test's figures (per-side ones in the same order)."""

    kind: str  # "merge", "split" or "background"
    clusters: tuple[int, ...]
    sizes: tuple[int, int]
    figures: dict

    def document(self) -> dict:
        return {"kind": self.kind, "clusters": list(self.clusters), "sizes": list(self.sizes), **self.figures}

    def sentence(self) -> str:
        """The decision in words, with its figures."""
        f = self.figures
        figures = (
            f"cosine {f['within'][0]:.2f} and {f['within'][1]:.2f} within, {f['between']:.2f} between, "
            f"{f['collection']:.2f} in the collection; local gaps {f['gaps'][0]:.2f} and {f['gaps'][1]:.2f}"
        )
        figures += f", p = {f['p_value']:.2f}" if "p_value" in f else ""
        a, b = self.sizes
        if self.kind == "merge":
            return (
                f"clusters {self.clusters[0]} and {self.clusters[1]} ({a:,} + {b:,} images) merged: the original "
                f"space does not tell them apart ({figures})"
            )
        if self.kind == "split":
            return (
                f"cluster {self.clusters[0]} ({a + b:,} images) split in two ({a:,} + {b:,}): the original space keeps "
                f"the halves apart ({figures})"
            )
        return (
            f"cluster {self.clusters[0]} ({a + b:,} images): {b:,} of its images, no more alike than the collection "
            f"and apart from the other {a:,}, labelled noise ({figures})"
        )


@dataclasses.dataclass(frozen=True)
class Refinement:
    """The labels after the tests (renumbered 0, 1, ... in their old order, a split's new half after them) and the
    decisions in the order they were taken."""

    labels: np.ndarray
    decisions: tuple[Decision, ...]

    def count(self, kind: str) -> int:
        return sum(d.kind == kind for d in self.decisions)


def refine(
    labels: np.ndarray,
    X: np.ndarray,
    neighbours: np.ndarray,
    distances: np.ndarray,
    *,
    min_cluster_size: int,
    seed: int = 0,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> Refinement:
    """Merge the clusters of ``labels`` the original space cannot tell apart, then split those it keeps apart.

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` cluster labels, -1 for noise (never given a cluster).
    X : np.ndarray
        ``(n, d)`` unit embeddings of the same points.
    neighbours, distances : np.ndarray
        ``(n, k)`` kNN indices and cosine distances in the original space (self first): which clusters are adjacent,
        and which images are near-copies.
    min_cluster_size : int
        A split leaves each half at least this many images.
    seed : int, default 0
        Seeds the tests.
    alpha, min_effect : float
        The tests' significance level and minimum effect (:mod:`.split_test`).
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    rng = np.random.default_rng(seed)
    collection = mean_similarity(X)
    copies = near_copy_groups(distances, neighbours, collection=collection)
    test = functools.partial(split_test, X, collection=collection, copies=copies)
    rule = {"alpha": alpha, "min_effect": min_effect}
    decisions: list[Decision] = []
    _merge(labels, X, neighbours, test, rng, decisions, rule)
    _split(labels, X, test, rng, decisions, rule, min_cluster_size=min_cluster_size)
    return Refinement(labels=compact_labels(labels), decisions=tuple(decisions))


def refined_setting(result, refinement: Refinement):
    """A sweep setting (sweep.SettingResult) with the refined labels: new noise has probability 0, and each cluster
    keeps the highest persistence of the clusters it was made from (both halves of a split keep the whole's)."""
    before, after = np.asarray(result.labels), refinement.labels
    if np.array_equal(before, after):
        return result
    old = np.asarray(result.persistence, dtype=np.float64)
    persistence = np.zeros(int(after.max()) + 1 if (after >= 0).any() else 0)
    both = (after >= 0) & (before >= 0)
    np.maximum.at(persistence, after[both], old[before[both]])
    probabilities = np.where(after >= 0, result.probabilities, 0.0).astype(np.float32)
    return dataclasses.replace(result, labels=after, probabilities=probabilities, persistence=persistence)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31))


def _merge(labels, X, neighbours, test, rng, decisions, rule) -> None:
    """Merge, in place, each other's most similar adjacent clusters that the original space cannot tell apart."""
    pairs = _Pairs(labels, X, neighbours)
    while (pair := pairs.most_similar()) is not None:
        a, b = pair
        members = np.flatnonzero((labels == a) | (labels == b))
        found = test(members, children=labels[members] == b, seed=_seed(rng))
        if not found.merges():
            pairs.refuse(a, b)
            continue
        sizes = (int(np.count_nonzero(labels == a)), int(np.count_nonzero(labels == b)))
        labels[labels == b] = a
        pairs.merged(a, b)
        decisions.append(Decision("merge", (a, b), sizes, found.figures()))


def _split(labels, X, test, rng, decisions, rule, *, min_cluster_size: int) -> None:
    """Split, in place, every cluster whose halves the original space keeps apart (recursively), and label noise
    the diffuse half of a cluster that is otherwise apart from it."""
    todo = sorted(int(c) for c in np.unique(labels[labels >= 0]))
    next_label = max(todo, default=-1) + 1
    while todo:
        cluster = todo.pop(0)
        members = np.flatnonzero(labels == cluster)
        if len(members) < 2 * min_cluster_size:
            continue
        found = test(members, seed=_seed(rng))
        sizes = (int(np.count_nonzero(~found.children)), int(np.count_nonzero(found.children)))
        if min(sizes) >= min_cluster_size and found.splits(**rule):
            labels[members[found.children]] = next_label
            decisions.append(Decision("split", (cluster,), sizes, found.figures()))
            todo += [cluster, next_label]
            next_label += 1
            continue
        diffuse = found.diffuse_child(**rule)
        if diffuse is not None and sizes[1 - diffuse] >= min_cluster_size:
            labels[members[found.children == bool(diffuse)]] = -1
            kept_first = (sizes[1 - diffuse], sizes[diffuse])
            decisions.append(Decision("background", (cluster,), kept_first, found.figures(first=1 - diffuse)))
            todo.append(cluster)


class _Pairs:
    """Cluster centroids and kNN adjacency, kept up to date through merges: which pair to test next."""

    def __init__(self, labels: np.ndarray, X: np.ndarray, neighbours: np.ndarray) -> None:
        from scipy.sparse import csr_matrix

        self.ids = [int(c) for c in np.unique(labels[labels >= 0])]
        size = max(self.ids, default=-1) + 1
        clustered = np.flatnonzero(labels >= 0)
        onehot = csr_matrix((np.ones(len(clustered)), (labels[clustered], clustered)), shape=(size, len(labels)))
        self.sums = np.asarray(onehot @ np.asarray(X, dtype=np.float64))
        source = np.repeat(np.arange(len(labels)), neighbours.shape[1] - 1)
        target = np.asarray(neighbours[:, 1:]).ravel()
        both = (labels[source] >= 0) & (labels[target] >= 0)
        self.adjacent = np.zeros((size, size), dtype=bool)
        self.adjacent[labels[source[both]], labels[target[both]]] = True
        self.adjacent |= self.adjacent.T
        self.refused: set[tuple[int, int]] = set()

    def most_similar(self) -> tuple[int, int] | None:
        """Of the pairs (a cluster, its most similar adjacent cluster by centroid cosine) not yet refused, the most
        similar one, as (smaller id, larger id); None when none is left."""
        ids = np.asarray(self.ids)
        if len(ids) < 2:
            return None
        centroids = self.sums[ids] / np.maximum(np.linalg.norm(self.sums[ids], axis=1, keepdims=True), 1e-12)
        similarity = np.where(self.adjacent[np.ix_(ids, ids)], centroids @ centroids.T, -np.inf)
        np.fill_diagonal(similarity, -np.inf)
        nearest = similarity.argmax(axis=1)
        candidates = []
        for i, j in enumerate(nearest):
            pair = (int(min(ids[i], ids[j])), int(max(ids[i], ids[j])))
            if np.isfinite(similarity[i, j]) and pair not in self.refused:
                candidates.append((float(similarity[i, j]), *pair))
        if not candidates:
            return None
        _, a, b = max(candidates, key=lambda found: (found[0], -found[1], -found[2]))
        return a, b

    def refuse(self, a: int, b: int) -> None:
        self.refused.add((a, b))

    def merged(self, a: int, b: int) -> None:
        """``b`` joined ``a``: its sum and edges are ``a``'s now, and ``a``'s pairs are open to a new test."""
        self.sums[a] += self.sums[b]
        self.adjacent[a] |= self.adjacent[b]
        self.adjacent[:, a] |= self.adjacent[:, b]
        self.adjacent[a, a] = False
        self.ids.remove(b)
        self.refused = {pair for pair in self.refused if a not in pair and b not in pair}

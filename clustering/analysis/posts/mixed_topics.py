"""Text as a second view: a cluster whose top hashtags belong to posts that never meet is "possibly mixed".

The clustering is made from images alone. When the posts have text, their hashtags give a check a person can read:
hashtags are how posters mark the community or campaign a post belongs to. In a cluster about one narrative its
frequent hashtags turn up together or independently, while two campaigns merged into one cluster keep their hashtags
apart, each in its own posts. So, per cluster, two of its top hashtags *avoid each other* when each is in at least
:data:`MIN_SHARE` of the cluster's posts with text, chance would put them together in at least :data:`MIN_EXPECTED`
posts (so that seeing none means something), and they share at most :data:`LINK` of that many. A cluster whose top
keywords hold two or more hashtags that avoid each other is flagged, with the largest set of them that all avoid
each other (most frequent first).

Only hashtags: plain words avoid each other inside one narrative all the time (the variants of a slogan, one post
saying "protest" and the next "demonstration"). Advisory only: the flag never changes a label. Two hashtags used as
synonyms, never in one post, are flagged too, and the person reading decides.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from clustering.analysis.posts.columns import cluster_index
from clustering.analysis.posts.keywords import Keywords, PostTerms

__all__ = ["LINK", "MIN_EXPECTED", "MIN_SHARE", "MixedTopics", "mixed_topics"]

# A keyword checked must be in this share of the cluster's posts with text: rarer words say nothing about the whole.
MIN_SHARE = 0.1
# Posts two keywords would share by chance (independence within the cluster) before their not sharing counts: with 5
# expected, sharing none happens by chance less than once in a hundred (Poisson).
MIN_EXPECTED = 5.0
# Two keywords avoid each other when they share at most this share of what chance predicts.
LINK = 0.2
# Top keywords of a cluster whose hashtags are checked.
CHECKED = 10


@dataclasses.dataclass(frozen=True)
class MixedTopics:
    """Per cluster, the top hashtags that avoid each other: two or more mean "possibly mixed".

    Attributes
    ----------
    clusters : np.ndarray
        int64 cluster ids (every non-negative label present), ascending.
    avoiding : tuple of tuple of str
        Per cluster, hashtags that avoid each other, most frequent first; empty when coherent.
    """

    clusters: np.ndarray
    avoiding: tuple[tuple[str, ...], ...]

    def flagged(self) -> np.ndarray:
        """bool per cluster: possibly mixed."""
        return np.array([len(words) >= 2 for words in self.avoiding], dtype=bool)

    def table(self) -> pa.Table:
        """``cluster`` (int32), ``possibly_mixed`` (bool), ``mixed_keywords`` (`` | ``-separated, null unless
        flagged)."""
        flagged = self.flagged()
        return pa.table(
            {
                "cluster": pa.array(self.clusters, pa.int32()),
                "possibly_mixed": pa.array(flagged, pa.bool_()),
                "mixed_keywords": pa.array(
                    [" | ".join(words) if mixed else None for words, mixed in zip(self.avoiding, flagged, strict=True)],
                    pa.string(),
                ),
            }
        )


def mixed_topics(labels, terms: PostTerms | None, keywords: Keywords) -> MixedTopics:
    """Check every cluster of ``labels`` for top hashtags that avoid each other (module docstring).

    Parameters
    ----------
    labels : array-like of int
        Per-row cluster labels, -1 for noise.
    terms : PostTerms or None
        The posts tokenised once (:func:`clustering.analysis.posts.keywords.post_terms`); None without a text column.
    keywords : Keywords
        The same labels' keywords (:func:`clustering.analysis.posts.keywords.cluster_keywords`).
    """
    ids, position = cluster_index(labels)
    if terms is None or not len(terms.vocabulary):
        return MixedTopics(ids, tuple(() for _ in ids))
    column_of = {term: i for i, term in enumerate(terms.vocabulary)}
    text_position = position[terms.has_text]  # cluster position of each post with text
    avoiding = []
    for index, cluster in enumerate(ids):
        rows = np.flatnonzero(text_position == index)
        hashtags = [t for t in keywords.of(int(cluster))[:CHECKED] if t.startswith("#") and t in column_of]
        if len(rows) == 0 or len(hashtags) < 2:
            avoiding.append(())
            continue
        present = terms.presence[rows][:, [column_of[t] for t in hashtags]].toarray() > 0
        avoiding.append(_avoiding(present, hashtags))
    return MixedTopics(ids, tuple(avoiding))


def _avoiding(present: np.ndarray, words: list[str]) -> tuple[str, ...]:
    """The largest set of frequent words (columns of the post x word ``present`` matrix) that all avoid each other,
    most frequent first (ties: the set covering more posts); empty unless two or more."""
    n = len(present)
    counts = present.sum(axis=0)
    frequent = [int(w) for w in np.flatnonzero(counts >= MIN_SHARE * n)]
    together = present.T.astype(np.int64) @ present.astype(np.int64)
    expected = np.outer(counts, counts) / max(n, 1)
    avoid = (expected >= MIN_EXPECTED) & (together <= LINK * expected)
    best: tuple[int, ...] = ()
    for subset in _subsets(frequent):  # at most CHECKED words: 1,024 subsets
        if len(subset) < 2 or not all(avoid[a, b] for a in subset for b in subset if a < b):
            continue
        if (len(subset), counts[list(subset)].sum()) > (len(best), counts[list(best)].sum() if best else -1):
            best = subset
    return tuple(words[w] for w in sorted(best, key=lambda w: (-counts[w], w)))


def _subsets(items: list[int]):
    for mask in range(1, 2 ** len(items)):
        yield tuple(item for bit, item in enumerate(items) if mask >> bit & 1)

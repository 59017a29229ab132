"""What each cluster's posts say: class-based TF-IDF keywords over the post texts of every cluster.

Each cluster's texts are treated as one document (BERTopic's c-TF-IDF): a term scores high when many of the cluster's
posts use it and few posts elsewhere do. Hashtags, @mentions and emoji are tokens of their own; URLs are dropped;
French and English stop words (and a few of Spanish, German, Italian) are removed. The counts live in sparse
matrices, so a million posts cost one pass of tokenisation and a few sparse products.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from clustering.analysis.defaults import TOP_KEYWORDS
from clustering.analysis.posts.columns import cluster_index

__all__ = ["STOP_WORDS", "Keywords", "PostTerms", "cluster_keywords", "post_terms", "tokenize"]

# A term must occur in at least this many posts of the whole collection: hapaxes are typos and one-off names, and
# pruning them keeps the vocabulary of a million posts small.
MIN_POSTS_PER_TERM = 2

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_EMOJI = (
    r"[\U0001F1E6-\U0001F1FF]{2}"  # a flag: two regional indicators
    r"|[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2300-\u23FF]\uFE0F?[\U0001F3FB-\U0001F3FF]?"
    r"(?:\u200D[\U0001F300-\U0001FAFF\u2600-\u27BF]\uFE0F?)*"  # ZWJ sequences (families, professions) stay one token
)
# Order matters: a hashtag or mention before its word, emoji before the catch-all word class.
_TOKEN = re.compile(rf"[#@]\w+|{_EMOJI}|\w+")
_WORD_START = re.compile(r"\w")  # plain words are filtered; hashtags, mentions and emoji are kept as they are

_ENGLISH = """a about above after again against all also am an and any are aren't as at be because been before being
below between both but by can could did do does doing don't down during each even few for from further get got had
has have having he her here hers herself him himself his how i if in into is isn't it it's its itself just let like
me more most my myself new no nor not now of off on once only or other our ours ourselves out over own really same
she should so some such than that the their theirs them themselves then there these they this those through to too
under until up us very via was we were what when where which while who whom why will with would you your yours
yourself yourselves rt amp one two im dont cant its ive thats"""
_FRENCH = """a ai aie aient ait alors as au aucun aussi autre aux avait avant avec avez avoir avons bien c ça car ce
ceci cela celle celles celui cependant ces cet cette ceux chaque chez ci comme comment d dans de des deux devrait doit
donc dont du elle elles en encore est et étaient était été être eu eux fait faire fois font hors ici il ils j je
jusqu juste l la le les leur leurs lui m ma mais me même mes moi moins mon n ne ni non nos notre nous on ont ou où
par parce pas peu peut plus pour pourquoi qu quand que quel quelle quelles quels qui quoi s sa sans se sera ses si
sien son sont sous sur t ta tandis tellement tels tes toi ton tous tout toute toutes très tu un une va vers voici
voilà vos votre vous y aujourd hui cest jai ya faut ok oui bon là"""
_OTHERS = """el la los las un una unos unas y o de del al en que es por para con no se su sus lo le les como más pero
der die das und ist nicht ein eine zu den mit von auf für sich des dem il lo gli di che è per con non una sono"""
STOP_WORDS = frozenset((_ENGLISH + " " + _FRENCH + " " + _OTHERS).split())


def tokenize(text: str | None) -> list[str]:
    """Lower-cased tokens of one post: words, ``#hashtags``, ``@mentions`` and emoji; URLs, numbers, single
    letters and stop words dropped.

    Apostrophes split words, so French elisions lose their article (``l'état`` gives ``état``).
    """
    if not text:
        return []
    tokens = _TOKEN.findall(_URL.sub(" ", text).lower())
    return [t for t in tokens if not _WORD_START.match(t) or (len(t) > 1 and not t.isdigit() and t not in STOP_WORDS)]


@dataclasses.dataclass(frozen=True)
class Keywords:
    """Top terms per cluster.

    Attributes
    ----------
    clusters : numpy.ndarray
        int64 cluster ids (every non-negative label present), ascending.
    terms : tuple of tuple of str
        Per cluster, its keywords, best first; empty when the cluster has no text.
    scores : tuple of tuple of float
        The c-TF-IDF score of each term.
    n_texts : numpy.ndarray
        int64, posts with a non-empty text per cluster.
    """

    clusters: np.ndarray
    terms: tuple[tuple[str, ...], ...]
    scores: tuple[tuple[float, ...], ...]
    n_texts: np.ndarray

    def of(self, cluster: int) -> tuple[str, ...]:
        """The keywords of ``cluster`` (empty when it has none or does not exist)."""
        index = int(np.searchsorted(self.clusters, cluster))
        found = index < len(self.clusters) and self.clusters[index] == cluster
        return self.terms[index] if found else ()

    def table(self) -> pa.Table:
        """``cluster`` (int32), ``keywords`` (``;``-separated, null when none), ``texts`` (int64)."""
        return pa.table(
            {
                "cluster": pa.array(self.clusters, pa.int32()),
                "keywords": pa.array([";".join(t) if t else None for t in self.terms], pa.string()),
                "texts": pa.array(self.n_texts, pa.int64()),
            }
        )


@dataclasses.dataclass(frozen=True)
class PostTerms:
    """Which terms each post uses: the tokenisation of a collection, done once and shared by every labelling.

    Attributes
    ----------
    has_text : numpy.ndarray
        bool per row: the row has a non-blank text.
    presence : scipy.sparse.csr_matrix
        (rows with text) x terms, 1 where the post uses the term (a term counts once per post).
    vocabulary : numpy.ndarray
        The terms (str), those in at least ``MIN_POSTS_PER_TERM`` posts.
    """

    has_text: np.ndarray
    presence: sp.csr_matrix
    vocabulary: np.ndarray


def post_terms(texts) -> PostTerms:
    """Tokenise the post ``texts`` (one per row, None where a row has none) once (:func:`tokenize`)."""
    texts = np.asarray(texts, dtype=object)
    has_text = np.array([isinstance(t, str) and bool(t.strip()) for t in texts], dtype=bool)
    presence, vocabulary = _term_presence(texts[has_text])
    return PostTerms(has_text, presence, vocabulary)


def cluster_keywords(labels, texts, *, top_n: int = TOP_KEYWORDS) -> Keywords:
    """c-TF-IDF keywords of every cluster from the post texts of its rows.

    Parameters
    ----------
    labels : array-like of int
        Per-row cluster labels, -1 for noise (any clustering or hierarchy level).
    texts : sequence of str or None, PostTerms, or None
        Per-row post text, or the same texts tokenised once by :func:`post_terms` (cheaper when several labellings
        of one collection are described); None (no text column) gives every cluster no keywords.
    top_n : int, default TOP_KEYWORDS
        Keywords kept per cluster.

    Returns
    -------
    Keywords
        A term counts once per post (a hashtag repeated in one post is one vote). The score is BERTopic's
        ``tf(t, c) * log(1 + A / f(t))``: ``tf`` the term's share of the cluster's term occurrences, ``A`` the mean
        occurrences per class (noise is a class too, so words common in the background lose weight), ``f(t)`` the
        term's occurrences everywhere. Ties go to the alphabetically first term.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    ids, position = cluster_index(labels)
    empty = tuple(() for _ in ids)
    if texts is None:
        return Keywords(ids, empty, empty, np.zeros(len(ids), np.int64))
    terms = texts if isinstance(texts, PostTerms) else post_terms(texts)
    if len(terms.has_text) != len(position):
        raise ValueError(f"texts has {len(terms.has_text)} rows but labels has {len(position)}")
    has_text = terms.has_text
    n_texts = np.bincount(position[has_text & (position >= 0)], minlength=len(ids)).astype(np.int64)
    if not len(terms.vocabulary):
        return Keywords(ids, empty, empty, n_texts)
    # Classes: each cluster, then noise last (its row is used for the idf only).
    doc_class = np.where(position[has_text] >= 0, position[has_text], len(ids))
    membership = sp.csr_matrix(
        (np.ones(len(doc_class)), (doc_class, np.arange(len(doc_class)))), shape=(len(ids) + 1, len(doc_class))
    )
    per_class = (membership @ terms.presence).tocsr()
    scores = _ctfidf(per_class)[: len(ids)]
    top = [_top_terms(scores, row, terms.vocabulary, top_n) for row in range(len(ids))]
    return Keywords(ids, tuple(t for t, _ in top), tuple(v for _, v in top), n_texts)


def _term_presence(texts: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Post x term presence (0/1) for terms in at least MIN_POSTS_PER_TERM posts, and the terms."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(analyzer=tokenize, binary=True, min_df=MIN_POSTS_PER_TERM, dtype=np.float64)
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # every term pruned or no token at all: no vocabulary
        return sp.csr_matrix((len(texts), 0)), np.array([], dtype=str)
    return counts.tocsr(), np.asarray(vectorizer.get_feature_names_out(), dtype=str)


def _ctfidf(per_class: sp.csr_matrix) -> sp.csr_matrix:
    totals = np.asarray(per_class.sum(axis=1)).ravel()
    frequency = np.asarray(per_class.sum(axis=0)).ravel()
    average = totals[totals > 0].mean()
    idf = np.log1p(average / np.maximum(frequency, 1.0))
    tf = sp.diags(1.0 / np.maximum(totals, 1.0)) @ per_class
    return (tf @ sp.diags(idf)).tocsr()


def _top_terms(scores: sp.csr_matrix, row: int, vocabulary: np.ndarray, top_n: int):
    start, end = scores.indptr[row], scores.indptr[row + 1]
    columns, values = scores.indices[start:end], scores.data[start:end]
    keep = values > 0
    columns, values = columns[keep], values[keep]
    order = np.lexsort((vocabulary[columns], -values))[:top_n]
    return tuple(str(vocabulary[c]) for c in columns[order]), tuple(round(float(v), 6) for v in values[order])

"""Cluster names: zero-shot with CLIP's text tower where the model has real weights, from keywords otherwise.

Each cluster's centroid (the mean of its L2-normalised image embeddings, normalised again) is scored against a
vocabulary of social-media image types, each encoded through a few prompt templates and averaged (CLIP's prompt
ensembling). The vocabulary is built in; ``--label-prompts FILE`` adds to it or replaces it. Only the text tower and
the tokenizer are loaded (the vision weights are skipped), from the model id the shards record, so a ViT-H/14 run
costs its text half. A random-weight model, a model that cannot be loaded or one whose text embedding does not fit
the image embeddings gives no zero-shot names, and the result says why; the top keywords name a cluster then, and
whenever zero-shot names are missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa

from clustering.analysis.defaults import NAME_MARGIN
from clustering.analysis.posts.columns import cluster_index
from clustering.analysis.posts.keywords import Keywords
from clustering.config import ConfigError

__all__ = [
    "BUILTIN_LABELS",
    "EncodedVocabulary",
    "Names",
    "TextTower",
    "cluster_centroids",
    "encode_vocabulary",
    "label_vocabulary",
    "name_clusters",
    "read_label_prompts",
    "zero_shot",
]

BUILTIN_LABELS = (
    "a meme", "a screenshot of a social media post", "a screenshot of a chat conversation", "a screenshot of a video",
    "a protest crowd", "a demonstration with banners and placards", "police officers", "riot police and tear gas",
    "a fire or burning barricade", "a street scene", "a portrait of a person", "a selfie", "a group photo",
    "a politician giving a speech", "a TV news still", "a newspaper article", "a document", "a handwritten note",
    "a text-only image", "a quote card", "a poster or flyer", "a flag", "a map", "a chart or infographic",
    "a cartoon", "a drawing or illustration", "a logo", "a product advertisement", "food", "a landscape",
    "a city skyline", "a building", "an animal", "a car or traffic", "a sports event", "a concert or festival",
    "a religious image", "soldiers or military equipment", "a video game", "a book or magazine cover",
)  # fmt: skip
# Prompt ensembling (Radford et al. 2021, section 3.1.4): each label is encoded in these sentences and the text
# embeddings are averaged, which is steadier than any single wording.
TEMPLATES = ("{}", "a picture of {}.", "an image posted on social media: {}.")
# CLIP's learned logit scale (clamped at 100 in training): softmax(100 * cosine) turns the cosine scores into the
# probabilities CLIP's own zero-shot classifier reports.
LOGIT_SCALE = 100.0
TOP_LABELS = 3
KEYWORDS_IN_NAME = 3
KEYWORD_NAMES = "names come from keywords: "


def read_label_prompts(path: str | Path) -> tuple[str, ...]:
    """Labels from a ``--label-prompts`` file: one per line, blank lines and ``#`` comments ignored.

    Raises ``ConfigError`` (one line naming the flag) when the file cannot be read or holds no label.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--label-prompts: cannot read {path}: {exc}") from None
    labels = [line.strip() for line in text.splitlines()]
    labels = [label for label in labels if label and not label.startswith("#")]
    if not labels:
        raise ConfigError(f"--label-prompts: {path} holds no label (one per line, # starts a comment)")
    return tuple(dict.fromkeys(labels))


def label_vocabulary(prompts_file: str | Path | None = None, *, replace: bool = False) -> tuple[str, ...]:
    """The labels clusters are named from: the built-in ones, plus (or, with ``replace``, only) the file's."""
    if prompts_file is None:
        if replace:
            raise ConfigError("--replace-label-prompts needs --label-prompts FILE")
        return BUILTIN_LABELS
    extra = read_label_prompts(prompts_file)
    return extra if replace else tuple(dict.fromkeys(BUILTIN_LABELS + extra))


class TextTower:
    """CLIP's text tower and tokenizer, loaded through ``from_pretrained`` from a hub id or a local folder.

    Parameters
    ----------
    model : str
        The model id recorded in the shard metadata (``metadata["model"]``).
    device : str, default "cpu"
        The vocabulary is small: the CPU encodes it in a second or two.
    local_files_only : bool, default False
        Load from a local folder or the Hugging Face cache only, never the network.
    """

    def __init__(self, model: str, *, device: str = "cpu", local_files_only: bool = False) -> None:
        from transformers import AutoConfig, AutoTokenizer, CLIPTextModelWithProjection

        config = AutoConfig.from_pretrained(model, local_files_only=local_files_only)
        text_config = getattr(config, "text_config", None)
        if text_config is None:
            raise ValueError(f"{model} is not a CLIP model (its config has no text_config)")
        # The projection size lives in the top-level CLIP config; the text config alone defaults to 512.
        text_config.projection_dim = config.projection_dim
        self.tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=local_files_only)
        with quiet_transformers():  # the vision weights are left out on purpose: no need to list them
            self.model = CLIPTextModelWithProjection.from_pretrained(
                model, config=text_config, local_files_only=local_files_only
            )
        self.model = self.model.to(device).eval()
        self.device = device

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 text embeddings, one row per text."""
        import torch

        with torch.inference_mode():
            tokens = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(self.device)
            features = self.model(**tokens).text_embeds
            return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()

    def embed_labels(self, labels: Sequence[str]) -> np.ndarray:
        """One unit vector per label: the normalised mean of its :data:`TEMPLATES` embeddings."""
        prompts = [template.format(label) for label in labels for template in TEMPLATES]
        vectors = self.embed(prompts).reshape(len(labels), len(TEMPLATES), -1).mean(axis=1)
        return _normalise(vectors)


@contextlib.contextmanager
def quiet_transformers():
    """transformers' notices and progress bars off for the block (loading and saving models), restored after."""
    from transformers.utils import logging as hf_logging

    previous, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def cluster_centroids(embeddings: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
    """``(cluster ids, unit centroids)``: the normalised mean embedding of each non-negative label's rows."""
    from scipy.sparse import csr_matrix

    ids, position = cluster_index(labels)
    X = np.asarray(embeddings, dtype=np.float32)
    if X.shape[0] != len(position):
        raise ValueError(f"embeddings has {X.shape[0]} rows but labels has {len(position)}")
    rows = np.flatnonzero(position >= 0)
    members = csr_matrix((np.ones(len(rows), np.float32), (position[rows], rows)), shape=(len(ids), len(position)))
    return ids, _normalise(np.asarray(members @ X))


@dataclasses.dataclass(frozen=True)
class ZeroShot:
    """Zero-shot scores of each centroid: the best labels with their probabilities, and whether the best is sure."""

    top: tuple[tuple[tuple[str, float], ...], ...]
    uncertain: np.ndarray


def zero_shot(
    centroids: np.ndarray,
    label_vectors: np.ndarray,
    labels: Sequence[str],
    *,
    top_k: int = TOP_LABELS,
    margin: float = NAME_MARGIN,
) -> ZeroShot:
    """CLIP zero-shot classification of unit ``centroids`` against unit ``label_vectors`` (one per label).

    Probabilities are ``softmax(LOGIT_SCALE * cosine)`` over the labels; a centroid is ``uncertain`` when its best
    probability exceeds the second best by less than ``margin``.
    """
    logits = LOGIT_SCALE * (np.asarray(centroids, np.float64) @ np.asarray(label_vectors, np.float64).T)
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    best = np.take_along_axis(probabilities, order, axis=1)
    runner_up = best[:, 1] if best.shape[1] > 1 else np.zeros(len(best))
    top = tuple(
        tuple((labels[j], round(float(p), 4)) for j, p in zip(row, probs, strict=True))
        for row, probs in zip(order, best, strict=True)
    )
    return ZeroShot(top=top, uncertain=(best[:, 0] - runner_up) < margin if len(best) else np.zeros(0, bool))


@dataclasses.dataclass(frozen=True)
class EncodedVocabulary:
    """The labels clusters are named from, encoded once per run by the text tower of the shards' model.

    Attributes
    ----------
    labels : tuple of str
        The vocabulary (:func:`label_vocabulary`).
    vectors : numpy.ndarray or None
        ``(len(labels), d)`` unit rows; None when there are no zero-shot names.
    note : str or None
        Why there are no zero-shot names, in one line (None when there are).
    """

    labels: tuple[str, ...]
    vectors: np.ndarray | None
    note: str | None


def encode_vocabulary(
    metadata: dict, vocabulary: Sequence[str] = BUILTIN_LABELS, *, dim: int | None = None
) -> EncodedVocabulary:
    """Encode ``vocabulary`` with the text tower of the model the shards record, or say why not.

    Parameters
    ----------
    metadata : dict
        The shard metadata (``ShardData.metadata``): ``model`` is loaded, ``random_weights`` rules zero-shot out.
    vocabulary : sequence of str, default BUILTIN_LABELS
        Labels to choose from (:func:`label_vocabulary`).
    dim : int, optional
        Dimension of the image embeddings; a text tower of another size gives no zero-shot names.

    Returns
    -------
    EncodedVocabulary
        Without vectors (and with the reason) when the model has random weights, is not recorded, cannot be loaded
        (offline without a cache, a folder that is gone) or does not fit the image embeddings.
    """
    labels = tuple(vocabulary)
    model = metadata.get("model")
    if metadata.get("random_weights"):
        return EncodedVocabulary(
            labels, None, KEYWORD_NAMES + "the model has random weights, so it gives no zero-shot names"
        )
    if not model:
        return EncodedVocabulary(labels, None, KEYWORD_NAMES + "the shards record no model to load a text tower from")
    try:
        vectors = _text_tower(model).embed_labels(list(labels))
    except (OSError, ValueError, KeyError) as exc:  # offline without a cache, not a CLIP folder, no tokenizer
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        return EncodedVocabulary(labels, None, f"{KEYWORD_NAMES}cannot load the text tower of {model} ({reason})")
    if dim is not None and vectors.shape[1] != dim:
        return EncodedVocabulary(
            labels,
            None,
            f"{KEYWORD_NAMES}{model}'s text embeddings have {vectors.shape[1]} dimensions, the image embeddings {dim}",
        )
    return EncodedVocabulary(labels, vectors, None)


def _text_tower(model: str) -> TextTower:
    """The text tower from the cache or a local folder, else from the hub when it can be reached.

    Offline, the hub client retries each file for about half a minute before giving up; a name lookup tells at once.
    """
    try:
        return TextTower(model, local_files_only=True)
    except OSError:
        if Path(model).exists():
            raise  # a local folder that is not a usable model: the network cannot help
    from huggingface_hub.constants import ENDPOINT

    try:
        socket.getaddrinfo(urlsplit(ENDPOINT).hostname, 443)
    except OSError:
        raise OSError(f"not in the local cache and {ENDPOINT} cannot be reached") from None
    return TextTower(model)


@dataclasses.dataclass(frozen=True)
class Names:
    """A name per cluster.

    Attributes
    ----------
    clusters : numpy.ndarray
        int64 cluster ids, ascending.
    names : tuple of str or None
        The zero-shot label where there is one, else the top keywords joined by ", ", else None.
    sources : tuple of str or None
        Per cluster ``"zero-shot"``, ``"keywords"``, or None for a cluster without a name.
    uncertain : numpy.ndarray
        bool: the zero-shot label won by less than the margin (always False for other sources).
    top_labels : tuple of tuple of (str, float)
        The best zero-shot labels with their probabilities (empty without zero-shot names).
    note : str or None
        Why there are no zero-shot names, in one line (None when there are).
    """

    clusters: np.ndarray
    names: tuple[str | None, ...]
    sources: tuple[str | None, ...]
    uncertain: np.ndarray
    top_labels: tuple[tuple[tuple[str, float], ...], ...]
    note: str | None

    def table(self) -> pa.Table:
        """``cluster``, ``name``, ``name_source``, ``name_uncertain`` and ``name_scores`` (``label (p)`` items,
        ``;``-separated, null without zero-shot names)."""
        scores = [";".join(f"{label} ({p:.2f})" for label, p in top) or None for top in self.top_labels]
        return pa.table(
            {
                "cluster": pa.array(self.clusters, pa.int32()),
                "name": pa.array(self.names, pa.string()),
                "name_source": pa.array(self.sources, pa.string()),
                "name_uncertain": pa.array(self.uncertain, pa.bool_()),
                "name_scores": pa.array(scores, pa.string()),
            }
        )


def name_clusters(
    embeddings: np.ndarray,
    labels,
    *,
    vocabulary: EncodedVocabulary,
    keywords: Keywords | None = None,
    margin: float = NAME_MARGIN,
) -> Names:
    """Name every cluster: zero-shot where the vocabulary is encoded, from keywords otherwise.

    Parameters
    ----------
    embeddings : numpy.ndarray
        ``(n, d)`` L2-normalised image embeddings, one per row of ``labels``.
    labels : array-like of int
        Per-row cluster labels, -1 for noise (any clustering or hierarchy level).
    vocabulary : EncodedVocabulary
        From :func:`encode_vocabulary`, once for every labelling of a run (the text tower is loaded once).
    keywords : Keywords, optional
        From :func:`.keywords.cluster_keywords`; its top terms name clusters without a zero-shot
        name.
    margin : float, default NAME_MARGIN
        Probability margin under which a zero-shot name is flagged uncertain.

    Returns
    -------
    Names
    """
    ids, centroids = cluster_centroids(embeddings, labels)
    found = None
    if vocabulary.vectors is not None:
        found = zero_shot(centroids, vocabulary.vectors, vocabulary.labels, margin=margin)
    names, sources = [], []
    for index, cluster in enumerate(ids):
        terms = keywords.of(int(cluster))[:KEYWORDS_IN_NAME] if keywords is not None else ()
        if found is not None:
            names.append(found.top[index][0][0])
            sources.append("zero-shot")
        elif terms:
            names.append(", ".join(terms))
            sources.append("keywords")
        else:
            names.append(None)
            sources.append(None)
    return Names(
        clusters=ids,
        names=tuple(names),
        sources=tuple(sources),
        uncertain=found.uncertain if found is not None else np.zeros(len(ids), bool),
        top_labels=found.top if found is not None else tuple(() for _ in ids),
        note=vocabulary.note,
    )

"""Cluster names: the tiny CLIP's text tower loaded offline through from_pretrained, zero-shot scoring, fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clustering.analysis.posts.keywords import cluster_keywords
from clustering.analysis.posts.names import (
    BUILTIN_LABELS,
    TextTower,
    cluster_centroids,
    encode_vocabulary,
    label_vocabulary,
    name_clusters,
    read_label_prompts,
    zero_shot,
)
from clustering.config import ConfigError


@pytest.fixture(scope="module")
def tower(tiny_model_dir):
    return TextTower(tiny_model_dir)


def test_the_tiny_model_ships_a_tokenizer_that_autotokenizer_loads(tiny_model_dir):
    from transformers import AutoTokenizer

    assert (
        json.loads((Path(tiny_model_dir) / "tokenizer_config.json").read_text())["tokenizer_class"] == "CLIPTokenizer"
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tokenizer("un mème ✊ about Protests").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "un mème ✊ about protests"
    config = json.loads((Path(tiny_model_dir) / "config.json").read_text())
    assert config["text_config"]["eos_token_id"] == tokenizer.eos_token_id  # the tower pools the real end token


def test_the_text_tower_embeds_labels_as_unit_vectors_of_the_image_dimension(tower):
    vectors = tower.embed_labels(["a meme", "a flag", "a meme"])
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    assert not np.allclose(vectors[0], vectors[1])


def test_a_cluster_lying_on_a_labels_text_vector_gets_that_name(tiny_model_dir, tower):
    labels_vocab = list(BUILTIN_LABELS)
    targets = tower.embed_labels(["a flag", "a map"])
    rng = np.random.default_rng(0)
    embeddings = np.concatenate(
        [targets[0] + 0.01 * rng.normal(size=(10, 32)), targets[1] + 0.01 * rng.normal(size=(10, 32))]
    )
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    labels = np.repeat([0, 1], 10)
    # The tiny model's metadata says random weights; this test lifts that flag to exercise the zero-shot path.
    vocabulary = encode_vocabulary({"model": tiny_model_dir}, labels_vocab, dim=32)
    names = name_clusters(embeddings, labels, vocabulary=vocabulary)
    assert names.note is None
    assert names.names == ("a flag", "a map") and names.sources == ("zero-shot", "zero-shot")
    assert names.top_labels[0][0][0] == "a flag" and len(names.top_labels[0]) == 3
    probabilities = [p for _, p in names.top_labels[0]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0 + 1e-6
    table = names.table().to_pylist()
    assert table[0]["name_scores"].startswith("a flag (")


def test_a_small_margin_flags_the_name_uncertain():
    labels = ["a", "b", "c"]
    label_vectors = np.eye(3, dtype=np.float32)
    centroids = np.array([[1.0, 0.0, 0.0], [0.7072, 0.7070, 0.0]], dtype=np.float32)
    found = zero_shot(centroids, label_vectors, labels, margin=0.15)
    assert found.uncertain.tolist() == [False, True]
    assert found.top[1][0][0] == "a" and found.top[1][1][0] == "b"


def test_random_weights_give_keyword_names_and_say_why(tiny_model_dir):
    labels = [0, 0, 1, 1, -1]
    keywords = cluster_keywords(labels, ["#manif police rue", "#manif police", "chat", "chat dort", "x"])
    embeddings = np.eye(5, dtype=np.float32)
    vocabulary = encode_vocabulary({"model": tiny_model_dir, "random_weights": True})
    names = name_clusters(embeddings, labels, vocabulary=vocabulary, keywords=keywords)
    assert names.note == "names come from keywords: the model has random weights, so it gives no zero-shot names"
    assert names.names == ("#manif, police", "chat") and names.sources == ("keywords", "keywords")
    assert not names.uncertain.any() and names.top_labels == ((), ())
    unnamed = name_clusters(embeddings, labels, vocabulary=vocabulary)
    assert unnamed.names == (None, None) and unnamed.sources == (None, None)
    assert unnamed.table().column("name_source").null_count == 2


def test_an_unloadable_model_falls_back_to_keywords_with_a_reason(tmp_path):
    keywords = cluster_keywords([0, 0], ["#a b", "#a c"])
    vocabulary = encode_vocabulary({"model": str(tmp_path)})
    names = name_clusters(np.eye(2, dtype=np.float32), [0, 0], vocabulary=vocabulary, keywords=keywords)
    assert names.names == ("#a",) and names.note.startswith("names come from keywords: cannot load the text tower")
    assert "record no model" in encode_vocabulary({}).note


def test_a_hub_model_that_is_neither_cached_nor_reachable_fails_at_once(monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "https://hub.invalid")  # .invalid never resolves
    vocabulary = encode_vocabulary({"model": "someone/some-clip"})
    assert vocabulary.vectors is None
    assert vocabulary.note.endswith("(not in the local cache and https://hub.invalid cannot be reached)")


def test_text_embeddings_of_another_size_are_not_compared(tiny_model_dir):
    vocabulary = encode_vocabulary({"model": tiny_model_dir}, dim=64)
    assert vocabulary.note.endswith("text embeddings have 32 dimensions, the image embeddings 64")
    names = name_clusters(np.eye(64, dtype=np.float32)[:4], [0, 0, 1, 1], vocabulary=vocabulary)
    assert names.sources == (None, None) and names.note == vocabulary.note


def test_centroids_are_normalised_means_per_cluster():
    embeddings = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float32)
    ids, centroids = cluster_centroids(embeddings, [4, 4, 9, -1])
    assert ids.tolist() == [4, 9]
    np.testing.assert_allclose(centroids, [[2**-0.5, 2**-0.5], [1, 0]], atol=1e-6)


def test_label_prompt_files_add_to_or_replace_the_vocabulary(tmp_path):
    prompts = tmp_path / "labels.txt"
    prompts.write_text("# our own types\na banner of the CGT\n\na flag\na banner of the CGT\n", encoding="utf-8")
    assert read_label_prompts(prompts) == ("a banner of the CGT", "a flag")
    added = label_vocabulary(prompts)
    assert added[: len(BUILTIN_LABELS)] == BUILTIN_LABELS and added[-1] == "a banner of the CGT"
    assert len(added) == len(BUILTIN_LABELS) + 1  # "a flag" is built in already
    assert label_vocabulary(prompts, replace=True) == ("a banner of the CGT", "a flag")
    assert label_vocabulary() == BUILTIN_LABELS


def test_bad_label_prompt_files_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(ConfigError, match=r"--label-prompts: .*empty.txt holds no label"):
        read_label_prompts(empty)
    with pytest.raises(ConfigError, match="--label-prompts: cannot read"):
        read_label_prompts(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="--replace-label-prompts needs --label-prompts FILE"):
        label_vocabulary(None, replace=True)

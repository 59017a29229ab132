"""c-TF-IDF keywords per cluster: tokens kept and dropped, known answers, clusters without texts."""

from __future__ import annotations

import numpy as np
import pytest

from clustering.analysis.posts.keywords import cluster_keywords, post_terms, tokenize


def test_tokens_keep_hashtags_mentions_and_emoji_and_drop_urls_numbers_and_stop_words():
    text = "Regardez : la MANIF ✊ de l'état ! #Bloquons @Jean_Dupont https://t.co/x1 www.exemple.fr 2024 and the 🇫🇷"
    assert tokenize(text) == ["regardez", "manif", "✊", "état", "#bloquons", "@jean_dupont", "🇫🇷"]
    assert tokenize("👨‍👩‍👧 👍🏽") == ["👨\u200d👩\u200d👧", "👍🏽"]  # ZWJ sequences and skin tones stay one token
    assert tokenize(None) == [] and tokenize("") == []


def test_french_and_english_stop_words_are_removed():
    assert tokenize("c'est une photo de la police avec les gens") == ["photo", "police", "gens"]
    assert tokenize("this is what they have been doing with the police") == ["police"]


def test_a_hashtag_shared_by_a_clusters_texts_is_among_its_keywords():
    rng = np.random.default_rng(0)
    filler = ["soleil", "plage", "train", "café", "livre", "match", "pluie", "musique", "ville", "jardin"]
    texts, labels = [], []
    for row in range(60):
        cluster = row % 3
        words = list(rng.choice(filler, size=3, replace=False))
        if cluster == 1:
            words.append("#Bloquons")
        texts.append(" ".join(words))
        labels.append(cluster)
    keywords = cluster_keywords(labels, texts)
    assert keywords.of(1)[0] == "#bloquons"
    assert "#bloquons" not in keywords.of(0) + keywords.of(2)


def test_terms_spread_everywhere_lose_to_terms_of_the_cluster():
    texts = ["vote demain", "vote ce soir", "vote partout"] * 4 + ["vote chat", "vote chat", "vote chat"]
    labels = [0] * 12 + [1] * 3
    keywords = cluster_keywords(labels, texts)
    assert keywords.of(1)[0] == "chat"


def test_noise_counts_for_idf_but_gets_no_keywords():
    labels = [-1, -1, -1, 0, 0]
    texts = ["bruit partout", "bruit encore", "bruit", "bruit #signal", "#signal fort"]
    keywords = cluster_keywords(labels, texts)
    assert keywords.clusters.tolist() == [0]
    assert keywords.of(0)[0] == "#signal"
    assert keywords.of(-1) == ()


def test_clusters_without_texts_get_no_keywords():
    labels = [0, 0, 1, 1, 2]
    texts = ["#a b", "#a c", None, "  ", "#a"]
    keywords = cluster_keywords(labels, texts)
    assert keywords.n_texts.tolist() == [2, 0, 1]
    assert keywords.of(1) == ()
    assert keywords.table().column("keywords").to_pylist()[1] is None
    none = cluster_keywords(labels, None)
    assert none.terms == ((), (), ()) and none.n_texts.tolist() == [0, 0, 0]
    assert cluster_keywords([-1, -1], ["a b", "a b"]).clusters.size == 0


def test_table_joins_keywords_with_semicolons_best_first():
    keywords = cluster_keywords([0, 0, 1, 1], ["#x #y", "#x #y #x", "z w", "z"])
    table = keywords.table()
    assert table.column_names == ["cluster", "keywords", "texts"]
    first = table.column("keywords").to_pylist()[0].split(";")
    assert set(first) == {"#x", "#y"} and keywords.scores[0][0] >= keywords.scores[0][1]


def test_texts_tokenised_once_serve_every_labelling_with_the_same_keywords():
    texts = ["#manif rue", "#manif police", "chat dort", "chat #mignon", "#mignon chien", "rue police"]
    terms = post_terms(texts)
    assert terms.has_text.tolist() == [True] * 6 and terms.presence.shape == (6, len(terms.vocabulary))
    for labels in ([0, 0, 1, 1, 1, -1], [0, 1, 2, 2, 2, 0], [-1, -1, 0, 0, 0, 0]):
        from_texts, from_terms = cluster_keywords(labels, texts), cluster_keywords(labels, terms)
        assert from_terms.terms == from_texts.terms and from_terms.n_texts.tolist() == from_texts.n_texts.tolist()
    assert cluster_keywords([0, 0, 1, 1, 1, -1], terms).of(0)[0] == "#manif"


def test_mismatched_lengths_and_bad_top_n_are_refused():
    with pytest.raises(ValueError, match="texts has 1 rows but labels has 2"):
        cluster_keywords([0, 1], ["a"])
    with pytest.raises(ValueError, match="top_n must be at least 1"):
        cluster_keywords([0], ["a"], top_n=0)

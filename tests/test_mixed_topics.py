"""The "possibly mixed" flag (mixed_topics.py): known answers on clusters whose posts' communities are known."""

from __future__ import annotations

import numpy as np

from clustering.analysis.posts.keywords import cluster_keywords, post_terms
from clustering.analysis.posts.mixed_topics import mixed_topics

GENERIC = ["rally", "downtown", "tonight", "crowd", "police", "march"]


def posts(communities: list[str], per: int, *, seed: int = 0) -> list[str]:
    """``per`` posts per hashtag community, each post its hashtag, a word of its own community and generic words."""
    rng = np.random.default_rng(seed)
    texts = []
    for tag in communities:
        for i in range(per):
            generic = " ".join(rng.choice(GENERIC, size=3, replace=False))
            texts.append(f"{tag} {tag[1:]}slogan{i % 3} {generic}")
    return texts


def check(labels, texts):
    keywords = cluster_keywords(labels, post_terms(texts))
    return mixed_topics(labels, post_terms(texts), keywords)


def test_a_cluster_of_two_hashtag_communities_is_flagged_and_a_coherent_one_is_not():
    texts = posts(["#stopthewar", "#greenfuture"], 60) + posts(["#votenow"], 80, seed=1)
    labels = np.array([0] * 120 + [1] * 80)  # cluster 0 holds both communities, cluster 1 one
    found = check(labels, texts)
    assert found.flagged().tolist() == [True, False]
    assert set(found.avoiding[0]) == {"#stopthewar", "#greenfuture"}
    table = found.table().to_pylist()
    assert table[0]["possibly_mixed"] and "#stopthewar" in table[0]["mixed_keywords"]
    assert table[1] == {"cluster": 1, "possibly_mixed": False, "mixed_keywords": None}


def test_three_communities_are_listed_together():
    texts = posts(["#a1", "#b2", "#c3"], 50)
    found = check(np.zeros(150, dtype=int), texts)
    assert set(found.avoiding[0]) == {"#a1", "#b2", "#c3"}


def test_words_that_avoid_each_other_are_not_hashtags():
    # Slogan variants never meet inside one campaign's posts: plain words are not communities.
    texts = [f"#votenow slogan{i % 3} word{i % 4} {GENERIC[i % 6]}" for i in range(120)]
    assert not check(np.zeros(120, dtype=int), texts).flagged().any()


def test_hashtags_that_meet_by_chance_are_not_flagged():
    # Two hashtags each in a third of the posts, placed independently: they meet about as often as chance says.
    rng = np.random.default_rng(3)
    texts = [
        " ".join(["#one"] * (rng.random() < 0.35) + ["#two"] * (rng.random() < 0.35) + list(rng.choice(GENERIC, 3)))
        for _ in range(200)
    ]
    assert not check(np.zeros(200, dtype=int), texts).flagged().any()


def test_too_few_posts_to_tell_are_not_flagged():
    texts = posts(["#x", "#y"], 4)  # 2 would be expected together by chance: seeing none means nothing
    assert not check(np.zeros(8, dtype=int), texts).flagged().any()


def test_no_text_and_noise_give_no_flag():
    labels = np.array([0, 0, -1, 1])
    keywords = cluster_keywords(labels, None)
    found = mixed_topics(labels, None, keywords)
    assert found.clusters.tolist() == [0, 1] and not found.flagged().any()

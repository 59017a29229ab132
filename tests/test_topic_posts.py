"""Issue 22's Done-when: topics the original space keeps apart are each their own cluster in the automatic choice.

The set (clustering.devtools.synthetic.make_topic_posts): 8 topics of 400 CLIP-like images around one common
direction, cosine 0.76 within a topic and 0.59 between topics, which is also their similarity to the 1,100 background
images (25 %); 5 bursts of 20 near-copies. The harder variant puts the topics in groups of three that share part of
their own direction, so that UMAP lays them side by side. This test asserts the harder variant: every seed must give
8 clusters of one topic each, but one seed in ten may miss (the Done-when's 9 of 10). ``bench/topic_posts.py``
measures both variants, with and without the original-space tests (docs/performance.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from clustering.analysis.cluster.cluster_points import cluster_points
from clustering.analysis.options import AnalyzeConfig
from clustering.analysis.steps import Steps
from clustering.devtools.synthetic import make_topic_posts

pytestmark = pytest.mark.slow
SEEDS = range(10)
VARIANTS = {"unrelated topics": {}, "topics side by side": {"siblings": 3, "sibling_similarity": 0.4}}


def own_clusters(labels: np.ndarray, truth: np.ndarray) -> int:
    """Topics that are their own cluster: one cluster holds 80 % of the topic, and is 80 % that topic."""
    found = 0
    for topic in np.unique(truth[truth >= 0]):
        members = labels[truth == topic]
        clustered = members[members >= 0]
        if not len(clustered):
            continue
        cluster = np.bincount(clustered).argmax()
        holds = np.mean(members == cluster)
        purity = np.mean(truth[labels == cluster] == topic)
        found += holds >= 0.8 and purity >= 0.8
    return found


def chosen_labels(X: np.ndarray, **overrides) -> np.ndarray:
    config = AnalyzeConfig(input="-", output="-", progress=False, threads=2, **overrides)
    clustering = cluster_points(X, config, Steps())
    return clustering.results[clustering.selection.index].labels


def test_every_topic_is_its_own_cluster_in_nine_of_ten_seeds():
    """The harder variant, where the selection alone merged topics on 6 of 10 seeds; bench/topic_posts.py measures
    both variants with and without the original-space tests."""
    found = []
    for seed in SEEDS:
        X, truth = make_topic_posts(seed=seed, **VARIANTS["topics side by side"])
        found.append(own_clusters(chosen_labels(X), truth))
    assert sum(count == 8 for count in found) >= 9, f"own-cluster topics per seed: {found}"

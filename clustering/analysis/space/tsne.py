"""The 2-D map by t-SNE (``--map tsne``): openTSNE on the shared kNN graph, seeded."""

from __future__ import annotations

import numpy as np

from clustering.analysis.space.knn_graph import KnnGraph


def tsne_map(X, graph: KnnGraph, perplexity, seed, progress) -> tuple[np.ndarray, float]:
    from openTSNE import TSNE
    from openTSNE.affinity import PerplexityBasedNN
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    idx, dist = graph.indices[:, 1:], graph.distances[:, 1:]  # openTSNE wants neighbours without the point itself
    effective = float(min(perplexity, (idx.shape[1]) / 3.0))
    affinities = PerplexityBasedNN(
        perplexity=effective,
        knn_index=PrecomputedNeighbors(idx.astype(np.int64), dist.astype(np.float64)),
        verbose=progress,
    )
    tsne = TSNE(n_components=2, random_state=seed, n_jobs=1 if seed is not None else -1, verbose=progress)
    # PCA initialisation (openTSNE's default, seeded) needs X: pass both.
    embedding = tsne.fit(X, affinities=affinities)
    return np.ascontiguousarray(np.asarray(embedding), dtype=np.float32), effective

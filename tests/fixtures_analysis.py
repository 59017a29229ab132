"""Analysis fixtures: synthetic CLIP-like embeddings with known labels, their reduction, and a reference HDBSCAN.

Session-scoped and shared by the reduce, sweep, metrics, selection and end-to-end analysis tests (names are stable):

- ``sphere_blobs``: :class:`Blobs` of 600 unit vectors in 64-D, 6 clusters, 15 % background, 3 near-duplicate bursts.
- ``sphere_reduction``: :func:`clustering.analysis.space.reduce.reduce` of ``sphere_blobs`` (5-D cluster space, seed 0).
- ``reference_hdbscan``: a function ``(X, min_cluster_size, min_samples) -> fitted hdbscan.HDBSCAN`` with
  ``gen_min_span_tree=True`` and every other option at hdbscan's default: what the sweep must reproduce.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

# numba's first compile of UMAP takes ~100 s; keep the cache in the checkout so later runs are fast.
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), ".numba_cache"))


@dataclass(frozen=True)
class Blobs:
    """Embeddings ``X`` (float32, unit rows) and true ``labels`` (-1 = background)."""

    X: np.ndarray
    labels: np.ndarray


@pytest.fixture(scope="session")
def sphere_blobs() -> Blobs:
    from clustering.devtools.synthetic import make_blobs_on_sphere

    X, labels = make_blobs_on_sphere(600, dim=64, n_clusters=6, noise_fraction=0.15, duplicate_bursts=3, seed=0)
    return Blobs(X, labels)


@pytest.fixture(scope="session")
def sphere_reduction(sphere_blobs):
    from clustering.analysis.space.reduce import reduce

    return reduce(sphere_blobs.X, cluster_dims=5, seed=0)


def _reference_hdbscan(X: np.ndarray, min_cluster_size: int, min_samples: int, selection: str = "eom"):
    import hdbscan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = hdbscan.HDBSCAN(
            min_cluster_size=min_cluster_size,
            min_samples=min_samples,
            cluster_selection_method=selection,
            gen_min_span_tree=True,
        )
        return model.fit(X)


@pytest.fixture(scope="session")
def reference_hdbscan():
    return _reference_hdbscan

"""The GPU path: cuML computes the kNN graph, the UMAP layouts and the HDBSCAN trees when it and a CUDA device exist.

Only the three heavy kernels move to the device; everything around them is the CPU path's own code, run on the same
arrays: the membership graph and the PCA initialisation (reduce.py), the per-``min_cluster_size`` selection from each
tree (sweep.py's numba port of hdbscan's), the background test, the scores, the choice, the hierarchy and the post
analysis. :func:`detect` decides once per run and says why; the three functions below are the whole GPU branch.

Results differ from the CPU path's in the last digits (cuML's exact kNN against pynndescent's approximate one, its
own SGD and spanning-tree code), as two CPU runs with different thread counts do; cuML's seeded layouts are
reproducible "to 3 digits" by its own account.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clustering.config import ConfigError

BACKENDS = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class Backend:
    """Where the heavy kernels run, and why.

    Attributes
    ----------
    gpu : bool
        True when cuML and a CUDA device are used.
    reason : str
        One line for the log and ``metrics.json``, e.g. "CPU: cuML is not installed".
    """

    gpu: bool
    reason: str


def detect(requested: str = "auto") -> Backend:
    """Choose the backend: the GPU when cuML and a CUDA device are there (``"auto"``), or as requested.

    Raises
    ------
    ConfigError
        ``requested`` is not one of :data:`BACKENDS`, or ``"gpu"`` was requested where there is none (the message
        says what is missing).
    """
    if requested not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    if requested == "cpu":
        return Backend(False, "CPU: requested")
    missing = _missing()
    if missing and requested == "gpu":
        raise ConfigError(f"--backend gpu: {missing}; use --backend auto or cpu")
    return Backend(False, f"CPU: {missing}") if missing else Backend(True, "GPU: cuML on a CUDA device")


def _missing() -> str | None:
    """What keeps the GPU path from running here, or None."""
    try:
        import cuml  # noqa: F401
        import cupy
    except ImportError:
        return "cuML is not installed"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        count = 0
    return None if count else "no CUDA device"


def knn(X: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact euclidean nearest neighbours on the device: ``(indices int32, distances float32)``, each ``(n, k)``."""
    from cuml.neighbors import NearestNeighbors

    model = NearestNeighbors(n_neighbors=n_neighbors, algorithm="brute", metric="euclidean", output_type="numpy")
    distances, indices = model.fit(X).kneighbors(X)
    return np.asarray(indices, dtype=np.int32), np.asarray(distances, dtype=np.float32)


def layout(X: np.ndarray, graph, init: np.ndarray, *, a: float, b: float, seed: int | None, n_epochs) -> np.ndarray:
    """cuML's UMAP optimisation of ``graph`` from ``init`` (the CPU path's graph and initialisation)."""
    from cuml.manifold.umap import simplicial_set_embedding

    coords = simplicial_set_embedding(
        X, graph, n_components=init.shape[1], a=a, b=b, n_epochs=n_epochs, init=init, random_state=seed
    )
    return np.ascontiguousarray(_host(coords), dtype=np.float32)


def single_linkage(X: np.ndarray, min_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """cuML's HDBSCAN hierarchy of ``X``: the scipy-style single-linkage tree and the spanning tree (hdbscan layout)."""
    from cuml.cluster.hdbscan import HDBSCAN

    model = HDBSCAN(min_cluster_size=2, min_samples=min_samples, gen_min_span_tree=True).fit(X)
    return model.single_linkage_tree_.to_numpy(), model.minimum_spanning_tree_.to_numpy()


def _host(array) -> np.ndarray:
    """A numpy array from a cupy (``.get()``) or host array."""
    return array.get() if hasattr(array, "get") else np.asarray(array)

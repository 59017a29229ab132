"""UMAP's layout of the shared membership graph: the SGD set-up both layouts use, in this process or in a second
interpreter beside it, and umap's numba kernels taken from numba's disk cache.

:func:`membership_graph` builds UMAP's fuzzy graph once from the shared kNN graph; a :class:`UmapFit` lays it out from
a principal-components start (:func:`initial_layout`); :class:`MapProcess` runs the 2-D map's fit in a second
interpreter while this one lays out the clustering space (:mod:`clustering.analysis.space.reduce` decides when).
"""

from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clustering.analysis import gpu
from clustering.analysis.space.knn_graph import KnnGraph

# UMAP's defaults for the optimisation (umap.UMAP: spread, learning_rate, repulsion_strength, negative_sample_rate).
_SPREAD, _LEARNING_RATE, _REPULSION, _NEGATIVE_SAMPLES = 1.0, 1.0, 1.0, 5


@dataclass(frozen=True)
class UmapFit:
    """One UMAP optimisation set-up shared by both layouts: the membership graph and how to run the SGD."""

    graph: object
    seed: int | None
    n_epochs: int | None
    parallel: bool
    progress: bool
    gpu_data: np.ndarray | None = None

    def __call__(self, init: np.ndarray, min_dist: float) -> np.ndarray:
        """UMAP's layout of the graph in ``init.shape[1]`` dimensions, from ``init`` (principal components)."""
        from umap.umap_ import find_ab_params, simplicial_set_embedding

        a, b = find_ab_params(_SPREAD, min_dist)
        start = initial_layout(init, self.seed)
        if self.gpu_data is not None:
            return gpu.layout(self.gpu_data, self.graph, start, a=a, b=b, seed=self.seed, n_epochs=self.n_epochs)
        use_disk_cached_umap_kernels()
        # umap.UMAP.fit passes the same arguments (its defaults) and the same RandomState.
        coords, _ = simplicial_set_embedding(
            None, self.graph, init.shape[1], _LEARNING_RATE, a, b, _REPULSION, _NEGATIVE_SAMPLES,
            self.n_epochs, start, np.random.RandomState(self.seed), "euclidean", {}, False, {}, False,
            parallel=self.parallel, verbose=self.progress, tqdm_kwds={"disable": not self.progress},
        )  # fmt: skip
        return np.ascontiguousarray(coords, dtype=np.float32)


def timed(fit: UmapFit, init: np.ndarray, min_dist: float) -> tuple[np.ndarray, float]:
    """``fit(init, min_dist)`` and its seconds."""
    start = time.perf_counter()
    return fit(init, min_dist), time.perf_counter() - start


def initial_layout(components: np.ndarray, seed: int | None) -> np.ndarray:
    """Principal components scaled to UMAP's initial box, plus UMAP's tiny seeded jitter (umap_.noisy_scale_coords):
    without it, points with equal components would start on top of each other."""
    scale = float(np.abs(components).max())
    jitter = np.random.RandomState(seed).normal(scale=1e-4, size=components.shape).astype(np.float32)
    return (components * (10.0 / scale if scale > 0 else 1.0)).astype(np.float32) + jitter


def membership_graph(X: np.ndarray, graph: KnnGraph, metric: str, n_epochs: int | None):
    """UMAP's fuzzy membership graph from the kNN graph (umap_.fuzzy_simplicial_set), built once for both layouts.

    Returned as the canonical COO matrix with the edges too weak to be sampled in ``n_epochs`` already dropped, which
    is what ``umap_.simplicial_set_embedding`` makes of its graph first (in place): handed this one, it finds nothing
    left to change, so both layouts share it without a copy.
    """
    from umap.umap_ import fuzzy_simplicial_set

    use_disk_cached_umap_kernels()
    memberships, _, _ = fuzzy_simplicial_set(
        X, graph.indices.shape[1], None, metric, knn_indices=graph.indices, knn_dists=graph.distances
    )
    coo = memberships.tocoo()
    coo.sum_duplicates()
    default = 500 if coo.shape[0] <= 10_000 else 200  # simplicial_set_embedding's own epochs and pruning rule
    epochs = n_epochs if n_epochs is not None and n_epochs > 10 else default
    coo.data[coo.data < coo.data.max() / float(epochs)] = 0.0
    coo.eliminate_zeros()
    return coo


# umap's numba kernels that the membership graph and the layouts call, by module and name.
UMAP_KERNELS = (
    ("umap.umap_", "smooth_knn_dist"),
    ("umap.umap_", "compute_membership_strengths"),
    ("umap.layouts", "_nb_optimize_layout_euclidean_single_epoch"),
)
# Not the parallel epoch: umap compiles it from the same Python function as the serial one, and numba's cache key
# holds no compile options, so a disk-cached parallel variant would serve seeded (serial) layouts too and make them
# differ run to run.


@functools.cache
def use_disk_cached_umap_kernels() -> None:
    """Swap umap's numba kernels for the same code compiled with numba's disk cache.

    umap compiles them anew in every process: 5-6 s for the membership graph's two (a sixth of the whole analysis at
    40,000 points) and 1.2 s for the SGD epoch, which the map's process pays too. Same code, types and options; umap
    looks them up by name at call time, so its own functions use the cached ones. A name a umap release drops is left
    alone, and umap keeps compiling its own.
    """
    import importlib

    import numba

    for module_name, name in UMAP_KERNELS:
        module = importlib.import_module(module_name)
        kernel = getattr(module, name, None)
        if hasattr(kernel, "py_func"):
            options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
            setattr(module, name, numba.njit(cache=True, locals=kernel.locals, **options)(kernel.py_func))


class MapProcess:
    """The map's layout in a separate interpreter, beside this process's clustering layout.

    A fresh ``python -c`` that imports this module only, handed its work through a temporary folder. Not
    multiprocessing: its "spawn" re-runs the caller's main script in the child (a script that runs the analysis at
    top level would start over there), and "fork" is unsafe in a process holding threads (BLAS, numba, a Ray driver).
    Leaving the ``with`` block ends the process if it still runs (an error or Ctrl-C in this one).
    """

    def __init__(self, fit: UmapFit, init: np.ndarray, min_dist: float) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="clipcluster-map-")
        job = Path(self.folder.name) / "job.pickle"
        with job.open("wb") as handle:
            pickle.dump((fit, np.ascontiguousarray(init), min_dist), handle, protocol=pickle.HIGHEST_PROTOCOL)
        root = str(Path(__file__).resolve().parents[3])  # the checkout, for runs that did not install the package
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        code = (
            "import sys; from clustering.analysis.space import umap_layout; umap_layout.map_process_main(sys.argv[1])"
        )
        self.process = subprocess.Popen([sys.executable, "-c", code, str(job)], env=env)

    def __enter__(self) -> MapProcess:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.folder.cleanup()

    def result(self) -> tuple[np.ndarray, float]:
        """The map and the seconds its layout took, once the process is done."""
        if self.process.wait():
            raise RuntimeError(f"the map's layout process failed (exit status {self.process.returncode})")
        with (Path(self.folder.name) / "job.pickle.result").open("rb") as handle:
            return pickle.load(handle)


def map_process_main(job: str) -> None:
    """The map process: load the job, lay the map out, write the result beside the job."""
    with open(job, "rb") as handle:
        fit, init, min_dist = pickle.load(handle)
    found = timed(fit, init, min_dist)
    with open(f"{job}.result", "wb") as handle:
        pickle.dump(found, handle, protocol=pickle.HIGHEST_PROTOCOL)

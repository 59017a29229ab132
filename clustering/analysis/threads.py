"""How many threads the analysis uses, and why its results do not depend on that number.

The same input and seed give the same labels, map and outputs at any ``--threads``. Threads only share out work whose
partition is fixed in advance (the kNN graph's product tiles, one row of the top-k scan each, the sweep's trees); BLAS
itself runs single-threaded during the analysis, because OpenBLAS rounds a product differently when it splits it
over another number of threads (on an AMD EPYC, a 2-thread kNN graph differed from a 1-thread one, and so did every
layout drawn from it). Across machines the BLAS kernels differ by CPU, so the last bits of floats can too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["available_threads", "machine_record", "numba_threads", "single_threaded_blas"]


def available_threads(requested: int | None = None) -> int:
    """Threads to use: ``requested`` (None or 0: every core this process may run on).

    Not capped by numba's thread pool (``NUMBA_NUM_THREADS``): the code that runs numba threads caps itself there,
    and the map's second process is a process, not a numba thread.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores if not requested else int(requested))


def numba_threads(threads: int) -> int:
    """``threads``, at most numba's thread pool (``NUMBA_NUM_THREADS``)."""
    import numba

    return max(1, min(threads, numba.config.NUMBA_NUM_THREADS))


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS and LAPACK on one thread inside the block (OpenBLAS, MKL, BLIS, whichever numpy and scipy loaded)."""
    import scipy.linalg  # noqa: F401  (scipy ships its own OpenBLAS: loaded first, so that the limit reaches it too)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def machine_record() -> dict:
    """What a rerun elsewhere must match to give bit-identical floats: the CPU, its BLAS kernels, the libraries.

    Recorded in ``metrics.json`` (``params.machine``). The same input and seed give the same results at any thread
    count on one machine; another CPU may pick other BLAS kernels (``blas[].architecture``), whose rounding differs in
    the last bits, which can move a borderline point.
    """
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from threadpoolctl import threadpool_info

    libraries = {}
    for name in ("numpy", "scipy", "numba", "umap-learn", "pynndescent", "hdbscan", "scikit-learn", "pyarrow"):
        try:
            libraries[name] = version(name)
        except PackageNotFoundError:
            libraries[name] = "not installed"
    keys = ("internal_api", "prefix", "version", "architecture", "threading_layer")
    found = [{key: info.get(key) for key in keys} for info in threadpool_info() if info.get("user_api") == "blas"]
    blas = sorted(found, key=lambda entry: [str(entry[key]) for key in keys])  # not in the order modules loaded them
    return {
        "cpu": _cpu_model() or platform.processor() or platform.machine(),
        "cores": available_threads(None),
        "system": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "blas": blas,
        "libraries": libraries,
    }


def _cpu_model() -> str | None:
    """The CPU's model name on Linux (``platform.processor()`` is empty there)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None

"""HDBSCAN parameter sweep that builds one tree per ``min_samples`` and re-selects it for every ``min_cluster_size``.

With ``min_samples`` fixed, the mutual-reachability minimum spanning tree and its single-linkage hierarchy do not
depend on ``min_cluster_size``; only the condensed tree, the cluster stabilities and the excess-of-mass selection do.
:func:`sweep` therefore builds the hierarchy once per ``min_samples`` with *the same hdbscan routine the reference
estimator would pick* for these coordinates, then replays hdbscan's own ``_tree_to_labels`` (``condense_tree`` ->
``compute_stability`` -> ``get_clusters``) and ``outlier_scores`` per ``min_cluster_size``. Labels, probabilities,
persistence, GLOSH scores and the DBCV approximation are bit-identical to::

    hdbscan.HDBSCAN(min_cluster_size=m, min_samples=s, gen_min_span_tree=True).fit(X)

(tests/test_sweep.py asserts it, including data with exact duplicates, where spanning trees from different
algorithms can differ on ties). Each setting keeps its per-point arrays compact: int32 labels, float32 probabilities
and GLOSH scores (the reference's float64 values, rounded once): 12 bytes per point per setting, not 24. The
per-setting selection runs in a numba port of hdbscan's tree code (hdbscan's own functions remain available as
``engine="hdbscan"``). bench/sweep.py, 20,000 points, 40 settings (2 cores): refits
24.6 s vs sweep 0.42 s in 2-D (58x), 55.6 s vs 2.46 s in 10-D (23x, the tree build dominates), labels identical for
40 of 40 settings in both.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from clustering.analysis import gpu
from clustering.config import ConfigError

# The reference estimator's defaults that decide the tree and the selection (hdbscan 0.8.44, HDBSCAN.__init__).
# Every one of them is passed explicitly below so a reader can check the equivalence line by line.
_ALPHA = 1.0
_LEAF_SIZE = 40
_APPROX_MIN_SPAN_TREE = True
_CORE_DIST_N_JOBS = 4
_SELECTION = {
    "cluster_selection_method": "eom",
    "allow_single_cluster": False,
    "match_reference_implementation": False,
    "cluster_selection_epsilon": 0.0,
    "cluster_selection_persistence": 0.0,
    "max_cluster_size": 0,
    "cluster_selection_epsilon_max": float("inf"),
}
# hdbscan.hdbscan() switches from Boruvka to Prim's above this many dimensions (metric in KDTREE_VALID_METRICS).
_PRIMS_ABOVE_DIMS = 60

# Default min_cluster_size grid: geometric, from DEFAULT_GRID_MIN up to DEFAULT_GRID_MAX_SHARE of the points (at least
# DEFAULT_GRID_MIN + a few steps), DEFAULT_GRID_POINTS values. The notebook's linear 2, 7, ..., 197 grid spends most of
# its 40 settings on large sizes that all look alike; its chosen sizes were 167 of 39,839 points (0.42 %) and 37 of
# 5,025 (0.74 %). A geometric grid up to 5 % covers both with room on either side, in fewer settings.
DEFAULT_GRID_MIN = 5
DEFAULT_GRID_MAX_SHARE = 0.05
DEFAULT_GRID_POINTS = 24


@dataclass(frozen=True)
class SettingResult:
    """One HDBSCAN setting of a sweep, identical to a refit of the reference estimator.

    Attributes
    ----------
    min_cluster_size, min_samples : int
        The setting, as requested (hdbscan itself caps ``min_samples`` at ``n - 1``; so does the sweep).
    labels : np.ndarray
        ``(n,)`` int32 cluster labels, ``-1`` for noise; ``HDBSCAN(...).fit(X).labels_``.
    probabilities : np.ndarray
        ``(n,)`` float32 membership strengths; ``.probabilities_``.
    outlier_scores : np.ndarray
        ``(n,)`` float32 GLOSH outlier scores; ``.outlier_scores_``.
    persistence : np.ndarray
        ``(n_clusters,)`` float64 per-cluster persistence; ``.cluster_persistence_``.
    dbcv : float
        ``.relative_validity_`` of ``HDBSCAN(..., gen_min_span_tree=True)``: hdbscan's fast DBCV approximation on the
        mutual-reachability spanning tree. hdbscan reports 0.0 when every point is noise; nan where the reference
        estimator cannot run at all (fewer than 2 points).
    seconds : float
        Time for this setting: its share of the tree build plus its own selection, scoring and DBCV.
    selection : str
        hdbscan's ``cluster_selection_method``: "eom" or "leaf" (:data:`SELECTIONS`).
    """

    min_cluster_size: int
    min_samples: int
    labels: np.ndarray
    probabilities: np.ndarray
    outlier_scores: np.ndarray
    persistence: np.ndarray
    dbcv: float
    seconds: float
    selection: str = "eom"

    @property
    def n_clusters(self) -> int:
        """Number of clusters (labels other than -1)."""
        return int(self.labels.max()) + 1 if self.labels.size else 0


def setting_name(min_cluster_size: int, min_samples: int, selection: str | None = "eom") -> str:
    """How reports and logs name a setting: ``min_cluster_size=20, min_samples=5``, with `` (leaf)`` for leaf."""
    suffix = " (leaf)" if selection == "leaf" else ""
    return f"min_cluster_size={min_cluster_size}, min_samples={min_samples}{suffix}"


def default_grid(n: int) -> tuple[int, ...]:
    """Default ``min_cluster_size`` values for ``n`` points: geometric from 5 to 5 % of ``n``.

    Parameters
    ----------
    n : int
        Number of points that will be clustered.

    Returns
    -------
    tuple of int
        Strictly increasing sizes, each >= 2; ``(2,)`` when ``n < 4``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n < 4:
        return (2,)
    low = min(DEFAULT_GRID_MIN, max(2, n // 2))
    high = max(low, int(n * DEFAULT_GRID_MAX_SHARE), min(n // 2, 4 * low))
    values = np.geomspace(low, high, DEFAULT_GRID_POINTS)
    return tuple(sorted({round(float(v)) for v in values}))


def parse_grid(
    spec: str | Sequence[int] | None,
    n: int,
    *,
    option: str = "min_cluster_sizes",
    minimum: int = 2,
) -> tuple[int, ...]:
    """Parse a grid of integer HDBSCAN parameters.

    Parameters
    ----------
    spec : str, sequence of int or None
        ``"5,10,20"`` (a list), ``"2:100:5"`` (``start:stop:step``, **stop inclusive**: ``2:12:5`` gives 2, 7, 12;
        step defaults to 1), a sequence of ints, or None for :func:`default_grid` scaled to ``n``.
    n : int
        Number of points to be clustered (only used for the default grid).
    option : str, default "min_cluster_sizes"
        Name of the option being parsed, used in error messages.
    minimum : int, default 2
        Smallest allowed value (hdbscan needs ``min_cluster_size >= 2`` and ``min_samples >= 1``).

    Returns
    -------
    tuple of int
        Sorted, de-duplicated values. Values above ``n`` are kept (they give all-noise settings) so one config can
        serve datasets of any size.

    Raises
    ------
    ConfigError
        (a ``ValueError``) naming ``option`` when the spec is malformed, empty or has a value below ``minimum``.
    """
    if spec is None:
        return default_grid(n) if minimum <= 2 else tuple(v for v in default_grid(n) if v >= minimum) or (minimum,)
    if isinstance(spec, str):
        text = spec.strip()
        if not text:
            raise ConfigError(f"{option}: empty; give e.g. '5,10,20' or '2:100:5' (start:stop:step, stop inclusive)")
        if ":" in text:
            parts = [p.strip() for p in text.split(":")]
            if len(parts) not in (2, 3) or not all(_is_int(p) for p in parts):
                raise ConfigError(f"{option}: {spec!r} is not start:stop[:step] with integers, e.g. '2:100:5'")
            start, stop = int(parts[0]), int(parts[1])
            step = int(parts[2]) if len(parts) == 3 else 1
            if step <= 0:
                raise ConfigError(f"{option}: step must be a positive integer, got {step} in {spec!r}")
            if stop < start:
                raise ConfigError(f"{option}: stop {stop} is below start {start} in {spec!r}")
            values = list(range(start, stop + 1, step))
        else:
            parts = [p.strip() for p in text.split(",") if p.strip()]
            bad = [p for p in parts if not _is_int(p)]
            if bad or not parts:
                raise ConfigError(f"{option}: {spec!r} must be comma-separated integers, e.g. '5,10,20' (bad: {bad})")
            values = [int(p) for p in parts]
    else:
        try:
            values = list(spec)
        except TypeError as err:
            raise ConfigError(f"{option}: expected a string, a sequence of integers or None, got {spec!r}") from err
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, np.integer))]
        if bad:
            raise ConfigError(f"{option}: values must be integers, got {bad}")
        values = [int(v) for v in values]
        if not values:
            raise ConfigError(f"{option}: empty; give at least one value")
    low = [v for v in values if v < minimum]
    if low:
        raise ConfigError(f"{option}: every value must be >= {minimum}, got {low}")
    return tuple(sorted(set(values)))


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def _validate(X: np.ndarray, min_cluster_sizes: Sequence[int], min_samples: Sequence[int]) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n_points, n_dims), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.floating) and not np.issubdtype(X.dtype, np.integer):
        raise ValueError(f"X must be numeric, got dtype {X.dtype}")
    if X.shape[0] and X.shape[1] == 0:
        raise ValueError("X must have at least one column")
    if not np.isfinite(X).all():
        raise ValueError("X must be finite (no NaN or inf); drop or impute those rows first")
    for name, values, minimum in (("min_cluster_sizes", min_cluster_sizes, 2), ("min_samples", min_samples, 1)):
        values = list(values)
        if not values:
            raise ValueError(f"{name} must not be empty")
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum]
        if bad:
            raise ValueError(f"{name} must be integers >= {minimum}, got {bad}")
    return X


def build_tree(X: np.ndarray, min_samples: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Build the single-linkage tree and spanning tree exactly as ``hdbscan.HDBSCAN().fit`` would.

    Parameters
    ----------
    X : np.ndarray
        ``(n, d)`` finite coordinates, ``n >= 2``.
    min_samples : int
        Neighbourhood size for core distances (capped at ``n - 1`` like hdbscan).

    Returns
    -------
    single_linkage_tree : np.ndarray
        ``(n - 1, 4)`` scipy-style linkage matrix.
    min_spanning_tree : np.ndarray
        ``(n - 1, 3)`` edges ``(from, to, mutual reachability)`` as kept by ``gen_min_span_tree=True``.
    algorithm : str
        The hdbscan routine used: the one ``algorithm='best'`` picks for these dimensions with the euclidean metric
        (Boruvka on a KD-tree up to 60 dimensions, Prim's on a KD-tree above). Using the same routine matters: on
        ties (duplicate points) different spanning-tree algorithms return different, equally minimal trees.
    """
    import joblib
    from hdbscan import hdbscan_ as ref
    from sklearn.utils import check_array

    # The same conversions as HDBSCAN.fit and hdbscan.hdbscan (float32 stays float32 until the tree casts it).
    X = check_array(X, accept_sparse=False, ensure_all_finite=True)
    size = X.shape[0]
    effective = min(size - 1, int(min_samples)) or 1
    if X.shape[1] > _PRIMS_ABOVE_DIMS:
        slt, mst = ref._hdbscan_prims_kdtree(X, effective, _ALPHA, "euclidean", None, _LEAF_SIZE, True)
        return slt, mst, "prims_kdtree"
    # Above 16,384 points Boruvka queries the core distances in _CORE_DIST_N_JOBS joblib jobs. joblib's default
    # backend makes them processes that each unpickle the KD-tree and stay alive afterwards (1.1 GB at 200,000
    # points, for the rest of the run); the KD-tree query releases the GIL, so threads are as fast (9.2 s against
    # 10.1 s at 200,000 points, 10-D) and give the same tree.
    with joblib.parallel_config(backend="threading"):
        slt, mst = ref._hdbscan_boruvka_kdtree(
            X, effective, _ALPHA, "euclidean", None, _LEAF_SIZE, _APPROX_MIN_SPAN_TREE, True, _CORE_DIST_N_JOBS
        )
    return slt, mst, "boruvka_kdtree"


ENGINES = ("numba", "hdbscan")
# hdbscan's cluster_selection_method values the sweep runs. Excess of mass alone collapses to the root's first split
# when one large group sits far from the rest: bench/quality.py's art4apps clip-art with a background of photographs
# and wallpapers came out as 2-3 clusters (member ARI 0.000-0.004) at every min_cluster_size, as did its notebook
# recipe; the leaves of the same condensed trees gave 6 clusters at ARI 0.08-0.11 (3 layouts), and the selection rule
# picks between both kinds (select.py has the figures).
SELECTIONS = ("eom", "leaf")


def select_from_tree(
    single_linkage_tree: np.ndarray, min_cluster_size: int, *, engine: str = "numba", selection: str = "eom"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Condense a single-linkage tree and select clusters as the reference estimator does (no single cluster).

    Parameters
    ----------
    single_linkage_tree : np.ndarray
        From :func:`build_tree`.
    min_cluster_size : int
        hdbscan's ``min_cluster_size`` (>= 2).
    engine : {"numba", "hdbscan"}, default "numba"
        "numba": the array port below (same results, ~20x faster); "hdbscan": hdbscan's own ``_tree_to_labels``
        and ``outlier_scores``.
    selection : {"eom", "leaf"}, default "eom"
        hdbscan's ``cluster_selection_method``: excess of mass, or the leaves of the condensed tree.

    Returns
    -------
    labels, probabilities, persistence, outlier_scores : np.ndarray
        As ``labels_``, ``probabilities_``, ``cluster_persistence_`` and ``outlier_scores_``.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    if engine == "hdbscan":
        from hdbscan import hdbscan_ as ref
        from hdbscan._hdbscan_tree import outlier_scores

        labels, probabilities, persistence, condensed, _ = ref._tree_to_labels(
            None, single_linkage_tree, int(min_cluster_size), **(_SELECTION | {"cluster_selection_method": selection})
        )
        return labels, probabilities, persistence, outlier_scores(condensed)
    if engine != "numba":
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    hierarchy = np.ascontiguousarray(single_linkage_tree, dtype=np.float64)
    return _select(*_condense(hierarchy, int(min_cluster_size)), selection == "leaf")


# --- A numba port of hdbscan's condense_tree / compute_stability / get_clusters (EOM, leaf) / outlier_scores -------
# hdbscan's Cython versions build Python lists, dicts and sets per node (0.3-0.4 s per setting at 40k points); these
# do the same arithmetic, in the same order, on arrays. Equality with the reference is tested bit for bit, including
# hdbscan's float32 accumulation of subtree stability in EOM (`cdef float subtree_stability`) and NaN GLOSH scores on
# exact duplicates. `select_from_tree(..., engine="hdbscan")` runs hdbscan's own functions instead.


@numba.njit(cache=True, nogil=True)
def _bfs_hierarchy(hierarchy, root, num_points, queue):
    """Breadth-first node order of a scipy linkage subtree (left before right), written into ``queue``."""
    queue[0] = root
    head, tail = 0, 1
    while head < tail:
        node = queue[head]
        head += 1
        if node >= num_points:
            row = node - num_points
            queue[tail] = np.intp(hierarchy[row, 0])
            queue[tail + 1] = np.intp(hierarchy[row, 1])
            tail += 2
    return tail


@numba.njit(cache=True, nogil=True)
def _condense(hierarchy, min_cluster_size):
    root = 2 * hierarchy.shape[0]
    num_points = root // 2 + 1
    next_label = num_points + 1
    node_list = np.empty(root + 1, dtype=np.intp)
    _bfs_hierarchy(hierarchy, root, num_points, node_list)
    sub = np.empty(root + 1, dtype=np.intp)
    relabel = np.empty(root + 1, dtype=np.intp)
    relabel[root] = num_points
    ignore = np.zeros(root + 1, dtype=np.bool_)
    size = 2 * num_points
    parent = np.empty(size, dtype=np.intp)
    child = np.empty(size, dtype=np.intp)
    lam = np.empty(size, dtype=np.float64)
    csize = np.empty(size, dtype=np.intp)
    pos = 0
    for node in node_list:
        if ignore[node] or node < num_points:
            continue
        row = node - num_points
        left = np.intp(hierarchy[row, 0])
        right = np.intp(hierarchy[row, 1])
        lambda_value = 1.0 / hierarchy[row, 2] if hierarchy[row, 2] > 0.0 else np.inf
        left_count = np.intp(hierarchy[left - num_points, 3]) if left >= num_points else 1
        right_count = np.intp(hierarchy[right - num_points, 3]) if right >= num_points else 1
        if left_count >= min_cluster_size and right_count >= min_cluster_size:
            relabel[left] = next_label
            next_label += 1
            parent[pos], child[pos], lam[pos], csize[pos] = relabel[node], relabel[left], lambda_value, left_count
            pos += 1
            relabel[right] = next_label
            next_label += 1
            parent[pos], child[pos], lam[pos], csize[pos] = relabel[node], relabel[right], lambda_value, right_count
            pos += 1
            continue
        # One or both sides are too small: their points fall out of this cluster here (left side first).
        for side in range(2):
            branch = left if side == 0 else right
            count = left_count if side == 0 else right_count
            if count >= min_cluster_size:
                relabel[branch] = relabel[node]  # the big side continues as the same cluster
                continue
            end = _bfs_hierarchy(hierarchy, branch, num_points, sub)
            for j in range(end):
                sub_node = sub[j]
                if sub_node < num_points:
                    parent[pos], child[pos], lam[pos], csize[pos] = relabel[node], sub_node, lambda_value, 1
                    pos += 1
                ignore[sub_node] = True
    return parent[:pos].copy(), child[:pos].copy(), lam[:pos].copy(), csize[:pos].copy()


@numba.njit(cache=True, nogil=True)
def _leaves(n_children):
    """The clusters with no child cluster, root excluded (hdbscan's ``cluster_selection_method="leaf"``)."""
    is_cluster = n_children == 0
    is_cluster[0] = False
    return is_cluster


@numba.njit(cache=True, nogil=True)
def _excess_of_mass(stability, start, kids):
    """Clusters selected by excess of mass, leaves first (cluster ids are a topological order), root excluded.

    ``kids[start[c]:start[c + 1]]`` are cluster ``c``'s child clusters; ``stability`` is overwritten with each
    subtree's best total, as hdbscan does.
    """
    n_clusters_all = stability.shape[0]
    is_cluster = np.ones(n_clusters_all, dtype=np.bool_)
    is_cluster[0] = False
    stack = np.empty(n_clusters_all, dtype=np.intp)
    for node in range(n_clusters_all - 1, 0, -1):
        subtree = np.float32(0.0)
        for j in range(start[node], start[node + 1]):
            subtree = np.float32(np.float64(subtree) + stability[kids[j]])
        if np.float64(subtree) > stability[node]:
            is_cluster[node] = False
            stability[node] = np.float64(subtree)
        else:
            top = 0
            for j in range(start[node], start[node + 1]):
                stack[top] = kids[j]
                top += 1
            while top > 0:
                top -= 1
                sub_node = stack[top]
                is_cluster[sub_node] = False
                for j in range(start[sub_node], start[sub_node + 1]):
                    stack[top] = kids[j]
                    top += 1
    return is_cluster


@numba.njit(cache=True, nogil=True)
def _select(parent, child, lam, csize, leaf):
    """Labels, probabilities, persistence and GLOSH scores from a condensed tree (hdbscan's defaults; EOM or leaf)."""
    n_rows = parent.shape[0]
    root = parent.min()  # == number of points
    max_parent = parent.max()
    n_clusters_all = max_parent - root + 1

    # compute_stability: birth of each cluster = the lambda at which it appears as a child; root born at 0.
    birth = np.full(n_clusters_all, np.nan)
    for i in range(n_rows):
        c = child[i]
        if c >= root:
            birth[c - root] = lam[i] if np.isnan(birth[c - root]) else min(birth[c - root], lam[i])
    birth[0] = 0.0
    stability = np.zeros(n_clusters_all)
    for i in range(n_rows):
        p = parent[i] - root
        stability[p] += (lam[i] - birth[p]) * csize[i]
    original = stability.copy()

    # Cluster tree (rows whose child is a cluster), children in row order, and each cluster's parent.
    n_children = np.zeros(n_clusters_all, dtype=np.intp)
    cluster_parent = np.full(n_clusters_all, -1, dtype=np.intp)
    for i in range(n_rows):
        if csize[i] > 1:
            n_children[parent[i] - root] += 1
            cluster_parent[child[i] - root] = parent[i] - root
    start = np.zeros(n_clusters_all + 1, dtype=np.intp)
    for c in range(n_clusters_all):
        start[c + 1] = start[c] + n_children[c]
    kids = np.empty(start[-1], dtype=np.intp)
    fill = start[:-1].copy()
    for i in range(n_rows):
        if csize[i] > 1:
            p = parent[i] - root
            kids[fill[p]] = child[i] - root
            fill[p] += 1

    is_cluster = _leaves(n_children) if leaf else _excess_of_mass(stability, start, kids)

    # Labels: the nearest selected ancestor (what hdbscan's union-find computes), numbered in id order.
    label_of = np.full(n_clusters_all, -1, dtype=np.intp)
    n_selected = 0
    for c in range(n_clusters_all):
        if is_cluster[c]:
            label_of[c] = n_selected
            n_selected += 1
    selected_ids = np.empty(n_selected, dtype=np.intp)
    for c in range(n_clusters_all):
        if is_cluster[c]:
            selected_ids[label_of[c]] = c
    nearest = np.full(n_clusters_all, -1, dtype=np.intp)
    for c in range(1, n_clusters_all):
        nearest[c] = label_of[c] if is_cluster[c] else nearest[cluster_parent[c]]

    # max_lambdas: the largest lambda among each cluster's rows.
    deaths = np.zeros(n_clusters_all)
    max_lambda = -np.inf
    for i in range(n_rows):
        p = parent[i] - root
        if lam[i] > deaths[p]:
            deaths[p] = lam[i]
        if lam[i] > max_lambda:
            max_lambda = lam[i]

    labels = np.full(root, -1, dtype=np.intp)
    probabilities = np.zeros(root)
    for i in range(n_rows):
        point = child[i]
        if point >= root:
            continue
        label = nearest[parent[i] - root]
        labels[point] = label
        if label == -1:
            continue
        top_lambda = deaths[selected_ids[label]]
        if top_lambda == 0.0 or not np.isfinite(lam[i]):
            probabilities[point] = 1.0
        else:
            probabilities[point] = (lam[i] if not top_lambda < lam[i] else top_lambda) / top_lambda

    counts = np.zeros(n_selected, dtype=np.intp)
    for point in range(root):
        if labels[point] >= 0:
            counts[labels[point]] += 1
    persistence = np.empty(n_selected)
    for k in range(n_selected):
        if np.isinf(max_lambda) or max_lambda == 0.0 or counts[k] == 0:
            persistence[k] = 1.0
        else:
            persistence[k] = original[selected_ids[k]] / (counts[k] * max_lambda)

    # GLOSH: propagate deaths up the tree (children before parents), then score each point against its cluster.
    glosh_deaths = deaths.copy()
    for i in range(n_rows - 1, -1, -1):
        c = child[i]
        if c >= root:
            p = parent[i] - root
            if glosh_deaths[c - root] > glosh_deaths[p]:
                glosh_deaths[p] = glosh_deaths[c - root]
    scores = np.zeros(root)
    for i in range(n_rows):
        point = child[i]
        if point >= root:
            continue
        top_lambda = glosh_deaths[parent[i] - root]
        if top_lambda == 0.0 or not np.isfinite(lam[i]):
            scores[point] = 0.0
        else:
            scores[point] = (top_lambda - lam[i]) / top_lambda
    return labels, probabilities, persistence, scores


def relative_validity(labels: np.ndarray, min_spanning_tree: np.ndarray) -> float:
    """hdbscan's ``relative_validity_`` (fast DBCV approximation), computed from labels and the spanning tree.

    A line-for-line port of ``HDBSCAN.relative_validity_`` in hdbscan 0.8.44 so the same floating-point operations give
    the same number; it needs only the labels and the mutual-reachability spanning tree, so one tree serves every
    ``min_cluster_size``.

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` labels, -1 for noise.
    min_spanning_tree : np.ndarray
        ``(n - 1, 3)`` spanning tree edges from :func:`build_tree`.

    Returns
    -------
    float
        The score in [-1, 1]; 0.0 when every point is noise (hdbscan's convention).
    """
    sizes = np.bincount(labels + 1)
    noise_size = sizes[0]
    cluster_size = sizes[1:]
    total = noise_size + np.sum(cluster_size)
    num_clusters = len(cluster_size)
    dsc = np.zeros(num_clusters)
    min_outlier_sep = np.inf
    correction_const = 2
    dspc_wrt = np.ones(num_clusters) * np.inf

    edge_from = min_spanning_tree.T[0].astype(np.intp)
    edge_to = min_spanning_tree.T[1].astype(np.intp)
    edge_dist = min_spanning_tree.T[2]
    label1 = labels[edge_from]
    label2 = labels[edge_to]
    max_distance = edge_dist.max() if edge_dist.shape[0] > 0 else 0.0

    both_noise = (label1 == -1) & (label2 == -1)
    one_noise = (label1 == -1) ^ (label2 == -1)
    neither_noise = ~both_noise & ~one_noise
    if one_noise.any():
        min_outlier_sep = edge_dist[one_noise].min()
    same_cluster = neither_noise & (label1 == label2)
    diff_cluster = neither_noise & (label1 != label2)
    if same_cluster.any():
        np.maximum.at(dsc, label1[same_cluster], edge_dist[same_cluster])
    if diff_cluster.any():
        np.minimum.at(dspc_wrt, label1[diff_cluster], edge_dist[diff_cluster])
        np.minimum.at(dspc_wrt, label2[diff_cluster], edge_dist[diff_cluster])
    min_outlier_sep = max_distance if min_outlier_sep == np.inf else min_outlier_sep
    correction = correction_const * (max_distance if num_clusters > 1 else min_outlier_sep)
    dspc_wrt[np.where(dspc_wrt == np.inf)] = correction
    denom = np.maximum(dspc_wrt, dsc)
    v_index = (dspc_wrt - dsc) / denom
    return float(np.sum(cluster_size * v_index / total))


def _degenerate(n: int, m: int, s: int) -> SettingResult:
    # The reference raises for n == 1 (KD-tree query with k > n); one point or none cannot form a cluster.
    return SettingResult(
        min_cluster_size=m,
        min_samples=s,
        labels=np.full(n, -1, dtype=np.int32),
        probabilities=np.zeros(n, dtype=np.float32),
        outlier_scores=np.zeros(n, dtype=np.float32),
        persistence=np.zeros(0),
        dbcv=math.nan,
        seconds=0.0,
    )


def sweep(
    X: np.ndarray,
    min_cluster_sizes: Sequence[int],
    min_samples: Sequence[int],
    *,
    progress: bool = True,
    engine: str = "numba",
    use_gpu: bool = False,
    selections: Sequence[str] = SELECTIONS,
) -> list[SettingResult]:
    """Run HDBSCAN for every (min_samples, min_cluster_size, selection) setting, one tree per ``min_samples``.

    Parameters
    ----------
    X : np.ndarray
        ``(n, d)`` finite coordinates (the reduced space), clustered with the euclidean metric.
    min_cluster_sizes : sequence of int
        Values >= 2.
    min_samples : sequence of int
        Values >= 1.
    progress : bool, default True
        Show a tqdm bar over settings (on stderr).
    engine : {"numba", "hdbscan"}, default "numba"
        Cluster selection code (see :func:`select_from_tree`); both give the reference's results.
    use_gpu : bool, default False
        Build each tree with cuML (:func:`clustering.analysis.gpu.single_linkage`); the selection from it is the
        same code. Ties may then resolve differently from the reference.
    selections : sequence of {"eom", "leaf"}, default SELECTIONS
        Cluster selection methods to run on each condensed tree.

    Returns
    -------
    list of SettingResult
        Ordered by ``min_samples``, then ``min_cluster_size`` (both in the order given), then ``selection``. Each
        equals ``hdbscan.HDBSCAN(min_cluster_size=m, min_samples=s, cluster_selection_method=selection,
        gen_min_span_tree=True).fit(X)``. A leaf setting whose labels are those of the EOM setting beside it is left
        out (the same clustering twice). With fewer than two points every setting is all noise with ``dbcv = nan``
        (the reference estimator raises there), one per (min_samples, min_cluster_size).
    """
    X = _validate(X, min_cluster_sizes, min_samples)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    methods = list(dict.fromkeys(selections))
    if not methods or any(m not in SELECTIONS for m in methods):
        raise ValueError(f"selections must be a non-empty subset of {SELECTIONS}, got {selections!r}")
    sizes = [int(m) for m in min_cluster_sizes]
    samples = [int(s) for s in min_samples]
    n = X.shape[0]
    if n < 2:
        return [_degenerate(n, m, s) for s in samples for m in sizes]

    from tqdm.auto import tqdm

    results: list[SettingResult] = []
    total = len(sizes) * len(samples) * len(methods)
    with tqdm(total=total, desc="HDBSCAN sweep", unit="setting", disable=not progress) as bar:
        for s in samples:
            start = time.perf_counter()
            slt, mst = gpu.single_linkage(X, s) if use_gpu else build_tree(X, s)[:2]
            tree_share = (time.perf_counter() - start) / (len(sizes) * len(methods))
            for m in sizes:
                first: SettingResult | None = None  # the first method's result for this size
                for method in methods:
                    result = _setting(slt, mst, m, s, engine=engine, selection=method, tree_share=tree_share)
                    bar.update()
                    if first is not None and np.array_equal(result.labels, first.labels):
                        continue  # the same clustering again
                    if first is None:
                        first = result
                    results.append(result)
                    # refresh=False: redraw at tqdm's own pace, not per setting (a log file got one line per setting)
                    bar.set_postfix(min_samples=s, min_cluster_size=m, clusters=result.n_clusters, refresh=False)
    return results


def _setting(slt, mst, m: int, s: int, *, engine: str, selection: str, tree_share: float) -> SettingResult:
    start = time.perf_counter()
    labels, probabilities, persistence, scores = select_from_tree(slt, m, engine=engine, selection=selection)
    return SettingResult(
        min_cluster_size=m,
        min_samples=s,
        labels=labels.astype(np.int32),
        probabilities=probabilities.astype(np.float32),
        outlier_scores=scores.astype(np.float32),
        persistence=persistence,
        dbcv=relative_validity(labels, mst),
        seconds=tree_share + time.perf_counter() - start,
        selection=selection,
    )

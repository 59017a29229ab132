"""Background from the original embedding space: images that UMAP pulled into a cluster but that are far sparser there.

UMAP builds a connected layout, so diffuse one-off images (the 25-35 % background of a social-media collection) land
inside or beside the clusters of the 10-D space and HDBSCAN keeps most of them (8 % of the background left as noise
on the hard synthetic set). In the original space they are easy to tell apart: their distance to their
``n_neighbors - 1``-th nearest neighbour (the core distance, already in the shared kNN graph) is far larger than that
of the cluster's own members. :func:`background_mask` flags, cluster by cluster, the members whose log core distance
is an outlier for that cluster: above the cluster's median by more than ``z`` robust standard deviations (1.4826 x
the median absolute deviation). The threshold is learnt per cluster from the data, so loose clusters keep their
members and tight ones shed the background around them; a cluster keeps at least half of its members.

Evidence (bench/quality.py sets, the best setting of each sweep; tuning sets only): the core distance separates
background from members among clustered points with AUC 0.995 on the hard synthetic set and 0.76 on the emoji set
(whose "background" is small real subgroups, not diffuse). With ``z`` = 1.5 / 2 / 2.5 / 3 / 4 the hard synthetic set
labels 97 / 92 / 85 / 77 / 62 % of its background noise (0.08 without) at member ARI 0.875 / 0.882 / 0.880 / 0.875 /
0.872 (0.853 without), and the emoji set keeps member ARI 0.182 / 0.211 / 0.218 / 0.220 / 0.224 (0.229 without).
A global threshold fails: Otsu and a two-Gaussian mixture on the log core distance split repost bursts from the rest
(97 % labelled noise); an equal-error threshold between HDBSCAN's noise and its members flags 53 % of the emoji set.

Background that gathers. Unrelated images that share a look (photographs among drawings) are neighbours of each other
in the kNN graph, UMAP lays them out together and HDBSCAN makes a cluster of them; inside it nobody is an outlier.
What gives such a cluster away is that its images are no more alike than the collection at large.
:func:`diffuse_clusters` flags every member of a cluster whose mean pairwise cosine similarity is at most that of all
the points: a group that is not tighter than the whole is not a group. The threshold is that definition, not a tuned
number. Measured on the bench's tuning sets at the chosen setting (mean pairwise similarity in the cluster / in the
collection; 6 layouts for emoji, 2 for the others): art4apps' and art4apps-photos' all-background clusters 0.70-0.82;
every other cluster 1.01 or more (emoji's broad mixed cluster of 366, 31 % background: 1.01-1.03; glyphs, both
synthetic sets: above 1.15). :func:`drop_diffuse_clusters` applies it to the chosen setting and the other kept ones,
after the selection (its docstring says why not before).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from clustering.analysis.cluster.hierarchy import compact_labels
from clustering.analysis.defaults import DEFAULT_NOISE_Z
from clustering.analysis.space.knn_graph import row_lengths

# Core distances of exact or near duplicates are 0; the log needs a floor well below any real neighbour distance.
_DISTANCE_FLOOR = 1e-6
# Robust spread floor (in log distance) so a cluster of near-identical points does not flag every other member.
_MIN_SPREAD = 1e-3
_MAD_TO_SIGMA = 1.4826


def core_distances(distances: np.ndarray) -> np.ndarray:
    """Distance of every point to its farthest listed neighbour: the kNN graph's last column.

    Parameters
    ----------
    distances : np.ndarray
        ``(n, k)`` distances of a kNN graph, ascending per row (:class:`clustering.analysis.space.knn_graph.KnnGraph`).

    Returns
    -------
    np.ndarray
        ``(n,)`` float32 core distances (0 for points with no neighbour listed).
    """
    distances = np.asarray(distances)
    if distances.ndim != 2:
        raise ValueError(f"distances must be a 2-D (n, k) array, got shape {distances.shape}")
    if distances.shape[1] == 0:
        return np.zeros(distances.shape[0], dtype=np.float32)
    return np.ascontiguousarray(distances[:, -1], dtype=np.float32)


def background_mask(labels: np.ndarray, core_distance: np.ndarray, *, z: float = DEFAULT_NOISE_Z) -> np.ndarray:
    """Clustered points whose original-space core distance is an outlier for their cluster.

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` cluster labels, -1 for noise.
    core_distance : np.ndarray
        ``(n,)`` core distances in the original space (:func:`core_distances`).
    z : float, default DEFAULT_NOISE_Z
        Robust standard deviations above the cluster's median log core distance beyond which a member is
        background; ``inf`` flags nothing.

    Returns
    -------
    np.ndarray
        ``(n,)`` bool, True for points to relabel as noise (never a point already labelled noise).
    """
    labels = np.asarray(labels)
    core_distance = np.asarray(core_distance, dtype=np.float64)
    if labels.shape != core_distance.shape or labels.ndim != 1:
        raise ValueError(f"labels and core_distance must be (n,) arrays of one length, got {labels.shape} and "
                         f"{core_distance.shape}")  # fmt: skip
    if not z > 0:
        raise ValueError(f"z must be > 0, got {z!r}")
    flagged = np.zeros(labels.shape[0], dtype=bool)
    clustered = np.flatnonzero(labels >= 0)
    if clustered.size == 0 or not np.isfinite(z):
        return flagged
    log_core = np.log(np.maximum(core_distance[clustered], _DISTANCE_FLOOR))
    cluster = labels[clustered]
    order = np.argsort(cluster, kind="stable")
    bounds = np.flatnonzero(np.r_[True, cluster[order][1:] != cluster[order][:-1], True])
    for start, stop in itertools.pairwise(bounds):
        members = order[start:stop]
        values = log_core[members]
        centre = np.median(values)
        spread = max(_MAD_TO_SIGMA * np.median(np.abs(values - centre)), _MIN_SPREAD)
        flagged[clustered[members[values > centre + z * spread]]] = True
    return flagged


def diffuse_clusters(labels: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Members of clusters whose images are no more alike than two images of the collection picked at random.

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` cluster labels, -1 for noise.
    embeddings : np.ndarray
        ``(n, d)`` embeddings of the same points, compared by cosine similarity (any row length; zero rows count as
        dissimilar to everything).

    Returns
    -------
    np.ndarray
        ``(n,)`` bool, True for every member of a cluster of 2 or more whose mean pairwise cosine similarity is at
        most the mean over all pairs of the ``n`` points. Computed from per-cluster sums of unit rows, O(n * d),
        without copying ``embeddings``.
    """
    import scipy.sparse as sp

    labels = np.asarray(labels)
    n = labels.shape[0]
    if embeddings.ndim != 2 or embeddings.shape[0] != n:
        raise ValueError(f"embeddings must have shape (n={n}, d), got {embeddings.shape}")
    flagged = np.zeros(n, dtype=bool)
    if n < 3 or labels.max(initial=-1) < 0:
        return flagged
    norms = row_lengths(embeddings)
    # Weights in the embeddings' own float type, so the sparse products never copy them into another.
    inverse = np.divide(1.0, norms, out=np.zeros(n), where=norms > 0).astype(np.result_type(embeddings, np.float32))
    clustered = np.flatnonzero(labels >= 0)
    k = int(labels.max()) + 1
    weights = sp.csr_matrix((inverse[clustered], (labels[clustered], clustered)), shape=(k, n))
    sums = np.asarray(weights @ embeddings, dtype=np.float64)  # per cluster, the sum of its unit rows
    total = np.asarray(sp.csr_matrix(inverse[None, :]) @ embeddings, dtype=np.float64)[0]
    sizes = np.bincount(labels[clustered], minlength=k).astype(np.float64)
    overall = (total @ total - n) / (n * (n - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        within = (np.einsum("ij,ij->i", sums, sums) - sizes) / (sizes * (sizes - 1))
    diffuse = np.flatnonzero((sizes >= 2) & (within <= overall))
    flagged[clustered] = np.isin(labels[clustered], diffuse)
    return flagged


def drop_background(result, core_distance: np.ndarray, *, z: float = DEFAULT_NOISE_Z):
    """A sweep setting with its original-space background relabelled noise (probability 0).

    Parameters
    ----------
    result : clustering.analysis.cluster.sweep.SettingResult
        One setting of the sweep.
    core_distance : np.ndarray
        ``(n,)`` core distances in the original space.
    z : float, default DEFAULT_NOISE_Z
        See :func:`background_mask`.

    Returns
    -------
    SettingResult
        A copy with ``labels`` -1 and ``probabilities`` 0 where :func:`background_mask` flags; GLOSH scores,
        persistence and DBCV are HDBSCAN's, unchanged. Cluster ids are unchanged (no cluster empties: the median
        member is never flagged).
    """
    return _as_noise(result, background_mask(result.labels, core_distance, z=z))


def drop_diffuse_clusters(result, embeddings: np.ndarray):
    """A sweep setting with the clusters :func:`diffuse_clusters` flags relabelled noise, and how many there were.

    Run on a chosen setting, after the selection: dropping a cluster lowers the noise left for the selection's
    budget to judge and removes its edges from the modularity, which would favour settings for the clusters they
    drop (measured: one emoji layout chose a setting at 0.15x of its sweep's best when the test ran first).

    Parameters
    ----------
    result : clustering.analysis.cluster.sweep.SettingResult
        One setting (after :func:`drop_background`).
    embeddings : np.ndarray
        ``(n, d)`` original embeddings of the same points.

    Returns
    -------
    tuple of (SettingResult, int)
        The setting with the remaining clusters renumbered 0, 1, ... in their old order (``persistence`` keeps
        their entries), and the number of clusters dropped. The same object and 0 when none is.
    """
    flagged = diffuse_clusters(result.labels, embeddings)
    if not flagged.any():
        return result, 0
    kept = np.unique(result.labels[(result.labels >= 0) & ~flagged])
    renumbered = dataclasses.replace(result, labels=compact_labels(np.where(flagged, -1, result.labels)),
                                     persistence=np.asarray(result.persistence)[kept])  # fmt: skip
    return _as_noise(renumbered, flagged), int(np.unique(result.labels[flagged]).size)


def _as_noise(result, flagged: np.ndarray):
    if not flagged.any():
        return result
    labels = np.where(flagged, -1, result.labels).astype(result.labels.dtype, copy=False)
    probabilities = np.where(flagged, 0.0, result.probabilities)
    return dataclasses.replace(result, labels=labels, probabilities=probabilities)

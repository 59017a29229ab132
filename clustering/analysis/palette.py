"""Cluster colours: one palette for ``map.png``, the montages and the explorer, so cluster 7 has one colour everywhere.

Cluster ``k`` (clusters are numbered by size) takes colour ``k``: ten hand-picked hues that read well on the dark map
background, then greedy farthest-point picks in OKLab (a perceptual colour space) from an in-gamut grid, each as far
as possible from every colour already used, the noise grey and the background included. 120 colours stay at least
0.05 apart in OKLab. The explorer receives the list in its payload instead of computing its own.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["BACKGROUND_RGB", "NOISE_RGB", "cluster_palette", "hex_colours"]

BASE = ("#5b9cf0", "#f5a041", "#5fc46b", "#ef6567", "#b58be0", "#edd050", "#4fc3c7", "#ff9cc0", "#b98a6b", "#a3d977")
BACKGROUND_RGB = (14, 16, 20)
NOISE_RGB = (128, 134, 143)


def cluster_palette(n: int) -> np.ndarray:
    """``(n, 3)`` uint8 RGB colours for clusters ``0 .. n - 1``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return _palette(max(n, len(BASE)))[:n].copy()


def hex_colours(n: int) -> list[str]:
    """:func:`cluster_palette` as ``#rrggbb`` strings (the explorer's payload)."""
    return ["#" + "".join(f"{int(v):02x}" for v in rgb) for rgb in cluster_palette(n)]


@functools.lru_cache(maxsize=8)
def _palette(n: int) -> np.ndarray:
    chosen = [tuple(int(h[k : k + 2], 16) for k in (1, 3, 5)) for h in BASE]
    grid, grid_rgb = _candidates()
    distance = np.full(len(grid), np.inf)
    for rgb in (NOISE_RGB, BACKGROUND_RGB, *chosen):
        distance = np.minimum(distance, np.linalg.norm(grid - _oklab(np.array(rgb)), axis=1))
    while len(chosen) < n:
        best = int(np.argmax(distance))
        if distance[best] <= 1e-6:  # more clusters than candidates (past ~1,600): reuse colours in order
            chosen.append(chosen[len(chosen) % len(grid)])
            continue
        chosen.append(tuple(int(v) for v in grid_rgb[best]))
        distance = np.minimum(distance, np.linalg.norm(grid - grid[best], axis=1))
    return np.array(chosen[:n], dtype=np.uint8).reshape(-1, 3)


@functools.cache
def _candidates() -> tuple[np.ndarray, np.ndarray]:
    """The in-gamut OKLab grid the picks come from: light enough for the dark background, saturated enough to tell."""
    lightness = np.arange(0.62, 0.91, 0.04)
    chroma = np.arange(0.05, 0.23, 0.025)
    hue = np.radians(np.arange(0, 360, 8))
    L, C, H = (g.ravel() for g in np.meshgrid(lightness, chroma, hue, indexing="ij"))
    lab = np.column_stack([L, C * np.cos(H), C * np.sin(H)])
    rgb, inside = _srgb(lab)
    return lab[inside], rgb[inside]


def _oklab(rgb: np.ndarray) -> np.ndarray:
    c = np.asarray(rgb, dtype=float) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    lms = np.cbrt(linear @ np.array([[0.4122214708, 0.2119034982, 0.0883024619],
                                     [0.5363325363, 0.6806995451, 0.2817188376],
                                     [0.0514459929, 0.1073969566, 0.6299787005]]))  # fmt: skip
    return lms @ np.array([[0.2104542553, 1.9779984951, 0.0259040371],
                           [0.7936177850, -2.4285922050, 0.7827717662],
                           [-0.0040720468, 0.4505937099, -0.8086757660]])  # fmt: skip


def _srgb(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OKLab rows to sRGB bytes, and which rows are inside the sRGB gamut."""
    lms = (lab @ np.array([[1.0, 1.0, 1.0],
                           [0.3963377774, -0.1055613458, -0.0894841775],
                           [0.2158037573, -0.0638541728, -1.2914855480]])) ** 3  # fmt: skip
    linear = lms @ np.array([[4.0767416621, -1.2684380046, -0.0041960863],
                             [-3.3077115913, 2.6097574011, -0.7034186147],
                             [0.2309699292, -0.3413193965, 1.7076147010]])  # fmt: skip
    inside = ((linear >= -1e-4) & (linear <= 1 + 1e-4)).all(axis=1)
    x = np.clip(linear, 0, 1)
    gamma = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    return np.round(255 * gamma).astype(np.uint8), inside

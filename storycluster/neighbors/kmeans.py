"""Spherical k-means for the lists of an IVF index.

Training ``nlist`` centroids on a sample of ``40 · nlist`` points costs ``40 · nlist²`` inner products per
iteration, a large share of a million-vector bulk load. Above ``TWO_LEVEL_MIN`` lists the centroids
come from two levels instead (as FAISS's ``contrib.clustering.two_level_clustering`` does): √nlist coarse
centroids, then each coarse cluster's points split into a share of the lists proportional to its size.
That is about √nlist times fewer inner products for lists of the same evenness; bench/scale.py measures the
time and what it does to recall (docs/performance.md).
"""

from __future__ import annotations

import math

import numpy as np

#: flat k-means below this many lists (it is cheap there and gives slightly better lists)
TWO_LEVEL_MIN = 1024
SEED = 1234


def _kmeans(x: np.ndarray, k: int, niter: int) -> np.ndarray:
    import faiss

    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=SEED, spherical=True,
                      max_points_per_centroid=1 << 30, min_points_per_centroid=1)
    km.train(x)
    return km.centroids


def split(x: np.ndarray, k: int, niter: int = 8, per_part: int = 64) -> np.ndarray:
    """(k, d) unit centroids splitting ``x`` (unit rows) into ``k`` parts: a spherical k-means in numpy on
    at most ``per_part`` evenly spaced points per part, seeded with evenly spaced points (deterministic).
    For the many small splits of the neighbour graph, where FAISS's k-means spent most of its time
    outside the arithmetic."""
    from scipy.sparse import csr_matrix

    pts = x[np.linspace(0, len(x) - 1, min(len(x), k * per_part)).astype(np.int64)]
    seeds = pts[np.linspace(0, len(pts) - 1, k).astype(np.int64)]
    c = seeds.copy()
    ones, cols = np.ones(len(pts), dtype=np.float32), np.arange(len(pts))
    for _ in range(niter):
        near = (pts @ c.T).argmax(axis=1)
        c = np.asarray(csr_matrix((ones, (near, cols)), shape=(k, len(pts))) @ pts, dtype=np.float32)
        empty = ~c.any(axis=1)  # a part that lost every point keeps its seed
        c[empty] = seeds[empty]
        c /= np.linalg.norm(c, axis=1, keepdims=True)
    return np.ascontiguousarray(c)


def centroids(sample: np.ndarray, nlist: int, niter: int) -> np.ndarray:
    """(nlist, d) unit centroids of ``sample`` (float32, C-contiguous), deterministic for the same input."""
    if nlist < TWO_LEVEL_MIN:
        return _kmeans(sample, nlist, niter)
    coarse = _kmeans(sample, int(round(math.sqrt(nlist))), niter)
    top = (sample @ coarse.T).argmax(axis=1)
    sizes = np.bincount(top, minlength=len(coarse))
    # lists per coarse cluster in proportion to its points, summing to nlist exactly
    share = np.cumsum(sizes) * nlist // len(sample)
    share[1:] -= share[:-1].copy()
    parts = []
    for c in np.flatnonzero(sizes):
        points = sample[top == c]
        k = int(min(max(share[c], 1), len(points)))
        parts.append(points[:1].copy() if k == 1 and len(points) == 1 else _kmeans(points, k, niter))
    out = np.vstack(parts).astype(np.float32)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(out)

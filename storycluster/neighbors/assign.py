"""Each vector's nearest IVF lists (inner product with the list centroids).

Exact below ``TWO_LEVEL_LISTS`` lists: one matrix product with every centroid. Above, in two levels, as the
centroids themselves are trained (:mod:`.kmeans`): the centroids are grouped by a spherical k-means of the
centroids into about √nlist groups, each list a child of its ``MEMBER`` nearest groups (lists on a border
belong to both sides); a vector is scored against the group centroids, then exactly against the children
of its nearest ``PROBE_MIN`` groups and of those of its next ones (``PROBE`` in all at most) whose centroid
scores within ``PROBE_MARGIN`` of the nearest's (about 360 inner products per vector instead of 2,000 at
2,000 lists). The assignment is approximate: a few vectors get a list a little farther than the nearest, which
the index still searches (bench/scale.py measures its recall; docs/performance.md has the figures). Chunks run on
all cores, each thread with a one-thread BLAS.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import numpy as np

from ..parallel import cores, thread_map

#: exact assignment below this many lists (the product with every centroid is cheap there)
TWO_LEVEL_LISTS = 1024
#: lists per group (each list joins its MEMBER nearest groups); a vector's children come from at most PROBE
#: groups: its PROBE_MIN nearest ones and the next whose centroid scores within PROBE_MARGIN of the nearest's
#: (a vector deep inside a group needs few; one between several gets them all). PROBE_MIN = 2 rather than 1:
#: the margin is in cosine units, and scores spread differently from one embedding model to another
#: (measured on two models: docs/performance.md)
MEMBER = 2
PROBE = 6
PROBE_MIN = 2
PROBE_MARGIN = 0.1
SEED = 1234


def nearest_columns(scores: np.ndarray, m: int, values: np.ndarray | None = None) -> np.ndarray:
    """(rows, m) column numbers of each row's ``m`` highest scores, best first; ``scores`` is overwritten.
    ``values``: a (rows, m) array that receives those scores."""
    out = np.empty((len(scores), m), dtype=np.int64)
    rows = np.arange(len(scores))
    for c in range(m):
        out[:, c] = scores.argmax(axis=1)
        if values is not None:
            values[:, c] = scores[rows, out[:, c]]
        scores[rows, out[:, c]] = -np.inf
    return out


class ListAssigner:
    """Nearest lists of vectors for fixed ``centroids`` ((nlist, d) float32); see the module docstring."""

    def __init__(self, centroids: np.ndarray) -> None:
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        nlist = len(self.centroids)
        self.groups: np.ndarray | None = None
        if nlist >= TWO_LEVEL_LISTS:
            import faiss

            g = int(round(math.sqrt(nlist)))
            km = faiss.Kmeans(self.centroids.shape[1], g, niter=20, seed=SEED, spherical=True,
                              min_points_per_centroid=1, max_points_per_centroid=1 << 30)
            km.train(self.centroids)
            self.groups = km.centroids
            member = nearest_columns(self.centroids @ self.groups.T, MEMBER)
            self.children = [np.flatnonzero((member == j).any(axis=1)) for j in range(g)]
            self.child_t = [np.ascontiguousarray(self.centroids[c].T) for c in self.children]

    def __call__(self, vectors: np.ndarray, m: int = 2, chunk: int = 8192, threads: int | None = None,
                 scores: np.ndarray | None = None) -> np.ndarray:
        """(n, min(m, nlist)) each vector's nearest lists, nearest first. Chunks run on ``threads`` threads
        (default: the cores this process may use), each with a one-thread BLAS: the selections and copies
        between the products then use every core too. ``scores``: an (n, min(m, nlist)) float32 array that
        receives the inner products with those lists' centroids."""
        m = min(m, len(self.centroids))
        out = np.empty((len(vectors), m), dtype=np.int64)

        def one(s: int) -> None:
            x = np.ascontiguousarray(vectors[s:s + chunk], dtype=np.float32)
            val = None if scores is None else scores[s:s + len(x)]
            out[s:s + len(x)] = (nearest_columns(x @ self.centroids.T, m, val) if self.groups is None
                                 else self._two_level(x, m, val))

        threads = max(1, threads or cores())
        chunk = max(1, min(chunk, max(1024, -(-len(vectors) // threads))))  # a batch of 10,000: both cores
        thread_map(one, range(0, len(vectors), chunk), threads, one_blas_thread=True)
        return out

    def _two_level(self, x: np.ndarray, m: int, values: np.ndarray | None = None) -> np.ndarray:
        assert self.groups is not None  # two levels are built above TWO_LEVEL_LISTS lists
        probe = min(PROBE, len(self.groups))
        group_s = np.empty((len(x), probe), dtype=np.float32)
        top = nearest_columns(x @ self.groups.T, probe, group_s)
        # the (vector, probed group) pairs kept, as positions in the flattened (vector, probe) array
        near = (group_s >= group_s[:, :1] - PROBE_MARGIN) | (np.arange(probe) < PROBE_MIN)
        pairs = np.flatnonzero(near.ravel())
        group = top.ravel()[pairs]
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(self.groups) + 1))
        # each (vector, probed group): its best m children, scores and list numbers
        best_s = np.full((len(x) * probe, m), -np.inf, dtype=np.float32)
        best_l = np.full((len(x) * probe, m), -1, dtype=np.int64)
        for j, ct in enumerate(self.child_t):
            sel = pairs[order[bounds[j]:bounds[j + 1]]]
            if sel.size == 0:
                continue
            s = x[sel // probe] @ ct
            w = min(m, s.shape[1])
            val = np.empty((len(s), w), dtype=np.float32)
            cols = nearest_columns(s, w, val)  # m argmax passes: a fifth of argpartition's time on ~90 columns
            best_s[sel, :w] = val
            best_l[sel, :w] = self.children[j][cols]
        best_s, best_l = best_s.reshape(len(x), -1), best_l.reshape(len(x), -1)
        # a list reached through two groups appears twice: once picked, all its entries are dropped
        out = np.empty((len(x), m), dtype=np.int64)
        rows = np.arange(len(x))
        for c in range(m):
            pick = best_s.argmax(axis=1)
            out[:, c] = best_l[rows, pick]
            if values is not None:
                values[:, c] = best_s[rows, pick]
            best_s[best_l == out[:, c:c + 1]] = -np.inf
        return out


_ASSIGNERS: OrderedDict[str, ListAssigner] = OrderedDict()


def assign_lists(vectors: np.ndarray, centroids: np.ndarray, m: int = 2, scores: np.ndarray | None = None
                 ) -> np.ndarray:
    """(n, min(m, nlist)) each vector's nearest lists, nearest first (``scores``: see
    :meth:`ListAssigner.__call__`). The :class:`ListAssigner` of the last few centroid sets is kept, so
    that batch after batch against the same lists groups them once."""
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    if len(c) < TWO_LEVEL_LISTS:
        return ListAssigner(c)(vectors, m, scores=scores)
    key = hashlib.blake2b(c.tobytes(), digest_size=16).hexdigest() + str(c.shape)
    if key not in _ASSIGNERS:
        _ASSIGNERS[key] = ListAssigner(c)
        while len(_ASSIGNERS) > 4:
            _ASSIGNERS.popitem(last=False)
    return _ASSIGNERS[key](vectors, m, scores=scores)

"""Average-link agglomerative clustering on a sparse candidate graph, with a complete-link floor.

Why this does not chain: two clusters merge only when the mean similarity over *all* their cross pairs
reaches ``threshold`` and no cross pair falls below ``floor``. Every cross pair is scored exactly (not only
the graph edge that made them candidates), so A~B and B~C put A and C together only when A and C are
similar themselves. Single link (connected components) would chain; this does not.

Memory is O(edges + n): clusters meet only through candidate edges (top-k FAISS neighbours and MinHash
band collisions), and cross-pair scores are computed block by block when two clusters are compared.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

PairScorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Given index arrays A and B, return the (len(A), len(B)) similarity matrix."""


class SparseAverageLinkage:
    """Cluster n items given candidate edges and an exact pair scorer (scikit-learn style).

    Parameters
    ----------
    threshold: minimum average cross-pair similarity for a merge.
    floor: minimum single cross-pair similarity for a merge (complete-link floor).
    max_pairs: when two clusters have more cross pairs than this, the link is estimated from a
        deterministic sample of ``random_state``; keeps huge reprint groups cheap.
    """

    def __init__(self, threshold: float = 0.62, floor: float = 0.45, max_pairs: int = 40_000,
                 random_state: int = 0) -> None:
        self.threshold = threshold
        self.floor = floor
        self.max_pairs = max_pairs
        self.random_state = random_state

    def fit(self, n: int, edges: np.ndarray, weights: np.ndarray, scorer: PairScorer) -> SparseAverageLinkage:
        """``edges``: (m, 2) int array of candidate pairs; ``weights``: their similarities as ``scorer`` gives them."""
        rng = np.random.default_rng(self.random_state)
        members: dict[int, np.ndarray] = {i: np.array([i], dtype=np.int64) for i in range(n)}
        neighbours: dict[int, set[int]] = {}
        version = np.zeros(n, dtype=np.int64)
        heap: list[tuple[float, int, int, int, int]] = []
        for (a, b), w in zip(np.asarray(edges, dtype=np.int64), np.asarray(weights, dtype=np.float64), strict=True):
            a, b = int(min(a, b)), int(max(a, b))
            if a == b:
                continue
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
            if w >= self.threshold and w >= self.floor:
                heap.append((-float(w), a, b, 0, 0))
        heapq.heapify(heap)
        self.n_merges_ = 0
        while heap:
            _, a, b, va, vb = heapq.heappop(heap)
            if a not in members or b not in members or version[a] != va or version[b] != vb:
                continue
            # entries are exact when pushed and versions prove neither side changed since: merge
            # merge b into a (a < b keeps the root deterministic)
            members[a] = np.concatenate([members[a], members.pop(b)])
            version[a] += 1
            self.n_merges_ += 1
            nb = (neighbours.pop(a, set()) | neighbours.pop(b, set())) - {a, b}
            neighbours[a] = nb
            for c in sorted(nb):
                nc = neighbours.setdefault(c, set())
                nc.discard(b)
                nc.add(a)
                link, low = self._link(members[a], members[c], scorer, rng)
                if link >= self.threshold and low >= self.floor:
                    x, y = min(a, c), max(a, c)
                    heapq.heappush(heap, (-link, x, y, int(version[x]), int(version[y])))
        labels = np.empty(n, dtype=np.int64)
        for root, m in members.items():
            labels[m] = root
        self.labels_ = labels
        return self

    def _link(self, a: np.ndarray, b: np.ndarray, scorer: PairScorer, rng: np.random.Generator) -> tuple[float, float]:
        if a.size * b.size > self.max_pairs:
            side = int(np.sqrt(self.max_pairs))
            a = np.sort(rng.choice(a, size=min(a.size, side), replace=False))
            b = np.sort(rng.choice(b, size=min(b.size, side), replace=False))
        s = scorer(a, b)
        return float(s.mean()), float(s.min())

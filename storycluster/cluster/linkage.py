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
    threshold: minimum average cross-pair score for a merge (in the scorer's units; storycluster passes
        the same-story model's log-odds).
    floor: minimum single cross-pair score for a merge (complete-link floor).
    max_pairs: when two clusters have more cross pairs than this, the link is estimated from a
        deterministic sample of ``random_state``; keeps huge reprint groups cheap.
    """

    def __init__(self, threshold: float = 0.5, floor: float = 0.0, max_pairs: int = 40_000,
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
        # (sum, min, count) of cross-pair scores between two current clusters, keyed (low root, high root);
        # merged clusters add their parts' sums (Lance-Williams for average link), so a pair is scored once
        stats: dict[tuple[int, int], tuple[float, float, int]] = {}
        heap: list[tuple[float, int, int, int, int]] = []
        for (a, b), w in zip(np.asarray(edges, dtype=np.int64), np.asarray(weights, dtype=np.float64), strict=True):
            a, b = int(min(a, b)), int(max(a, b))
            if a == b:
                continue
            neighbours.setdefault(a, set()).add(b)
            neighbours.setdefault(b, set()).add(a)
            stats[(a, b)] = (float(w), float(w), 1)
            if w >= self.threshold and w >= self.floor:
                heap.append((-float(w), a, b, 0, 0))
        heapq.heapify(heap)

        def cross(x: int, y: int, x_members: np.ndarray) -> tuple[float, float, int]:
            key = (min(x, y), max(x, y))
            if key in stats:
                return stats.pop(key)
            return self._block(x_members, members[y], scorer, rng)

        self.n_merges_ = 0
        while heap:
            _, a, b, va, vb = heapq.heappop(heap)
            if a not in members or b not in members or version[a] != va or version[b] != vb:
                continue
            # entries are exact when pushed and versions prove neither side changed since: merge b into a
            members_a, members_b = members[a], members.pop(b)
            stats.pop((a, b), None)
            members[a] = np.concatenate([members_a, members_b])
            version[a] += 1
            self.n_merges_ += 1
            nb = (neighbours.pop(a, set()) | neighbours.pop(b, set())) - {a, b}
            neighbours[a] = nb
            for c in sorted(nb):
                nc = neighbours.setdefault(c, set())
                nc.discard(b)
                nc.add(a)
                sa, ma, na = cross(a, c, members_a)
                sb, mb, nbn = cross(b, c, members_b)
                total = (sa + sb, min(ma, mb), na + nbn)
                stats[(min(a, c), max(a, c))] = total
                link, low = total[0] / total[2], total[1]
                if link >= self.threshold and low >= self.floor:
                    x, y = min(a, c), max(a, c)
                    heapq.heappush(heap, (-link, x, y, int(version[x]), int(version[y])))
        labels = np.empty(n, dtype=np.int64)
        for root, m in members.items():
            labels[m] = root
        self.labels_ = labels
        return self

    def _block(self, a: np.ndarray, b: np.ndarray, scorer: PairScorer, rng: np.random.Generator
               ) -> tuple[float, float, int]:
        """(sum, min, count) of the cross-pair scores of two member sets; a deterministic sample of
        ``max_pairs`` stands in for very large blocks (sum scaled to the full count)."""
        full = a.size * b.size
        if full > self.max_pairs:
            side = int(np.sqrt(self.max_pairs))
            a = np.sort(rng.choice(a, size=min(a.size, side), replace=False))
            b = np.sort(rng.choice(b, size=min(b.size, side), replace=False))
        s = scorer(a, b)
        return float(s.mean()) * full, float(s.min()), full

"""Average-link agglomerative clustering on a sparse candidate graph, with a complete-link floor.

Why this does not chain: two clusters merge only when the mean similarity over *all* their cross pairs
reaches ``threshold`` and no cross pair falls below ``floor``. Every cross pair is scored exactly (not only
the graph edge that made them candidates), so A~B and B~C put A and C together only when A and C are
similar themselves. Single link (connected components) would chain; this does not.

Memory is O(edges + n): clusters meet only through candidate edges (top-k FAISS neighbours and MinHash
band collisions), and cross-pair scores are computed block by block when two clusters are compared.

Candidate edges scoring below ``edge_min`` (by default the merge threshold) are dropped first: two
clusters can only merge when their average reaches the threshold, so some cross pair must reach it; a
weaker edge only made them neighbours early. Then the graph splits into connected components, which are
clustered one by one (clusters never leave their component); a component of two is a merge or not, with
no Python loop. On ECB+ the groups are the same as over all edges (bench/quality.py); on a million
synthetic articles this leaves 1 edge in 20 (bench/scale.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

import numpy as np

BlockScorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Given index arrays A and B, return the (len(A), len(B)) similarity matrix."""


class SparseAverageLinkage:
    """Cluster n items given candidate edges and an exact pair scorer (scikit-learn style).

    Parameters
    ----------
    threshold: minimum average cross-pair score for a merge (in the scorer's units; storycluster passes
        the same-story model's log-odds).
    floor: minimum single cross-pair score for a merge (complete-link floor).
    max_pairs: when two clusters have more cross pairs than this, or a cluster has more than
        sqrt(max_pairs) members, the link (mean and floor) is estimated from a deterministic sample of
        ``random_state``; keeps huge reprint groups and large components cheap (linear, not quadratic).
    """

    def __init__(self, threshold: float = 0.5, floor: float = 0.0, max_pairs: int = 40_000,
                 random_state: int = 0, edge_min: float | None = None) -> None:
        self.threshold = threshold
        self.floor = floor
        self.max_pairs = max_pairs
        self.random_state = random_state
        self.edge_min = edge_min

    @property
    def edge_threshold(self) -> float:
        """Candidate edges scoring below this are dropped before clustering (their exact value is not used)."""
        return max(self.floor, self.threshold if self.edge_min is None else self.edge_min)

    def fit(self, n: int, edges: np.ndarray, weights: np.ndarray, scorer: BlockScorer) -> SparseAverageLinkage:
        """``edges``: (m, 2) int array of candidate pairs; ``weights``: their similarities as ``scorer`` gives them."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        rng = np.random.default_rng(self.random_state)
        edges = np.asarray(edges).reshape(-1, 2)
        weights = np.asarray(weights, dtype=np.float64)
        keep = (weights >= self.edge_threshold) & (edges[:, 0] != edges[:, 1])
        edges, weights = edges[keep].astype(np.int64), weights[keep]
        labels = np.arange(n, dtype=np.int64)
        self.n_merges_ = 0
        if len(edges) == 0:
            self.labels_ = labels
            return self
        graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp)
        # a component of two is one edge: it merges when the edge reaches the threshold (and the floor)
        pair = sizes[comp[edges[:, 0]]] == 2
        ok = pair & (weights >= self.threshold) & (weights >= self.floor)
        a, b = edges[ok].min(axis=1), edges[ok].max(axis=1)
        labels[b] = a
        self.n_merges_ += int(ok.sum())
        big = np.flatnonzero(sizes > 2)
        if big.size:
            in_big = np.flatnonzero(np.isin(comp[edges[:, 0]], big))
            order = np.argsort(comp[edges[in_big, 0]], kind="stable")
            rows = in_big[order]
            cuts = np.flatnonzero(np.diff(comp[edges[rows, 0]])) + 1
            for part in np.split(rows, cuts):
                nodes = np.unique(edges[part])
                local = np.searchsorted(nodes, edges[part])

                def sub(x: np.ndarray, y: np.ndarray, nodes: np.ndarray = nodes) -> np.ndarray:
                    return scorer(nodes[x], nodes[y])

                for root, m in self._link(len(nodes), local, weights[part], sub, rng).items():
                    labels[nodes[m]] = nodes[root]
        self.labels_ = labels
        return self

    def _link(self, n: int, edges: np.ndarray, weights: np.ndarray, scorer: BlockScorer,
              rng: np.random.Generator) -> dict[int, np.ndarray]:
        """Average linkage of one connected component (local indices): root → members."""
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
            nb = sorted((neighbours.pop(a, set()) | neighbours.pop(b, set())) - {a, b})
            neighbours[a] = set(nb)
            # cross-pair stats of each side with each neighbour: kept ones, else scored in a few batched calls
            # (one scorer call per neighbour made large components cost minutes of call overhead)
            side = [self._cross_stats(x, xm, nb, stats, members, scorer, rng)
                    for x, xm in ((a, members_a), (b, members_b))]
            for c, (sa, ma, na), (sb, mb, nbn) in zip(nb, *side, strict=True):
                nc = neighbours.setdefault(c, set())
                nc.discard(b)
                nc.add(a)
                total = (sa + sb, min(ma, mb), na + nbn)
                stats[(min(a, c), max(a, c))] = total
                link, low = total[0] / total[2], total[1]
                if link >= self.threshold and low >= self.floor:
                    x, y = min(a, c), max(a, c)
                    heapq.heappush(heap, (-link, x, y, int(version[x]), int(version[y])))
        return members

    def _cross_stats(self, x: int, x_members: np.ndarray, others: list[int], stats: dict,
                     members: dict[int, np.ndarray], scorer: BlockScorer, rng: np.random.Generator
                     ) -> list[tuple[float, float, int]]:
        """(sum, min, count) of cross-pair scores between cluster ``x`` and each of ``others``: popped from
        ``stats`` when known, otherwise scored; blocks under ``max_pairs`` are scored together, in calls of
        at most ``max_pairs`` pairs (one scorer call per neighbour cost more than the scores)."""
        out: dict[int, tuple[float, float, int]] = {}
        batch: list[int] = []
        for c in others:
            key = (min(x, c), max(x, c))
            if key in stats:
                out[c] = stats.pop(key)
            elif x_members.size * members[c].size > self.max_pairs:
                out[c] = self._block(x_members, members[c], scorer, rng)
            else:
                batch.append(c)
        # a large cluster is represented by a deterministic sample of sqrt(max_pairs) members (the sum scaled
        # to the full count): scoring every member against each new neighbour grew with the square of a
        # component's size
        side = max(1, int(np.sqrt(self.max_pairs)))
        xs = x_members if x_members.size <= side or not batch else np.sort(rng.choice(x_members, side, replace=False))
        scale = x_members.size / max(xs.size, 1)
        per_call = max(1, self.max_pairs // max(xs.size, 1))
        start = 0
        while start < len(batch):
            stop, width = start, 0
            while stop < len(batch) and (stop == start or width + members[batch[stop]].size <= per_call):
                width += members[batch[stop]].size
                stop += 1
            part = batch[start:stop]
            sizes = np.array([members[c].size for c in part])
            s = scorer(xs, np.concatenate([members[c] for c in part]))
            cuts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            sums = np.add.reduceat(s.sum(axis=0), cuts) * scale
            mins = np.minimum.reduceat(s.min(axis=0), cuts)
            for c, total, low, size in zip(part, sums, mins, sizes, strict=True):
                out[c] = (float(total), float(low), int(x_members.size * size))
            start = stop
        return [out[c] for c in others]

    def _block(self, a: np.ndarray, b: np.ndarray, scorer: BlockScorer, rng: np.random.Generator
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

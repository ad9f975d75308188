"""Candidate pairs for grouping: top-k vector neighbours above a similarity floor, plus MinHash band
collisions (lexical duplicates that the embedding might rank low, e.g. long texts with different leads)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..lexical import candidate_pairs, jaccard
from .scoring import Thresholds, semantic_similarity, similarity_matrix


def index_vectors(lead: np.ndarray, title: np.ndarray, title_weight: float) -> np.ndarray:
    """The vector the FAISS index holds: [sqrt(1-w) * lead, sqrt(w) * title], so that an inner product
    is exactly (1-w) * cos_lead + w * cos_title."""
    return np.hstack([np.sqrt(1.0 - title_weight) * lead, np.sqrt(title_weight) * title]).astype(np.float32)


class PairScorer:
    """Exact pair similarity over in-memory arrays (lead and title vectors, MinHash signatures,
    content-hash codes)."""

    def __init__(self, lead: np.ndarray, title: np.ndarray, sigs: np.ndarray, content_hashes: Sequence[str],
                 thresholds: Thresholds) -> None:
        self.lead = lead
        self.title = title
        self.sigs = sigs
        codes: dict[str, int] = {}
        self.codes = np.fromiter((codes.setdefault(h, len(codes)) for h in content_hashes), dtype=np.int64,
                                 count=len(content_hashes))
        self.thresholds = thresholds

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(len(a), len(b)) similarity matrix."""
        sem = semantic_similarity(self.lead[a] @ self.lead[b].T, self.title[a] @ self.title[b].T,
                                  self.thresholds.title_weight)
        jac = jaccard(self.sigs[a][:, None, :], self.sigs[b][None, :, :])
        same = self.codes[a][:, None] == self.codes[b][None, :]
        return similarity_matrix(sem, jac, same, self.thresholds)

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Similarity of each pair (i[t], j[t])."""
        sem = semantic_similarity(np.einsum("ij,ij->i", self.lead[i], self.lead[j]),
                                  np.einsum("ij,ij->i", self.title[i], self.title[j]), self.thresholds.title_weight)
        jac = jaccard(self.sigs[i], self.sigs[j])
        return similarity_matrix(sem, jac, self.codes[i] == self.codes[j], self.thresholds)


def neighbour_edges(vectors: np.ndarray, k: int, floor: float, batch: int = 4096) -> np.ndarray:
    """Pairs (i < j) where j is among i's top-k inner-product neighbours (or i among j's) with score >= floor."""
    import faiss

    n = len(vectors)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    kk = min(k + 1, n)
    out = []
    for start in range(0, n, batch):
        scores, nbrs = index.search(np.ascontiguousarray(vectors[start:start + batch]), kk)
        rows = np.repeat(np.arange(start, start + len(scores)), kk)
        keep = (scores.ravel() >= floor) & (nbrs.ravel() >= 0) & (nbrs.ravel() != rows)
        i, j = rows[keep], nbrs.ravel()[keep]
        out.append(np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1))
    return np.unique(np.concatenate(out), axis=0) if out else np.zeros((0, 2), dtype=np.int64)


def candidate_edges(scorer: PairScorer, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """All candidate edges with their exact similarities."""
    t = scorer.thresholds
    vectors = index_vectors(scorer.lead, scorer.title, t.title_weight)
    edges = np.concatenate([neighbour_edges(vectors, k, t.related), candidate_pairs(scorer.sigs)])
    if len(edges) == 0:
        return edges.reshape(0, 2), np.zeros(0)
    edges = np.unique(edges, axis=0)
    return edges, scorer.pairs(edges[:, 0], edges[:, 1])

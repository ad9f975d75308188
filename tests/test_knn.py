"""The neighbour graph (index/knn.py): exact below the size limit, from IVF lists above it; the head score of
split vectors; tombstones; second lists kept through save/load; linkage by components."""

from __future__ import annotations

import numpy as np
import pytest

from storycluster.cluster.linkage import SparseAverageLinkage
from storycluster.embed.layout import VectorLayout
from storycluster.neighbors.knn import knn_graph
from storycluster.store.vector_index import VectorIndex

from .test_vectors import clustered


def brute_force(x: np.ndarray, k: int, floor: float) -> set[tuple[int, int]]:
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    out = set()
    for i, row in enumerate(s):
        for j in np.argsort(-row)[:k]:
            if row[j] >= floor:
                out.add((min(i, int(j)), max(i, int(j))))
    return out


def test_exact_graph_is_the_brute_force_top_k_with_head_scores():
    x = clustered(600, 32)
    index = VectorIndex(32, "flat")
    index.add(np.arange(600) + 10, x)
    g = knn_graph(index, 5, 0.3, split=16)
    got = {(int(a) - 10, int(b) - 10) for a, b in zip(g.a, g.b, strict=True)}
    assert got == brute_force(x, 5, 0.3)
    assert len(got) == len(g)  # each pair once
    a, b = g.a - 10, g.b - 10
    assert np.allclose(g.score, np.einsum("ij,ij->i", x[a], x[b]), atol=1e-5)
    assert np.allclose(g.head, np.einsum("ij,ij->i", x[a, :16], x[b, :16]), atol=1e-5)


def test_ivf_graph_finds_the_exact_neighbours_and_skips_tombstones(tmp_path):
    x = clustered(6000, 64)
    index = VectorIndex(64, "ivf")
    index.add(np.arange(6000), x)
    assert index.nlist > 20 and index.second_lists() is not None
    exact = brute_force(x, 10, 0.5)
    g = knn_graph(index, 10, 0.5)
    got = set(zip(g.a.tolist(), g.b.tolist(), strict=True))
    recall = len(got & exact) / len(exact)
    assert recall >= 0.97, recall
    assert np.all(g.a < g.b)
    # the second-nearest lists survive save/load: the reopened index gives the same graph
    index.save(tmp_path / "i.faiss")
    again = VectorIndex.load(tmp_path / "i.faiss")
    assert np.array_equal(again.second_lists(), index.second_lists())
    assert again.list_margins().dtype == np.float16 and np.array_equal(again.list_margins(), index.list_margins())
    g2 = knn_graph(again, 10, 0.5)
    assert set(zip(g2.a.tolist(), g2.b.tolist(), strict=True)) == got
    # removed vectors are in no edge
    again.remove(np.arange(0, 6000, 3))
    g3 = knn_graph(again, 10, 0.5)
    assert not (set(g3.a.tolist()) | set(g3.b.tolist())) & set(range(0, 6000, 3))


def test_graph_without_known_second_lists_computes_them():
    x = clustered(3000, 32, seed=4)
    index = VectorIndex(32, "ivf")
    index.add(np.arange(3000), x)
    with_known = knn_graph(index, 8, 0.5)
    index._second = None  # as for an index saved before second lists were kept
    computed = knn_graph(index, 8, 0.5)
    assert set(zip(with_known.a.tolist(), with_known.b.tolist(), strict=True)) == set(
        zip(computed.a.tolist(), computed.b.tolist(), strict=True))


def test_only_vectors_near_a_list_border_query_their_second_list():
    from storycluster.neighbors import knn

    x = clustered(6000, 64, seed=6)
    index = VectorIndex(64, "ivf")
    index.add(np.arange(6000), x)
    c, second, margin = index.centroids(), index.second_lists(), index.list_margins().astype(np.float32)
    slots = np.arange(6000)
    own = np.array([lst for lst in range(index.nlist) for _ in index.list_slots(lst)])
    order = np.concatenate([index.list_slots(lst) for lst in range(index.nlist)])
    own_of = np.empty(6000, dtype=np.int64)
    own_of[order] = own
    # the margin is how much nearer the vector's own centroid is than its second-nearest one
    want = np.einsum("ij,ij->i", x, c[own_of]) - np.einsum("ij,ij->i", x, c[second])
    assert np.allclose(margin, want, atol=0.02)
    spilled, lists = knn._next_lists(index, 2, 0.5)
    spilled, lists = spilled[0], lists[0]
    assert abs(len(spilled) - 3000) <= 30 and np.array_equal(lists, second[spilled])
    rest = np.setdiff1d(slots, spilled)
    assert margin[spilled].max() <= margin[rest].min()  # the ones nearest a border
    # half the foreign queries, nearly the same neighbours
    exact = brute_force(x, 10, 0.5)
    recall = {}
    for share in (1.0, 0.5):
        g = knn_graph(index, 10, 0.5, spill_share=share)
        recall[share] = len(set(zip(g.a.tolist(), g.b.tolist(), strict=True)) & exact) / len(exact)
    assert recall[0.5] >= 0.95 and recall[0.5] >= recall[1.0] - 0.02, recall


def test_indexed_vectors_read_the_halves_back():
    rng = np.random.default_rng(0)
    lead = rng.standard_normal((50, 8)).astype(np.float32)
    title = rng.standard_normal((50, 8)).astype(np.float32)
    lead /= np.linalg.norm(lead, axis=1, keepdims=True)
    title /= np.linalg.norm(title, axis=1, keepdims=True)
    layout = VectorLayout(0.25)
    v = layout.combine(lead, title)
    assert v.dtype == np.float32 and v.shape == (50, 16)
    index = VectorIndex(16, "flat")
    index.add(np.arange(50) + 100, v)
    view = layout.half(index, np.arange(50) + 100, "title")
    assert len(view) == 50 and view.shape == (50, 8)
    assert np.allclose(view[np.array([3, 7])], title[[3, 7]], atol=1e-6)
    assert np.allclose(layout.half(index, np.arange(50) + 100, "lead")[np.array([5])], lead[[5]], atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linkage_over_strong_edges_equals_linkage_over_all_edges(seed):
    """Dropping edges below the threshold and clustering component by component gives the groups that
    average linkage over every candidate edge gives."""
    x = clustered(400, 16, seed=seed)
    sims = x @ x.T

    def scorer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return sims[np.ix_(a, b)]

    i, j = np.triu_indices(400, k=1)
    near = sims[i, j] > 0.2
    edges, weights = np.stack([i[near], j[near]], axis=1), sims[i[near], j[near]]
    fast = SparseAverageLinkage(threshold=0.8, floor=0.5).fit(400, edges, weights, scorer).labels_
    full = SparseAverageLinkage(threshold=0.8, floor=0.5, edge_min=-np.inf).fit(400, edges, weights, scorer).labels_

    def partition(labels: np.ndarray) -> set[frozenset[int]]:
        return {frozenset(np.flatnonzero(labels == lab).tolist()) for lab in np.unique(labels)}

    assert partition(fast) == partition(full)
    assert len(partition(fast)) < 400  # something merged


def test_large_lists_split_into_sub_blocks_keep_the_neighbours(monkeypatch):
    from storycluster.neighbors import knn

    x = clustered(6000, 64, seed=2)
    index = VectorIndex(64, "ivf")
    index.add(np.arange(6000), x)
    whole = knn_graph(index, 10, 0.5)
    calls = []
    original = knn._sub_blocks
    monkeypatch.setattr(knn, "_sub_blocks", lambda *a: calls.append(a[4]) or original(*a))
    monkeypatch.setattr(knn, "SPLIT_FACTOR", 0.5)  # every list above half the mean size is split
    monkeypatch.setattr(knn, "BLOCK_MIN", 20)
    split = knn_graph(index, 10, 0.5)
    assert calls and max(calls) >= 2
    exact = brute_force(x, 10, 0.5)
    for g in (whole, split):
        got = set(zip(g.a.tolist(), g.b.tolist(), strict=True))
        assert len(got & exact) / len(exact) >= 0.95


def test_single_list_ivf_graph_is_exact_and_has_no_repeated_edges():
    x = clustered(60, 8, seed=5)
    index = VectorIndex(8, "ivf")  # 60 vectors: one list
    index.add(np.arange(60), x)
    assert index.nlist == 1
    g = knn_graph(index, 5, 0.0)
    got = list(zip(g.a.tolist(), g.b.tolist(), strict=True))
    assert len(got) == len(set(got))
    exact = brute_force(x, 5, 0.0)
    assert len(set(got) & exact) / len(exact) >= 0.95  # 8-bit codes may swap near ties

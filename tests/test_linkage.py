import numpy as np

from storycluster.cluster import SparseAverageLinkage


def matrix_scorer(sim):
    return lambda a, b: sim[np.ix_(a, b)]


def test_no_chaining_through_a_middle_item():
    # A~B and B~C are strong, A and C are unrelated: single link would put all three together.
    sim = np.array([[1.0, 0.9, 0.1],
                    [0.9, 1.0, 0.8],
                    [0.1, 0.8, 1.0]])
    edges = np.array([[0, 1], [1, 2]])
    model = SparseAverageLinkage(threshold=0.55, floor=0.4).fit(3, edges, sim[edges[:, 0], edges[:, 1]],
                                                                 matrix_scorer(sim))
    labels = model.labels_
    assert labels[0] == labels[1]
    assert labels[2] != labels[0]


def test_long_chain_does_not_collapse_into_one_group():
    n = 12
    sim = np.eye(n)
    for i in range(n - 1):
        sim[i, i + 1] = sim[i + 1, i] = 0.8  # each item only like its neighbours
    edges = np.array([[i, i + 1] for i in range(n - 1)])
    labels = SparseAverageLinkage(threshold=0.55, floor=0.3).fit(
        n, edges, np.full(n - 1, 0.8), matrix_scorer(sim)).labels_
    assert max(np.bincount(labels)) <= 2


def test_floor_blocks_a_member_unlike_one_other_member():
    sim = np.array([[1.0, 0.9, 0.9],
                    [0.9, 1.0, 0.35],
                    [0.9, 0.35, 1.0]])
    edges = np.array([[0, 1], [0, 2], [1, 2]])
    w = sim[edges[:, 0], edges[:, 1]]
    strict = SparseAverageLinkage(threshold=0.55, floor=0.4).fit(3, edges, w, matrix_scorer(sim)).labels_
    assert len(set(strict.tolist())) == 2
    loose = SparseAverageLinkage(threshold=0.55, floor=0.3).fit(3, edges, w, matrix_scorer(sim)).labels_
    assert len(set(loose.tolist())) == 1


def test_deterministic_for_the_same_input():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    i, j = np.triu_indices(60, 1)
    edges = np.stack([i, j], 1)
    runs = [SparseAverageLinkage(threshold=0.3, floor=0.0).fit(60, edges, sim[i, j], matrix_scorer(sim)).labels_
            for _ in range(3)]
    assert all((r == runs[0]).all() for r in runs)

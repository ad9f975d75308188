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


def naive_average_linkage(sim: np.ndarray, threshold: float, floor: float) -> list[set[int]]:
    """Textbook greedy average linkage with a complete-link floor, every pair a candidate (O(n^3))."""
    clusters = [{i} for i in range(len(sim))]
    while True:
        best = None
        for x in range(len(clusters)):
            for y in range(x + 1, len(clusters)):
                block = sim[np.ix_(sorted(clusters[x]), sorted(clusters[y]))]
                if block.mean() >= threshold and block.min() >= floor and (best is None or block.mean() > best[0]):
                    best = (block.mean(), x, y)
        if best is None:
            return clusters
        _, x, y = best
        clusters[x] |= clusters.pop(y)


def test_equal_to_textbook_average_linkage_and_batches_its_scoring():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(6, 16))
    x = np.repeat(centres, 12, axis=0) + rng.normal(scale=0.9, size=(72, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    i, j = np.triu_indices(len(x), 1)
    calls = []

    def scorer(a, b):
        calls.append((len(a), len(b)))
        return sim[np.ix_(a, b)]

    fit = SparseAverageLinkage(threshold=0.35, floor=-0.2, edge_min=-np.inf).fit(
        len(x), np.stack([i, j], 1), sim[i, j], scorer)
    got = {}
    for item, lab in enumerate(fit.labels_):
        got.setdefault(int(lab), set()).add(item)
    want = naive_average_linkage(sim, 0.35, -0.2)
    assert sorted(map(sorted, got.values())) == sorted(map(sorted, want))
    assert 6 <= len(want) < 40  # the data has real merges to get right, not all-or-nothing
    # cross-cluster scores are fetched in a few calls per merge, not one call per neighbouring cluster
    assert len(calls) <= 2 * fit.n_merges_


def test_block_products_equal_scipy_for_small_and_large_blocks():
    from scipy.sparse import random as sparse_random

    from storycluster.cluster.graph import _block_dot

    m = sparse_random(300, 5000, density=0.01, format="lil", random_state=1)
    m[7] = 0  # an empty row
    m = m.tocsr()
    rng = np.random.default_rng(0)
    for na, nb in ((3, 5), (30, 30), (40, 200), (1, 299)):
        a, b = rng.choice(300, na, replace=False), rng.choice(300, nb, replace=False)
        a[0] = 7
        np.testing.assert_allclose(_block_dot(m, a, b), (m[a] @ m[b].T).toarray(), atol=1e-12)


def test_a_large_cluster_is_scored_through_a_sample_of_its_members():
    # 900 items all alike (one story reprinted): the growing cluster is scored through a sample of
    # sqrt(max_pairs) members, so no scorer call holds more than max_pairs pairs, and they still form one group
    n = 900
    calls = []

    def scorer(a, b):
        calls.append(len(a) * len(b))
        return np.full((len(a), len(b)), 0.9)

    edges = np.array([[i, i + 1] for i in range(n - 1)] + [[i, (i * 7 + 3) % n] for i in range(n)])
    edges = edges[edges[:, 0] != edges[:, 1]]
    fit = SparseAverageLinkage(threshold=0.5, floor=0.0, max_pairs=400).fit(n, edges, np.full(len(edges), 0.9),
                                                                             scorer)
    assert len(set(fit.labels_.tolist())) == 1
    assert max(calls) <= 400
    assert sum(calls) < n * n / 3  # scoring whole clusters came to 388,368 of the 404,550 pairs


def test_pairs_below_the_edge_threshold_skip_their_lexical_evidence_exactly(seed_store):
    """``PairScorer.pairs(at_least=…)``: pairs that can reach the threshold get their exact log-odds; the
    others a value below it (their TF-IDF cosines are not computed). On every pair of the seed archive."""
    import copy
    from dataclasses import replace
    from unittest import mock

    from storycluster import Archive
    from storycluster.regroup import store_scorer

    with Archive(seed_store, create=False) as a:
        scorer, _ = store_scorer(a.store, a.db.all_for_grouping(a.config.model_id))
        cut = SparseAverageLinkage(threshold=a.model.group_threshold, floor=a.model.group_floor).edge_threshold
    i, j = np.triu_indices(len(scorer.lead), 1)
    # a model whose cosines all weigh positively (one corner) and one whose short regime weighs the rare-term
    # cosine negatively (both values of it are tried)
    from storycluster.cluster.model import Regime

    def signed(regime: Regime, rare_sign: float) -> Regime:
        coef = list(regime.coef)
        coef[3], coef[4] = abs(coef[3]), rare_sign * abs(coef[4])
        return Regime(coef, regime.intercept)

    positive, mixed = copy.copy(scorer), copy.copy(scorer)
    positive.model = replace(scorer.model, regimes={n: signed(r, 1.0) for n, r in scorer.model.regimes.items()})
    mixed.model = replace(positive.model, regimes={**positive.model.regimes,
                                                   "short": signed(scorer.model.regimes["short"], -1.0)})
    assert len(positive._best_corners()) == 1 and len(mixed._best_corners()) == 2
    for s in (positive, mixed):
        exact = s.pairs(i, j)
        with mock.patch.object(s, "_sparse_pairs", wraps=s._sparse_pairs) as spy:
            lean = s.pairs(i, j, at_least=cut)
        reach = exact >= cut
        assert 0 < reach.sum() < len(i) // 2  # both kinds occur, most pairs are far apart
        assert np.array_equal(lean[reach], exact[reach]) and (lean[~reach] < cut).all()
        # TF-IDF and rare-term rows were gathered for a minority of the pairs only
        lexical = [c.args[1] for c in spy.call_args_list if c.args[0] is s.tfidf]
        assert sum(map(len, lexical)) < len(i) // 2


def test_pairs_on_several_threads_equal_one_thread(seed_store):
    """Chunks of ``PairScorer.pairs`` scored on threads give the same log-odds, in the same order."""
    from storycluster import Archive
    from storycluster.regroup import store_scorer

    with Archive(seed_store, create=False) as a:
        scorer, _ = store_scorer(a.store, a.db.all_for_grouping(a.config.model_id))
        cut = SparseAverageLinkage(threshold=a.model.group_threshold, floor=a.model.group_floor).edge_threshold
    i, j = np.triu_indices(len(scorer.lead), 1)
    for at_least in (None, cut):
        one = scorer.pairs(i, j, chunk=97, at_least=at_least, threads=1)
        many = scorer.pairs(i, j, chunk=97, at_least=at_least, threads=3)
        assert np.array_equal(one, many)


def test_pairs_among_marks_the_pairs_another_list_holds_like_isin():
    from storycluster.cluster.graph import _pairs_among

    rng = np.random.default_rng(4)
    for _ in range(100):
        n = int(rng.integers(2, 40))
        pairs = np.sort(rng.integers(0, n, (int(rng.integers(0, 30)), 2)), axis=1)  # duplicates included
        others = np.sort(rng.integers(0, n, (int(rng.integers(0, 50)), 2)), axis=1).astype(np.int32)
        want = np.isin(pairs[:, 0] * n + pairs[:, 1], others[:, 0].astype(np.int64) * n + others[:, 1])
        assert np.array_equal(_pairs_among(pairs, others, n, chunk=7), want)

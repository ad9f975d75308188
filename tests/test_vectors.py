"""Vector index kinds: flat, HNSW and IVF with tombstone deletion, updates, persistence, compaction, and
recall against exact search on clustered vectors; the store's auto choice and --index."""

from __future__ import annotations

import numpy as np
import pytest

from storycluster import Archive
from storycluster.regroup import regroup
from storycluster.store import vector_index as vx
from storycluster.store.vector_index import VectorIndex, choose_index

from .conftest import SEEDS, HashEmbedder


def clustered(n: int = 4000, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n // 20, dim))
    x = centers[rng.integers(0, len(centers), n)] + 0.35 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def with_tombstones(kind: str) -> tuple[np.ndarray, VectorIndex]:
    """6,000 clustered vectors (ids from 7) in an index of ``kind``, every fifth removed (tombstones) and ten
    updated (new slots, the old ones tombstoned)."""
    x = clustered(6000)
    ids = np.arange(len(x), dtype=np.int64) + 7
    v = VectorIndex(64, kind)
    v.add(ids, x)
    v.remove(ids[::5])
    v.add(ids[1:50:5], x[1000:1010])
    return x, v


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_remove_update_persist_compact(kind, tmp_path):
    x = clustered()
    ids = np.arange(len(x), dtype=np.int64) + 100
    v = VectorIndex(64, kind)
    v.add(ids, x)
    assert len(v) == len(x)
    assert v.remove(np.array([100, 101, 99_999])) == 2 and len(v) == len(x) - 2
    _, found = v.search(x[:2], 10)
    assert not {100, 101} & set(found.ravel().tolist())
    v.add(np.array([102]), x[500:501])  # an update: the new vector answers for id 102
    _, top = v.search(x[500:501], 2)
    assert set(top[0].tolist()) == {102, 600} and len(v) == len(x) - 2
    # the IVF stores 8-bit codes: the vector comes back within a quantization step
    assert np.allclose(v.vector(102), x[500], atol=0 if kind != "ivf" else 5e-3)
    v.save(tmp_path / "i.faiss")
    w = VectorIndex.load(tmp_path / "i.faiss")
    assert w.index_type == kind and len(w) == len(v) and w.tombstones == v.tombstones
    _, again = w.search(x[:2], 10)
    assert not {100, 101} & set(again.ravel().tolist())
    c = w.compacted()
    assert c.tombstones == 0 and len(c) == len(w) and c.index_type == kind
    if kind != "flat":
        assert w.tombstones == 3  # two removed, one replaced
        w.remove(ids[:1000])
        assert w.needs_rebuild()


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_ann_recall_against_exact(kind):
    x = clustered(6000)
    ids = np.arange(len(x), dtype=np.int64)
    exact, ann = VectorIndex(64, "flat"), VectorIndex(64, kind)
    exact.add(ids, x)
    ann.add(ids, x)
    q = x[::30]
    _, e = exact.search(q, 10)
    _, a = ann.search(q, 10)
    recall = np.mean([len(set(r) & set(s)) / 10 for r, s in zip(e.tolist(), a.tolist(), strict=True)])
    assert recall >= 0.95, recall


def test_choose_index():
    assert choose_index("auto", 10) == "flat" and choose_index("auto", vx.ANN_THRESHOLD) == "ivf"
    assert choose_index("ivf", 10) == "ivf"
    with pytest.raises(ValueError, match="unknown index type"):
        choose_index("annoy", 10)


def test_store_switches_to_ann_past_the_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(vx, "ANN_THRESHOLD", 10)
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as a:
        a.add_paths([SEEDS])
        assert a.stats()["index"]["type"] == "ivf" and a.stats()["index"]["setting"] == "auto"
        before = a.related("seed-main", k=5)
        a.remove(["similar-10"])
        assert a.stats()["index"]["vectors"] == 24
    with Archive(tmp_path / "s", embedder=HashEmbedder()) as a:
        assert a.index.index_type == "ivf" and len(a.index) == 24
        assert a.related("seed-main", k=5)["related"][0]["id"] == before["related"][0]["id"]


def test_store_index_setting(seed_store, tmp_path):
    import shutil

    path = tmp_path / "s"
    shutil.copytree(seed_store, path)
    with Archive(path) as a:
        flat = a.related("seed-main", k=8)
        flat_compare = a.compare("seed-main", flat["related"][0]["id"])["similarity"]
        assert a.set_index("hnsw") and a.stats()["index"]["type"] == "hnsw"
        assert a.related("seed-main", k=8) == flat  # 25 articles: HNSW finds the same neighbours
        # IVF scores come from its 8-bit codes: the same list, scores within a quantization step
        assert a.set_index("ivf")
        ivf = a.related("seed-main", k=8)["related"]
        assert [x["id"] for x in ivf] == [x["id"] for x in flat["related"]]
        assert all(abs(x["score"] - y["score"]) < 0.005 for x, y in zip(ivf, flat["related"], strict=True))
        # compare reads the stored float32 embeddings whatever the index
        assert a.compare("seed-main", ivf[0]["id"])["similarity"] == flat_compare
        with pytest.raises(ValueError, match="unknown index type"):
            a.set_index("annoy")


def test_ivf_store_groups_like_the_exact_one(seed_store, tmp_path, monkeypatch):
    """An IVF store groups with its index's 8-bit vectors and the graph from its lists: on the seed archive
    (real model) the groups are those of the exact store."""
    import shutil

    def partition(d: dict) -> set[frozenset[str]]:
        return {frozenset(m["id"] for m in g["members"]) for g in d["groups"]}

    with Archive(seed_store) as a:
        exact = partition(a.dedup())
    monkeypatch.setattr(vx, "ANN_THRESHOLD", 10)
    path = tmp_path / "s"
    shutil.copytree(seed_store, path)
    with Archive(path) as a:
        a.store.save_index()  # the auto setting now asks for IVF: the index is rebuilt as one
        assert a.index.index_type == "ivf"
        regroup(a.store, full=True)
        assert partition(a.dedup()) == exact


def test_ivf_list_vectors_decode_like_reconstruct_and_check_their_output(tmp_path):
    import faiss

    x = clustered(3000)
    v = VectorIndex(64, "ivf")
    v.add(np.arange(len(x), dtype=np.int64), x)
    slots = np.concatenate([v.list_slots(lst) for lst in range(v.nlist)])
    decoded = np.vstack([v.list_vectors(lst) for lst in range(v.nlist)])
    # FAISS's list decoder and its one-vector reconstruction agree, within an 8-bit step of the input
    assert np.allclose(decoded, v.slot_vectors(slots), atol=1e-6)
    assert np.abs(decoded - x[v.slot_ids()[slots]]).max() < 5e-3
    into = np.zeros((len(v.list_slots(0)) + 2, 64), dtype=np.float32)  # into a larger array's rows
    v.list_vectors(0, into[:-2])
    v.slot_vectors(slots[:2], into[-2:])
    assert np.array_equal(into[:-2], v.list_vectors(0)) and np.array_equal(into[-2:], v.slot_vectors(slots[:2]))
    for bad in (np.zeros((3, 64), np.float32), np.zeros((2, 64), np.float64), np.zeros((2, 128), np.float32)[:, ::2]):
        with pytest.raises(ValueError, match="C-contiguous float32"):
            v.slot_vectors(slots[:2], bad)
    # an index written before the 8-bit kind (float32 lists) decodes too
    quantizer = faiss.IndexFlatIP(64)
    flat = faiss.IndexIVFFlat(quantizer, 64, 8, faiss.METRIC_INNER_PRODUCT)
    flat.train(x)
    old = faiss.IndexIDMap2(flat)
    old.add_with_ids(x, np.arange(len(x), dtype=np.int64))
    faiss.write_index(old, str(tmp_path / "old.faiss"))
    w = VectorIndex.load(tmp_path / "old.faiss")
    rows = np.concatenate([w.list_slots(lst) for lst in range(w.nlist)])
    assert np.array_equal(np.vstack([w.list_vectors(lst) for lst in range(w.nlist)]), x[rows])


def test_many_queries_search_the_ivf_as_faiss_does():
    """From IVF_BATCH_SEARCH queries an IVF is searched by dense products over the lists each query probes:
    the same lists, scores and ids as FAISS's own search (a few queries at a time), tombstones skipped, queries
    zero over the lower half (headline-only) included, and -1 past the candidates a query's lists hold."""
    x, v = with_tombstones("ivf")
    q = np.vstack([x[::37], x[1000:1010]])
    half = q.copy()
    half[:, :32] = 0
    q = np.vstack([q, half])
    assert len(q) >= vx.IVF_BATCH_SEARCH and v._search_by_lists(q, 10) is not None  # the dense-product path
    probed = int(v._inner.nprobe) * max(v._inner.invlists.list_size(i) for i in range(v.nlist))
    for k in (10, 200, probed + 50):
        s, found = v.search(q, k)
        parts = [v.search(q[i:i + 4], k) for i in range(0, len(q), 4)]  # FAISS's own search
        rs, rf = np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])
        assert s.shape == rs.shape == (len(q), k)
        assert ((found >= 0) == (rf >= 0)).all()
        hit = found >= 0
        assert np.allclose(s[hit], rs[hit], atol=1e-5)
        assert not set(found[hit].tolist()) & set((np.arange(len(x), dtype=np.int64) + 7)[::5].tolist())
        for row, mine, ref, sc in zip(found, s, rf, rs, strict=True):
            # the same ids, apart from ties at the last score (either side may cut one of them)
            last = sc[ref >= 0].min() if (ref >= 0).any() else np.inf
            assert set(ref[sc > last + 1e-5].tolist()) <= set(row.tolist())
            assert (mine[(row >= 0) & ~np.isin(row, ref)] <= last + 1e-5).all()
    assert (found[:, -1] == -1).any()  # k beyond what the probed lists hold


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_search_all_reaches_every_vector(kind):
    """``search_all``: the top k over every live vector, whatever an approximate search would probe or walk (the
    exact top k of the vectors the index holds, 8-bit codes for an IVF), tombstones and updated slots skipped."""
    x, v = with_tombstones(kind)
    live_ids, live = v.live()
    q = np.vstack([x[::97], x[1000:1003]])
    k = 50
    s, found = v.search_all(q, k)
    exact = q @ live.T
    for row in range(len(q)):
        want = live_ids[np.argsort(-exact[row], kind="stable")[:k]]
        assert len(set(found[row].tolist()) ^ set(want.tolist())) <= 2  # at most a tie at the k-th swapped
        assert np.allclose(np.sort(s[row])[::-1], np.sort(exact[row])[::-1][:k], atol=1e-5)
    if kind == "ivf":  # the search probes some lists only: it misses some of them
        _, approx = v.search(q, k)
        assert sum(len(set(f.tolist()) - set(a.tolist())) for a, f in zip(approx, found, strict=True)) > 0


def test_search_pairs_scores_both_queries_over_the_lists_either_probes():
    """``search_pairs``: rows 2i and 2i + 1 are vector i's own search and its headline half's (the upper half
    over the title weight), both over the union of the lists either would probe: the exact top k of those
    lists' live vectors, as dense products (many vectors) and through FAISS (a few), tombstones skipped."""
    x, v = with_tombstones("ivf")
    labels = v.slot_ids()
    vecs = np.vstack([x[::37], x[1000:1010]])
    tw = 0.3
    heads = np.zeros_like(vecs)
    heads[:, 32:] = vecs[:, 32:] / np.float32(tw)
    _, probe_w = v._inner.quantizer.search(vecs, int(v._inner.nprobe))
    _, probe_h = v._inner.quantizer.search(heads, int(v._inner.nprobe))
    k = 30
    many = v.search_pairs(vecs, k, tw)
    few = [v.search_pairs(vecs[i:i + 3], k, tw) for i in range(0, len(vecs), 3)]  # FAISS, the lists given
    few_s, few_i = np.vstack([f[0] for f in few]), np.vstack([f[1] for f in few])
    assert 2 * len(vecs) >= vx.IVF_BATCH_SEARCH and many[0].shape == few_s.shape == (2 * len(vecs), k)
    for i in range(len(vecs)):
        lists = sorted(set(probe_w[i].tolist()) | set(probe_h[i].tolist()))
        slots = np.concatenate([v.list_slots(lst) for lst in lists])
        slots = slots[labels[slots] >= 0]
        cand = v.slot_vectors(slots)
        for row, q in ((2 * i, vecs[i]), (2 * i + 1, heads[i])):
            exact = cand @ q
            want = np.sort(exact)[::-1][:k]
            for scores, found in ((many[0], many[1]), (few_s, few_i)):
                assert np.allclose(scores[row], want, atol=1e-5)
                assert set(found[row].tolist()) <= set(labels[slots].tolist())
                got = dict(zip(labels[slots].tolist(), exact.tolist(), strict=True))
                assert np.allclose([got[f] for f in found[row].tolist()], scores[row], atol=1e-5)
    # a plain search of the headline half probes its own lists only: the pairs search meets more
    plain = v.search(heads, k)[1]
    assert sum(len(set(a.tolist()) - set(b.tolist())) for a, b in zip(many[1][1::2], plain, strict=True)) > 0

"""FAISS index over unit vectors with external int64 ids (the articles' row ids).

Inner product on L2-normalized vectors is cosine similarity. Three kinds:

* ``flat``: exact search (``IndexFlatIP``); removal is native.
* ``hnsw``: approximate, graph-based (``IndexHNSWFlat``, M=32); fast queries at any size.
* ``ivf``: approximate, inverted lists over 8-bit scalar-quantized vectors (``IndexIVFScalarQuantizer``,
  ``QT_8bit``, not by residual: a quarter of the memory of float32, inner products within about ±0.002
  of exact), nlist ≈ 2·√n, nprobe = max(16, nlist/128), a single query searched by both cores; trained
  on the vectors it is first given (or on a sample through :meth:`VectorIndex.train`) and retrained from
  all vectors when the archive has grown fourfold. Its lists are also the partition the neighbour graph
  is built from (:mod:`storycluster.neighbors.knn`); each vector's second-nearest list is kept for it (saved next to the index).

FAISS's HNSW cannot remove vectors, and removing from an IVF under an id map breaks the map, so the
approximate kinds remove by *tombstone*: the slot's id becomes -1 in the id map (persisted in the FAISS file
itself), searches skip it, and an update adds the new vector and tombstones the old one. When tombstones pass
``COMPACT_FRACTION`` of the slots, :meth:`compacted` rebuilds the index from the live vectors. The index is
saved in FAISS's own file format (``faiss.write_index``), written to a temporary file and renamed into place.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..neighbors.assign import ListAssigner
from ..neighbors.heaps import topk_heaps

INDEX_TYPES = ("flat", "hnsw", "ivf")
#: ``auto`` (a store setting): exact search below this many vectors, IVF from there. One exact search reads
#: every 4 KB vector, so its cost grows with the archive while an IVF search stays about flat
#: (docs/performance.md has the crossing).
ANN_THRESHOLD = 20_000


#: from this many queries at once an IVF search may run as dense products over the probed lists (when the
#: queries share lists: :meth:`VectorIndex._search_by_lists`); fewer are searched by FAISS itself
IVF_BATCH_SEARCH = 64


def choose_index(setting: str, n: int) -> str:
    """The index kind for ``n`` vectors under a store's setting (``auto`` or a kind)."""
    if setting == "auto":
        return "flat" if n < ANN_THRESHOLD else "ivf"
    if setting not in INDEX_TYPES:
        raise ValueError(f"unknown index type {setting!r}; choose auto or one of {', '.join(INDEX_TYPES)}")
    return setting
COMPACT_FRACTION = 0.2
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


#: k-means iterations and sample size (points per list) when an IVF is trained (:mod:`storycluster.neighbors.kmeans`)
IVF_NITER = 8
IVF_SAMPLE_PER_LIST = 40  # FAISS asks for 39


def ivf_lists(n: int) -> int:
    return max(1, min(65_536, int(2 * math.sqrt(max(n, 1)))))


def sample_rows(n: int, want: int) -> np.ndarray:
    """Sorted positions of a fixed-seed sample of ``want`` out of ``n`` (all of them when ``n <= want``)."""
    if n <= want:
        return np.arange(n)
    return np.sort(np.random.default_rng(1234).choice(n, want, replace=False))


def sample_ids(ids: np.ndarray, expected: int) -> np.ndarray:
    """The ids an IVF for ``expected`` vectors is trained on: a fixed-seed sample of IVF_SAMPLE_PER_LIST per list."""
    return ids[sample_rows(len(ids), IVF_SAMPLE_PER_LIST * ivf_lists(expected))]


def ivf_centroids(sample: np.ndarray, expected: int = 0) -> np.ndarray:
    """List centroids for an IVF of about ``expected`` vectors (at least ``len(sample)``), from ``sample``."""
    from ..neighbors.kmeans import centroids

    # FAISS wants 39 training points per list; more than IVF_SAMPLE_PER_LIST only costs time
    nlist = max(1, min(ivf_lists(max(expected, len(sample))), len(sample) // 39))
    sample = np.ascontiguousarray(sample[sample_rows(len(sample), IVF_SAMPLE_PER_LIST * nlist)], dtype=np.float32)
    return centroids(sample, nlist, IVF_NITER)


def ivf_nprobe(nlist: int) -> int:
    """Lists searched per query: 16 up to 2,048 lists (a million vectors); bench/scale.py measures recall."""
    return min(nlist, max(16, nlist // 128))


def pair_queries(vectors: np.ndarray, title_weight: float) -> np.ndarray:
    """Each index vector, then its headline half alone (the lower half zero, the upper divided by
    ``title_weight``: its product with an index vector is the headline cosine): rows ``2i`` and ``2i + 1``."""
    vectors = np.asarray(vectors, dtype=np.float32)
    out = np.zeros((2 * len(vectors), vectors.shape[1]), dtype=np.float32)
    h = vectors.shape[1] // 2
    out[0::2] = vectors
    out[1::2, h:] = vectors[:, h:] / np.float32(title_weight)
    return out


class VectorIndex:
    """An ``IndexIDMap2`` over a flat, HNSW or IVF inner-product index (see the module docstring)."""

    def __init__(self, dim: int, index_type: str = "flat") -> None:
        import faiss

        if index_type not in INDEX_TYPES:
            raise ValueError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
        self.dim = dim
        self.index_type = index_type
        # FAISS's SWIG classes: the inner index is flat, HNSW or IVF (built on the first add), the outer an id map
        inner: Any
        if index_type == "flat":
            inner = faiss.IndexFlatIP(dim)
        elif index_type == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            inner = None  # built and trained on the first add
        self._index: Any = faiss.IndexIDMap2(inner) if inner is not None else None
        self._inner: Any = inner
        self._init_state()

    def _init_state(self) -> None:
        """What this object keeps beside the FAISS index (fresh, or just loaded from a file)."""
        self._dead = 0
        self._second: np.ndarray | None = None  # each slot's second-nearest IVF list, while known
        self._margin: np.ndarray | None = None  # and how much nearer its own list is (see list_margins)
        self._rev_map_stale = False  # the id map's reverse map needs rebuilding before a reconstruct
        self._rev_lock = threading.Lock()
        self._assigner: ListAssigner | None = None  # an IVF's nearest-list assignment, built on its first add

    # -- size ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal) - self._dead

    @property
    def tombstones(self) -> int:
        return self._dead

    def _labels(self) -> np.ndarray:
        import faiss

        return faiss.vector_to_array(self._index.id_map)

    # -- writing -------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) vectors under their ids."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._index is None:
            self._build_ivf(vectors)
        self.remove(ids)
        if self.index_type == "ivf":
            self._add_ivf(ids, vectors)
        else:
            self._index.add_with_ids(vectors, ids)

    def _add_ivf(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Assign vectors to their nearest list with numpy's BLAS (FAISS's own assignment would run the same
        product on a second BLAS competing for the cores) and keep each one's second-nearest list, which
        the neighbour graph needs (:mod:`storycluster.neighbors.knn`); then add under the id map."""
        import faiss

        scores = np.zeros((len(ids), min(2, self.nlist)), dtype=np.float32)
        if self._assigner is None:  # the lists are fixed until the index is rebuilt
            self._assigner = ListAssigner(self.centroids())
        best = self._assigner(vectors, 2, scores=scores)
        first = np.ascontiguousarray(best[:, 0])
        second = (best[:, 1] if best.shape[1] > 1 else np.full(len(ids), -1)).astype(np.int32)
        # how much nearer the own list is than the second one (0: on the border); NaN with a single list
        margin = (scores[:, 0] - scores[:, 1] if scores.shape[1] > 1 else np.full(len(ids), np.nan)).astype(np.float16)
        start = int(self._inner.ntotal)
        self._inner.add_core(len(ids), faiss.swig_ptr(vectors), None, faiss.swig_ptr(first))
        id_map = self._index.id_map  # appended in place: copying the whole map per batch was quadratic
        id_map.resize(start + len(ids))
        faiss.rev_swig_ptr(id_map.data(), start + len(ids))[start:] = ids
        self._index.ntotal = self._inner.ntotal
        self._rev_map_stale = True
        self._second = _appended(self._second, start, second, -1)
        self._margin = _appended(self._margin, start, margin, np.nan)

    def _rev_map(self) -> None:
        with self._rev_lock:  # readers on several threads (PairScorer.pairs) may find it stale together
            if self._rev_map_stale:
                self._index.construct_rev_map()
                self._rev_map_stale = False

    def second_lists(self) -> np.ndarray | None:
        """Second-nearest list of every slot of an IVF index, when known (-1 where not), else None."""
        if self.index_type != "ivf" or self._second is None or len(self._second) != int(self._index.ntotal):
            return None
        return self._second

    def list_margins(self) -> np.ndarray | None:
        """Per slot of an IVF index, the inner product with its own list's centroid minus that with its
        second-nearest list's (float16; small: near the border between the two), when known (NaN where
        not), else None."""
        if self.index_type != "ivf" or self._margin is None or len(self._margin) != int(self._index.ntotal):
            return None
        return self._margin

    def train(self, sample: np.ndarray, expected: int) -> None:
        """Train an empty IVF index on ``sample`` for about ``expected`` vectors (lists sized for that many),
        so that a stream of batches can then be added; other kinds need no training."""
        if self.index_type == "ivf" and self._index is None:
            self._build_ivf(np.ascontiguousarray(sample, dtype=np.float32), expected)

    def _build_ivf(self, sample: np.ndarray, expected: int = 0) -> None:
        import faiss

        lists = ivf_centroids(sample, expected)
        sample = np.ascontiguousarray(sample[sample_rows(len(sample), IVF_SAMPLE_PER_LIST * len(lists))])
        quantizer = faiss.IndexFlatIP(self.dim)
        quantizer.add(lists)  # a quantizer already holding nlist centroids: train() fits only the 8-bit codec
        inner = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, len(lists), faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT, False)
        inner.train(sample)
        inner.make_direct_map(True)
        inner.nprobe = ivf_nprobe(len(lists))
        inner.own_fields = True
        quantizer.this.disown()
        self._inner = inner
        self._index = faiss.IndexIDMap2(inner)
        self._assigner = None

    def remove(self, ids: np.ndarray) -> int:
        import faiss

        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0 or len(self) == 0:
            return 0
        if self.index_type == "flat":
            return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        labels = self._labels()
        span = int(ids.max()) - int(ids.min()) if ids.size else 0
        # a lookup table over the ids' range is linear in the index size (sorting is n log n, per call)
        hit = np.isin(labels, ids, kind="table" if span < 50_000_000 else None)
        n = int(hit.sum())
        if n:
            labels[hit] = -1
            faiss.copy_array_to_vector(labels, self._index.id_map)
            self._index.construct_rev_map()
            self._rev_map_stale = False
            self._dead += n
        return n

    # -- reading -------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query; missing slots have id -1 (tombstones never appear)."""
        n = len(queries)
        if len(self) == 0:
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        k = max(1, min(k, len(self)))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.index_type == "ivf" and n >= IVF_BATCH_SEARCH and \
                (found := self._search_by_lists(queries, k)) is not None:
            return found
        if self.index_type == "ivf":  # one query: split its lists over the threads; many: one query per thread
            self._inner.parallel_mode = 1 if n < 4 else 0
        if not self._dead:
            return self._index.search(queries, k)
        import faiss

        # search the inner index past the tombstones, then map slots to ids
        want = min(int(self._index.ntotal), k + min(self._dead, 4 * k + 64))
        labels = self._labels()
        if self.index_type == "hnsw":
            params = faiss.SearchParametersHNSW(sel=faiss.IDSelectorBatch(np.flatnonzero(labels >= 0).astype(np.int64)),
                                                efSearch=max(HNSW_EF_SEARCH, want))
        else:
            params = faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(np.flatnonzero(labels >= 0).astype(np.int64)),
                                               nprobe=self._inner.nprobe)
        scores, slots = self._inner.search(queries, k, params=params)
        ids = np.where(slots >= 0, labels[np.maximum(slots, 0)], -1)
        return scores, ids

    def search_pairs(self, vectors: np.ndarray, k: int, title_weight: float) -> tuple[np.ndarray, np.ndarray]:
        """Each index vector searched twice: rows ``2i`` (scores, ids) for ``vectors[i]`` itself, rows ``2i + 1``
        for its headline half alone (the upper half divided by ``title_weight``: the headline cosine).

        Under an IVF both searches of a vector probe the lists either would probe (the union of their nearest
        lists), so every candidate they meet has both scores, and a candidate's topical score (the larger of
        the two, :func:`~storycluster.cluster.scoring.semantic_similarity`) is never above what the searches
        gave it: a related list's search that goes on until what lies below scores under its last story misses
        nothing its lists hold, however many results it asked for first. Many vectors are searched as dense
        products over their lists, the headline products shared (a list's headline-half products, once for
        both scores); a few through FAISS with the lists given."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n = len(vectors)
        both = pair_queries(vectors, title_weight)
        if self.index_type != "ivf" or len(self) == 0:
            return self.search(both, k)
        import faiss

        k = max(1, min(k, len(self)))
        nprobe = int(self._inner.nprobe)
        _, probe = self._inner.quantizer.search(both, nprobe)
        union = np.sort(np.concatenate([probe[0::2], probe[1::2]], axis=1), axis=1)
        union[:, 1:][union[:, 1:] == union[:, :-1]] = -1  # each list once
        if 2 * n >= IVF_BATCH_SEARCH and len(np.unique(union)) < 2 * n:  # neighbours: their lists shared
            return self._pairs_by_lists(vectors, k, union, np.float32(title_weight))
        assign = np.ascontiguousarray(np.repeat(union, 2, axis=0))
        labels = self._labels()
        params = faiss.SearchParametersIVF(nprobe=assign.shape[1])
        if self._dead:
            params.sel = faiss.IDSelectorBatch(np.flatnonzero(labels >= 0).astype(np.int64))
        self._inner.parallel_mode = 1 if n < 2 else 0
        dis = np.zeros(assign.shape, dtype=np.float32)  # the lists' distances: unused (not by residual)
        scores, slots = np.empty((2 * n, k), dtype=np.float32), np.empty((2 * n, k), dtype=np.int64)
        # FAISS's Python wrapper takes no parameters; every array handed to it is held in a local variable
        self._inner.search_preassigned_c(2 * n, faiss.swig_ptr(both), k, faiss.swig_ptr(assign), faiss.swig_ptr(dis),
                                         faiss.swig_ptr(scores), faiss.swig_ptr(slots), False, params)
        return scores, np.where(slots >= 0, labels[np.maximum(slots, 0)], -1)

    def _pairs_by_lists(self, vectors: np.ndarray, k: int, probe: np.ndarray, title_weight: np.float32
                        ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search_pairs` as dense products: each list decoded once, its lower-half and upper-half products
        with the vectors probing it; a vector's score is their sum, its headline score the upper-half one over
        ``title_weight``."""


        h = self.dim // 2

        def products(rows: np.ndarray, vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            scores = np.empty((2 * len(rows), len(vec)), dtype=np.float32)  # the vectors', then the headlines'
            title = scores[len(rows):]
            np.matmul(vectors[rows, h:], vec[:, h:].T, out=title)
            np.matmul(vectors[rows, :h], vec[:, :h].T, out=scores[:len(rows)])
            scores[:len(rows)] += title
            title /= title_weight
            return scores, np.concatenate([2 * rows, 2 * rows + 1])

        return self._top_k_by_lists(2 * len(vectors), k, probe, products)

    def search_all(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query over every vector the index holds, not only those an approximate
        search reaches (the lists an IVF query probes, the nodes an HNSW search walks): an IVF's lists as dense
        products, an HNSW's vectors from its flat storage. For the few queries that must not miss what another
        query's approximate search would find (which stored related lists a new article can enter: its own
        search probes other lists than theirs)."""
        n = len(queries)
        if len(self) == 0 or n == 0:
            return np.full((n, 0), -np.finfo(np.float32).max, dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        k = max(1, min(k, len(self)))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.index_type == "flat":
            return self.search(queries, k)
        import faiss

        if self.index_type == "ivf":
            return self._by_lists(queries, k, np.tile(np.arange(self.nlist, dtype=np.int64), (n, 1)))
        labels = self._labels()
        storage = faiss.downcast_index(self._inner.storage)
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.flatnonzero(labels >= 0).astype(np.int64)))
        scores, slots = storage.search(queries, k, params=params)
        return scores, np.where(slots >= 0, labels[np.maximum(slots, 0)], -1)

    def _search_by_lists(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """An IVF search of many queries as dense matrix products: each query probes the lists FAISS's own
        search would (its quantizer, ``nprobe``), each probed list is decoded once and multiplied with every
        query that probes it, and FAISS's heaps keep each query's top k. FAISS scores one query against one list
        at a time without BLAS: this wins when the queries share lists (neighbouring articles: 2,048 queries in
        0.84 s against 1.9 s at a million vectors), and loses when each list serves few of them (its decoding
        then costs more than the queries), so it runs only while the queries probe fewer than twice as many
        distinct lists as there are queries (else None: FAISS searches). Scores equal FAISS's up to float
        rounding (a different order of the same sums): candidates whose scores tie to the last bits may come
        in another order or be cut differently at k."""
        _, probe = self._inner.quantizer.search(queries, int(self._inner.nprobe))
        if len(np.unique(probe)) >= 2 * len(queries):
            return None
        return self._by_lists(queries, k, probe)

    def _by_lists(self, queries: np.ndarray, k: int, probe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = self.dim // 2
        lower_zero = np.logical_not(queries[:, :h].any(axis=1))

        def products(rows: np.ndarray, vec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            scores = np.empty((len(rows), len(vec)), dtype=np.float32)
            half = lower_zero[rows]  # zero over the lower half (headline-only queries): the upper half's product
            scores[~half] = queries[rows[~half]] @ vec.T
            scores[half] = queries[rows[half], h:] @ vec[:, h:].T
            return scores, rows

        return self._top_k_by_lists(len(queries), k, probe, products)

    def _top_k_by_lists(self, n: int, k: int, probe: np.ndarray,
                        products: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
                        ) -> tuple[np.ndarray, np.ndarray]:
        """The top k of ``n`` result rows over the IVF lists that ``probe`` names for each of its rows: each
        probed list decoded once; ``products(rows, vectors)`` gives the scores of the probe rows asking for it
        against its vectors, and the result row of each score row. FAISS's heaps keep each row's top k."""
        import faiss

        from ..parallel import thread_map

        labels = self._labels()
        val, ids = np.empty((n, k), dtype=np.float32), np.empty((n, k), dtype=np.int64)
        heaps = topk_heaps(val, ids)
        lock = threading.Lock()
        # the probe rows asking for each list: (list, row) pairs sorted by list
        flat = probe.ravel()
        order = np.argsort(flat, kind="stable")
        lists, asking = flat[order], order // probe.shape[1]
        cuts = np.flatnonzero(np.diff(lists)) + 1
        parts = [(int(lists[a]), asking[a:b]) for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(lists)],
                                                                 strict=True) if lists[a] >= 0]

        def one(part: tuple[int, np.ndarray]) -> None:
            lst, asked = part
            lab = labels[self.list_slots(lst)]
            if len(lab) == 0:
                return
            scores, rows = products(asked, self.list_vectors(lst))
            scores[:, lab < 0] = -np.finfo(np.float32).max  # tombstones never enter a heap
            kk = min(k, len(lab))
            bv, bi = np.empty((len(rows), kk), dtype=np.float32), np.empty((len(rows), kk), dtype=np.int64)
            block = topk_heaps(bv, bi)
            # each block heap starts at its row's k-th best so far: most scores fail one comparison. The
            # heaps only rise, so a value read while another thread merges is a lower, still valid, bound
            bv[:] = val[rows, 0][:, None]
            lab = np.ascontiguousarray(lab)
            block.addn_with_ids(len(lab), faiss.swig_ptr(scores), faiss.swig_ptr(lab), 0)  # one id row for all
            rows = np.ascontiguousarray(rows, dtype=np.int64)
            with lock:
                heaps.addn_query_subset_with_ids(len(rows), faiss.swig_ptr(rows), kk, faiss.swig_ptr(bv),
                                                 faiss.swig_ptr(bi), kk)

        omp = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # its OpenMP team would spin against numpy's BLAS threads between lists
        try:
            thread_map(one, parts, one_blas_thread=True)
        finally:
            faiss.omp_set_num_threads(omp)
        heaps.reorder()  # best first
        return val, ids

    def vector(self, item_id: int) -> np.ndarray:
        """The stored vector of one id (a RuntimeError from FAISS when absent)."""
        self._rev_map()
        return self._index.reconstruct(int(item_id))

    def vectors_of(self, ids: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Stored vectors of several ids, shape (len(ids), dim) (into ``out``, a C-contiguous float32 array of
        that shape, when given)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32) if out is None else out
        self._rev_map()
        return self._index.reconstruct_batch(ids, out)

    def ids(self) -> np.ndarray:
        """Ids of every live entry, in slot order."""
        if self._index is None:
            return np.zeros(0, dtype=np.int64)
        labels = self._labels()
        return labels[labels >= 0]

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every live entry."""
        ids = self.ids()
        return ids, self.vectors_of(ids)

    # -- the IVF partition (for the neighbour graph) ----------------------------------------------
    @property
    def nlist(self) -> int:
        """Number of inverted lists (0 unless an IVF index)."""
        return int(self._inner.nlist) if self.index_type == "ivf" and self._inner is not None else 0

    def centroids(self) -> np.ndarray:
        """(nlist, dim) list centroids of an IVF index."""
        return self._inner.quantizer.reconstruct_n(0, self.nlist)

    def list_slots(self, list_no: int) -> np.ndarray:
        """Internal slot numbers held in one inverted list (map them to ids with :meth:`slot_ids`)."""
        import faiss

        n = int(self._inner.invlists.list_size(list_no))
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        return faiss.rev_swig_ptr(self._inner.invlists.get_ids(list_no), n).astype(np.int64)

    def list_vectors(self, list_no: int, out: np.ndarray | None = None) -> np.ndarray:
        """The vectors of one inverted list, decoded to float32, in :meth:`list_slots` order (into ``out``, a
        C-contiguous (list size, dim) float32 array, when given)."""
        import faiss

        inv = self._inner.invlists
        n, size = int(inv.list_size(list_no)), int(inv.code_size)
        out = self._output(out, n)
        if n == 0:
            return out
        codes = np.frombuffer(faiss.rev_swig_ptr(inv.get_codes(list_no), n * size), dtype=np.uint8)
        if not hasattr(self._inner, "sq"):  # IndexIVFFlat (stores written before the 8-bit kind)
            out[:] = codes.view(np.float32).reshape(n, self.dim)
        else:  # FAISS's vectorized decoder: 7 times numpy's (code + 0.5) · step + min
            self._inner.sq.decode_c(faiss.swig_ptr(codes), faiss.swig_ptr(out), n)
        return out

    def slot_vectors(self, slots: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Vectors by internal slot number (into ``out``, a C-contiguous (len(slots), dim) float32 array,
        when given)."""
        import faiss

        slots = np.ascontiguousarray(slots, dtype=np.int64)
        out = self._output(out, len(slots))
        if slots.size:
            self._inner.reconstruct_batch_c(len(slots), faiss.swig_ptr(slots), faiss.swig_ptr(out))
        return out

    def _output(self, out: np.ndarray | None, n: int) -> np.ndarray:
        """``out``, checked before FAISS writes ``n`` vectors into its memory, or a new array."""
        if out is None:
            return np.empty((n, self.dim), dtype=np.float32)
        if out.shape != (n, self.dim) or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float32 array of shape {(n, self.dim)}; got "
                             f"{out.dtype} {out.shape}{'' if out.flags.c_contiguous else ', not contiguous'}")
        return out

    def slot_ids(self) -> np.ndarray:
        """Id of every internal slot (-1 for a tombstone)."""
        return self._labels()

    # -- upkeep --------------------------------------------------------------------------------
    def needs_rebuild(self) -> bool:
        """Tombstones past the limit, or an IVF whose lists were sized for a quarter of today's vectors."""
        if self._index is None:
            return False
        if self._dead > COMPACT_FRACTION * max(1, int(self._index.ntotal)):
            return True
        return self.index_type == "ivf" and min(ivf_lists(len(self)), len(self) // 39) >= 2 * self._inner.nlist

    def compacted(self, index_type: str | None = None, chunk: int = 50_000) -> VectorIndex:
        """A new index of ``index_type`` (default: the same) holding only the live entries, copied in chunks
        (an IVF is trained on a sample first): never all vectors as float32 at once."""
        fresh = VectorIndex(self.dim, index_type or self.index_type)
        ids = self.ids()
        if fresh.index_type == "ivf" and len(ids):
            fresh.train(self.vectors_of(sample_ids(ids, len(ids))), len(ids))
        for start in range(0, len(ids), chunk):
            fresh.add(ids[start:start + chunk], self.vectors_of(ids[start:start + chunk]))
        return fresh

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        import faiss

        if self._index is None:  # an IVF never given a vector: nothing to train on, write an empty flat map
            empty = VectorIndex(self.dim, "flat")
            empty.save(path)
            return
        # NumPy's .npy files next to the index; checked against the slot count on load
        for array, side in ((self.second_lists(), _second_path(path)), (self.list_margins(), _margin_path(path))):
            if array is not None:
                def write_npy(tmp: Path, array: np.ndarray = array) -> None:
                    with open(tmp, "wb") as fh:  # a file object: np.save would append .npy to a path
                        np.save(fh, array, allow_pickle=False)

                _atomic_write(side, write_npy)
        _atomic_write(path, lambda tmp: faiss.write_index(self._index, str(tmp)))

    @classmethod
    def load(cls, path: Path, index_type: str = "flat", mapped: bool = False) -> VectorIndex:
        """The saved index; ``mapped``: its vectors mapped from the file, not copied into memory (processes
        that read one index share the OS's pages of it; such an index is only read)."""
        import faiss

        raw = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mapped else 0)
        self = cls.__new__(cls)
        self._index = raw if isinstance(raw, faiss.IndexIDMap2) else faiss.IndexIDMap2.cast(raw)
        self._inner = faiss.downcast_index(self._index.index)
        self.dim = int(raw.d)
        if isinstance(self._inner, faiss.IndexHNSW):
            self.index_type = "hnsw"
            self._inner.hnsw.efSearch = HNSW_EF_SEARCH
        elif isinstance(self._inner, faiss.IndexIVF):
            self.index_type = "ivf"
            self._inner.nprobe = ivf_nprobe(self._inner.nlist)
        else:
            self.index_type = "flat"
        self._init_state()
        self._dead = 0 if self.index_type == "flat" else int((self._labels() < 0).sum())
        if self.index_type == "ivf":
            self._second = _load_side(_second_path(path), int(self._index.ntotal), np.int32)
            self._margin = _load_side(_margin_path(path), int(self._index.ntotal), np.float16)
        return self


def _appended(kept: np.ndarray | None, start: int, new: np.ndarray, unknown) -> np.ndarray:
    """A per-slot array with ``new`` appended after slot ``start``; slots it did not cover are ``unknown``."""
    if kept is None or len(kept) != start:
        kept = np.full(start, unknown, dtype=new.dtype)
    return np.concatenate([kept, new])


def _load_side(path: Path, n: int, dtype) -> np.ndarray | None:
    """A per-slot array saved next to the index, if present and of the index's size (else None: an older
    store, or one whose index was rewritten without it)."""
    if not path.exists():
        return None
    array = np.load(path, allow_pickle=False)
    return array if array.shape == (n,) and array.dtype == dtype else None


def _second_path(path: Path) -> Path:
    return path.with_name(path.name + ".second-lists.npy")


def _margin_path(path: Path) -> Path:
    return path.with_name(path.name + ".list-margins.npy")


def _atomic_write(path: Path, write) -> None:
    """``write(tmp)``, fsync, rename over ``path``; the temporary file is removed when anything fails (a full disk)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

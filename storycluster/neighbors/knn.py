"""The k-nearest-neighbour graph of an index's vectors: top-k inner-product neighbours of every vector,
above a similarity floor, computed block by block with dense matrix products (BLAS) instead of one
search per vector.

* Small (under ``EXACT_GRAPH`` vectors): exact, blocks of queries against all vectors.
* Larger: over the lists of an IVF partition (the store's IVF index itself, or one built for the purpose).
  Each vector is a query in its own list and in its ``spill - 1`` next-nearest lists ("soft assignment" on
  the query side), and each list's members are the candidates of the queries it receives; a pair is found
  when either side's nearest lists hold the other. Each list is decoded once as candidates; the
  cost is ``n · nlist`` inner products to find each vector's nearest lists and ``spill · n · n/nlist`` for
  the blocks, O(n^1.5) with nlist ≈ 2·√n. (A list's nearest lists by centroid do not stand in for its
  members' nearest lists: on news embeddings a member's second-nearest list ranks in the hundreds among
  its own centroid's neighbours, so pairs across list boundaries were missed.) bench/scale.py measures the
  recall against exact search.

Every vector keeps a running top-k (FAISS's C++ heaps) that each block updates; one list's block is in
memory at a time. Memory is O(n·k) besides the index.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..memory import release_free_memory
from ..parallel import cores, thread_map
from ..store.vector_index import VectorIndex
from .assign import nearest_columns
from .heaps import topk_heaps

#: below this many vectors the graph is exact (≈ n² inner products)
EXACT_GRAPH = 20_000
#: the share of vectors that are also queries in their next-nearest lists: those nearest a border between
#: their own list and the next (smallest margin); vectors deep inside their list find most of their
#: neighbours there. All by default: spilling fewer is faster but loses same-story neighbours
#: (docs/performance.md)
SPILL_SHARE = 1.0


@dataclass(slots=True)
class KnnGraph:
    """Undirected edges ``a[t] < b[t]`` (ids) with the full inner product ``score[t]`` and, when the graph
    was built with ``split``, the inner product over the first ``split`` dimensions ``head[t]``."""

    a: np.ndarray
    b: np.ndarray
    score: np.ndarray
    head: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    @classmethod
    def empty(cls) -> KnnGraph:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z.copy(), np.zeros(0, np.float32), np.zeros(0, np.float32))


class _TopK:
    """Running top-k of every row (heap rows = slots). Each entry's id packs the candidate's row (high 32
    bits) with the float32 bits of its head score (low 32 bits), so the head score follows the entry
    through the heaps."""

    def __init__(self, n: int, k: int, floor: float | None = None) -> None:
        self.k = k
        self.floor = floor
        # a block's scores below this never reach the graph: just under ``floor``, so scores equal to it count
        self.below = (np.nextafter(np.float32(floor), np.float32(-np.inf)) if floor is not None
                      else -np.finfo(np.float32).max)
        self._lock = threading.Lock()  # blocks are scored on several threads; the heaps take one at a time
        self.val = np.empty((n, k), dtype=np.float32)
        self.ids = np.empty((n, k), dtype=np.int64)
        self.heaps = topk_heaps(self.val, self.ids)

    def add_block(self, rows: np.ndarray, s: np.ndarray, head: np.ndarray, cand: np.ndarray) -> None:
        """Scores ``s`` (and head scores) of queries ``rows`` against candidates ``cand`` (rows too)."""
        from faiss import swig_ptr as swig

        q, m = s.shape
        kk = min(self.k, m)
        bv, bi = np.empty((q, kk), dtype=np.float32), np.empty((q, kk), dtype=np.int64)
        block = topk_heaps(bv, bi)
        # each row's block heap starts at what the row's heap already holds (its k-th best so far, or just
        # under the floor): most scores then fail one comparison instead of being pushed and popped. The
        # heaps only rise, so a value read while another thread merges is a lower, still valid, bound.
        bv[:] = np.maximum(self.val[rows, 0], self.below)[:, None]
        # swig_ptr holds no reference: every array handed to FAISS is kept in a local variable
        s = np.ascontiguousarray(s, dtype=np.float32)
        cols = np.arange(m, dtype=np.int64)
        block.addn_with_ids(m, swig(s), swig(cols), 0)
        col = np.maximum(bi, 0)
        hv = np.ascontiguousarray(np.take_along_axis(head, col, 1), dtype=np.float32)
        self.add_entries(rows, bv, np.where(bi >= 0, (cand[col] << 32) | hv.view(np.uint32).astype(np.int64), -1))

    def add_entries(self, rows: np.ndarray, val: np.ndarray, packed: np.ndarray) -> None:
        """Merge ready entries (scores and packed ids, as :attr:`val`/:attr:`ids` hold them) into ``rows``;
        with a ``floor``, only entries at or above it (as :meth:`add_block` gives)."""
        from faiss import swig_ptr as swig

        val = np.ascontiguousarray(val, dtype=np.float32)
        packed = np.ascontiguousarray(packed, dtype=np.int64)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        with self._lock:
            self.heaps.addn_query_subset_with_ids(len(rows), swig(rows), val.shape[1], swig(val), swig(packed),
                                                  val.shape[1])

    def graph(self, row_ids: np.ndarray, floor: float, chunk: int = 8192, threads: int = 1) -> KnnGraph:
        """Undirected edges of the heaps: (a, b) from a's heap, kept once (when b's heap does not also hold
        a, or a < b); rows in chunks (on ``threads`` threads), so the transient memory stays small at
        millions of rows. Ids are int32 when they fit. Consumes the heaps (freed before the edges are
        joined: a smaller peak at millions of rows)."""
        n = len(self.val)
        # every entry add_block keeps lies above the heaps' own floor: no need to read the values back then
        entries_above = self.floor is not None and floor <= self.floor
        small = len(row_ids) == 0 or int(row_ids.max()) < 2**31
        id_type = np.int32 if small else np.int64

        def edges(start: int) -> tuple[np.ndarray, ...]:
            rows = slice(start, min(start + chunk, n))
            nbr = self.ids[rows] >> 32  # the candidate's row, -1 for an empty slot (-1 >> 32 is -1)
            q, j = np.nonzero((self.val[rows] >= floor) & (nbr >= 0))
            b = nbr[q, j]
            q += start
            # a pair both heaps hold is kept from the lower row's side only: seen from the higher row, it is
            # kept when the lower row's heap does not hold it (above the floor)
            keep = q < b
            up = np.flatnonzero(~keep)
            held = (self.ids[b[up]] >> 32) == q[up, None]
            if not entries_above:
                held &= self.val[b[up]] >= floor
            keep[up] = ~held.any(axis=1)
            q, j, b = q[keep], j[keep], b[keep]
            head = (self.ids[q, j] & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
            a_id, b_id = row_ids[q], row_ids[b]
            ok = (a_id >= 0) & (b_id >= 0) & (a_id != b_id)
            a_id, b_id = a_id[ok], b_id[ok]
            return (np.minimum(a_id, b_id).astype(id_type), np.maximum(a_id, b_id).astype(id_type),
                    self.val[q, j][ok], head[ok])

        fields = [list(f) for f in zip(*thread_map(edges, range(0, n, chunk), threads), strict=True)]
        del self.val, self.ids, self.heaps  # the heaps are spent: freed before the edges are joined
        if not fields:
            return KnnGraph.empty()
        out = []
        for f in range(len(fields)):  # one field at a time, its chunks freed as it is joined
            out.append(np.concatenate(fields[f]))
            fields[f] = []
        release_free_memory()
        return KnnGraph(*out)


def _scores(queries: np.ndarray, cands: np.ndarray, split: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(full, head) inner products of queries against candidates."""
    if not split:
        s = queries @ cands.T
        return s, s
    head = queries[:, :split] @ cands[:, :split].T
    return head + queries[:, split:] @ cands[:, split:].T, head


def knn_graph(index: VectorIndex, k: int, floor: float, split: int | None = None, spill: int = 2,
              batch: int = 1024, threads: int | None = None, spill_share: float = SPILL_SHARE) -> KnnGraph:
    """Top-k neighbours (inner product ≥ ``floor``) of every live vector in ``index``, as undirected edges.
    ``split``: also report the inner product over the first ``split`` dimensions (storycluster's index
    vector is the lead and headline embeddings side by side). ``threads``: lists scored at once (default:
    the cores this process may use); ``spill_share``: see :data:`SPILL_SHARE`. See the module docstring
    for the method."""
    if len(index) < 2:
        return KnnGraph.empty()
    exact = index.index_type != "ivf" and len(index) < EXACT_GRAPH
    if not exact and index.index_type != "ivf":
        ids, vectors = index.live()
        index = VectorIndex(index.dim, "ivf")
        index.add(ids, vectors)
        del ids, vectors
    import faiss

    threads = max(1, threads or cores())
    # FAISS's OpenMP threads spin after each heap update and would take the cores from the block products;
    # the blocks are spread over our own threads instead, each with a one-thread BLAS: the heap updates,
    # decoding and copies (about half the time) then run on every core too, not only the products
    omp = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        if exact:
            return _exact(index, k, floor, split, batch, threads)
        return _partitioned(index, k, floor, split, spill, threads, spill_share)
    finally:
        faiss.omp_set_num_threads(omp)


def _exact(index: VectorIndex, k: int, floor: float, split: int | None, batch: int, threads: int = 1
           ) -> KnnGraph:
    ids, x = index.live()
    top = _TopK(len(ids), min(k, len(ids) - 1), floor)
    every = np.arange(len(ids), dtype=np.int64)

    def one_batch(start: int) -> None:
        rows = every[start:start + batch]
        s, head = _scores(x[rows], x, split)
        s[np.arange(len(rows)), rows] = -np.inf
        top.add_block(rows, s, head, every)

    thread_map(one_batch, range(0, len(ids), batch), threads, one_blas_thread=True)
    release_free_memory()
    return top.graph(ids, floor, threads=threads)


def _next_lists(index: VectorIndex, spill: int, share: float = SPILL_SHARE
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(slots, list numbers): the ``spill - 1`` nearest lists after its own of the ``share`` of the vectors
    nearest a list border. The index keeps each vector's second-nearest list and margin from its
    assignment (an index saved before margins were kept spills every vector); otherwise they are computed
    here, in full dimension (a lower-dimensional projection lost a fifth of the cross-list pairs it should
    find)."""
    if spill < 2 or index.nlist < 2:
        return [], []
    spill = min(spill, index.nlist)
    known, margin = index.second_lists(), index.list_margins()
    live = index.slot_ids() >= 0
    if spill == 2 and known is not None and (known[live] >= 0).all():
        slots = np.flatnonzero(live)
        if margin is not None and np.isfinite(margin[slots]).all():
            slots = slots[_near_border(margin[slots], share)]
        # else an index saved before margins were kept: every vector queries its second list, as then
        return [slots], [known[slots].astype(np.int64)]
    c = index.centroids()
    slots_all, lists_all, margins = [], [], []
    for lst in range(index.nlist):
        slots = index.list_slots(lst)
        mine = live[slots]
        if not mine.any():
            continue
        near = index.list_vectors(lst)[mine] @ c.T
        own = near[:, lst].copy()
        near[:, lst] = -np.inf  # the own list is the primary one
        score = np.empty((len(near), spill - 1), dtype=np.float32)
        slots_all.append(slots[mine])
        lists_all.append(nearest_columns(near, spill - 1, score))
        margins.append(own - score[:, 0])
    if not slots_all:
        return [], []
    slots, lists = np.concatenate(slots_all), np.concatenate(lists_all)
    keep = _near_border(np.concatenate(margins), share)
    return [np.repeat(slots[keep], spill - 1)], [lists[keep].ravel()]


def _near_border(margin: np.ndarray, share: float) -> np.ndarray:
    """Mask of the ``share`` of the margins that are smallest (all when share ≥ 1)."""
    if share >= 1 or len(margin) == 0:
        return np.ones(len(margin), dtype=bool)
    return margin <= np.quantile(margin.astype(np.float32), share)


#: lists larger than SPLIT_FACTOR times the mean are split into sub-blocks of about the mean size (k-means
#: lists are uneven: on the synthetic million the largest held 90 times the median, and a list's block costs
#: the square of its size)
SPLIT_FACTOR = 3
BLOCK_MIN = 256


def _sub_blocks(top: _TopK, qslots: np.ndarray, queries: np.ndarray, n_own: int, parts: int,
                split: int | None, spill: int) -> None:
    """One large list as ``parts`` sub-blocks, the list's own partition in small: its members (the first
    ``n_own`` queries) are clustered (k-means), each member is a candidate in its nearest sub-block and a
    query there and in its next ``spill - 1``; the list's foreign queries go to their nearest sub-block."""
    from .kmeans import split as split_parts

    near = queries @ split_parts(queries[:n_own], parts).T
    # member_of: each query's sub-blocks (-1: none); the foreign queries only their nearest
    member_of = np.full((len(queries), min(spill, parts)), -1, dtype=np.int64)
    member_of[:n_own] = nearest_columns(near[:n_own], member_of.shape[1])
    member_of[n_own:, 0] = near[n_own:].argmax(axis=1)
    nearest = member_of[:n_own, 0]
    for b in range(parts):
        cand = np.flatnonzero(nearest == b)
        if cand.size == 0:
            continue
        q = np.flatnonzero((member_of == b).any(axis=1))
        pos = np.full(len(queries), -1)
        pos[cand] = np.arange(cand.size)
        s, head = _scores(queries[q], queries[cand], split)
        mine = pos[q] >= 0
        s[np.flatnonzero(mine), pos[q][mine]] = -np.inf
        top.add_block(qslots[q], s, head, qslots[cand])


def block_target(n: int, nlist: int) -> int:
    """Rows per block: the mean list size (at least BLOCK_MIN)."""
    return max(BLOCK_MIN, int(n / max(nlist, 1)))


def list_block(top: _TopK, qslots: np.ndarray, queries: np.ndarray, n_own: int, target: int,
               split: int | None, spill: int) -> None:
    """One list's block: its ``n_own`` members (the first rows of ``queries``) are the candidates, every
    row is a query (members, then the foreign queries that have this list among their nearest); a list
    over SPLIT_FACTOR times ``target`` is split into sub-blocks. ``qslots``: the heap rows of the queries.
    The single-machine graph and the distributed pipeline's list stage both call this."""
    if n_own <= SPLIT_FACTOR * target:
        s, head = _scores(queries, queries[:n_own], split)
        s[np.arange(n_own), np.arange(n_own)] = -np.inf
        top.add_block(qslots, s, head, qslots[:n_own])
    else:
        _sub_blocks(top, qslots, queries, n_own, -(-n_own // target), split, spill)


def block_neighbours(own: np.ndarray, own_ids: np.ndarray, foreign: np.ndarray, foreign_ids: np.ndarray,
                     k: int, target: int, split: int | None = None, spill: int = 2
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One list's block on its own (a distributed worker's unit of work): (query ids, (m, k) scores,
    (m, k) packed entries with candidate *ids*) for :meth:`_TopK.add_entries` of a graph-wide top-k."""
    queries = np.vstack([own, foreign]) if len(foreign) else own
    qids = np.concatenate([own_ids, foreign_ids]).astype(np.int64)
    top = _TopK(len(queries), k)
    if len(own) and len(queries) > 1:
        list_block(top, np.arange(len(queries), dtype=np.int64), queries, len(own), target, split, spill)
    ids, val = top.ids, top.val
    pos = ids >> 32
    packed = np.where(ids >= 0, (qids[np.maximum(pos, 0)] << 32) | (ids & 0xFFFFFFFF), -1)
    return qids, val, packed


def merge_blocks(n: int, k: int, parts, floor: float) -> KnnGraph:
    """The graph of ``n`` vectors (ids 0..n-1) from :func:`block_neighbours` results ``(qids, val, packed)``:
    each id keeps its best k entries over all blocks, then the undirected edges above ``floor``."""
    top = _TopK(n, min(k, max(n - 1, 1)))
    for qids, val, packed in parts:
        if len(qids):
            top.add_entries(qids, val, packed)
    return top.graph(np.arange(n, dtype=np.int64), floor)


def _partitioned(index: VectorIndex, k: int, floor: float, split: int | None, spill: int,
                 threads: int = 1, spill_share: float = SPILL_SHARE) -> KnnGraph:
    slot_ids = index.slot_ids()
    nlist = index.nlist
    extra_slot, extra_list = _next_lists(index, spill, spill_share)
    foreign_of = [np.zeros(0, dtype=np.int64)] * nlist
    if extra_slot:
        es, el = np.concatenate(extra_slot), np.concatenate(extra_list)
        order = np.argsort(el, kind="stable")
        es, bounds = es[order], np.searchsorted(el[order], np.arange(nlist + 1))
        foreign_of = [es[bounds[i]:bounds[i + 1]] for i in range(nlist)]
        del el, order
    top = _TopK(len(slot_ids), k, floor)
    target = block_target(int(np.count_nonzero(slot_ids >= 0)), nlist)

    def one_list(lst: int) -> None:
        slots = index.list_slots(lst)
        live = slot_ids[slots] >= 0
        foreign = foreign_of[lst][slot_ids[foreign_of[lst]] >= 0]
        n_own = int(live.sum())
        if n_own == 0 or n_own + foreign.size < 2:
            return
        # the members (candidates and queries), then the foreign queries, decoded into one array
        queries = np.empty((n_own + foreign.size, index.dim), dtype=np.float32)
        if n_own == len(slots):
            index.list_vectors(lst, queries[:n_own])
        else:
            queries[:n_own] = index.list_vectors(lst)[live]
        index.slot_vectors(foreign, queries[n_own:])
        list_block(top, np.concatenate([slots[live], foreign]), queries, n_own, target, split, spill)

    thread_map(one_list, range(nlist), threads, one_blas_thread=True)
    release_free_memory()
    return top.graph(slot_ids, floor, threads=threads)

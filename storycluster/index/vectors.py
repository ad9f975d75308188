"""FAISS index over unit vectors with external int64 ids (the articles' row ids).

Inner product on L2-normalized vectors is cosine similarity. Three kinds:

* ``flat``: exact search (``IndexFlatIP``); removal is native.
* ``hnsw``: approximate, graph-based (``IndexHNSWFlat``, M=32); fast queries at any size.
* ``ivf``: approximate, inverted lists (``IndexIVFFlat``, nlist ≈ 4·√n, nprobe = nlist/8 ≥ 16); trained on
  the vectors it is first given and retrained from all vectors when the archive has grown fourfold.

FAISS's HNSW cannot remove vectors, and removing from an IVF under an id map breaks the map, so the
approximate kinds remove by *tombstone*: the slot's id becomes -1 in the id map (persisted in the FAISS file
itself), searches skip it, and an update adds the new vector and tombstones the old one. When tombstones pass
``COMPACT_FRACTION`` of the slots, :meth:`compacted` rebuilds the index from the live vectors. The index is
saved in FAISS's own file format (``faiss.write_index``), written to a temporary file and renamed into place.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

INDEX_TYPES = ("flat", "hnsw", "ivf")
#: ``auto`` (a store setting): exact search below this many vectors, HNSW from there (bench/ann.py)
ANN_THRESHOLD = 100_000


def choose_index(setting: str, n: int) -> str:
    """The index kind for ``n`` vectors under a store's setting (``auto`` or a kind)."""
    if setting == "auto":
        return "flat" if n < ANN_THRESHOLD else "hnsw"
    if setting not in INDEX_TYPES:
        raise ValueError(f"unknown index type {setting!r}; choose auto or one of {', '.join(INDEX_TYPES)}")
    return setting
COMPACT_FRACTION = 0.2
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def ivf_lists(n: int) -> int:
    return max(1, min(65_536, int(4 * math.sqrt(max(n, 1)))))


class VectorIndex:
    """An ``IndexIDMap2`` over a flat, HNSW or IVF inner-product index (see the module docstring)."""

    def __init__(self, dim: int, index_type: str = "flat") -> None:
        import faiss

        if index_type not in INDEX_TYPES:
            raise ValueError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
        self.dim = dim
        self.index_type = index_type
        if index_type == "flat":
            inner = faiss.IndexFlatIP(dim)
        elif index_type == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            inner = None  # built and trained on the first add
        self._index = faiss.IndexIDMap2(inner) if inner is not None else None
        self._inner = inner
        self._dead = 0

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
        self._index.add_with_ids(vectors, ids)

    def _build_ivf(self, sample: np.ndarray) -> None:
        import faiss

        nlist = max(1, min(ivf_lists(len(sample)), len(sample) // 39))  # FAISS wants 39 points per list
        quantizer = faiss.IndexFlatIP(self.dim)
        inner = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        inner.cp.seed = 1234
        inner.train(sample)
        inner.make_direct_map(True)
        inner.nprobe = max(16, nlist // 8)
        inner.own_fields = True
        quantizer.this.disown()
        self._inner = inner
        self._index = faiss.IndexIDMap2(inner)

    def remove(self, ids: np.ndarray) -> int:
        import faiss

        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0 or len(self) == 0:
            return 0
        if self.index_type == "flat":
            return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        labels = self._labels()
        hit = np.isin(labels, ids)
        n = int(hit.sum())
        if n:
            labels[hit] = -1
            faiss.copy_array_to_vector(labels, self._index.id_map)
            self._index.construct_rev_map()
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

    def vector(self, item_id: int) -> np.ndarray:
        """The stored vector of one id (a RuntimeError from FAISS when absent)."""
        return self._index.reconstruct(int(item_id))

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of several ids, shape (len(ids), dim)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._index.reconstruct_batch(ids)

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every live entry."""
        if self._index is None:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        labels = self._labels()
        ids = labels[labels >= 0]
        return ids, self.vectors_of(ids)

    # -- upkeep --------------------------------------------------------------------------------
    def needs_rebuild(self) -> bool:
        """Tombstones past the limit, or an IVF whose lists were sized for a quarter of today's vectors."""
        if self._index is None:
            return False
        if self._dead > COMPACT_FRACTION * max(1, int(self._index.ntotal)):
            return True
        return self.index_type == "ivf" and min(ivf_lists(len(self)), len(self) // 39) >= 2 * self._inner.nlist

    def compacted(self, index_type: str | None = None) -> VectorIndex:
        """A new index of ``index_type`` (default: the same) holding only the live entries."""
        fresh = VectorIndex(self.dim, index_type or self.index_type)
        ids, vectors = self.live()
        fresh.add(ids, vectors)
        return fresh

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        import faiss

        if self._index is None:  # an IVF never given a vector: nothing to train on, write an empty flat map
            empty = VectorIndex(self.dim, "flat")
            empty.save(path)
            return
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, index_type: str = "flat") -> VectorIndex:
        import faiss

        raw = faiss.read_index(str(path))
        self = cls.__new__(cls)
        self._index = raw if isinstance(raw, faiss.IndexIDMap2) else faiss.IndexIDMap2.cast(raw)
        self._inner = faiss.downcast_index(self._index.index)
        self.dim = int(raw.d)
        if isinstance(self._inner, faiss.IndexHNSW):
            self.index_type = "hnsw"
            self._inner.hnsw.efSearch = HNSW_EF_SEARCH
        elif isinstance(self._inner, faiss.IndexIVF):
            self.index_type = "ivf"
            self._inner.nprobe = max(16, self._inner.nlist // 8)
        else:
            self.index_type = "flat"
        self._dead = 0 if self.index_type == "flat" else int((self._labels() < 0).sum())
        return self

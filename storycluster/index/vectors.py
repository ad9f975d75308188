"""FAISS index over unit vectors with external int64 ids (the articles' row ids).

Inner product on L2-normalized vectors is cosine similarity. The index is saved in FAISS's own file
format (``faiss.write_index``), written to a temporary file and renamed into place."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

INDEX_TYPES = ("flat",)


class VectorIndex:
    """An ``IndexIDMap2`` over an exact inner-product ``IndexFlatIP``."""

    def __init__(self, dim: int, index_type: str = "flat") -> None:
        import faiss

        if index_type not in INDEX_TYPES:
            raise ValueError(f"unknown index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
        self.dim = dim
        self.index_type = index_type
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) vectors under their ids."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            return
        self.remove(ids)
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: np.ndarray) -> int:
        import faiss

        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0 or len(self) == 0:
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query; missing slots have id -1."""
        k = max(1, min(k, len(self)))
        if len(self) == 0:
            n = len(queries)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        return self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def vector(self, item_id: int) -> np.ndarray:
        """The stored vector of one id (KeyError-like RuntimeError from FAISS when absent)."""
        return self._index.reconstruct(int(item_id))

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of several ids, shape (len(ids), dim)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.size == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._index.reconstruct_batch(ids)

    def save(self, path: Path) -> None:
        import faiss

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
        self._index = faiss.IndexIDMap2.cast(raw) if not isinstance(raw, faiss.IndexIDMap2) else raw
        self.dim = int(raw.d)
        self.index_type = index_type
        return self

"""Running top-k per row in FAISS's C++ min-heaps (one heap per row keeps that row's largest values), laid over
numpy arrays the caller owns: block scores are pushed in without a Python loop, and the arrays are the result."""

from __future__ import annotations

import numpy as np


def topk_heaps(val: np.ndarray, ids: np.ndarray):
    """FAISS min-heaps over the (rows, k) arrays ``val`` (float32) and ``ids`` (int64), emptied. The arrays must
    outlive the heaps (FAISS holds raw pointers into them)."""
    import faiss

    heaps = faiss.float_minheap_array_t()
    heaps.nh, heaps.k = val.shape
    heaps.val, heaps.ids = faiss.swig_ptr(val), faiss.swig_ptr(ids)
    val.fill(-np.finfo(np.float32).max)  # an empty heap (what heapify writes, without its thread start-up)
    ids.fill(-1)
    return heaps

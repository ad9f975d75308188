"""Returning freed memory to the system between the stages of a large build."""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_free_memory() -> None:
    """Hand the C allocator's free pages back to the system (glibc's ``malloc_trim``; a no-op where there is
    none). Arrays freed on worker threads otherwise stay in those threads' malloc arenas: after the
    neighbour graph of a million vectors, hundreds of megabytes that the next stage's peak would stand on."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)

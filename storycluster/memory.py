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


#: glibc's mallopt parameter for the number of malloc arenas
_M_ARENA_MAX = -8


def limit_malloc_arenas(n: int = 2) -> bool:
    """At most ``n`` malloc arenas for this process's threads (glibc's ``mallopt(M_ARENA_MAX)``; call it before
    the threads start). A server answering on a pool of threads otherwise gets an arena per thread, each holding
    on to the pages its requests freed: resident memory creeps up with every burst of requests. Returns whether
    the allocator took the setting."""
    libc = _libc()
    return bool(libc is not None and hasattr(libc, "mallopt") and libc.mallopt(_M_ARENA_MAX, n))


def numpy_huge_pages(enabled: bool) -> bool | None:
    """Whether numpy asks the kernel for transparent huge pages for its large arrays (``madvise``), as
    ``NUMPY_MADVISE_HUGEPAGE`` does at import; returns the previous setting (None where this numpy has no
    switch). On a kernel that grants them on request (``defrag`` = ``madvise``), every large array a batch
    allocates first waits for the kernel to assemble and zero 2 MB pages: the million-article regrouping and
    ``recommend`` spent a third of their time in the kernel with them (docs/performance.md)."""
    import numpy as np

    switch = getattr(getattr(np, "_core", np).multiarray, "_set_madvise_hugepage", None)
    return None if switch is None else bool(switch(enabled))

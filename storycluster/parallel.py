"""Work spread over the cores with threads: numpy and FAISS's heaps release the GIL, so the parts between the
matrix products (selections, gathers, heap updates, feature arithmetic) use every core too, not only the
products. Where the work holds matrix products, each thread runs a one-thread BLAS."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_map(fn: Callable[[T], R], items: Iterable[T], threads: int | None = None,
               one_blas_thread: bool = False) -> list[R]:
    """``[fn(x) for x in items]`` on ``threads`` threads (default: :func:`cores`), results in order; in the
    calling thread for one thread or one item. ``one_blas_thread``: BLAS limited to one thread meanwhile
    (each of our threads runs its own products, instead of two BLAS pools competing for the same cores)."""
    items = list(items)
    threads = min(max(1, threads or cores()), len(items))
    if threads <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    limits = threadpool_limits(1, user_api="blas") if one_blas_thread else nullcontext()
    with limits, ThreadPoolExecutor(threads, thread_name_prefix="storycluster") as pool:
        return list(pool.map(fn, items))


@contextmanager
def quick_switches(seconds: float = 1e-4) -> Iterator[None]:
    """The interpreter hands the GIL between threads every ``seconds`` meanwhile (default 5 ms). A thread
    that needs the GIL only briefly between long calls outside it (a FAISS search's Python between its matrix
    products) otherwise waits up to the full interval for each turn while another thread runs Python."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, seconds))
    try:
        yield
    finally:
        sys.setswitchinterval(before)

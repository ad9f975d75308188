"""Work spread over the cores with threads: numpy and FAISS's heaps release the GIL, so the parts between the
matrix products (selections, gathers, heap updates, feature arithmetic) use every core too, not only the
products. Where the work holds matrix products, each thread runs a one-thread BLAS."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


#: a worker process of :func:`process_map` counts one core: its thread pools, BLAS and FAISS run one thread
_ONE_CORE = False


def cores() -> int:
    """The cores this process may run on (one in a worker of :func:`process_map`)."""
    if _ONE_CORE:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def process_map(fn: Callable[[T], R], items: Iterable[T], processes: int) -> Generator[R, None, None]:
    """``fn(x)`` for each of ``items`` in ``processes`` new processes, results in order as they come; each
    process counts one core (its thread pools, BLAS and FAISS run one thread). For Python work that holds the
    GIL, one process per core is the only way to use them all. ``fn`` (a module-level function, or a
    ``functools.partial`` of one) and its arguments and results cross the process boundary: plain data (row
    ids, text); a process opens what it reads on its first call. An error in a process is raised here. When the
    caller stops reading (an error, Ctrl-C), the processes are stopped."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from .memory import numpy_huge_pages

    huge = numpy_huge_pages(False)  # read (and kept): the processes allocate as this one does
    if huge:
        numpy_huge_pages(True)
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(huge,))
    done = False
    try:
        yield from pool.map(fn, items)
        done = True
    finally:
        if not done:  # nothing more is wanted: no further item starts, the running ones are stopped
            # (the executor has no public way to stop its processes before Python 3.14; shutdown forgets them)
            running = list((getattr(pool, "_processes", None) or {}).values())
            queue = getattr(pool, "_call_queue", None)
            if queue is not None:  # items no process will read: not flushed into the pipe at exit (a hang)
                queue.cancel_join_thread()
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in running:
                proc.terminate()
            for proc in running:
                proc.join()
        pool.shutdown(wait=True)


def _start_worker(huge_pages: bool | None) -> None:
    import signal

    import faiss
    from threadpoolctl import threadpool_limits

    from .memory import numpy_huge_pages

    global _ONE_CORE
    _ONE_CORE = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if huge_pages is not None:
        numpy_huge_pages(huge_pages)
    threadpool_limits(1)  # kept for the process's life
    faiss.omp_set_num_threads(1)


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

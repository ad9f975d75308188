"""Work spread over the cores with threads: numpy and FAISS's heaps release the GIL, so the parts between the
matrix products (selections, gathers, heap updates, feature arithmetic) use every core too, not only the
products. Where the work holds matrix products, each thread runs a one-thread BLAS."""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar, cast

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
    process counts one core (its thread pools, BLAS and FAISS run one thread) and holds two items at a time.
    For Python work that holds the GIL, one process per core is the only way to use them all. ``fn`` (a
    module-level function, or a ``functools.partial`` of one) and its arguments and results cross the process
    boundary: plain data (row ids, text); a process opens what it reads on its first call. An error in a
    process is raised here, at its item (the results before it come first); a process that dies (killed, out of
    memory) is a :class:`StoryclusterError` at the first item it held. When
    the caller stops reading (an error, Ctrl-C; close the generator), the processes are stopped at once."""
    import multiprocessing
    from multiprocessing.connection import Connection, wait

    from .errors import StoryclusterError
    from .memory import numpy_huge_pages

    todo = list(items)
    huge = numpy_huge_pages(False)  # read (and kept): the processes allocate as this one does
    if huge:
        numpy_huge_pages(True)
    ctx = multiprocessing.get_context("spawn")
    workers: list[tuple[Any, Connection]] = []  # (process, this end of its pipe)
    busy: dict[Connection, deque[int]] = {}  # the items given to each process, in the order it answers them
    done: dict[int, R] = {}
    failed: dict[int, BaseException] = {}  # raised when the caller reaches the item: the results before it first
    given = 0

    def stopped(conn: Connection) -> StoryclusterError:
        gone = next(proc for proc, c in workers if c is conn)
        gone.join()
        return StoryclusterError(f"a worker process stopped (exit code {gone.exitcode}); if it ran out of "
                                 "memory, run with fewer workers")

    def lost(conn: Connection) -> None:
        """A process is gone: the items it held fail."""
        error = stopped(conn)
        failed.update((item, error) for item in busy[conn])
        busy[conn].clear()

    def give(conn: Connection) -> None:
        nonlocal given
        if given < len(todo):
            busy[conn].append(given)
            given += 1
            try:
                conn.send((given - 1, todo[given - 1]))
            except OSError:  # its end closed: the process is gone
                lost(conn)

    def receive(timeout: float | None) -> None:
        """The answers that are ready (waiting up to ``timeout`` for one), each process given its next item (none
        after an error: the caller stops at that item)."""
        for conn in cast(list[Connection], wait([c for c, q in busy.items() if q], timeout)):
            try:
                reply: tuple[bool, Any] = conn.recv()
            except (EOFError, OSError):  # the process is gone (a reset when items it had not read were left)
                lost(conn)
                continue
            item = busy[conn].popleft()
            if reply[0]:
                done[item] = reply[1]
                give(conn)
            else:
                failed[item] = reply[1]

    finished = False
    try:
        for _ in range(min(processes, len(todo))):
            mine, theirs = ctx.Pipe()
            started = ctx.Process(target=_serve, args=(theirs, fn, huge), daemon=True)
            started.start()
            theirs.close()  # the process's end is its own: its death is an end of file here
            workers.append((started, mine))
            busy[mine] = deque()
        for _ in range(2):  # each its item and the next, so that it starts that one as soon as it answers
            for _, conn in workers:
                give(conn)
        for want in range(len(todo)):
            while want not in done:
                if want in failed:
                    raise failed[want]
                receive(None)
            receive(0)  # the others' answers too: a process waits until its answer is read
            yield done.pop(want)
        finished = True
    finally:
        for proc, conn in workers:
            if finished:
                conn.send(None)  # no more items: the process ends
            else:
                proc.terminate()
        for proc, conn in workers:
            proc.join()
            conn.close()


def _serve(conn, fn: Callable, huge_pages: bool | None) -> None:
    """A worker process: items from ``conn`` until None, each answered with (True, result) or (False, error)."""
    import pickle
    import signal

    import faiss
    from threadpoolctl import threadpool_limits

    from .memory import numpy_huge_pages

    global _ONE_CORE
    _ONE_CORE = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops this process
    if huge_pages is not None:
        numpy_huge_pages(huge_pages)
    threadpool_limits(1)  # kept for the process's life
    faiss.omp_set_num_threads(1)
    try:
        while (msg := conn.recv()) is not None:
            _, x = msg
            try:
                reply = (True, fn(x))
            except Exception as e:  # noqa: BLE001 - raised again in the caller
                reply = (False, e)
            try:
                conn.send(reply)
            except (pickle.PicklingError, TypeError, AttributeError) as e:  # pickled before anything is sent
                conn.send((False, RuntimeError(f"{type(e).__name__}: {e}")))  # an error that cannot go as it is
    except (EOFError, OSError):  # the caller is gone (killed): nothing to answer
        return


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

"""Worker processes (``parallel.process_map``): results in order from other processes, errors raised in the
caller (a process that dies too), and the processes stopped (not waited for) when the caller stops reading."""

from __future__ import annotations

import os
import time

import pytest

from storycluster.errors import StoreError, StoryclusterError
from storycluster.parallel import cores, process_map


def _square(x: int) -> tuple[int, int, int]:
    """x², the worker's pid and its core count; items from 2 on take half a minute."""
    time.sleep(0.1 if x < 2 else 30)
    return x * x, os.getpid(), cores()


def _fail(x: int) -> int:
    if x == 1:
        raise StoreError(f"part {x}: the store was written meanwhile")
    return x


def _die(x: int) -> int:
    if x == 2:
        os._exit(3)  # as a process killed for memory would end: no answer
    return x


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_results_in_order_from_worker_processes_which_stop_with_the_caller():
    got = process_map(_square, range(6), 2)
    first, second = next(got), next(got)
    assert (first[0], second[0]) == (0, 1)
    pids = {first[1], second[1]}
    assert os.getpid() not in pids and first[2] == second[2] == 1  # each worker counts one core
    started = time.perf_counter()
    got.close()  # items 2 and 3 are running (30 s each): stopped, not waited for
    assert time.perf_counter() - started < 10
    assert not any(_alive(p) for p in pids)


def test_an_error_in_a_worker_is_raised_in_the_caller():
    got = process_map(_fail, range(4), 2)
    assert next(got) == 0  # the results before the failed item come first
    with pytest.raises(StoreError, match="part 1: the store was written meanwhile"):
        next(got)


def test_a_worker_that_dies_is_an_error_not_a_wait():
    got = process_map(_die, range(5), 2)
    assert [next(got), next(got)] == [0, 1]
    with pytest.raises(StoryclusterError, match=r"a worker process stopped \(exit code 3\)"):
        next(got)

"""A process forked after the CPU thread pool was used gets a working pool of its own
(the parent's worker threads do not exist in the child: without a fresh pool its first
large op would wait forever)."""

import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.backend import cpu_parallel

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _use_pool() -> float:
    """Work that always goes through the pool (two shares: one here, one on a worker),
    plus a large op through the ordinary path."""
    out = np.zeros(8)

    def run(lo, hi):
        out[lo:hi] = 1.0

    cpu_parallel.run_shares(run, 8, 2)
    return float(out.sum()) + float((gg.ones(2_000_000) * 3).sum())


def _child_work(queue) -> None:
    queue.put(_use_pool())


def test_multiprocessing_fork_child_after_the_pool_was_used():
    _use_pool()
    assert cpu_parallel._POOL is not None
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child_work, args=(queue,))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail("the forked child hung on its first pooled op")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 8.0 + 6_000_000.0


def test_os_fork_child_after_the_pool_was_used():
    _use_pool()
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only when the pooled work finishes and is right
        try:
            os._exit(0 if _use_pool() == 8.0 + 6_000_000.0 else 3)
        finally:
            os._exit(4)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on its first pooled op")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_parent_keeps_its_pool_after_a_fork():
    _use_pool()
    before = cpu_parallel._POOL
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert cpu_parallel._POOL is before
    assert _use_pool() == 8.0 + 6_000_000.0

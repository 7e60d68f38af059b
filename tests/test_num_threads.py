"""gg.set_num_threads / get_num_threads (and the inter-op pair), as in PyTorch."""

import os
import subprocess
import sys

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.backend import cpu_parallel


@pytest.fixture(autouse=True)
def _restore_threads():
    before, interop = gg.get_num_threads(), gg.get_num_interop_threads()
    yield
    gg.set_num_threads(before)
    gg.set_num_interop_threads(interop)


def _big():
    n = 2 * cpu_parallel.PARALLEL_MIN
    return gg.tensor(np.linspace(-3, 3, n, dtype=np.float32).reshape(1024, -1))


def test_one_thread_runs_large_ops_without_the_pool_and_blas_follows():
    x = _big()
    expected = np.tanh(x.numpy()) * 2 + 1
    gg.set_num_threads(1)
    assert gg.get_num_threads() == 1
    np.testing.assert_array_equal((gg.tanh(x) * 2 + 1).numpy(), expected)
    assert cpu_parallel._POOL is None  # nothing was handed to another thread
    if cpu_parallel._BLAS.getter is not None:
        assert cpu_parallel._BLAS.getter() == 1
    gg.set_num_threads(2)
    assert gg.get_num_threads() == 2
    np.testing.assert_array_equal((gg.tanh(x) * 2 + 1).numpy(), expected)
    assert cpu_parallel._POOL is not None and cpu_parallel._POOL._max_workers == 2
    if cpu_parallel._BLAS.getter is not None:
        assert cpu_parallel._BLAS.getter() == 2


def test_a_count_set_inside_a_single_threaded_blas_region_applies_at_its_end():
    if cpu_parallel._BLAS.getter is None:
        pytest.skip("NumPy's BLAS is not the bundled OpenBLAS")
    gg.set_num_threads(2)
    with cpu_parallel._BLAS.single_threaded():
        gg.set_num_threads(3)
        assert cpu_parallel._BLAS.getter() == 1
    assert cpu_parallel._BLAS.getter() == 3


@pytest.mark.parametrize("fn", [gg.set_num_threads, gg.set_num_interop_threads])
@pytest.mark.parametrize("value, message", [(0, "a positive integer, got 0"),
                                            (-2, "a positive integer, got -2"),
                                            (2.5, "an int, but got float"),
                                            (True, "an int, but got bool"),
                                            ("2", "an int, but got str")])
def test_bad_counts_raise_and_change_nothing(fn, value, message):
    threads, interop = gg.get_num_threads(), gg.get_num_interop_threads()
    with pytest.raises(RuntimeError, match=f"{fn.__name__} expects {message}"):
        fn(value)
    assert (gg.get_num_threads(), gg.get_num_interop_threads()) == (threads, interop)


def test_interop_count_is_recorded():
    gg.set_num_interop_threads(np.int64(3))
    assert gg.get_num_interop_threads() == 3 and type(gg.get_num_interop_threads()) is int


def _threads_in_fresh_process(env: dict, prelude: str = "") -> subprocess.CompletedProcess:
    code = f"{prelude}import gpugrad; print(gpugrad.get_num_threads())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, check=True)


def test_default_follows_the_environment_variable_and_warns_on_a_bad_one():
    assert _threads_in_fresh_process({"GPUGRAD_CPU_THREADS": "3"}).stdout.strip() == "3"
    bad = _threads_in_fresh_process({"GPUGRAD_CPU_THREADS": "many"})
    assert "GPUGRAD_CPU_THREADS='many' is not an integer" in bad.stderr
    assert int(bad.stdout) >= 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity masks")
def test_default_counts_the_cpus_this_process_may_run_on():
    env = {"GPUGRAD_CPU_THREADS": ""}
    one = _threads_in_fresh_process(env, "import os; os.sched_setaffinity(0, {min("
                                         "os.sched_getaffinity(0))}); ")
    assert one.stdout.strip() == "1"

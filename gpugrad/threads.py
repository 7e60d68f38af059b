"""CPU thread counts, as `torch.set_num_threads` and friends.

gpugrad's CPU work runs on one pool of threads (large elementwise ops, blocked programs,
reductions, row-wise kernels) plus BLAS's own threads for matrix products; one count sets
both. There is no inter-op pool (ops run one after another on the calling thread), so the
inter-op count is recorded for `get_num_interop_threads` and changes nothing.
"""

from __future__ import annotations

import numbers

from .backend import cpu_parallel

_interop_threads = 1


def _positive_int(fn: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise RuntimeError(f"{fn} expects an int, but got {type(n).__name__}")
    if n <= 0:
        raise RuntimeError(f"{fn} expects a positive integer, got {n}")
    return int(n)


def get_num_threads() -> int:
    """The number of threads gpugrad's CPU ops use (default: the CPUs this process may
    run on, at most 8, or `GPUGRAD_CPU_THREADS`)."""
    return cpu_parallel.THREADS


def set_num_threads(n: int) -> None:
    """Use `n` threads for CPU ops from now on: gpugrad's pool and BLAS's threads (as
    PyTorch's intra-op count sets its OpenMP and BLAS threads). Raises RuntimeError unless
    `n` is a positive integer."""
    cpu_parallel.set_threads(_positive_int("set_num_threads", n))


def get_num_interop_threads() -> int:
    """The inter-op thread count last set (1 by default: gpugrad runs ops one after another
    on the calling thread)."""
    return _interop_threads


def set_num_interop_threads(n: int) -> None:
    """Record the inter-op thread count (PyTorch's pool for running independent ops at
    once; gpugrad has none, so this changes nothing else). Raises RuntimeError unless `n`
    is a positive integer."""
    global _interop_threads
    _interop_threads = _positive_int("set_num_interop_threads", n)

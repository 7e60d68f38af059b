"""Spreading large NumPy work over a small thread pool (NumPy releases the GIL inside its
array loops, so shares of one array run on several cores, as PyTorch's CPU kernels do).

`GPUGRAD_CPU_THREADS` sets the pool size (default: the CPUs this process may run on, at
most 8); `set_threads` changes it (`gpugrad.set_num_threads`).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading
import warnings

import numpy as np


def _default_threads() -> int:
    """GPUGRAD_CPU_THREADS, else the CPUs this process may run on (its affinity mask, as
    OpenMP counts them: a container or `taskset` may allow fewer than the machine has), at
    most 8."""
    value = os.environ.get("GPUGRAD_CPU_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            warnings.warn(f"GPUGRAD_CPU_THREADS={value!r} is not an integer; using the "
                          "CPU count", RuntimeWarning, stacklevel=2)
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity masks on this platform
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


THREADS = _default_threads()
PARALLEL_MIN = 1 << 20  # elements: below this a thread handoff costs more than it saves
BLOCK = 1 << 17  # elements per cache block of a multi-pass elementwise kernel (512 KiB f32)
CHUNK_BYTES = 1 << 20  # working set of one cache-blocked row range (about an L2 cache)

_POOL = None


def pool():
    """The shared worker pool (created on first use)."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="gpugrad-cpu")
    return _POOL


def set_threads(n: int) -> None:
    """Use `n` threads for CPU work from now on: the pool's size and BLAS's thread count
    (a pool of the old size finishes what it was given and goes)."""
    global THREADS, _POOL
    old = _POOL
    THREADS, _POOL = n, None
    if old is not None:
        old.shutdown(wait=False)
    if _BLAS.setter is not None:
        with _BLAS._lock:
            if _BLAS._depth:  # inside a single-threaded BLAS region: applied at its end
                _BLAS._saved = n
            else:
                _BLAS.setter(n)


def has_rows(a, ref) -> bool:
    """Whether `a` runs along ref's first axis (else it broadcasts whole into each block)."""
    return isinstance(a, np.ndarray) and a.ndim == ref.ndim and a.shape[0] == ref.shape[0]


def run_shares(run, n: int, parts: int) -> None:
    """run(lo, hi) on `parts` contiguous shares of range(n): one share here, the rest on
    the pool; returns when all are done (re-raising the first error)."""
    cuts = [n * k // parts for k in range(parts + 1)]
    futures = [pool().submit(run, cuts[k], cuts[k + 1]) for k in range(1, parts)]
    try:
        run(cuts[0], cuts[1])
    finally:
        for f in futures:
            f.result()


def split_rows(kernel, out, ins: tuple) -> None:
    """kernel(np, out_rows, *in_rows) on one contiguous share of rows per thread."""

    def run(lo: int, hi: int) -> None:
        rs = slice(lo, hi)
        kernel(np, out[rs], *[a[rs] if has_rows(a, out) else a for a in ins])

    run_shares(run, out.shape[0], THREADS)


def blocked(kernel, outs: tuple, ins: tuple, parallel: bool = True) -> None:
    """kernel(np, *outs, *ins) in row blocks of about BLOCK elements, so that its several
    NumPy passes over a block stay in cache; the blocks are shared among the threads
    (with `parallel`)."""
    ref = outs[0]
    if ref.ndim == 0 or ref.size < 2 * BLOCK:
        kernel(np, *outs, *ins)
        return
    n = ref.shape[0]
    rows = max(1, BLOCK * n // ref.size)

    def run(lo: int, hi: int) -> None:
        for i in range(lo, hi, rows):
            rs = slice(i, min(i + rows, hi))
            kernel(np, *[o if o is None else o[rs] for o in outs],
                   *[a[rs] if has_rows(a, ref) else a for a in ins])

    workers = THREADS if parallel and n >= 2 * THREADS * rows else 1
    if workers == 1:
        run(0, n)
    else:
        run_shares(run, n, workers)


def over_rows(fn, n: int, work: int, *, row_bytes: int = 0, blas: bool = False) -> None:
    """fn(lo, hi) on row ranges covering range(n): shares of the rows run on the threads
    when `work` (elements touched) is large; with `row_bytes`, each call's range is cut to
    about CHUNK_BYTES of working set so that what fn writes is still in cache when it reads
    it back. `blas=True` says fn calls BLAS: BLAS then runs single-threaded meanwhile (each
    of our threads is one core), or, where its thread count cannot be set, the rows run
    on this thread alone with BLAS's own threads."""
    chunk = max(1, CHUNK_BYTES // row_bytes if row_bytes else n)

    def run(lo: int, hi: int) -> None:
        for i in range(lo, hi, chunk):
            fn(i, min(i + chunk, hi))

    parts = min(THREADS, n)
    if work < PARALLEL_MIN or parts < 2 or (blas and _BLAS.setter is None):
        run(0, n)
        return
    with _BLAS.single_threaded() if blas else contextlib.nullcontext():
        run_shares(run, n, parts)


class _BlasThreads:
    """NumPy's bundled OpenBLAS thread count, lowered to one while our threads call BLAS.

    OpenBLAS's count is process-wide, so overlapping regions (ops run from several user
    threads) share one lowering: the first to enter saves and lowers it, the last to
    leave restores it.
    """

    def __init__(self) -> None:
        self.setter, self.getter = _find_openblas_thread_control()
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = 0

    @contextlib.contextmanager
    def single_threaded(self):
        with self._lock:
            if self._depth == 0:
                self._saved = self.getter()
                self.setter(1)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    self.setter(self._saved)


def _find_openblas_thread_control():
    """(set_num_threads, get_num_threads) of the OpenBLAS that NumPy's wheel bundles, or
    (None, None) for another BLAS (where BLAS keeps its own threads)."""
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""),
                               ("openblas", "64_"), ("openblas", "")):
            try:
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}")
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}")
            except AttributeError:
                continue
            setter.argtypes, setter.restype = [ctypes.c_int], None
            getter.argtypes, getter.restype = [], ctypes.c_int
            return setter, getter
    return None, None


_BLAS = _BlasThreads()


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's threads: the pool's workers and any thread
    that held the BLAS lock are gone, so work sent to the inherited pool would wait
    forever (multiprocessing's fork start method, DataLoader workers, os.fork). The child
    starts a fresh pool on first use and a fresh, unheld lock."""
    global _POOL
    _POOL = None
    if _BLAS._depth and _BLAS.setter is not None:  # forked inside a single-threaded region
        _BLAS.setter(_BLAS._saved)
    _BLAS._lock = threading.Lock()
    _BLAS._depth = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

"""The NumPy (CPU) backend: the kernel families' NumPy references, with large elementwise
passes and reductions shared among threads."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

import numpy as np

from ..device import device as Device
from . import cpu_parallel
from . import trace as _trace
from .base import Backend
from .pointwise_reduce import cpu_pointwise_reduce
from .row_epilogue import cpu_rows
from .ufuncs import mul_pair_into


def _cache_large_allocations() -> bool:
    """Keep freed large arrays in the C heap for reuse (glibc only; opt out with
    GPUGRAD_CPU_ALLOCATOR=system).

    By default glibc serves every allocation above a few hundred KiB with a fresh mmap and
    returns it on free, so each temporary of a large elementwise op page-faults its memory
    in again: a third of the time of a memory-bound training step on a CPU. Raising the
    mmap and trim thresholds makes freed blocks reusable, as a caching allocator does; the
    cost is that the process keeps its peak heap instead of shrinking.
    """
    if os.environ.get("GPUGRAD_CPU_ALLOCATOR", "caching") == "system":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, 256 << 20)
                    and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


ALLOCATOR_CACHING = _cache_large_allocations()


# Python floats met as operands, as read-only 0-d arrays: (value, dtype) -> array
_SCALARS: dict = {}
_FLOAT_MAX = {"f": float(np.finfo(np.float32).max), "d": float(np.finfo(np.float64).max)}


def _scalar_operand(s: float, array):
    """A Python float operand of an elementwise op on `array`, as a 0-d array of its dtype
    where that computes the same (a float32 or float64 array, a finite nonzero value in
    the dtype's range; NumPy casts the float to the array's dtype either way): NumPy
    converts a Python scalar again on every call, ~0.3 µs, a third of a small op's time."""
    if type(array) is not _ndarray:
        return s
    dt = array.dtype
    z = _SCALARS.get((s, dt))
    if z is not None:
        return z
    limit = _FLOAT_MAX.get(dt.char)
    if limit is None or not (s != 0.0 and -limit <= s <= limit):  # -0.0 == 0.0: no key
        return s
    if len(_SCALARS) >= 1024:
        _SCALARS.clear()
    z = np.array(s, dtype=dt)
    z.flags.writeable = False
    _SCALARS[(s, dt)] = z
    return z


class NumpyBackend(Backend):
    """CPU arrays through NumPy."""

    name = "cpu"
    xp = np
    keeps_intermediates = True
    array_type = np.ndarray

    def __init__(self, dev: Device | None = None) -> None:
        super().__init__(dev or Device("cpu"))
        self.rng = np.random.default_rng()

    def asarray(self, data, dtype=None):
        return np.array(data, dtype=dtype, copy=True) if dtype is not None else np.array(data)

    def to_host(self, array):
        # Counted like a device-to-host copy, so "no host reads in a training step" is
        # testable on the CPU with the same counter as on the GPU.
        self.counter.device_to_host += 1
        return np.asarray(array)

    def manual_seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.seed_philox(seed)

    def uniform(self, shape, dtype):
        if dtype in (np.float32, np.float64):
            return self.rng.random(shape, dtype=dtype)
        return self.rng.random(shape).astype(dtype)

    def normal(self, shape, dtype):
        if dtype in (np.float32, np.float64):
            return self.rng.standard_normal(shape, dtype=dtype)
        return self.rng.standard_normal(shape).astype(dtype)

    def randint(self, low, high, shape, dtype):
        return self.rng.integers(low, high, size=shape, dtype=dtype)

    def index_add_(self, out, index, values) -> None:
        np.add.at(out, index, values)

    def index_reduce_(self, out, index, values, op: str) -> None:
        """out[index] = op(out[index], values) with repeats combined: op is "max", "min" or
        "mul" (the unbuffered ufunc.at of maximum, minimum, multiply)."""
        {"max": np.maximum, "min": np.minimum, "mul": np.multiply}[op].at(out, index, values)

    def reshape_view(self, array, shape):
        return np.reshape(array, shape, copy=False)

    def value_range(self, array) -> tuple:
        """(min, max) as NumPy scalars: free to read on the host."""
        return array.min(), array.max()

    def _run_elementwise(self, kernel, outs: tuple, ins: tuple) -> None:
        """Apply an elementwise kernel in cache-sized row blocks shared among the threads,
        so that its several NumPy passes over a block stay in cache (NumPy's stand-in for
        a fused kernel)."""
        cpu_parallel.blocked(kernel, outs, ins)

    def binary(self, ufunc, a, b):
        """Large elementwise ops run as one contiguous share of rows per thread (a single
        pass gains nothing from blocking, but memory bandwidth scales with cores)."""
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel(ufunc.__name__, self, (a, b), self.binary, ufunc, a, b)
        if ((a.size if type(a) is _ndarray else 1) < _PARALLEL_MIN
                and (b.size if type(b) is _ndarray else 1) < _PARALLEL_MIN) \
                or cpu_parallel.THREADS == 1:
            if type(b) is float:
                b = _scalar_operand(b, a)
            elif type(a) is float:
                a = _scalar_operand(a, b)
            return ufunc(a, b)
        shape = np.broadcast_shapes(np.shape(a), np.shape(b))
        if len(shape) == 0 or shape[0] < 2 * cpu_parallel.THREADS:
            return ufunc(a, b)
        out = np.empty(shape, dtype=np.result_type(a, b))
        cpu_parallel.split_rows(_ufunc_kernel(ufunc), out, (a, b))
        return out

    def unary(self, ufunc, a):
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel(ufunc.__name__, self, (a,), self.unary, ufunc, a)
        if a.size < _PARALLEL_MIN or a.ndim == 0 or a.shape[0] < 2:
            return ufunc(a)
        out = np.empty(a.shape, dtype=a.dtype)
        cpu_parallel.split_rows(_ufunc_kernel(ufunc), out, (a,))
        return out

    def pointwise(self, prog, ins, params=()):
        """Small programs run directly; a program of three passes or more over more than two
        cache blocks runs block by block (each block runs the whole rendered expression while it
        is in cache, instead of every pass streaming a fresh temporary through memory), and
        very large ones share the blocks among the threads."""
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel(f"gg_pw_{prog.key}", self, ins, self.pointwise, prog, ins, params)
        big = 0
        half = None
        for a in ins:
            if type(a) is _ndarray:
                if a.size > big:
                    big = a.size
                if a.dtype.itemsize == 2 and a.dtype.kind in "fV":  # float16, bfloat16
                    half = a.dtype
        fn = prog._fn or prog.numpy_fn()
        parallel = big >= _PARALLEL_MIN and cpu_parallel.THREADS > 1
        if not parallel and (big < _BLOCKED_MIN or prog.passes < 3):
            if half is not None:
                return super().pointwise(prog, ins, params)
            return fn(np, *ins, *params)
        shape = np.broadcast_shapes(*[np.shape(a) for a in ins])
        if len(shape) == 0 or shape[0] < 2:
            return super().pointwise(prog, ins, params)
        dtypes = _result_dtypes(prog, fn, ins, params)
        multi = type(dtypes) is list
        outs = tuple(np.empty(shape, dtype=half if half is not None else d) for d in dtypes)

        fn_out = prog.numpy_out_fn()

        def kernel(xp, *blk):
            if half is not None:
                blk = [*blk[:len(outs)], *[b.astype(np.float32) if type(b) is _ndarray and
                                           b.dtype == half else b for b in blk[len(outs):]]]
            fn_out(xp, *blk, *params)

        cpu_parallel.blocked(kernel, outs, tuple(ins), parallel)
        return outs if multi else outs[0]

    def rows_epilogue(self, rows_fn, x, blockable: bool, epilogue) -> tuple:
        """One blocked pass: each cache block of rows runs rows_fn, then the epilogue's
        program on its y while it is in cache (see row_epilogue.cpu_rows)."""
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel(f"gg_rows_epi_{epilogue.prog.key}", self, (x,),
                              self.rows_epilogue, rows_fn, x, blockable, epilogue)
        return cpu_rows(epilogue, rows_fn, x, blockable)

    def pointwise_reduce(self, prog, ins, params, kind: str, dims: tuple, keepdim: bool):
        """One blocked pass: each cache block of the program's result is reduced while it is
        in cache (see pointwise_reduce.cpu_pointwise_reduce)."""
        out = cpu_pointwise_reduce(prog, ins, params, kind, dims, keepdim)
        if out is None:
            return super().pointwise_reduce(prog, ins, params, kind, dims, keepdim)
        return out

    def sum(self, x, axis, keepdims: bool):
        """A sum over the last axis of short rows is one BLAS matrix-vector product with a
        vector of ones (NumPy's reduction loop is about 5x slower over rows of 64); a
        large full sum is split across the threads."""
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel("sum", self, (x,), self.sum, x, axis, keepdims)
        if axis is not None and len(axis) == 1 and axis[0] % max(x.ndim, 1) == x.ndim - 1:
            rows = _row_sums(x)
            if rows is not None:
                return rows.reshape(x.shape[:-1] + (1,) if keepdims else x.shape[:-1])
        if ((axis is not None and len(axis) < x.ndim) or x.size < _PARALLEL_MIN
                or x.dtype.kind != "f" or x.shape[0] < 2 or cpu_parallel.THREADS == 1):
            return x.sum(axis=axis, keepdims=keepdims)
        parts: dict = {}

        def run(lo: int, hi: int) -> None:
            parts[lo] = x[lo:hi].sum()

        cpu_parallel.run_shares(run, x.shape[0], cpu_parallel.THREADS)
        total = x.dtype.type(0)
        for lo in sorted(parts):  # a fixed order: the same result every time
            total = total + parts[lo]
        total = np.asarray(total, dtype=x.dtype)
        return total.reshape((1,) * x.ndim) if keepdims else total

    @_trace.traced
    def mul_pair(self, g, a, b) -> tuple:
        ga, gb = np.empty(g.shape, g.dtype), np.empty(g.shape, g.dtype)
        cpu_parallel.blocked(mul_pair_into, (ga, gb), (g, a, b))
        return ga, gb

    def add_(self, a, b) -> None:
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel("add_", self, (a, b), self.add_, a, b)
        if a.size < _PARALLEL_MIN or a.ndim == 0 or a.shape[0] < 2:
            np.add(a, b, out=a)
        else:
            cpu_parallel.split_rows(_ufunc_kernel(np.add), a, (a, b))

    @_trace.traced
    def over_rows(self, fn, n: int, work: int, *, row_bytes: int = 0,
                  blas: bool = False) -> None:
        cpu_parallel.over_rows(fn, n, work, row_bytes=row_bytes, blas=blas)


_ndarray = np.ndarray


def _row_sums(x):
    """Σ over the last axis of a C-contiguous float32/float64 x with many short rows, as
    x @ 1 (BLAS), or None where NumPy's own reduction is as good."""
    if x.ndim == 0 or x.dtype.char not in "fd" or not x.flags.c_contiguous:
        return None
    n = x.shape[-1]
    if not 2 <= n <= _SHORT_ROW or x.size < 64 * n:
        return None
    return np.dot(x.reshape(-1, n), _ones(n, x.dtype))


_SHORT_ROW = 1024  # elements: rows up to this long are summed by BLAS
_ONES: dict = {}


def _ones(n: int, dtype):
    v = _ONES.get((n, dtype))
    if v is None:
        v = _ONES[(n, dtype)] = np.ones(n, dtype)
        v.flags.writeable = False
    return v


def _result_dtypes(prog, fn, ins, params):
    """The dtypes of a program's results for these operands, from running it on one
    element (cached by the operands' dtypes and number types): a tuple for one result, a
    list for several."""
    key = (prog.key, *[a.dtype if type(a) is _ndarray else type(a) for a in ins],
           *[type(p) for p in params])
    dtypes = _DTYPES.get(key)
    if dtypes is None:
        probe = fn(np, *[a.reshape(-1)[:1] if type(a) is _ndarray else a for a in ins],
                   *params)
        if type(probe) is tuple:
            dtypes = [np.asarray(p).dtype for p in probe]
        else:
            dtypes = (np.asarray(probe).dtype,)
        if len(_DTYPES) > 4096:
            _DTYPES.clear()
        _DTYPES[key] = dtypes
    return dtypes


_DTYPES: dict = {}
_PARALLEL_MIN = cpu_parallel.PARALLEL_MIN
_BLOCKED_MIN = 2 * cpu_parallel.BLOCK  # elements: a smaller program runs in one go
_UFUNC_KERNELS: dict = {}


def _ufunc_kernel(ufunc):
    """kernel(xp, out, *ins) = ufunc(*ins, out=out), made once per ufunc."""
    kernel = _UFUNC_KERNELS.get(ufunc)
    if kernel is None:
        def kernel(xp, out, *ins):
            ufunc(*ins, out=out)

        _UFUNC_KERNELS[ufunc] = kernel
    return kernel

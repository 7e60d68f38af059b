"""The CuPy (CUDA) backend. CuPy is imported only when this backend is created."""

from __future__ import annotations

import math

import numpy as np

from ..device import device as Device
from . import trace as _trace
from .base import Backend
from .cuda_launch import MAX_BLOCKS, THREADS
from .cupy_optim import CupyOptim
from .cupy_random import CupyRandom
from .cupy_rows import CupyRows
from .kernels import dtype_suffix, kernel, pointwise_kernel, pointwise_reduce_kernel
from .pointwise import launch_plan
from .pointwise_reduce import reduce_reference

# CuPy's cuBLAS compute types (the cpdef enum in cupy/_core/_routines_linalg.pxd)
_COMPUTE_TYPE_DEFAULT, _COMPUTE_TYPE_TF32 = 1, 7


class CupyBackend(CupyRows, CupyRandom, CupyOptim, Backend):
    """GPU arrays through CuPy, on one CUDA device: the array basics and pointwise
    kernels here, the other families' kernels in cupy_rows.py, cupy_random.py and
    cupy_optim.py."""

    name = "cuda"
    # While gpugrad.cuda.CUDAGraph captures: the graph's list of objects to keep alive.
    _capture_keep: list | None = None

    def __init__(self, dev: Device) -> None:
        import cupy
        import cupyx

        super().__init__(dev)
        self.xp = cupy
        self._cupy = cupy  # CuPy itself (xp is swapped for a wrapper during graph capture)
        self._cupyx = cupyx
        self.array_type = cupy.ndarray
        self.cuda_device = cupy.cuda.Device(dev.index)
        with self.cuda_device:
            self.rng = cupy.random.default_rng()
        self._meta_cache: dict = {}  # multi-tensor launch metadata, by content

    def set_matmul_tf32(self, flag: bool) -> None:
        """cuBLAS compute type of CuPy's float32/complex64 products: TF32 tensor cores when
        `flag` (CuPy falls back to full float32, with a warning, below compute
        capability 8.0), else full float32. The setting is CuPy's, process-wide."""
        from cupy._core import _routines_linalg as linalg

        kind = _COMPUTE_TYPE_TF32 if flag else _COMPUTE_TYPE_DEFAULT
        for dt in (np.float32, np.complex64):
            linalg.set_compute_type(dt, kind)

    def asarray(self, data, dtype=None):
        with self.cuda_device:
            return self.xp.array(data, dtype=dtype)

    def to_host(self, array):
        self.counter.device_to_host += 1
        return self.xp.asnumpy(array)

    def synchronize(self) -> None:
        self.counter.synchronizations += 1
        self.cuda_device.synchronize()

    def is_capturing(self) -> bool:
        return bool(self._cupy.cuda.get_current_stream().is_capturing())

    def timing_event(self):
        """A CUDA event recorded now on the current stream: the profiler's device clock
        (read after its region by `elapsed_ms`, so recording one never waits)."""
        with self.cuda_device:
            event = self._cupy.cuda.Event()
            event.record()
        return event

    def elapsed_ms(self, start, end) -> float:
        """Device milliseconds between two recorded (and completed) timing events."""
        return float(self._cupy.cuda.get_elapsed_time(start, end))

    def index_add_(self, out, index, values) -> None:
        self._cupyx.scatter_add(out, index, values)

    def accumulate(self, op: str, x, axis: int):
        """Inclusive scan by doubling (Hillis–Steele): log2(n) elementwise passes, for the
        ufuncs whose accumulate CuPy lacks."""
        fn = getattr(self.xp, op)
        out = self.xp.moveaxis(x, axis, 0).copy()
        shift = 1
        while shift < out.shape[0]:
            out[shift:] = fn(out[shift:], out[:-shift].copy())
            shift *= 2
        return self.xp.moveaxis(out, 0, axis)

    def index_reduce_(self, out, index, values, op: str) -> None:
        """out[index] = op(out[index], values) with repeats combined ("max", "min", "mul").
        CuPy has atomic scatter max/min; a product has none, so it is combined on the
        host (a slow path, as a scatter_reduce "prod" is rare in training)."""
        if op == "max":
            self._cupyx.scatter_max(out, index, values)
        elif op == "min":
            self._cupyx.scatter_min(out, index, values)
        else:
            host = out.get()
            np.multiply.at(host, tuple(i.get() if hasattr(i, "get") else i for i in index),
                           values.get() if hasattr(values, "get") else values)
            out[...] = self.xp.asarray(host)

    def reshape_view(self, array, shape):
        out = array.reshape(shape)
        # A copy lives in a fresh allocation, so an unchanged pointer means a view.
        if out.size and out.data.ptr != array.data.ptr:
            raise ValueError("reshape needs a copy")
        return out

    def np_dtype(self, dtype):
        if dtype.name == "bfloat16":
            try:
                import ml_dtypes  # CuPy's bfloat16 support goes through ml_dtypes

                return np.dtype(ml_dtypes.bfloat16)
            except ImportError:
                return None
        return dtype.np

    # -- launching the kernels of kernels/*.cu -------------------------------------------------
    # Each kernel override (here and in cupy_rows/random/optim.py) launches one kernel (the
    # NumPy reference is the method of the same name in the family's module) and falls
    # back to that reference for dtypes without a kernel, mixed dtypes or layouts the
    # kernel does not take.
    def _launch(self, module: str, entry: str, dtype, grid, block, args) -> None:
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            arrays = [a for a in args if isinstance(a, self.array_type)]
            return rec.kernel(entry, self, arrays, self._launch, module, entry, dtype, grid,
                              block, args)
        with self.cuda_device:
            kernel(module, entry, dtype)(grid, block, args)

    def _elementwise(self, module: str, entry: str, dtype, n: int, args, per_thread: int = 1):
        blocks = max(1, min(-(-n // (THREADS * per_thread)), MAX_BLOCKS))
        self._launch(module, entry, dtype, (blocks,), (THREADS,), args)

    @staticmethod
    def _has_kernel(*arrays) -> bool:
        """All arrays share one float dtype that the kernels cover."""
        dt = arrays[0].dtype
        return dtype_suffix(dt) is not None and all(a.dtype == dt for a in arrays)

    def _acc(self, dtype):
        """The kernels' accumulation dtype for `dtype`."""
        return self.xp.float64 if dtype == self.xp.float64 else self.xp.float32

    def _c(self, a):
        return self.xp.ascontiguousarray(a)

    @staticmethod
    def _row_threads(cols: int) -> int:
        """Threads of a one-block-per-row kernel: a multiple of 32, at most 1024."""
        return 32 * max(1, min(-(-cols // 32), 32))

    def _rows_grid(self, rows: int) -> tuple:
        return (max(1, min(rows, 1 << 16)),)

    def _tile_grid(self, rows: int, cols: int) -> tuple:
        """Grid of a (32, 8)-block column-sum kernel: each thread walks ~8 rows or more."""
        return (-(-cols // 32), max(1, min(-(-rows // 64), 256)))

    # -- generated pointwise kernels -------------------------------------------------------
    def pointwise_reduce(self, prog, ins, params, kind: str, dims: tuple, keepdim: bool):
        """One generated reduction kernel (pointwise_reduce.cuda_reduce_source) when every
        array operand has one float dtype: the operands are laid out with the reduced axes
        last, each (row, lane) pair folds a strided share of its row into a partial in the
        accumulation type, and the partials are reduced by CuPy; otherwise the reference."""
        xp = self.xp
        dtype = None
        for a in ins:
            if isinstance(a, xp.ndarray):
                if dtype is None:
                    dtype = a.dtype
                elif a.dtype != dtype:
                    dtype = None
                    break
        shape = np.broadcast_shapes(*[np.shape(a) for a in ins])
        if (dtype is None or dtype_suffix(dtype) is None or not dims or not all(shape)
                or any(type(a) is complex for a in ins)):
            return super().pointwise_reduce(prog, ins, params, kind, dims, keepdim)
        kept = [d for d in range(len(shape)) if d not in dims]
        perm = kept + list(dims)
        rows = int(np.prod([shape[d] for d in kept]))
        cols = int(np.prod([shape[d] for d in dims]))
        sig, args = [], []
        for a in ins:
            if not isinstance(a, xp.ndarray):
                sig.append("p")
                args.append(np.float64(a))
            elif a.size == 1:
                sig.append("s")
                args.append(self._c(a.reshape(())))
            else:
                sig.append("a")
                args.append(self._c(xp.transpose(xp.broadcast_to(a, shape), perm)))
        fn = pointwise_reduce_kernel(prog, dtype, "".join(sig), kind)
        if fn is None:
            return super().pointwise_reduce(prog, ins, params, kind, dims, keepdim)
        nt = max(1, min(cols, 1024, -(-(1 << 16) // rows)))
        acc = self._acc(dtype)
        part = xp.empty((rows, nt), dtype=acc)
        blocks = max(1, min(-(-(rows * nt) // THREADS), MAX_BLOCKS))
        with self.cuda_device:
            fn((blocks,), (THREADS,), (*args, part, *[np.float64(p) for p in params],
                                       np.int64(rows), np.int64(cols), np.int64(nt)))
        out = reduce_reference(xp, part, "sum" if kind == "mean" else kind, (1,), False)
        if kind == "mean":
            out = out / cols
        out = out.astype(dtype).reshape([shape[d] for d in kept])
        if keepdim:
            out = out.reshape([1 if d in dims else n for d, n in enumerate(shape)])
        return out

    def pointwise(self, prog, ins, params=()):
        """One generated kernel (gpugrad/backend/pointwise.py) when every array operand has
        the same float dtype (or is a bool condition): contiguous full-size operands are
        read at the element index, single values once, numbers become kernel arguments,
        and any other layout (transposed, sliced with steps, flipped, broadcast) is read
        in place through its strides, its dims collapsed first (`launch_plan`); the
        output is C-contiguous. Anything else (integers, complex, mixed dtypes) runs the
        NumPy/CuPy rendering."""
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel(f"gg_pw_{prog.key}", self, ins, self.pointwise, prog, ins, params)
        xp = self.xp
        dtype = None
        for a in ins:
            if isinstance(a, xp.ndarray) and a.dtype != np.bool_:
                if dtype is None:
                    dtype = a.dtype
                elif a.dtype != dtype:
                    return super().pointwise(prog, ins, params)
        if dtype is None or dtype_suffix(dtype) is None or any(
                type(a) is complex for a in ins):
            return super().pointwise(prog, ins, params)
        shape = np.broadcast_shapes(*[np.shape(a) for a in ins])
        n = math.prod(shape)
        outs = tuple(xp.empty(shape, dtype=dtype) for _ in prog.outputs)
        if n:
            sig, layout, copy = launch_plan(
                shape, [a if isinstance(a, xp.ndarray) else None for a in ins])
            args = [np.float64(a) if not isinstance(a, xp.ndarray)
                    else self._c(xp.broadcast_to(a, shape)) if k in copy
                    else a.reshape(()) if a.size == 1 else a  # views: no copy
                    for k, a in enumerate(ins)]
            fn = pointwise_kernel(prog, dtype, sig)
            blocks = max(1, min(-(-n // THREADS), MAX_BLOCKS))
            with self.cuda_device:
                fn((blocks,), (THREADS,), (*args, *outs, *[np.float64(p) for p in params],
                                             np.int64(n), *[np.int64(v) for v in layout]))
        return outs[0] if len(outs) == 1 else outs

"""Array basics of every backend: moving data, shapes, scatters, scans, reductions, and the
checks that are free on the host; plus the 16-bit dtype helpers the kernel families share."""

from __future__ import annotations

import contextlib

from ..device import device as Device
from . import trace as _trace


class TransferCounter:
    """Counts device-to-host copies and explicit synchronisations (a training step should
    have none; tests assert that by reading these counters)."""

    __slots__ = ("device_to_host", "synchronizations")

    def __init__(self) -> None:
        self.device_to_host = 0
        self.synchronizations = 0

    def reset(self) -> None:
        self.device_to_host = 0
        self.synchronizations = 0



def is_half(a) -> bool:
    """Whether `a` is a float16 or bfloat16 array (cheap: it runs on every activation)."""
    dt = getattr(a, "dtype", None)
    return dt is not None and dt.itemsize == 2 and (dt.kind == "f" or dt.name == "bfloat16")


def widen(xp, a):
    """float16/bfloat16 arrays as float32 (the kernels' accumulation type); others as is."""
    return a.astype(xp.float32) if is_half(a) else a


def narrow(xp, a, half):
    """A float32 result stored back as the 16-bit operand dtype `half`."""
    a = xp.asarray(a)
    return a.astype(half) if a.dtype == xp.float32 else a


def quiet_fp(xp):
    """NumPy's floating-point warnings off (exp overflow to inf is intended); CuPy never
    warns."""
    errstate = getattr(xp, "errstate", None)
    return errstate(all="ignore") if errstate else contextlib.nullcontext()


class ArrayFamily:
    """Array operations for one device: the basics every op uses.

    `xp` is the array module (numpy or cupy) for plain array math. The named methods are
    the places where the backends differ.
    """

    name: str
    xp = None
    array_type: type = object

    def __init__(self, dev: Device) -> None:
        self.device = dev
        self.counter = TransferCounter()

    # A backend is a per-device singleton: copies of tensors share it (ops compare
    # backends by identity to detect device mixing).
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        from . import get_backend

        return (get_backend, (str(self.device),))

    # -- moving data ---------------------------------------------------------------
    def asarray(self, data, dtype=None):
        """An array on this device from host data (lists, scalars, NumPy arrays)."""
        raise NotImplementedError

    def to_host(self, array):
        """A NumPy array with the contents of `array` (counted as a device-to-host copy)."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait for queued work on this device (counted; a no-op on the CPU)."""
        self.counter.synchronizations += 1

    # -- array helpers used by several ops -------------------------------------------
    def sum_to_shape(self, array, shape: tuple):
        """Sum `array` over the axes that broadcasting added or expanded, giving `shape`."""
        if array.shape == shape:
            return array
        lead = array.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, n in enumerate(shape) if n == 1 and array.shape[i + lead] != 1
        )
        out = array.sum(axis=axes, keepdims=True)
        return out.reshape(shape) if lead else out

    def index_add_(self, out, index, values) -> None:
        """out[index] += values, accumulating repeated indices."""
        raise NotImplementedError

    def index_reduce_(self, out, index, values, op: str) -> None:
        """out[index] = op(out[index], values) with repeats combined; op: max, min, mul."""
        raise NotImplementedError

    def accumulate(self, op: str, x, axis: int):
        """The inclusive scan of the binary ufunc `op` (maximum, minimum, fmax, fmin,
        logaddexp) along `axis`: NumPy's ufunc.accumulate."""
        return getattr(self.xp, op).accumulate(x, axis=axis)

    def reshape_view(self, array, shape):
        """`array` reshaped without a copy; raises ValueError when a copy would be needed."""
        raise NotImplementedError

    def sum(self, x, axis, keepdims: bool):
        """x.sum(axis=axis, keepdims=keepdims) (the CPU backend splits a large full
        reduction across threads: a different, fixed summation order)."""
        rec = _trace.active
        if rec is not None and rec.wants_kernel():
            return rec.kernel("sum", self, (x,), self.sum, x, axis, keepdims)
        return x.sum(axis=axis, keepdims=keepdims)

    def mean(self, x, axis: tuple, keepdims: bool):
        """x.mean(axis=axis, keepdims=keepdims): for float32/float64, the backend's sum
        divided by the count."""
        if x.dtype.char not in "fd":
            return x.mean(axis=axis, keepdims=keepdims)
        n = 1
        for d in axis:
            n *= x.shape[d]
        s = self.sum(x, axis, keepdims)
        return self.xp.true_divide(s, n, out=s) if isinstance(s, self.array_type) else s / n

    @_trace.traced
    def over_rows(self, fn, n: int, work: int, *, row_bytes: int = 0,
                  blas: bool = False) -> None:
        """fn(lo, hi) on row ranges covering range(n) (fn must not depend on how they are
        cut). `work` counts the elements touched, `row_bytes` one row's working set and
        `blas` says fn calls BLAS: the CPU backend spreads large jobs over its threads in
        cache-sized ranges (see cpu_parallel.over_rows); a GPU backend runs fn(0, n)."""
        fn(0, n)

    def _new(self, like):
        return self.xp.empty(like.shape, dtype=like.dtype)

    def np_dtype(self, dtype):
        """The array dtype this backend uses for a gpugrad dtype (None if unsupported)."""
        return dtype.np

    # -- checks that cost nothing on the host ------------------------------------------------
    def value_range(self, array) -> tuple | None:
        """(min, max) of a non-empty array where reading them is free (the CPU backend);
        None here and on a GPU, where it would read back to the host, a synchronisation
        per call (PyTorch asserts on the device there). Ops use it for their range checks
        (indices, class values, probabilities), which PyTorch makes on the CPU only."""
        return None

    def is_capturing(self) -> bool:
        """True while this device's current stream records a CUDA graph (never on the
        CPU)."""
        return False

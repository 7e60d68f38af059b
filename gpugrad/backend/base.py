"""The Backend interface: the only seam between gpugrad's math and an array library."""

from __future__ import annotations

from ..device import device as Device


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


class Backend:
    """Array operations for one device.

    `xp` is the array module (numpy or cupy) for plain array math. The named methods are
    the places where the backends differ or where a fused kernel matters for speed.
    """

    name: str
    xp = None
    array_type: type = object

    def __init__(self, dev: Device) -> None:
        self.device = dev
        self.counter = TransferCounter()

    # -- moving data ---------------------------------------------------------------
    def asarray(self, data, dtype=None):
        """An array on this device from host data (lists, scalars, NumPy arrays)."""
        raise NotImplementedError

    def to_host(self, array):
        """A NumPy array with the contents of `array` (counted as a device-to-host copy)."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait for queued work on this device."""

    # -- random numbers ------------------------------------------------------------
    def manual_seed(self, seed: int) -> None:
        raise NotImplementedError

    def uniform(self, shape, dtype):
        raise NotImplementedError

    def normal(self, shape, dtype):
        raise NotImplementedError

    def randint(self, low, high, shape, dtype):
        raise NotImplementedError

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

    def reshape_view(self, array, shape):
        """`array` reshaped without a copy; raises ValueError when a copy would be needed."""
        raise NotImplementedError

    # -- fused activation kernels (the NumPy versions are the reference) ---------------
    def act_forward(self, kind: str, x):
        """y = act(x) for kind in relu, sigmoid, tanh."""
        xp = self.xp
        if kind == "relu":
            return xp.maximum(x, 0)
        if kind == "tanh":
            return xp.tanh(x)
        if kind == "sigmoid":
            out = xp.negative(x, out=xp.empty_like(x))  # out= keeps 0-d results arrays
            xp.exp(out, out=out)
            out += 1
            return xp.reciprocal(out, out=out)
        raise ValueError(f"unknown activation {kind!r}")

    def act_backward(self, kind: str, y, g):
        """x̄ from the activation's output y and upstream ȳ, in one pass."""
        xp = self.xp
        if kind == "relu":
            return xp.where(y > 0, g, xp.zeros((), dtype=g.dtype))
        if kind == "tanh":
            out = xp.multiply(y, y, out=xp.empty_like(y))
            xp.subtract(1, out, out=out)
            return xp.multiply(out, g, out=out)
        if kind == "sigmoid":
            out = xp.subtract(1, y, out=xp.empty_like(y))
            out *= y
            return xp.multiply(out, g, out=out)
        raise ValueError(f"unknown activation {kind!r}")

    def np_dtype(self, dtype):
        """The array dtype this backend uses for a gpugrad dtype (None if unsupported)."""
        return dtype.np

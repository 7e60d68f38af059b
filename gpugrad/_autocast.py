"""Autocast (automatic mixed precision): which ops run in low precision, which in float32.

`autocast(device_type, dtype)` sets thread-local state, as grad mode does. The ops read it
through one call at their top, `autocast_inputs(category, *tensors)`:

* `LOWER` (matmul, linear, conv1d/conv2d): float32/float16/bfloat16 inputs are cast to the
  autocast dtype, so the product runs in low precision (with float32 accumulation on the
  GPU) and returns the low dtype, as PyTorch's autocast does.
* `FP32` (softmax, log_softmax, layer_norm, batch_norm and the losses): float16/bfloat16
  inputs are cast up to float32, and so is the result.

The lists follow PyTorch's CUDA autocast on both devices (PyTorch's CPU lists keep softmax
and layer_norm in low precision); batch_norm also runs in float32 here, where PyTorch's
cuDNN kernel returns the input's dtype. Reductions called directly (`sum`, `mean`, `norm`)
keep their input's dtype.

float64 and non-floating tensors are never touched, and only tensors on the autocast's
device type are (a CUDA autocast leaves CPU ops alone). The casts are recorded ops, so a
gradient flows back through them in each input's own dtype: float32 master weights get
float32 gradients. Nothing is cached: a weight used twice is cast twice.

The CPU: NumPy has float16 but no bfloat16; the ml_dtypes package supplies it, so
`autocast("cpu", dtype=gg.bfloat16)` runs (without ml_dtypes it raises TypeError naming
the package). CPU autocast defaults to float16 here (PyTorch's CPU autocast defaults to
bfloat16).
"""

from __future__ import annotations

import functools
import threading
import warnings

from . import _dtype

__all__ = ["autocast", "autocast_inputs", "autocast_fp32", "is_autocast_enabled",
           "get_autocast_dtype", "LOWER", "FP32"]

LOWER = "lower"
FP32 = "fp32"
_LOW = (_dtype.float16, _dtype.bfloat16)


class _AutocastState(threading.local):
    active: dict = {}  # device type ("cpu" | "cuda") -> the low dtype of an enabled autocast


_state = _AutocastState()


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """True inside an enabled autocast for `device_type` (any device type when None)."""
    return bool(_state.active) if device_type is None else device_type in _state.active


def get_autocast_dtype(device_type: str) -> _dtype.DType | None:
    """The low dtype of the enabled autocast for `device_type`, or None outside one."""
    return _state.active.get(device_type)


class autocast:  # noqa: N801 - mirrors torch.autocast
    """Context manager (or decorator) that runs matmul, linear and conv in `dtype` and keeps
    softmax, normalisation and losses in float32, for tensors on `device_type`.

    `device_type` is "cpu" or "cuda" (default: the default device's type); `dtype` is
    gg.float16 (the default) or gg.bfloat16 (on the CPU through the ml_dtypes package,
    without which it raises TypeError naming dtype, device and package). `enabled=False`
    switches autocast off inside an enclosing one. Run backward() outside the context, as
    PyTorch recommends: the backward ops follow the dtypes the forward chose. A CUDA
    autocast without CUDA warns and does nothing, as PyTorch does.
    """

    def __init__(self, device_type: str | None = None, dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if device_type is None:
            from .device import default_device

            device_type = default_device().type
        device_type = str(device_type).split(":")[0]
        if device_type not in ("cpu", "cuda"):
            raise ValueError(f"autocast: device_type must be 'cpu' or 'cuda', got "
                             f"{device_type!r}")
        dt = _dtype.float16 if dtype is None else _dtype.to_dtype(dtype)
        self.device_type, self.fast_dtype, self._enabled = device_type, dt, bool(enabled)
        self._prev = None
        if not self._enabled:
            return
        if dt not in _LOW:
            raise TypeError(f"autocast: dtype must be gg.float16 or gg.bfloat16, got {dt} "
                            f"(device {device_type})")
        if device_type == "cuda":
            from . import cuda

            if not cuda.is_available():
                warnings.warn("autocast: device_type 'cuda' was given but CUDA is not "
                              "available; disabling autocast", UserWarning, stacklevel=2)
                self._enabled = False
                return
        from .backend import get_backend

        if get_backend(device_type).np_dtype(dt) is None:
            hint = _dtype.BF16_HINT
            raise TypeError(f"autocast: dtype {dt} is not supported on device {device_type} "
                            f"({hint})")

    def __enter__(self) -> autocast:
        self._prev = _state.active
        active = dict(self._prev)
        if self._enabled:
            active[self.device_type] = self.fast_dtype
        else:
            active.pop(self.device_type, None)
        _state.active = active
        return self

    def __exit__(self, *exc) -> None:
        _state.active = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)

        return wrapper


def autocast_inputs(category: str, *tensors) -> tuple:
    """`tensors` as the op of `category` (LOWER or FP32) should see them under the current
    autocast state; None and non-Tensor arguments pass through. Outside autocast this is
    one dict check."""
    if not _state.active:
        return tensors
    return tuple(_autocast_one(category, t) for t in tensors)


def _autocast_one(category: str, t):
    from .tensor import Tensor

    if not isinstance(t, Tensor):
        return t
    low = _state.active.get(t.device.type)
    dt = t.dtype
    if low is None or not dt.is_floating_point or dt is _dtype.float64:
        return t
    from .ops.elementwise import cast

    if category == LOWER:
        return t if dt is low else cast(t, low)
    if category == FP32:
        return cast(t, _dtype.float32) if dt in _LOW else t
    raise ValueError(f"autocast: unknown op category {category!r}")


def autocast_fp32(fn):
    """Wrap a function (a loss) so that its low-precision Tensor arguments are cast to
    float32 under autocast."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _state.active:
            args = autocast_inputs(FP32, *args)
            kwargs = {k: _autocast_one(FP32, v) for k, v in kwargs.items()}
        return fn(*args, **kwargs)

    return wrapper

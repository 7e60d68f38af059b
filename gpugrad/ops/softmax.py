"""`softmax`, `log_softmax` and `softmin` at the op level (also the Tensor methods):
float32 under autocast, integer inputs promoted to float32, `dtype=` casts first."""

from __future__ import annotations

from .. import _dtype
from .._autocast import FP32, autocast_inputs
from ..tensor import Tensor
from .activation import LogSoftmax, Softmax
from .elementwise import cast, neg

__all__ = ["softmax", "log_softmax", "softmin"]


def _prepare(input: Tensor, dim: int, dtype, op: str) -> tuple:
    (input,) = autocast_inputs(FP32, input)
    x = input if dtype is None else cast(input, dtype)
    if x.dtype.category < 2:
        x = cast(x, _dtype.DEFAULT_FLOAT)
    n = max(x.ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dimension {dim} out of range for a {x.ndim}-d tensor")
    return x, (dim % n if x.ndim else None)


def softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    """exp(x) / Σ_dim exp(x), computed stably (see `Softmax`)."""
    x, d = _prepare(input, dim, dtype, "softmax")
    return Softmax.apply(x, d)


def log_softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    """x − logsumexp_dim(x), computed stably (see `LogSoftmax`)."""
    x, d = _prepare(input, dim, dtype, "log_softmax")
    return LogSoftmax.apply(x, d)


def softmin(input: Tensor, dim: int, dtype=None) -> Tensor:
    """softmax(−x) along `dim`."""
    x, d = _prepare(input, dim, dtype, "softmin")
    return Softmax.apply(neg(x), d)

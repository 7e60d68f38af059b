"""Summaries built from other ops: std_mean, var_mean, aminmax; and the non-differentiable
counts and comparisons isclose, allclose, count_nonzero, bincount, histc."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor, _wrap_array
from . import return_types
from ._dimarg import dim_alias
from ._util import norm_dims
from .reduce import amax, amin, mean, std, var


@dim_alias
def var_mean(input: Tensor, dim=None, *, correction: int = 1, keepdim: bool = False,
             unbiased: bool | None = None) -> tuple:
    """(var, mean) over `dim`, var unbiased by default."""
    return (var(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased),
            mean(input, dim, keepdim))


@dim_alias
def std_mean(input: Tensor, dim=None, *, correction: int = 1, keepdim: bool = False,
             unbiased: bool | None = None) -> tuple:
    """(std, mean) over `dim`, std unbiased by default."""
    return (std(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased),
            mean(input, dim, keepdim))


@dim_alias
def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False):
    """(min, max) over `dim` (all elements when None)."""
    if input._data.size == 0:
        raise RuntimeError(f"aminmax: cannot compute on an empty tensor of shape "
                           f"{tuple(input.shape)}")
    return return_types.aminmax(amin(input, dim, keepdim), amax(input, dim, keepdim))


def _operand(t, ref: Tensor):
    return t._data if isinstance(t, Tensor) else ref._backend.xp.asarray(t)


def isclose(input: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """|input − other| ≤ atol + rtol·|other| elementwise (equal infinities are close);
    a bool tensor, broadcast; not differentiable."""
    if isinstance(other, Tensor) and other._backend is not input._backend:
        raise RuntimeError(f"isclose: tensors on {input.device} and {other.device}")
    if isinstance(other, Tensor) and input.dtype is not other.dtype:
        raise RuntimeError(f"isclose: {input.dtype} did not match {other.dtype}")
    a, b = input._data, _operand(other, input)
    try:
        out = input._backend.xp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)
    except ValueError:
        raise ShapeError(f"isclose: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                         "broadcast together") from None
    return _wrap_array(out, input._backend)


def allclose(input: Tensor, other, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """True when every element is close (see isclose)."""
    return bool(isclose(input, other, rtol, atol, equal_nan)._data.all())


@dim_alias
def count_nonzero(input: Tensor, dim=None) -> Tensor:
    """The number of nonzero elements over `dim` (all when None), as int64."""
    dims = norm_dims(dim, input.ndim, "count_nonzero")
    xp = input._backend.xp
    out = xp.count_nonzero(input._data, axis=dims) if dims else (input._data != 0)
    return _wrap_array(xp.asarray(out).astype(np.int64), input._backend)


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """Counts of each value 0..max in a 1-d non-negative integer tensor (at least
    `minlength` bins); with `weights`, the sums of the weights instead."""
    if input.ndim != 1 or input._data.dtype.kind not in "iub":
        raise RuntimeError(f"bincount: expected a 1-d integer tensor, got shape "
                           f"{tuple(input.shape)} of {input.dtype}")
    if minlength < 0:
        raise RuntimeError(f"bincount: minlength must be non-negative, got {minlength}")
    xp = input._backend.xp
    x = input._data
    if x.size and int(x.min()) < 0:
        raise RuntimeError("bincount: the input must hold non-negative integers")
    if weights is None:
        return _wrap_array(xp.bincount(x, minlength=minlength).astype(np.int64), input._backend)
    if tuple(weights.shape) != tuple(input.shape):
        raise RuntimeError(f"bincount: weights {tuple(weights.shape)} must have the shape of "
                           f"the input {tuple(input.shape)}")
    w = weights._data
    out = xp.bincount(x, weights=w, minlength=minlength)
    dt = w.dtype if w.dtype.kind == "f" else np.float64
    return _wrap_array(out.astype(dt), input._backend)


def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:  # noqa: A002
    """Histogram of `bins` equal-width bins over [min, max] (the data's range when both are
    equal); elements outside are ignored; same dtype as the input."""
    if input.dtype.category != 2:
        raise RuntimeError(f"histc: expected a floating point input, got {input.dtype}")
    if bins <= 0:
        raise RuntimeError(f"histc: bins must be > 0, got {bins}")
    xp = input._backend.xp
    x = input._data.reshape(-1)
    lo, hi = float(min), float(max)
    if lo == hi and x.size:
        lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError(f"histc: max ({max}) must be larger than min ({min})")
    keep = x[(x >= lo) & (x <= hi)]
    idx = ((keep - lo) * bins / (hi - lo)).astype(np.int64)
    idx = xp.minimum(idx, bins - 1)  # the right edge belongs to the last bin
    counts = xp.bincount(idx, minlength=bins)
    return _wrap_array(counts.astype(input._data.dtype), input._backend)

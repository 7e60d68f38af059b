"""Scans along one dim: cumsum, cumprod, cummax/cummin, logcumsumexp; and prod.

A scan's VJP is a reversed scan: for y_j = Σ_{i≤j} x_i, x̄_k = Σ_{j≥k} ȳ_j, i.e.
flip(cumsum(flip(ȳ))). Products and log-sum-exps reduce to that with the care below.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _dtype
from ..autograd.function import Op
from ..tensor import Tensor, _wrap_array
from . import return_types
from ._dimarg import dim_alias
from ._util import norm_dim
from .elementwise import exp, log, where
from .index import gather
from .rearrange import flip
from .shape import reshape

__all__ = ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp", "prod"]


def _rev_cumsum(g: Tensor, dim: int) -> Tensor:
    """x̄_k = Σ_{j≥k} g_j along dim."""
    return flip(cumsum(flip(g, dim), dim), dim)


def _scan_input(input: Tensor, dim, op: str, dtype):
    if dtype is not None:
        input = input.to(dtype)
    elif input.dtype.category < 2:  # bool and integers accumulate in int64, as in torch
        input = input.to(_dtype.int64)
    if input.ndim == 0:
        return input, 0
    return input, norm_dim(dim, input.ndim, op)


class CumSum(Op):
    """y_j = Σ_{i≤j} x_i along dim;  x̄_k = Σ_{j≥k} ȳ_j."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return ctx.xp.cumsum(x, axis=dim, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        return _rev_cumsum(g, ctx.dim), None


@dim_alias
def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Cumulative sum along `dim` (integers and bools sum in int64)."""
    x, d = _scan_input(input, dim, "cumsum", dtype)
    if x.ndim == 0:
        return x.clone()
    return CumSum.apply(x, d)


class CumProd(Op):
    """y_j = Π_{i≤j} x_i along dim.  VJP, with z the first zero of the slice (n if none):
    x̄_k = Σ_{j≥k} ȳ_j y_j / x_k for k < z;  x̄_z = Σ_{j≥z} ȳ_j y'_j, where y' is the cumprod
    with x_z replaced by 1;  x̄_k = 0 for k > z (every such product holds x_z = 0)."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.save_inputs(0)
        ctx.save_output()
        ctx.dim = dim
        return ctx.xp.cumprod(x, axis=dim, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        x, y, dim = ctx.saved_input(0), ctx.saved_output, ctx.dim
        xp, be = ctx.xp, ctx.backend
        zero = x._data == 0
        if not zero.any():
            return _rev_cumsum(g * y, dim) / x, None
        seen = xp.cumsum(zero, axis=dim)
        before = _wrap_array(seen == 0, be)
        first = _wrap_array(zero & (seen == 1), be)
        safe_x = where(before, x, 1.0)
        part = where(before, _rev_cumsum(g * y, dim) / safe_x, 0.0)
        y_skip = cumprod(where(first, 1.0, x), dim)
        return part + where(first, _rev_cumsum(g * y_skip, dim), 0.0), None


@dim_alias
def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Cumulative product along `dim`; its gradient is exact where inputs are zero."""
    x, d = _scan_input(input, dim, "cumprod", dtype)
    if x.ndim == 0:
        return x.clone()
    return CumProd.apply(x, d)


def _cum_extremum(input: Tensor, dim, largest: bool, name: str):
    result = return_types.cummax if largest else return_types.cummin
    xp = input._backend.xp
    if input.ndim == 0:
        idx = _wrap_array(xp.zeros((), dtype=np.int64), input._backend)
        return result(input.clone(), idx)
    d = norm_dim(dim, input.ndim, name)
    x = input._data
    n = x.shape[d]
    if x.size == 0:
        idx = _wrap_array(xp.zeros(x.shape, dtype=np.int64), input._backend)
        return result(input.clone(), idx)
    shape = [1] * x.ndim
    shape[d] = n
    pos = xp.broadcast_to(xp.arange(n).reshape(shape), x.shape)
    be = input._backend
    op = ("fmax" if largest else "fmin") if x.dtype.kind in "fV" else \
        ("maximum" if largest else "minimum")
    acc = be.accumulate(op, x, d)
    # An element becomes the running extremum when it ties or beats it (torch takes the
    # latest tie); a NaN sticks from its first position on.
    if x.dtype.kind in "fV":
        nan = xp.isnan(x)
        hit = (x == acc) | nan
        first_nan = be.accumulate("maximum", xp.where(nan, pos, -1), d)
        idx = be.accumulate("maximum", xp.where(hit, pos, 0), d)
        first = xp.where(nan & (xp.cumsum(nan, axis=d) == 1), pos, n)
        first = be.accumulate("minimum", first, d)
        idx = xp.where(first_nan >= 0, first, idx)
    else:
        idx = be.accumulate("maximum", xp.where(x == acc, pos, 0), d)
    idx_t = _wrap_array(xp.ascontiguousarray(idx).astype(np.int64), input._backend)
    return result(gather(input, d, idx_t), idx_t)


@dim_alias
def cummax(input: Tensor, dim: int):
    """(values, indices) of the running maximum along `dim`; values[j] = x[indices[j]], so
    the gradient flows to the element each running maximum came from."""
    return _cum_extremum(input, dim, True, "cummax")


@dim_alias
def cummin(input: Tensor, dim: int):
    """(values, indices) of the running minimum along `dim` (see cummax)."""
    return _cum_extremum(input, dim, False, "cummin")


class LogCumSumExp(Op):
    """y_j = log Σ_{i≤j} exp x_i along dim;  x̄_k = Σ_{j≥k} ȳ_j exp(x_k − y_j), evaluated
    stably as exp(x_k + reversed logcumsumexp(log|ȳ_j| − y_j)) for the positive and the
    negative parts of ȳ separately."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.save_inputs(0)
        ctx.save_output()
        ctx.dim = dim
        return ctx.backend.accumulate("logaddexp", x, dim)

    @staticmethod
    def backward(ctx, g):
        x, y, dim = ctx.saved_input(0), ctx.saved_output, ctx.dim
        empty = y == -math.inf  # every term so far is −inf: y_j contributes nothing

        def part(mask: Tensor, w: Tensor) -> Tensor:
            # log w − y where the mask holds, −inf (no contribution) elsewhere
            keep = mask & ~empty
            log_w = where(keep, log(where(keep, w, 1.0)) - where(keep, y, 0.0), -math.inf)
            rev = flip(logcumsumexp(flip(log_w, dim), dim), dim)
            return exp(x + rev)

        return part(g > 0, g) - part(g < 0, -g), None


@dim_alias
def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """log of the cumulative sum of exp along `dim`, computed without overflow."""
    if input.dtype.category < 2:
        raise RuntimeError(f"logcumsumexp: expected a floating point input, got {input.dtype}")
    if input.ndim == 0:
        return input.clone()
    d = norm_dim(dim, input.ndim, "logcumsumexp")
    if input.shape[d] == 0:
        return input.clone()
    return LogCumSumExp.apply(input, d)


@dim_alias
def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Product over `dim` (every element when None): the last element of the cumulative
    product, so the gradient is cumprod's, exact where inputs are zero."""
    x, _ = _scan_input(input, 0, "prod", dtype)
    if dim is None:
        flat = reshape(x, -1)
        if flat.shape[0] == 0:  # the empty product, 1, still connected to the graph
            return x.sum(keepdim=keepdim) + 1
        out = cumprod(flat, 0)[-1]
        return reshape(out, (1,) * x.ndim) if keepdim else out
    if x.ndim == 0:
        return x.clone()
    d = norm_dim(dim, x.ndim, "prod")
    if x.shape[d] == 0:
        return x.sum(d, keepdim=keepdim) + 1
    last = x.shape[d] - 1
    out = cumprod(x, d)[(slice(None),) * d + (slice(last, last + 1),)]
    return out if keepdim else out.squeeze(d)

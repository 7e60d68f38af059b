"""Scatter with reductions, index_fill/index_copy, masked_scatter/masked_select, nonzero,
take and take_along_dim.

Reads are gathers (VJP: scatter-add back); writes are index_put (VJP: the overwritten
positions get no gradient, the written values get the gradient read at their targets).
"""

from __future__ import annotations

import numpy as np

from ..autograd.function import Op
from ..errors import ShapeError
from ..tensor import Tensor, _wrap_array
from ._util import norm_dim
from .elementwise import where
from .index import (
    _check_bounds,
    _check_index,
    _full_index,
    gather,
    getitem,
    index_put,
    scatter_add,
)
from .shape import broadcast_to, reshape

__all__ = ["scatter", "scatter_reduce", "index_fill", "index_copy", "masked_scatter",
           "masked_select", "nonzero", "argwhere", "take", "take_along_dim"]

_REDUCES = ("sum", "prod", "mean", "amax", "amin")


def _check_scatter(op: str, input: Tensor, dim: int, index: Tensor, src) -> int:
    _check_index(op, input, index)
    d = norm_dim(dim, input.ndim, op)
    if index.ndim != input.ndim and not (index.ndim <= 1 and input.ndim <= 1):
        raise ShapeError(f"{op}: index {tuple(index.shape)} and input {tuple(input.shape)} "
                         "must have the same number of dimensions")
    if isinstance(src, Tensor):
        if src._backend is not input._backend:
            raise RuntimeError(f"{op}: src is on {src.device} but input is on {input.device}")
        if src.ndim != index.ndim or any(i > s for i, s in zip(index.shape, src.shape)):
            raise ShapeError(f"{op}: index {tuple(index.shape)} must be no larger than src "
                             f"{tuple(src.shape)} in every dimension")
    if any(i > n for k, (i, n) in enumerate(zip(index.shape, input.shape)) if k != d):
        raise ShapeError(f"{op}: index {tuple(index.shape)} is larger than input "
                         f"{tuple(input.shape)} outside dimension {d}")
    _check_bounds(op, input, d, index)
    return d


def _src_region(src: Tensor, index: Tensor) -> Tensor:
    """The part of src that index addresses (its leading index.shape block)."""
    if tuple(src.shape) == tuple(index.shape):
        return src
    return src[tuple(slice(0, n) for n in index.shape)]


def _key(index: Tensor, dim: int) -> tuple:
    """The advanced-index key of out[index[i,j,..] along dim, i, j, ...]."""
    xp = index._backend.xp
    return tuple(_wrap_array(a, index._backend) if not isinstance(a, Tensor) else a
                 for a in _full_index(xp, index._data, dim))


def scatter(input: Tensor, dim: int, index: Tensor, src=None, *, value=None,
            reduce: str | None = None) -> Tensor:
    """out = input with out[index[i][j]][j] = src[i][j] (dim 0), src a tensor or a number;
    `reduce="add"|"multiply"` combines instead of overwriting. With repeated indices the
    value written is one of them (as in PyTorch, unspecified which)."""
    if src is None:
        src = value
    if reduce is not None:
        modes = {"add": "sum", "multiply": "prod"}
        if reduce not in modes:
            raise RuntimeError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
        if not isinstance(src, Tensor):
            src = _full_like(input, index.shape, src)
        return scatter_reduce(input, dim, index, src, modes[reduce])
    d = _check_scatter("scatter", input, dim, index, src)
    if index.ndim == 0 or input.ndim == 0:
        return scatter(reshape(input, -1), 0, reshape(index, -1),
                       reshape(src, -1) if isinstance(src, Tensor) else src).reshape(input.shape)
    key = _key(index, d)
    if isinstance(src, Tensor):
        src = _src_region(src, index)
        if src.dtype is not input.dtype:
            src = src.to(input.dtype)
    return index_put(input, key, src)


def _full_like(input: Tensor, shape, value) -> Tensor:
    xp = input._backend.xp
    return _wrap_array(xp.full(tuple(shape), value, dtype=input._data.dtype), input._backend)


def _touched(xp, shape, key):
    mask = xp.zeros(shape, dtype=bool)
    mask[key] = True
    return mask


class ScatterExtremum(Op):
    """y = x with y[t] = max (min) of x[t] (if include_self) and the src values sent to t.
    VJP: the gradient at t is shared evenly between all the values equal to y[t]."""

    @staticmethod
    def forward(ctx, x, src, key, include_self, largest):
        xp = ctx.xp
        ctx.save_inputs(0, 1)
        ctx.save_output()
        ctx.key, ctx.include_self = key, include_self
        out = x.copy()
        if not include_self:
            if x.dtype.kind in "fV":
                fill = -np.inf if largest else np.inf
            else:
                info = np.iinfo(x.dtype)
                fill = info.min if largest else info.max
            out[_touched(xp, x.shape, key)] = fill
        ctx.backend.index_reduce_(out, key, src, "max" if largest else "min")
        return out

    @staticmethod
    def backward(ctx, g):
        x, src, y = ctx.saved_input(0), ctx.saved_input(1), ctx.saved_output
        xp, be, key = ctx.xp, ctx.backend, ctx.key
        dt = g._data.dtype
        self_hit = x._data == y._data
        if not ctx.include_self:
            self_hit &= ~_touched(xp, x.shape, key)
        src_hit = src._data == y._data[key]
        count = self_hit.astype(dt)
        be.index_add_(count, key, src_hit.astype(dt))
        share = g / _wrap_array(xp.maximum(count, 1), be)
        gx = share * _wrap_array(self_hit.astype(dt), be)
        gsrc = getitem(share, tuple(_wrap_array(k, be) for k in key)) * \
            _wrap_array(src_hit.astype(dt), be)
        return gx, gsrc, None, None, None


def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    """out = input with the src values sent to each position (index along `dim`) combined
    by `reduce` ("sum", "prod", "mean", "amax", "amin"), together with the input's own value
    unless include_self=False; positions no index reaches keep the input's value.
    Differentiable in input and src as in PyTorch (amax/amin share ties evenly)."""
    if reduce not in _REDUCES:
        raise RuntimeError(f"scatter_reduce: reduce must be one of {_REDUCES}, got {reduce!r}")
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_reduce: src must be a Tensor, got {type(src).__name__}")
    d = _check_scatter("scatter_reduce", input, dim, index, src)
    src = _src_region(src, index)
    if src.dtype is not input.dtype:
        src = src.to(input.dtype)
    if input.ndim == 0:
        return scatter_reduce(reshape(input, 1), 0, reshape(index, -1), reshape(src, -1),
                              reduce, include_self=include_self).reshape(())
    xp, be = input._backend.xp, input._backend
    key = _key(index, d)
    raw_key = tuple(k._data for k in key)
    if reduce in ("amax", "amin"):
        return ScatterExtremum.apply(input, src, raw_key, include_self, reduce == "amax")
    if reduce == "prod":
        return ScatterProd.apply(input, src, raw_key, include_self)
    base = input if include_self else index_put(input, key, 0)
    if reduce == "sum":
        return scatter_add(base, d, index, src)
    if reduce == "mean":
        count = xp.zeros(input.shape, dtype=input._data.dtype if input.dtype.category >= 2
                         else np.float64)
        if include_self:
            count += 1
        be.index_add_(count, raw_key, xp.ones(index.shape, dtype=count.dtype))
        total = scatter_add(base, d, index, src)
        count = xp.maximum(count, 1)
        if input.dtype.category < 2:  # integer means round down, as in torch
            return _wrap_array(xp.floor_divide(total._data, count.astype(total._data.dtype)),
                               be)
        return total / _wrap_array(count, be)


class ScatterProd(Op):
    """y[t] = (x[t] if include_self) · Π_{i→t} src_i.  Each factor's gradient is ȳ[t] times
    the product of the other factors at t, zeros counted exactly: with P the product of the
    nonzero factors at t and z their number of zeros, P/v for a factor v ≠ 0 when z = 0, P
    for the only zero factor (z = 1), and 0 otherwise. P is itself a scatter product of the
    factors with zeros replaced by 1, so the VJP is differentiable again."""

    @staticmethod
    def forward(ctx, x, src, key, include_self):
        ctx.save_inputs(0, 1)
        ctx.key, ctx.include_self = key, include_self
        out = x.copy()
        if not include_self:
            out[key] = 1
        ctx.backend.index_reduce_(out, key, src, "mul")
        return out

    @staticmethod
    def backward(ctx, g):
        x, src = ctx.saved_input(0), ctx.saved_input(1)
        xp, be, key, inc = ctx.xp, ctx.backend, ctx.key, ctx.include_self
        touched = _touched(xp, x.shape, key)
        zeros = (x._data == 0) if inc else xp.zeros(x.shape, dtype=bool)
        zeros = zeros.astype(np.int64)
        be.index_add_(zeros, key, (src._data == 0).astype(np.int64))
        x_nz, s_nz = where(x == 0, 1.0, x), where(src == 0, 1.0, src)
        pnz = ScatterProd.apply(x_nz, s_nz, key, inc)
        zc = _wrap_array(zeros, be)
        tkey = tuple(_wrap_array(k, be) for k in key)
        gx = gsrc = None
        if ctx.needs_input_grad[0]:
            if inc:
                other = where(x == 0, where(zc == 1, pnz, 0.0), where(zc == 0, pnz / x_nz, 0.0))
                gx = g * other
            else:  # overwritten positions get none, untouched ones pass through
                gx = where(_wrap_array(touched, be), 0.0, g)
        if ctx.needs_input_grad[1]:
            p_at, z_at = getitem(pnz, tkey), getitem(zc, tkey)
            other = where(src == 0, where(z_at == 1, p_at, 0.0),
                          where(z_at == 0, p_at / s_nz, 0.0))
            gsrc = getitem(g, tkey) * other
        return gx, gsrc, None, None


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """input with the slices at `index` along `dim` set to `value` (a number or a 0-d
    tensor, which gets the gradient of every filled element)."""
    _check_index("index_fill", input, index)
    if index.ndim > 1:
        raise RuntimeError(f"index_fill: index must be 0-d or 1-d, got {tuple(index.shape)}")
    d = norm_dim(dim, input.ndim, "index_fill")
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(f"index_fill: value must be a 0-d tensor, got shape "
                           f"{tuple(value.shape)}")
    _check_bounds("index_fill", input, d, index)
    if input.ndim == 0:
        return index_fill(reshape(input, 1), 0, index, value).reshape(())
    return index_put(input, (slice(None),) * d + (reshape(index, -1),), value)


def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """input with its slices at `index` along `dim` replaced by those of `source`."""
    _check_index("index_copy", input, index)
    d = norm_dim(dim, input.ndim, "index_copy")
    idx = reshape(index, -1)
    expected = input.shape[:d] + (idx.shape[0],) + input.shape[d + 1:] if input.ndim else ()
    if tuple(source.shape) != tuple(expected) and not (source.ndim == 0 and expected == (1,)):
        raise ShapeError(f"index_copy: source {tuple(source.shape)} does not match input "
                         f"{tuple(input.shape)} with {idx.shape[0]} indices along dim {d}")
    _check_bounds("index_copy", input, d, index)
    if input.ndim == 0:
        return reshape(source, ()).to(input.dtype) if idx.shape[0] else input.clone()
    return index_put(input, (slice(None),) * d + (idx,), reshape(source, expected))


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """The elements of `input` where the (broadcast) bool `mask` is True, as a 1-d tensor."""
    _check_mask("masked_select", input, mask)
    shape = np.broadcast_shapes(tuple(input.shape), tuple(mask.shape))
    return getitem(broadcast_to(input, shape), broadcast_to(mask, shape))


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """input with the positions where `mask` is True filled, in row-major order, by the
    leading elements of `source`."""
    _check_mask("masked_scatter", input, mask)
    m = broadcast_to(mask, input.shape)
    n = int(m._data.sum())
    if source._data.size < n:
        raise RuntimeError(f"masked_scatter: mask has {n} True elements but source "
                           f"{tuple(source.shape)} has only {source._data.size}")
    vals = reshape(source, -1)[:n]
    if vals.dtype is not input.dtype:
        vals = vals.to(input.dtype)
    return index_put(input, m, vals)


def _check_mask(op: str, input: Tensor, mask: Tensor) -> None:
    if not isinstance(mask, Tensor) or mask.dtype.name != "bool":
        raise RuntimeError(f"{op}: expected a bool mask tensor, got "
                           f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if mask._backend is not input._backend:
        raise RuntimeError(f"{op}: mask is on {mask.device} but input is on {input.device}")


def nonzero(input: Tensor, *, as_tuple: bool = False):
    """Indices of the nonzero elements: an (n, ndim) int64 tensor, or with as_tuple one 1-d
    tensor per dim."""
    xp, be = input._backend.xp, input._backend
    a = input._data
    idx = xp.nonzero(a) if a.ndim else xp.nonzero(a.reshape(1))
    if as_tuple:
        if not a.ndim:
            return (_wrap_array(idx[0].astype(np.int64), be),)
        return tuple(_wrap_array(i.astype(np.int64), be) for i in idx)
    if not a.ndim:
        return _wrap_array(xp.zeros((len(idx[0]), 0), dtype=np.int64), be)
    return _wrap_array(xp.stack(idx, axis=1).astype(np.int64).reshape(-1, a.ndim), be)


def argwhere(input: Tensor) -> Tensor:
    """nonzero(input) as an (n, ndim) tensor."""
    return nonzero(input)


def take(input: Tensor, index: Tensor) -> Tensor:
    """input viewed as 1-d, read at `index` (the result has index's shape)."""
    _check_index("take", input, index)
    flat = reshape(input, -1)
    n = flat.shape[0]
    span = input._backend.value_range(index._data) if index._data.size else None
    if span is not None:
        lo, hi = int(span[0]), int(span[1])
        if lo < -n or hi >= n:
            raise IndexError(f"take: index {lo if lo < -n else hi} is out of range for a "
                             f"tensor of {n} elements (shape {tuple(input.shape)})")
    return getitem(flat, index)


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """gather along `dim` with input and indices broadcast against each other outside dim;
    with dim None, both are flattened first."""
    _check_index("take_along_dim", input, indices)
    if dim is None:
        return gather(reshape(input, -1), 0, reshape(indices, -1))
    d = norm_dim(dim, input.ndim, "take_along_dim")
    if indices.ndim != input.ndim:
        raise RuntimeError(f"take_along_dim: input {tuple(input.shape)} and indices "
                           f"{tuple(indices.shape)} must have the same number of dimensions")
    si, sx = list(indices.shape), list(input.shape)
    si[d] = sx[d] = 1
    try:
        b = list(np.broadcast_shapes(tuple(si), tuple(sx)))
    except ValueError:
        raise ShapeError(f"take_along_dim: input {tuple(input.shape)} and indices "
                         f"{tuple(indices.shape)} cannot be broadcast outside dim {d}") from None
    bx, bi = list(b), list(b)
    bx[d], bi[d] = input.shape[d], indices.shape[d]
    return gather(broadcast_to(input, tuple(bx)), d, broadcast_to(indices, tuple(bi)))

"""Sorting and order statistics: sort, argsort, topk, kthvalue, median, mode; unique.

Every value these return is x gathered at the returned indices, so the VJP is gather's:
ȳ scattered (added) back to the positions the values came from.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor, _wrap_array
from . import return_types
from ._dimarg import dim_alias
from ._util import norm_dim
from .index import gather
from .shape import reshape


def _sort_indices(xp, x, dim: int, descending: bool):
    """Stable argsort along dim; descending keeps equal elements in their original order
    (sort the reversed slice ascending, reverse the result, map the positions back)."""
    if not descending:
        return xp.argsort(x, axis=dim, kind="stable")
    n = x.shape[dim]
    rev = xp.flip(x, axis=dim)
    idx = xp.flip(xp.argsort(rev, axis=dim, kind="stable"), axis=dim)
    return (n - 1) - idx


def _wrap_idx(input: Tensor, idx) -> Tensor:
    return _wrap_array(input._backend.xp.ascontiguousarray(idx).astype(np.int64),
                       input._backend)


@dim_alias
def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) sorted along `dim`; NaN sorts as the largest value. The sort is
    always stable (`stable=` is accepted for PyTorch's signature)."""
    if input.ndim == 0:
        return return_types.sort(input.clone(), _wrap_idx(input, input._backend.xp.zeros(())))
    d = norm_dim(dim, input.ndim, "sort")
    idx = _wrap_idx(input, _sort_indices(input._backend.xp, input._data, d, descending))
    return return_types.sort(gather(input, d, idx), idx)


@dim_alias
def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """The indices that sort `input` along `dim` (stable)."""
    return sort(input, dim, descending, stable).indices


def msort(input: Tensor) -> Tensor:
    """Values sorted along dim 0."""
    return sort(input, 0).values


@dim_alias
def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The k largest (or smallest) elements along `dim`, as (values, indices), in sorted
    order (which PyTorch also returns by default)."""
    d = norm_dim(dim, input.ndim, "topk") if input.ndim else 0
    n = input.shape[d] if input.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk: k ({k}) is out of range for dimension {d} of size {n} "
                           f"(shape {tuple(input.shape)})")
    values, idx = sort(input, d, descending=largest)
    if input.ndim == 0:
        return return_types.topk(values, idx)
    key = (slice(None),) * d + (slice(0, k),)
    idx = idx[key]
    return return_types.topk(gather(input, d, idx), idx)


@dim_alias
def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """The k-th smallest element along `dim` (k from 1), as (values, indices)."""
    d = norm_dim(dim, input.ndim, "kthvalue") if input.ndim else 0
    n = input.shape[d] if input.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue: k ({k}) is out of range for dimension {d} of size {n} "
                           f"(shape {tuple(input.shape)})")
    return return_types.kthvalue(*_pick(input, d, k - 1, keepdim))


def _pick(input: Tensor, d: int, pos, keepdim: bool):
    """(values, indices) of the element at sorted position `pos` (int or index array)."""
    if input.ndim == 0:
        return input.clone(), _wrap_idx(input, input._backend.xp.zeros(()))
    xp = input._backend.xp
    order = _sort_indices(xp, input._data, d, False)
    if isinstance(pos, int):
        idx = xp.take(order, xp.asarray([pos]), axis=d)
    else:
        idx = xp.take_along_axis(order, pos, axis=d)
    idx_t = _wrap_idx(input, idx)
    values = gather(input, d, idx_t)
    if not keepdim:
        values, idx_t = values.squeeze(d), idx_t.squeeze(d)
    return values, idx_t


def _median(input: Tensor, dim, keepdim: bool, ignore_nan: bool, name: str):
    xp = input._backend.xp
    if dim is None:
        flat = reshape(input, -1)
        if flat.shape[0] == 0:
            nan = xp.full((), np.nan, dtype=input._data.dtype)
            return _wrap_array(nan, input._backend)
        return _median(flat, 0, False, ignore_nan, name)[0]
    d = norm_dim(dim, input.ndim, name) if input.ndim else 0
    if input.ndim == 0:
        return input.clone(), _wrap_idx(input, xp.zeros(()))
    n = input.shape[d]
    if n == 0:
        raise IndexError(f"{name}: cannot compute the median of an empty dimension {d} "
                         f"(shape {tuple(input.shape)})")
    x = input._data
    if x.dtype.kind in "fV":
        nans = xp.isnan(x).sum(axis=d, keepdims=True)
    else:
        nans = xp.zeros(x.shape[:d] + (1,) + x.shape[d + 1:], dtype=np.int64)
    if ignore_nan:  # the lower median of the non-NaN values (NaN when all are NaN)
        count = n - nans
        pos = xp.where(count > 0, (count - 1) // 2, 0)
    else:  # a NaN anywhere in the slice makes the median NaN (NaNs sort last)
        pos = xp.where(nans > 0, n - nans, (n - 1) // 2)
    return _pick(input, d, pos.astype(np.int64), keepdim)


@dim_alias
def median(input: Tensor, dim=None, keepdim: bool = False):
    """The lower median (of an even count, the smaller of the two middle values): of all
    elements when `dim` is None (a tensor), else (values, indices) along `dim`. NaN
    propagates."""
    out = _median(input, dim, keepdim, False, "median")
    return out if dim is None else return_types.median(*out)


@dim_alias
def nanmedian(input: Tensor, dim=None, keepdim: bool = False):
    """median ignoring NaNs."""
    out = _median(input, dim, keepdim, True, "nanmedian")
    return out if dim is None else return_types.nanmedian(*out)


@dim_alias
def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """The most frequent value along `dim` (the smallest among equally frequent ones), and
    the index of its last occurrence, as (values, indices)."""
    xp = input._backend.xp
    if input.ndim == 0:
        return return_types.mode(input.clone(), _wrap_idx(input, xp.zeros(())))
    d = norm_dim(dim, input.ndim, "mode")
    n = input.shape[d]
    if n == 0:
        raise IndexError(f"mode: cannot compute the mode of an empty dimension {d} "
                         f"(shape {tuple(input.shape)})")
    x = xp.moveaxis(input._data, d, -1)
    order = xp.argsort(x, axis=-1, kind="stable")
    s = xp.take_along_axis(x, order, axis=-1)
    # Run lengths of equal values in the sorted slice: a run starts where the value changes.
    new = xp.ones(s.shape, dtype=bool)
    new[..., 1:] = s[..., 1:] != s[..., :-1]
    pos = xp.broadcast_to(xp.arange(n), s.shape)
    start = input._backend.accumulate("maximum", xp.where(new, pos, 0), -1)
    length = pos - start + 1  # at each run's last element, the run's length
    best = xp.argmax(length, axis=-1)[..., None]  # first (smallest value) of the longest
    # The sort is stable, so the run's last element is the value's last occurrence.
    idx = xp.take_along_axis(order, best, axis=-1)
    idx_t = _wrap_idx(input, xp.moveaxis(idx, -1, d))
    values = gather(input, d, idx_t)
    if not keepdim:
        values, idx_t = values.squeeze(d), idx_t.squeeze(d)
    return return_types.mode(values, idx_t)


@dim_alias
def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim: int | None = None):
    """The distinct values (sorted), optionally with the inverse indices that rebuild
    `input` and the count of each; with `dim`, the distinct slices along `dim`. Not
    differentiable (as in PyTorch)."""
    xp, be = input._backend.xp, input._backend
    x = input._data
    if dim is not None:
        dim = norm_dim(dim, input.ndim, "unique")
        if x.shape[dim] == 0 and x.size == 0:
            vals, inv, cnt = x, xp.zeros(0, dtype=np.int64), xp.zeros(0, dtype=np.int64)
        else:
            vals, inv, cnt = np.unique(np.asarray(_host(x)), return_inverse=True,
                                       return_counts=True, axis=dim)
            vals, inv, cnt = xp.asarray(vals), xp.asarray(inv), xp.asarray(cnt)
        inv = inv.reshape(-1)
    else:
        vals, inv, cnt = xp.unique(x.reshape(-1), return_inverse=True, return_counts=True)
        inv = inv.reshape(x.shape)
    out = [_wrap_array(xp.ascontiguousarray(vals), be)]
    if return_inverse:
        out.append(_wrap_array(inv.astype(np.int64), be))
    if return_counts:
        out.append(_wrap_array(cnt.astype(np.int64), be))
    return out[0] if len(out) == 1 else tuple(out)


def _host(a):
    return a.get() if hasattr(a, "get") else a

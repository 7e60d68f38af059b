"""Indexing, gather/scatter and segment ops.

Gradients of every read (getitem, gather, index_select) are scatter-adds, so repeated
indices accumulate their contributions; gradients of every scatter are reads.
"""

from __future__ import annotations

import builtins

import numpy as np

from ..autograd.function import Op
from ..autograd.views import make_view
from ..errors import DeviceError, ShapeError
from ..tensor import Tensor, _wrap_array
from ._util import norm_dim
from .broadcast import sum_to


# --- __getitem__ / __setitem__ ------------------------------------------------------------
def _normalize_key(x: Tensor, key):
    """Convert Tensor/list indices to backend arrays; report whether indexing is basic."""
    if _sequence_as_tuple(key):
        key = tuple(key)
    elif not isinstance(key, tuple):
        key = (key,)
    out, basic = [], True
    for k in key:
        if isinstance(k, Tensor):
            if k._backend is not x._backend:
                raise DeviceError(f"getitem: indices are on {k.device} but the tensor is on "
                                  f"{x.device}")
            if k._data.dtype.kind not in "iub":
                raise IndexError(f"getitem: tensors used as indices must be long, int or bool, "
                                 f"got {k.dtype}")
            out.append(k._data)
            basic = False
        elif not isinstance(k, np.ndarray) and isinstance(k, x._backend.array_type):
            # a device index array: the second half of a key split by _split_int_key
            if k.dtype.kind not in "iub":
                raise IndexError(f"getitem: index arrays must be integer or bool, got {k.dtype}")
            out.append(k)
            basic = False
        elif isinstance(k, (list, tuple, np.ndarray)):
            arr = np.asarray(k)
            if arr.size == 0 and arr.dtype.kind == "f":  # [] selects nothing, as in torch
                arr = arr.astype(np.int64)
            if arr.dtype.kind not in "iub":
                raise IndexError(f"getitem: index arrays must be integer or bool, got {arr.dtype}")
            out.append(x._backend.asarray(arr))
            basic = False
        elif k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer)):
            if isinstance(k, bool):
                basic = False
            out.append(k)
        else:
            raise IndexError(f"getitem: unsupported index type {type(k).__name__}")
    return tuple(out), basic


def _sequence_as_tuple(key) -> bool:
    """PyTorch's (and old NumPy's) rule: a list index holding a sequence, slice, Ellipsis,
    None or Tensor is a tuple of indices (x[[[0, 1], [1, 2]]] is x[[0, 1], [1, 2]]), while
    a flat list of ints or bools is one index array."""
    if not isinstance(key, list) or len(key) >= 32:
        return False
    return builtins.any(isinstance(k, (list, tuple, slice, Tensor, np.ndarray)) or k is None
                        or k is Ellipsis for k in key)


def _index_error(op: str, shape: tuple, err: Exception) -> IndexError:
    return IndexError(f"{op}: {err} (tensor of shape {tuple(shape)})")


class GetItem(Op):
    """y = x[key];  x̄ = zeros with ȳ added at key (repeated indices accumulate)."""

    @staticmethod
    def forward(ctx, x, key, basic):
        ctx.shape, ctx.key, ctx.basic = x.shape, key, basic
        try:
            out = x[key]
        except IndexError as e:
            raise _index_error("getitem", x.shape, e) from None
        if basic and type(out) is not type(x):  # NumPy gives a scalar: ask for a 0-d view
            out = x[key + (Ellipsis,)] if Ellipsis not in key else x[key][...]
        return out

    @staticmethod
    def backward(ctx, g):
        return IndexBackward.apply(g, ctx.shape, ctx.key, ctx.basic), None, None


class IndexBackward(Op):
    """z = zeros(shape) with g added at key;  ḡ = z̄[key]."""

    @staticmethod
    def forward(ctx, g, shape, key, basic):
        ctx.key, ctx.basic = key, basic
        out = ctx.xp.zeros(shape, dtype=g.dtype)
        if basic:
            out[key] = g
        else:
            ctx.backend.index_add_(out, key, g)
        return out

    @staticmethod
    def backward(ctx, gz):
        return GetItem.apply(gz, ctx.key, ctx.basic), None, None, None


def _split_int_key(k: tuple, ndim: int):
    """(basic key, advanced key) when `k` mixes ints with index arrays, else None. PyTorch
    applies ints (with slices and None) first and the arrays to the result; NumPy would treat
    each int as one more advanced index and, when they are not adjacent to the arrays, move
    the indexed dims to the front: x[0, :, [0, 1]] is (2, n) in NumPy but (n, 2) in torch."""
    def is_int(c):
        return isinstance(c, (int, np.integer)) and not isinstance(c, bool)

    def consumed(c):
        if c is None or c is Ellipsis:
            return 0
        return c.ndim if getattr(c, "dtype", None) is not None and c.dtype.kind == "b" else 1

    if not any(map(is_int, k)):
        return None
    n_ellipsis = ndim - builtins.sum(consumed(c) for c in k)
    if n_ellipsis < 0:
        return None  # too many indices: the plain path raises the IndexError
    first, second = [], []
    for c in k:
        if c is Ellipsis:
            first += [slice(None)] * n_ellipsis
            second += [slice(None)] * n_ellipsis
        elif c is None or isinstance(c, slice):
            first.append(c)
            second.append(slice(None))
        elif is_int(c):
            first.append(c)
        else:
            first += [slice(None)] * consumed(c)
            second.append(c)
    return tuple(first), tuple(second)


def getitem(x: Tensor, key) -> Tensor:
    """x[key] for ints, slices, None, Ellipsis, bool masks and integer arrays/tensors."""
    k, basic = _normalize_key(x, key)
    split = None if basic else _split_int_key(k, x.ndim)
    if split is not None:
        return getitem(getitem(x, split[0]), split[1])
    out = GetItem.apply(x, k, basic)
    if basic:
        make_view(out, x, lambda b: getitem(b, k), "getitem")
    return out


class IndexPut(Op):
    """y = x with y[key] = v;  x̄ = ȳ with zeros at key,  v̄ = sum_to(ȳ[key], v.shape)."""

    @staticmethod
    def forward(ctx, x, key, v):
        out = x.copy()
        try:
            out[key] = v
        except IndexError as e:
            raise _index_error("setitem", x.shape, e) from None
        except ValueError:
            target = x[key].shape
            raise ShapeError(f"setitem: value of shape {getattr(v, 'shape', ())} cannot be "
                             f"broadcast to the indexed shape {target}") from None
        ctx.key = key
        ctx.v_shape = getattr(v, "shape", ())
        return out

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        gx = gv = None
        if need[0]:
            mask = ctx.xp.ones(g.shape, dtype=g._data.dtype)
            mask[ctx.key] = 0
            gx = g * _wrap_array(mask, ctx.backend)
        if need[2]:
            gv = sum_to(GetItem.apply(g, ctx.key, False), ctx.v_shape)
        return gx, None, gv


def index_put(x: Tensor, key, value) -> Tensor:
    """The value of `x` after `x[key] = value` (out of place; used by __setitem__)."""
    k, _ = _normalize_key(x, key)
    if isinstance(value, Tensor):
        if value._backend is not x._backend:
            raise DeviceError(f"setitem: value is on {value.device} but the tensor is on "
                              f"{x.device}")
        if value.dtype is not x.dtype:
            value = value.to(x.dtype)
    return IndexPut.apply(x, k, value)


# --- gather / scatter ------------------------------------------------------------------------
def _check_index(op: str, x: Tensor, index: Tensor) -> None:
    if not isinstance(index, Tensor):
        raise TypeError(f"{op}: index must be a Tensor, got {type(index).__name__}")
    if index._backend is not x._backend:
        raise DeviceError(f"{op}: index is on {index.device} but input is on {x.device}")
    if index._data.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got {index.dtype}")


def _check_bounds(op: str, x: Tensor, dim: int, index: Tensor) -> None:
    """Every index in [0, n) along `dim`, as torch requires (NumPy would wrap negatives).

    Checked on the CPU only: on a GPU it would read the index range back to the host,
    a synchronisation per call inside the training step (PyTorch asserts on the device)."""
    n = x.shape[dim] if x.ndim else 1
    bad = index_out_of_range(index, n)
    if bad is not None:
        raise IndexError(f"{op}: index {bad} is out of bounds for dimension "
                         f"{dim} with size {n} (input shape {tuple(x.shape)})")


def index_out_of_range(index: Tensor, n: int) -> int | None:
    """An entry of the integer tensor `index` outside [0, n) (the smallest if one is
    negative, else the largest), or None. Checked on the CPU only: on a GPU it would read
    the index range back to the host, a synchronisation per call (PyTorch asserts on the
    device); callers use it to name their own op and argument in the error."""
    arr = index._data
    span = index._backend.value_range(arr) if arr.size else None
    if span is None:
        return None
    lo, hi = int(span[0]), int(span[1])
    if lo < 0:
        return lo
    return hi if hi >= n else None


def _full_index(xp, index, dim: int) -> tuple:
    """Index arrays addressing out[index[i,j,..] along dim, i, j, ...]."""
    out = []
    for d, n in enumerate(index.shape):
        if d == dim:
            out.append(index)
        else:  # an arange along axis d, broadcast against the others
            shape = [1] * index.ndim
            shape[d] = n
            out.append(xp.arange(n).reshape(shape))
    return tuple(out)


class Gather(Op):
    """y[i][j] = x[index[i][j]][j] (dim 0);  x̄ = scatter_add(zeros, dim, index, ȳ)."""

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.shape, ctx.dim, ctx.index = x.shape, dim, index
        xp = ctx.xp
        if x.ndim == 0:
            return x.copy()
        try:
            return x[_full_index(xp, index, dim)]
        except IndexError as e:
            raise _index_error("gather", x.shape, e) from None

    @staticmethod
    def backward(ctx, g):
        if not ctx.shape:
            return g, None, None
        zeros = _wrap_array(ctx.xp.zeros(ctx.shape, dtype=g._data.dtype), ctx.backend)
        return scatter_add(zeros, ctx.dim, _wrap_array(ctx.index, ctx.backend), g), None, None


def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """Values of `input` along `dim` at `index` (same ndim as input)."""
    _check_index("gather", input, index)
    d = norm_dim(dim, input.ndim, "gather")
    if index.ndim != input.ndim:
        raise ShapeError(f"gather: index {tuple(index.shape)} and input {tuple(input.shape)} "
                         "must have the same number of dimensions")
    for i, (a, b) in enumerate(zip(index.shape, input.shape)):
        if i != d and a > b:
            raise ShapeError(f"gather: index {tuple(index.shape)} is larger than input "
                             f"{tuple(input.shape)} in dimension {i}")
    _check_bounds("gather", input, d, index)
    return Gather.apply(input, d, index._data)


class ScatterAdd(Op):
    """y = x;  y[index[i][j]][j] += src[i][j] (dim 0);  x̄ = ȳ,  src̄ = gather(ȳ, dim, index)."""

    @staticmethod
    def forward(ctx, x, dim, index, src):
        ctx.dim, ctx.index, ctx.src_shape = dim, index, src.shape
        out = x.copy()
        if index.size:
            region = src[tuple(slice(0, n) for n in index.shape)]
            try:
                ctx.backend.index_add_(out, _full_index(ctx.xp, index, dim), region)
            except IndexError as e:
                raise _index_error("scatter_add", x.shape, e) from None
        return out

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        gsrc = None
        if need[3]:
            gsrc = gather(g, ctx.dim, _wrap_array(ctx.index, ctx.backend))
            if gsrc.shape != ctx.src_shape:
                from .shape import pad

                widths = []
                for n, m in reversed(list(zip(gsrc.shape, ctx.src_shape))):
                    widths += [0, m - n]
                gsrc = pad(gsrc, widths)
        return (g if need[0] else None), None, None, gsrc


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """input with src[i][j] added at index[i][j] along dim (repeats accumulate)."""
    _check_index("scatter_add", input, index)
    d = norm_dim(dim, input.ndim, "scatter_add")
    if not isinstance(src, Tensor) or src._backend is not input._backend:
        raise DeviceError(f"scatter_add: src must be a Tensor on {input.device}")
    if not (index.ndim == input.ndim == src.ndim) or any(
            i > s for i, s in zip(index.shape, src.shape)) or any(
            i > n for k, (i, n) in enumerate(zip(index.shape, input.shape)) if k != d):
        raise ShapeError(f"scatter_add: index {tuple(index.shape)}, src {tuple(src.shape)} and "
                         f"input {tuple(input.shape)} are incompatible (same ndim; index no "
                         "larger than src, nor than input outside dim)")
    _check_bounds("scatter_add", input, d, index)
    if src.dtype is not input.dtype:
        src = src.to(input.dtype)
    return ScatterAdd.apply(input, d, index._data, src)


class IndexSelect(Op):
    """y = x[..., index, ...] along dim;  x̄ = index_add(zeros, dim, index, ȳ)."""

    @staticmethod
    def forward(ctx, x, dim, index):
        ctx.shape, ctx.dim, ctx.index = x.shape, dim, index
        try:
            return ctx.xp.take(x, index, axis=dim)
        except IndexError as e:
            raise _index_error("index_select", x.shape, e) from None

    @staticmethod
    def backward(ctx, g):
        zeros = _wrap_array(ctx.xp.zeros(ctx.shape, dtype=g._data.dtype), ctx.backend)
        return index_add(zeros, ctx.dim, _wrap_array(ctx.index, ctx.backend), g), None, None


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """The slices of `input` along `dim` at the 1-d `index`."""
    _check_index("index_select", input, index)
    if index.ndim > 1:
        raise ShapeError(f"index_select: index must be 1-d, got shape {tuple(index.shape)}")
    d = norm_dim(dim, input.ndim, "index_select")
    _check_bounds("index_select", input, d, index)
    idx = index._data.reshape(-1)
    if input.ndim == 0:
        return reshape_0d(input, idx)
    return IndexSelect.apply(input, d, idx)


def reshape_0d(input: Tensor, idx) -> Tensor:
    return input.reshape(1)[_wrap_array(idx, input._backend)].reshape(())


class IndexAdd(Op):
    """y = x;  y[..., index[i], ...] += α·source[..., i, ...];
    x̄ = ȳ,  sourcē = α·index_select(ȳ, dim, index)."""

    @staticmethod
    def forward(ctx, x, dim, index, source, alpha):
        ctx.dim, ctx.index, ctx.alpha = dim, index, alpha
        out = x.copy()
        if alpha != 1:
            source = source * alpha
        try:
            ctx.backend.index_add_(out, (slice(None),) * dim + (index,), source)
        except IndexError as e:
            raise _index_error("index_add", x.shape, e) from None
        return out

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        gs = None
        if need[3]:
            gs = index_select(g, ctx.dim, _wrap_array(ctx.index, ctx.backend))
            if ctx.alpha != 1:
                gs = gs * ctx.alpha
        return (g if need[0] else None), None, None, gs, None


def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    """input with alpha·source added at `index` along `dim` (repeats accumulate)."""
    _check_index("index_add", input, index)
    d = norm_dim(dim, input.ndim, "index_add")
    _check_bounds("index_add", input, d, index)
    if not isinstance(source, Tensor) or source._backend is not input._backend:
        raise DeviceError(f"index_add: source must be a Tensor on {input.device}")
    idx = index._data.reshape(-1)
    if input.ndim == 0 and source.ndim == 0 and idx.shape[0] == 1:  # torch treats 0-d as (1,)
        return index_add(input.reshape(1), 0, index.reshape(1), source.reshape(1),
                         alpha=alpha).reshape(())
    expected = input.shape[:d] + (idx.shape[0],) + input.shape[d + 1:]
    if source.shape != expected:
        raise ShapeError(f"index_add: source of shape {tuple(source.shape)} does not match "
                         f"input {tuple(input.shape)} with {idx.shape[0]} indices along dim {d} "
                         f"(expected {expected})")
    if source.dtype is not input.dtype:
        source = source.to(input.dtype)
    return IndexAdd.apply(input, d, idx, source, alpha)


def segment_sum(data: Tensor, segment_ids: Tensor, num_segments: int) -> Tensor:
    """out[s] = Σ data[i] over rows i with segment_ids[i] == s (rows of dim 0)."""
    _check_index("segment_sum", data, segment_ids)
    if segment_ids.ndim != 1 or segment_ids.shape[0] != data.shape[0]:
        raise ShapeError(f"segment_sum: segment_ids {tuple(segment_ids.shape)} must be 1-d with "
                         f"one id per row of data {tuple(data.shape)}")
    zeros = _wrap_array(data._backend.xp.zeros((num_segments,) + data.shape[1:],
                                               dtype=data._data.dtype), data._backend)
    return index_add(zeros, 0, segment_ids, data)

"""Reductions: sum, mean, var, amax/amin, max/min, logsumexp, norm, arg-reductions.

Every VJP broadcasts the (keepdim-shaped) cotangent back over the reduced axes.
"""

from __future__ import annotations

import math

from .._autocast import FP32, autocast_inputs
from .._dtype import is_inexact
from ..autograd.function import Op
from ..tensor import Tensor, _wrap_array
from ._dimarg import dim_alias
from ._util import norm_dim, norm_dims
from .broadcast import broadcast_to, sum_to  # noqa: F401 - sum_to: as gg.ops.sum_to
from .index import scatter_add


def _keep_shape(shape: tuple, dims: tuple) -> tuple:
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


def _count(shape: tuple, dims: tuple) -> int:
    return math.prod(shape[i] for i in dims)


def _spread(g: Tensor, shape: tuple, dims: tuple) -> Tensor:
    """Broadcast a reduction's cotangent back to the input shape."""
    return broadcast_to(g.reshape(_keep_shape(shape, dims)), shape)


class Sum(Op):
    """y = Σ_dims x;  x̄ = broadcast(ȳ)."""

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims = x.shape, dims
        out = ctx.backend.sum(x, dims, keepdim)
        return out if is_inexact(x.dtype) else out.astype("int64")

    @staticmethod
    def backward(ctx, g):
        return _spread(g, ctx.shape, ctx.dims), None, None


class Mean(Op):
    """y = Σ_dims x / n;  x̄ = broadcast(ȳ) / n."""

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims = x.shape, dims
        return ctx.xp.mean(x, axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        n = _count(ctx.shape, ctx.dims)
        return _spread(g / n if n else g * math.nan, ctx.shape, ctx.dims), None, None


class Var(Op):
    """y = Σ (x − x̄)² / (n − c);  x̄ = broadcast(ȳ) · 2(x − mean) / (n − c)."""

    @staticmethod
    def forward(ctx, x, dims, correction, keepdim):
        ctx.save_inputs(0)
        ctx.dims, ctx.correction = dims, correction
        return ctx.xp.var(x, axis=dims, ddof=correction, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_input(0)
        dims = ctx.dims
        denom = _count(x.shape, dims) - ctx.correction
        centered = x - mean(x, dims, keepdim=True)
        scale = 2.0 / denom if denom else math.inf  # as torch: no clamp of n − c here
        return _spread(g, x.shape, dims) * centered * scale, None, None, None


class Extremum(Op):
    """y = max (or min) over dims;  x̄ = broadcast(ȳ) · [x = y] / #ties (shared evenly)."""

    @staticmethod
    def forward(ctx, x, dims, keepdim, largest):
        xp = ctx.xp
        ctx.save_inputs(0)
        ctx.save_output()
        ctx.dims = dims
        if [d for d in dims if x.shape[d] == 0]:
            raise RuntimeError(f"{'amax' if largest else 'amin'}: cannot reduce over a zero-size "
                               f"dimension of shape {x.shape} (the operation has no identity)")
        return (xp.amax if largest else xp.amin)(x, axis=dims, keepdims=keepdim)

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_input(0)
        y = ctx.saved_output
        dims = ctx.dims
        keep = _keep_shape(x.shape, dims)
        mask = x._data == y._data.reshape(keep)
        count = mask.sum(axis=dims, keepdims=True)
        dt = g._data.dtype
        share = g.reshape(keep) / _wrap_array(count.astype(dt), ctx.backend)
        # share·mask, not where(mask, share, 0): as in torch, a NaN maximum (no element equals
        # it, so share = ȳ/0) gives NaN gradients rather than silently zero ones
        return share * _wrap_array(mask.astype(dt), ctx.backend), None, None, None


class ExtremumDim(Op):
    """(values, indices) = max (or min) along one dim;  x̄ = ȳ scattered to the indices."""

    @staticmethod
    def forward(ctx, x, dim, keepdim, largest):
        xp = ctx.xp
        if x.ndim and x.shape[dim] == 0:
            raise IndexError(f"{'max' if largest else 'min'}: cannot reduce over a zero-size "
                             f"dimension {dim} of shape {x.shape}")
        src = x if x.ndim else x.reshape(1)
        idx = (xp.argmax if largest else xp.argmin)(src, axis=dim, keepdims=True)
        vals = xp.take_along_axis(src, idx, axis=dim)
        ctx.shape, ctx.dim, ctx.idx = x.shape, dim, idx
        if not keepdim or not x.ndim:
            vals, idx = vals.squeeze(dim), idx.squeeze(dim)
            if not x.ndim:
                vals, idx = vals.reshape(()), idx.reshape(())
        return vals, idx.astype("int64")

    @staticmethod
    def backward(ctx, g, _gi):
        shape, dim = ctx.shape, ctx.dim
        if not shape:
            return g, None, None, None
        idx = _wrap_array(ctx.idx, ctx.backend)
        zeros = _wrap_array(ctx.xp.zeros(shape, dtype=g._data.dtype), ctx.backend)
        return scatter_add(zeros, dim, idx, g.reshape(idx.shape)), None, None, None


class LogSumExp(Op):
    """y = log Σ exp x (stabilised by the max);  x̄ = broadcast(ȳ) · exp(x − y)."""

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        xp = ctx.xp
        ctx.save_inputs(0)
        ctx.save_output()
        ctx.dims, ctx.keepdim = dims, keepdim
        if x.size == 0:
            return xp.full(_reduced_shape(x.shape, dims, keepdim), -xp.inf, dtype=x.dtype)
        m = xp.amax(x, axis=dims, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        out = xp.log(xp.exp(x - m).sum(axis=dims, keepdims=True)) + m
        return out if keepdim else out.reshape(_reduced_shape(x.shape, dims, False))

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_input(0)
        y = ctx.saved_output
        keep = _keep_shape(x.shape, ctx.dims)
        return _spread(g, x.shape, ctx.dims) * (x - y.reshape(keep)).exp(), None, None


class Norm2(Op):
    """y = √(Σ x²);  x̄ = broadcast(ȳ) · x / y (0 where y = 0)."""

    @staticmethod
    def forward(ctx, x, dims, keepdim):
        xp = ctx.xp
        ctx.save_inputs(0)
        ctx.save_output()
        ctx.dims = dims
        return xp.sqrt((x * x).sum(axis=dims, keepdims=keepdim))

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_input(0)
        y = ctx.saved_output
        keep = _keep_shape(x.shape, ctx.dims)
        yk = y.reshape(keep)
        nonzero = yk != 0
        safe = yk.where(nonzero, 1.0)
        return (_spread(g, x.shape, ctx.dims) * x / safe).where(nonzero, 0.0), None, None


def _reduced_shape(shape: tuple, dims: tuple, keepdim: bool) -> tuple:
    if keepdim:
        return _keep_shape(shape, dims)
    return tuple(n for i, n in enumerate(shape) if i not in dims)


# --- functional API ------------------------------------------------------------------------
@dim_alias
def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A001
    """Sum over `dim` (all dims when None); integer inputs sum to int64. Under autocast a
    16-bit input is summed in float32, as every reduction below."""
    (input,) = autocast_inputs(FP32, input)
    if dtype is not None:
        input = input.to(dtype)
    return Sum.apply(input, norm_dims(dim, input.ndim, "sum"), keepdim)


@dim_alias
def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Arithmetic mean over `dim` (floating inputs only, as in PyTorch)."""
    (input,) = autocast_inputs(FP32, input)
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.category < 2:
        raise TypeError(f"mean: expected a floating point or complex input, got {input.dtype}; "
                        "pass dtype=gg.float32 or call .float() first")
    return Mean.apply(input, norm_dims(dim, input.ndim, "mean"), keepdim)


@dim_alias
def var(input: Tensor, dim=None, *, correction: int = 1, keepdim: bool = False,
        unbiased: bool | None = None) -> Tensor:
    """Variance over `dim`, unbiased by default (correction=1)."""
    (input,) = autocast_inputs(FP32, input)
    if unbiased is not None:
        correction = 1 if unbiased else 0
    if input.dtype.category < 2:
        raise TypeError(f"var: expected a floating point input, got {input.dtype}")
    return Var.apply(input, norm_dims(dim, input.ndim, "var"), correction, keepdim)


@dim_alias
def std(input: Tensor, dim=None, *, correction: int = 1, keepdim: bool = False,
        unbiased: bool | None = None) -> Tensor:
    """Standard deviation: √var."""
    return var(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased).sqrt()


@dim_alias
def amax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Maximum over `dim` (ties share the gradient evenly)."""
    return Extremum.apply(input, norm_dims(dim, input.ndim, "amax"), keepdim, True)


@dim_alias
def amin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Minimum over `dim` (ties share the gradient evenly)."""
    return Extremum.apply(input, norm_dims(dim, input.ndim, "amin"), keepdim, False)


def _extremum(input: Tensor, dim, keepdim: bool, largest: bool, name: str):
    if isinstance(dim, Tensor):  # torch.max(input, other): the elementwise maximum
        return input.maximum(dim) if largest else input.minimum(dim)
    if dim is None:
        return Extremum.apply(input, tuple(range(input.ndim)), False, largest)
    values, indices = ExtremumDim.apply(input, norm_dim(dim, input.ndim, name), keepdim,
                                        largest)
    return MaxResult(values, indices)


@dim_alias
def max(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """max(): the largest element; max(dim): (values, indices); max(other): elementwise."""
    return _extremum(input, dim, keepdim, True, "max")


@dim_alias
def min(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """min(): the smallest element; min(dim): (values, indices); min(other): elementwise."""
    return _extremum(input, dim, keepdim, False, "min")


class MaxResult(tuple):
    """(values, indices), also readable as `.values` / `.indices` as in PyTorch."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


@dim_alias
def logsumexp(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """log Σ exp over `dim`, computed stably."""
    (input,) = autocast_inputs(FP32, input)
    return LogSumExp.apply(input, norm_dims(dim, input.ndim, "logsumexp"), keepdim)


@dim_alias
def norm(input: Tensor, p=2, dim=None, keepdim: bool = False) -> Tensor:
    """Vector p-norm over `dim` (all elements when None); 2 by default."""
    (input,) = autocast_inputs(FP32, input)
    dims = norm_dims(dim, input.ndim, "norm")
    if input._data.dtype.kind == "c":
        input = input.abs()  # the norm of a complex vector is that of its moduli
    if p in (2, "fro"):
        return Norm2.apply(input, dims, keepdim)
    if p == 1:
        return sum(input.abs(), dims, keepdim)
    if p == math.inf:
        return amax(input.abs(), dims, keepdim)
    return sum(input.abs() ** p, dims, keepdim) ** (1.0 / p)


def _arg(input: Tensor, dim, keepdim: bool, largest: bool) -> Tensor:
    xp = input._backend.xp
    fn = xp.argmax if largest else xp.argmin
    if input._data.size == 0:
        raise RuntimeError(f"{'argmax' if largest else 'argmin'}: expected a non-empty tensor, "
                           f"got shape {tuple(input.shape)}")
    if dim is None:
        out = fn(input._data.reshape(-1))
        if keepdim:
            out = out.reshape((1,) * input.ndim)
    else:
        d = norm_dim(dim, input.ndim, "argmax" if largest else "argmin")
        out = fn(input._data, axis=d, keepdims=keepdim) if input.ndim else fn(input._data)
    return _wrap_array(xp.asarray(out).astype("int64"), input._backend)


@dim_alias
def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the maximum (flattened when dim is None); never requires grad."""
    return _arg(input, dim, keepdim, True)


@dim_alias
def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the minimum (flattened when dim is None); never requires grad."""
    return _arg(input, dim, keepdim, False)


@dim_alias
def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """True where every element over `dim` is nonzero."""
    dims = norm_dims(dim, input.ndim, "all")
    return _wrap_array(input._backend.xp.all(input._data, axis=dims, keepdims=keepdim),
                       input._backend)


@dim_alias
def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """True where some element over `dim` is nonzero."""
    dims = norm_dims(dim, input.ndim, "any")
    return _wrap_array(input._backend.xp.any(input._data, axis=dims, keepdims=keepdim),
                       input._backend)


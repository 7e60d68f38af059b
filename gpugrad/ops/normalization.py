"""Normalization ops: `Normalize`, shared by layer norm and batch norm (training mode),
only standardises over `dims` (the affine part, ·γ + β, is ordinary broadcasting arithmetic
applied by `gg.nn.functional`); `LayerNormRows` is the fused layer norm over the last axis
that backends with row kernels (CUDA) run. Both are fused ops (`FusedOp`): the VJP on
arrays, and under `create_graph=True` the derivative of `standardize_composite`.
"""

from __future__ import annotations

from ..tensor import Tensor
from ._composite import FusedOp
from .reduce import mean


def standardize_composite(x: Tensor, dims: tuple, eps: float) -> Tensor:
    """x̂ = (x − μ)·(σ² + ε)^(−1/2) over `dims` with ordinary ops (biased σ²): the definition
    the normalization ops differentiate beyond first order."""
    xc = x - mean(x, dims, keepdim=True)
    return xc * (mean(xc * xc, dims, keepdim=True) + eps) ** -0.5


class Normalize(FusedOp):
    """x̂ = (x − μ)·r over `dims`, μ = mean(x), σ² = mean((x − μ)²) (biased), r = 1/√(σ² + ε);
    x̄ = r·(ȳ − mean(ȳ) − x̂·mean(ȳ·x̂)), means over `dims`.

    `stats` optionally passes (μ, σ²) already computed by the caller (batch norm needs them
    for its running statistics) so they are not computed twice; they must be those of x
    (the composite recomputes them).
    """

    @staticmethod
    def forward(ctx, x, dims, eps, stats=None, epilogue=None):
        ctx.dims, ctx.eps = dims, eps
        ctx.save_inputs(0)
        if epilogue is not None and stats is None:  # gg.fuse: pointwise ops follow
            y, ctx.mean, ctx.rstd = ctx.backend.rows_epilogue(
                lambda xb: _standardize_arrays(ctx.backend, xb, dims, eps), x, 0 not in dims,
                epilogue)
            return y
        y, ctx.mean, ctx.rstd = _standardize_arrays(ctx.backend, x, dims, eps, stats)
        if epilogue is not None:
            epilogue.finish(ctx.backend, y)
        return y

    @staticmethod
    def backward_arrays(ctx, g):
        x = ctx.saved_input(0)._data
        dims, rstd, backend = ctx.dims, ctx.rstd, ctx.backend
        xhat = x - ctx.mean
        xhat *= rstd
        gx = g - backend.mean(g, dims, True)
        xhat *= backend.mean(g * xhat, dims, True)
        gx -= xhat
        gx *= rstd
        return gx.astype(x.dtype, copy=False), None, None, None

    @staticmethod
    def composite(ctx, x, *_):
        return standardize_composite(x, ctx.dims, ctx.eps)


def _standardize_arrays(backend, x, dims: tuple, eps: float, stats=None) -> tuple:
    """(x̂, μ, r) of `Normalize` on arrays (μ and r keep the reduced dims)."""
    xp = backend.xp
    if stats is None:
        mean = backend.mean(x, dims, True)
        var = backend.mean(xp.square(x - mean), dims, True)
    else:
        mean, var = stats
    rstd = 1.0 / xp.sqrt(var + eps)
    return ((x - mean) * rstd).astype(x.dtype, copy=False), mean, rstd


def standardize(x, dims: tuple, eps: float, stats=None):
    """x standardised over `dims` (see `Normalize`)."""
    return Normalize.apply(x, dims, eps, stats)


class LayerNormRows(FusedOp):
    """Layer norm over the last axis in one fused pass each way (the backend's row kernels):
    y = x̂·w + b with x̂ = (x − μ)·r as in `Normalize`; w, b of shape (C,) or None.
    VJP: x̄ = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = ȳ·w, w̄ = Σ ȳ·x̂, b̄ = Σ ȳ (sums over the
    leading axes). The composite is `standardize_composite(x)·w + b`."""

    @staticmethod
    def forward(ctx, x, w, b, eps, epilogue=None):
        ctx.eps = eps
        ctx.save_inputs(0, 1, 2)
        if epilogue is None:
            y, ctx.mean, ctx.rstd = ctx.backend.layer_norm_forward(x, w, b, eps)
        else:  # gg.fuse: the pointwise ops that follow, in the row kernel's store
            y, ctx.mean, ctx.rstd = ctx.backend.layer_norm_forward(x, w, b, eps, epilogue)
        return y

    @staticmethod
    def backward_arrays(ctx, g):
        need = ctx.needs_input_grad
        x, w = ctx.saved_input(0)._data, ctx.saved_input(1)
        gx, gw, gb = ctx.backend.layer_norm_backward(
            x, None if w is None else w._data, ctx.mean, ctx.rstd, g)
        if need[2] and gb is None:  # a bias without a weight
            gb = g.reshape(-1, g.shape[-1]).sum(axis=0)
        return (gx if need[0] else None, gw if need[1] else None, gb if need[2] else None,
                None)

    @staticmethod
    def composite(ctx, x, w, b, _eps):
        y = standardize_composite(x, (x.ndim - 1,), ctx.eps)
        if w is not None:
            y = y * w
        return y if b is None else y + b


def layer_norm_rows(x, w, b, eps: float):
    """Layer norm of x over its last axis with optional (C,) weight and bias, fused."""
    return LayerNormRows.apply(x, w, b, eps)

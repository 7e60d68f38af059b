"""Normalization ops: `Normalize`, shared by layer norm and batch norm (training mode),
only standardises over `dims` (the affine part, ·γ + β, is ordinary broadcasting arithmetic
applied by `gg.nn.functional`); `LayerNormRows` is the fused layer norm over the last axis
that backends with row kernels (CUDA) run.
"""

from __future__ import annotations

from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import _wrap_array
from ._composite import vjp_through_composite


class Normalize(Op):
    """x̂ = (x − μ)·r over `dims`, μ = mean(x), σ² = mean((x − μ)²) (biased), r = 1/√(σ² + ε);
    x̄ = r·(ȳ − mean(ȳ) − x̂·mean(ȳ·x̂)), means over `dims`.

    `stats` optionally passes (μ, σ²) already computed by the caller (batch norm needs them
    for its running statistics) so they are not computed twice. The VJP recomputes x̂ and r
    from x with Tensor ops, so it is itself differentiable.
    """

    @staticmethod
    def forward(ctx, x, dims, eps, stats=None):
        xp = ctx.xp
        ctx.dims, ctx.eps = dims, eps
        ctx.save_inputs(0)
        if stats is None:
            mean = x.mean(axis=dims, keepdims=True)
            var = xp.square(x - mean).mean(axis=dims, keepdims=True)
        else:
            mean, var = stats
        rstd = 1.0 / xp.sqrt(var + eps)
        return ((x - mean) * rstd).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        dims = ctx.dims
        x = ctx.saved_input(0)
        xc = x - x.mean(dims, keepdim=True)
        rstd = ((xc * xc).mean(dims, keepdim=True) + ctx.eps) ** -0.5
        xhat = xc * rstd
        gx = rstd * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))
        return gx, None, None, None


def standardize(x, dims: tuple, eps: float, stats=None):
    """x standardised over `dims` (see `Normalize`)."""
    return Normalize.apply(x, dims, eps, stats)


class LayerNormRows(Op):
    """Layer norm over the last axis in one fused pass each way (the backend's row kernels):
    y = x̂·w + b with x̂ = (x − μ)·r as in `Normalize`; w, b of shape (C,) or None.
    VJP: x̄ = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = ȳ·w, w̄ = Σ ȳ·x̂, b̄ = Σ ȳ (sums over the
    leading axes). Under `create_graph=True` the VJP differentiates the composite
    `standardize(x)·w + b` instead."""

    @staticmethod
    def forward(ctx, x, w, b, eps):
        ctx.eps = eps
        ctx.save_inputs(0, 1, 2)
        y, ctx.mean, ctx.rstd = ctx.backend.layer_norm_forward(x, w, b, eps)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_input(0), ctx.saved_input(1)
        if is_grad_enabled():
            eps = ctx.eps
            return vjp_through_composite(
                ctx, (g,), lambda x, w, b, _: (_affine(standardize(x, (x.ndim - 1,), eps), w, b),),
                inputs=(x, w, ctx.saved_input(2), None))
        gx, gw, gb = ctx.backend.layer_norm_backward(
            x._data, None if w is None else w._data, ctx.mean, ctx.rstd, g._data)
        need = ctx.needs_input_grad
        be = ctx.backend
        if need[2] and gb is None:  # a bias without a weight
            gb = g._data.reshape(-1, g.shape[-1]).sum(axis=0)
        return (_wrap_array(gx, be) if need[0] else None,
                _wrap_array(gw, be) if need[1] else None,
                _wrap_array(gb, be) if need[2] else None, None)


def _affine(x, w, b):
    if w is not None:
        x = x * w
    return x if b is None else x + b


def layer_norm_rows(x, w, b, eps: float):
    """Layer norm of x over its last axis with optional (C,) weight and bias, fused."""
    return LayerNormRows.apply(x, w, b, eps)

"""Normalization op shared by layer norm and batch norm (training mode).

The affine part (·γ + β) is ordinary broadcasting arithmetic applied by `gg.nn.functional`;
this op only standardises over `dims`.
"""

from __future__ import annotations

from ..autograd.function import Op


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

"""Activation ops used by `gg.nn`: softmax, log-softmax, GELU, SiLU, Swish, leaky ReLU,
dropout.

Each Op's docstring states its forward and its VJP. VJPs are Tensor expressions (or a
backward Op with its own VJP, for GELU), so `create_graph=True` differentiates them again.
"""

from __future__ import annotations

import math

from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import _wrap_array
from .elementwise import exp, sigmoid, where
from .reduce import sum, sum_to  # noqa: A004 - gg.sum, not builtins.sum

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


# --- softmax family -----------------------------------------------------------------------
class Softmax(Op):
    """y = exp(x − max) / Σ_dim exp(x − max);  x̄ = y·(ȳ − Σ_dim ȳ·y)."""

    @staticmethod
    def forward(ctx, x, dim):
        xp = ctx.xp
        ctx.dim = dim
        ctx.save_output()
        if x.size == 0:  # nothing to normalise (and max() has no identity)
            return x.copy()
        if _fused_rows(ctx, x, dim):
            return ctx.backend.softmax(x)
        z = x - x.max(axis=dim, keepdims=True)
        e = xp.exp(z)
        e /= e.sum(axis=dim, keepdims=True)
        return e

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved_output
        if not is_grad_enabled() and _fused_rows(ctx, y, ctx.dim) and y.numel():
            return _wrap_array(ctx.backend.softmax_backward(y._data, g._data), ctx.backend), None
        gy = g * y
        return gy - y * sum(gy, ctx.dim, keepdim=True), None


class LogSoftmax(Op):
    """y = x − logsumexp_dim(x);  x̄ = ȳ − exp(y)·Σ_dim ȳ."""

    @staticmethod
    def forward(ctx, x, dim):
        xp = ctx.xp
        ctx.dim = dim
        ctx.save_output()
        if x.size == 0:
            return x.copy()
        if _fused_rows(ctx, x, dim):
            return ctx.backend.log_softmax(x)
        z = x - x.max(axis=dim, keepdims=True)
        return z - xp.log(xp.exp(z).sum(axis=dim, keepdims=True))

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved_output
        if not is_grad_enabled() and _fused_rows(ctx, y, ctx.dim) and y.numel():
            gx = ctx.backend.log_softmax_backward(y._data, g._data)
            return _wrap_array(gx, ctx.backend), None
        return g - exp(y) * sum(g, ctx.dim, keepdim=True), None


def _fused_rows(ctx, x, dim) -> bool:
    """Whether the backend's fused row kernels apply: they normalise over the last axis."""
    return ctx.backend.fused_kernels and dim is not None and dim == x.ndim - 1


# --- GELU -----------------------------------------------------------------------------------
def _gelu_grad(backend, x, approximate: str, cdf=None):
    """gelu'(x) as an array (`cdf`: Φ(x) if forward already computed it)."""
    xp = backend.xp
    if approximate == "tanh":
        u = _SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)
        t = xp.tanh(u)
        du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x * x)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du
    if cdf is None:
        cdf = backend.normal_cdf(x)
    pdf = _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
    return cdf + x * pdf


_GELU_KIND = {"none": "gelu", "tanh": "gelu_tanh"}  # the backend's activation kinds


class GELU(Op):
    """Exact: y = x·Φ(x) = ½x(1 + erf(x/√2));  tanh form: y = ½x(1 + tanh u),
    u = √(2/π)(x + 0.044715x³).  x̄ = GELUBackward(x, ȳ) = ȳ·gelu'(x), with
    gelu'(x) = Φ(x) + x·φ(x) (exact) or ½(1 + t) + ½x(1 − t²)·u' (t = tanh u)."""

    @staticmethod
    def forward(ctx, x, approximate):
        xp = ctx.xp
        ctx.approximate = approximate
        ctx.save_inputs(0)
        ctx.cdf = None
        if ctx.backend.fused_kernels:  # one kernel; the backward's recomputes Φ from x
            return ctx.backend.act_forward(_GELU_KIND[approximate], x)
        if approximate == "tanh":
            u = _SQRT_2_OVER_PI * (x + _GELU_C * x * x * x)
            return 0.5 * x * (1 + xp.tanh(u))
        # Φ is the expensive part (NumPy has no erf): keep it for backward.
        ctx.cdf = ctx.backend.normal_cdf(x)
        return x * ctx.cdf

    @staticmethod
    def backward(ctx, g):
        return GELUBackward.apply(ctx.saved_input(0), g, ctx.approximate, ctx.cdf), None


class GELUBackward(Op):
    """z = gelu'(x)·ȳ. Its VJP (double backward): ȳ̄ = gelu'(x)·z̄,  x̄ = z̄·ȳ·gelu''(x), with
    gelu''(x) = φ(x)(2 − x²) (exact) or, with t = tanh u, s = 1 − t²:
    s·u' − x·t·s·u'² + ½x·s·u'' (u' = √(2/π)(1 + 3c x²), u'' = √(2/π)·6c x)."""

    @staticmethod
    def forward(ctx, x, g, approximate, cdf=None):
        ctx.approximate, ctx.cdf = approximate, cdf
        ctx.save_inputs(0, 1)
        if cdf is None and ctx.backend.fused_kernels:
            return ctx.backend.act_backward(_GELU_KIND[approximate], x, g)
        return _gelu_grad(ctx.backend, x, approximate, cdf) * g

    @staticmethod
    def backward(ctx, gz):
        need = ctx.needs_input_grad
        x = ctx.saved_input(0)
        gx = gg = None
        if need[1]:
            gg = GELUBackward.apply(x, gz, ctx.approximate, ctx.cdf)
        if need[0]:
            g = ctx.saved_input(1)
            if ctx.approximate == "tanh":
                u = (x + x * x * x * _GELU_C) * _SQRT_2_OVER_PI
                t = u.tanh()
                s = 1 - t * t
                du = (1 + x * x * (3 * _GELU_C)) * _SQRT_2_OVER_PI
                d2u = x * (6 * _GELU_C * _SQRT_2_OVER_PI)
                second = s * du - x * t * s * du * du + x * s * d2u * 0.5
            else:
                pdf = exp(x * x * -0.5) * _INV_SQRT_2PI
                second = pdf * (2 - x * x)
            gx = gz * g * second
        return gx, gg, None, None


# --- SiLU / Swish ---------------------------------------------------------------------------
class SiLU(Op):
    """y = x·σ(x);  x̄ = ȳ·σ(x)·(1 + x·(1 − σ(x)))."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_inputs(0)
        return x * ctx.backend.act_forward("sigmoid", x)

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_input(0)
        s = sigmoid(x)
        return g * (s * (1 + x * (1 - s)))


class Swish(Op):
    """y = x·σ(βx);  with s = σ(βx):  x̄ = ȳ·(s + βx·s(1 − s)),
    β̄ = Σ (over the broadcast) ȳ·x²·s(1 − s).  β is a Tensor (learnable) or a number."""

    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_inputs(0, 1)
        ctx.beta, ctx.beta_shape = beta, getattr(beta, "shape", None)
        return ctx.backend.swish_forward(x, beta)

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        x = ctx.saved_input(0)
        beta = ctx.saved_input(1)
        need_beta = len(need) > 1 and need[1]
        if not is_grad_enabled():
            # No graph to record: the backend's fused pass computes the same formulas.
            gx, gb = ctx.backend.swish_backward(
                x._data, ctx.beta if beta is None else beta._data, g._data, need_beta)
            gx = _wrap_array(gx, ctx.backend) if need[0] else None
            if need_beta:
                gb = sum_to(_wrap_array(gb, ctx.backend), ctx.beta_shape)
            return gx, gb
        beta = ctx.beta if beta is None else beta
        s = sigmoid(x * beta)
        ds = s * (1 - s)
        gx = g * (s + x * beta * ds) if need[0] else None
        gb = sum_to(g * x * x * ds, ctx.beta_shape) if len(need) > 1 and need[1] else None
        return gx, gb


class LeakyReLU(Op):
    """y = x if x > 0 else α·x;  x̄ = ȳ if x > 0 else α·ȳ."""

    @staticmethod
    def forward(ctx, x, slope):
        ctx.slope = slope
        if ctx.backend.fused_kernels:  # one kernel each way, from x (no mask kept)
            ctx.mask = None
            ctx.save_inputs(0)
            return ctx.backend.act_forward("leaky_relu", x, slope=slope)
        ctx.mask = x > 0
        return ctx.xp.where(ctx.mask, x, x * slope)

    @staticmethod
    def backward(ctx, g):
        be = ctx.backend
        if ctx.mask is None:
            x = ctx.saved_input(0)
            if not is_grad_enabled():
                return _wrap_array(be.act_backward("leaky_relu", x._data, g._data,
                                                   slope=ctx.slope), be), None
            mask = _wrap_array(x._data > 0, be)
        else:
            mask = _wrap_array(ctx.mask, be)
        return where(mask, g, g * ctx.slope), None


class Dropout(Op):
    """y = x·m/(1 − p) with m ~ Bernoulli(1 − p) drawn on x's device;  x̄ = ȳ·m/(1 − p)."""

    @staticmethod
    def forward(ctx, x, p):
        keep = ctx.backend.uniform(x.shape, x.dtype) >= p
        scale = ctx.xp.asarray(keep, dtype=x.dtype) * (1.0 / (1.0 - p))
        ctx.scale = scale.astype(x.dtype, copy=False)
        return x * ctx.scale

    @staticmethod
    def backward(ctx, g):
        return g * _wrap_array(ctx.scale, ctx.backend), None


class PhiloxDropout(Op):
    """y = x·m/(1 − p) with m the keep mask of Philox4x32-10 at (seed, offset), made in the
    same pass (`Backend.dropout_forward`). The mask is not stored: the VJP, x̄ = ȳ·m/(1 − p),
    is this op again with the same (seed, offset), which regenerates it."""

    @staticmethod
    def forward(ctx, x, p, seed, offset):
        ctx.p, ctx.seed, ctx.offset = p, seed, offset
        return ctx.backend.dropout_forward(x, p, seed, offset)

    @staticmethod
    def backward(ctx, g):
        return PhiloxDropout.apply(g, ctx.p, ctx.seed, ctx.offset), None, None, None


def dropout(x, p: float):
    """Dropout of x with probability p (0 < p < 1) on x's backend: a regenerated Philox
    mask where the backend has the kernels for it (CUDA), a stored Bernoulli mask else."""
    backend = x._backend
    if backend.regenerates_dropout_mask:
        return PhiloxDropout.apply(x, p, *backend.philox_state(x.numel()))
    return Dropout.apply(x, p)


"""Loss ops used by `gg.nn`: cross-entropy from logits and the binary cross-entropies.

Each returns the unreduced, elementwise loss; `gg.nn.functional` applies the reduction.
Each Op's docstring states its forward and its VJP, written with Tensor ops so that
`create_graph=True` differentiates them again.
"""

from __future__ import annotations

import contextlib

from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled
from ..tensor import _wrap_array
from ._composite import vjp_through_composite
from .activation import LogSoftmax, Softmax
from .elementwise import abs, clamp, exp, log, log1p, relu, sigmoid  # noqa: A004


class SoftmaxCrossEntropy(Op):
    """Cross-entropy of logits x against a target distribution q (weights, label smoothing
    and ignored positions already folded into q), classes along `dim`:
    ℓ = −Σ_c q_c · log_softmax(x)_c;  x̄ = ȳ·(softmax(x)·Σ_c q_c − q),  q̄ = −ȳ·log_softmax(x).
    With a plain (weighted) one-hot q this is the familiar softmax − onehot; q is a Tensor
    (and gets its gradient) when the target probabilities require grad."""

    @staticmethod
    def forward(ctx, x, q, dim):
        xp = ctx.xp
        ctx.save_inputs(0)
        ctx.q, ctx.dim = q, dim
        z = x - x.max(axis=dim, keepdims=True)
        logp = z - xp.log(xp.exp(z).sum(axis=dim, keepdims=True))
        # 0·(−inf) must count as 0: a class with no target mass adds nothing.
        terms = xp.where(q != 0, q * logp, xp.zeros((), dtype=logp.dtype))
        return -terms.sum(axis=dim)

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_input(0)
        q = _wrap_array(ctx.q, ctx.backend)
        dim = ctx.dim
        need = ctx.needs_input_grad
        gx = gq = None
        if need[0]:
            p = Softmax.apply(x, dim)
            gx = g.unsqueeze(dim) * (p * q.sum(dim, keepdim=True) - q)
        if need[1]:
            gq = -(g.unsqueeze(dim) * LogSoftmax.apply(x, dim))
        return gx, gq, None


class IndexCrossEntropy(Op):
    """Cross-entropy of logits x (N, C) against integer targets t (N,), reduced, in one fused
    pass each way (the backend's row kernels): ℓ_n = logsumexp(x_n) − x_n[t_n] (0 where
    t_n is ignore_index), then summed, averaged over the rows kept, or left per row.
    VJP: x̄ = (softmax(x) − one_hot(t))·s, s = ȳ / #rows kept, ȳ, or ȳ_n. Under
    `create_graph=True` it differentiates `composite(x)`, the same loss through the dense
    one-hot form."""

    @staticmethod
    def forward(ctx, x, target, ignore_index, reduction, composite):
        ctx.target, ctx.ignore_index, ctx.reduction = target, ignore_index, reduction
        ctx.composite = composite
        ctx.save_inputs(0)
        loss, ctx.lse = ctx.backend.softmax_cross_entropy(x, target, ignore_index, reduction)
        return loss

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved_input(0)
        if is_grad_enabled():
            composite = ctx.composite
            return vjp_through_composite(ctx, (g,), lambda x, *_: (composite(x),),
                                         inputs=(x, None, None, None, None))
        gx = ctx.backend.softmax_cross_entropy_backward(
            x._data, ctx.target, ctx.lse, g._data, ctx.ignore_index, ctx.reduction)
        return _wrap_array(gx, ctx.backend), None, None, None, None


class BinaryCrossEntropy(Op):
    """ℓ = −(y·max(ln x, −100) + (1 − y)·max(ln(1 − x), −100)) for probabilities x;
    x̄ = ȳ·(x − y) / max(x(1 − x), 1e−12);  ȳ_y = ȳ·(max(ln(1 − x), −100) − max(ln x, −100))."""

    @staticmethod
    def forward(ctx, x, y):
        xp = ctx.xp
        ctx.save_inputs(0, 1)
        quiet = getattr(xp, "errstate", None)
        with quiet(divide="ignore") if quiet else contextlib.nullcontext():
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        return -(y * log_x + (1 - y) * log_1mx)

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        x = ctx.saved_input(0)
        y = ctx.saved_input(1)
        gx = gy = None
        if need[0]:
            gx = g * (x - y) / clamp(x * (1 - x), min=1e-12)
        if need[1]:
            gy = g * (clamp(log1p(-x), min=-100) - clamp(log(x), min=-100))
        return gx, gy


class BinaryCrossEntropyWithLogits(Op):
    """ℓ = (1 − y)·x + w·softplus(−x), w = 1 + (pos_weight − 1)·y (w = 1 without pos_weight),
    softplus(−x) = ln(1 + e^{−|x|}) + max(−x, 0) (stable for any x);
    x̄ = ȳ·(1 − y − w·(1 − σ(x)))  (= ȳ·(σ(x) − y) when w = 1);
    ȳ_y = ȳ·(−x + (pos_weight − 1)·softplus(−x))."""

    @staticmethod
    def forward(ctx, x, y, pos_weight):
        xp = ctx.xp
        ctx.save_inputs(0, 1, 2)
        ctx.has_pw = pos_weight is not None
        softplus = xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)
        w = 1 if pos_weight is None else 1 + (pos_weight - 1) * y
        return (1 - y) * x + w * softplus

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        x = ctx.saved_input(0)
        y = ctx.saved_input(1)
        pw = ctx.saved_input(2) if ctx.has_pw else None
        gx = gy = None
        if need[0]:
            if pw is None:
                gx = g * (sigmoid(x) - y)
            else:
                w = 1 + (pw - 1) * y
                gx = g * (1 - y - w * (1 - sigmoid(x)))
        if need[1]:
            gy = -x
            if pw is not None:
                gy = gy + (pw - 1) * (log1p(exp(-abs(x))) + relu(-x))
            gy = g * gy
        return gx, gy, None


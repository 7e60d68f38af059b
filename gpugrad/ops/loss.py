"""Loss ops used by `gg.nn`: cross-entropy from logits and the binary cross-entropies.

Each returns the unreduced, elementwise loss; `gg.nn.functional` applies the reduction.
Each op's docstring states its forward and its VJP; the softmax cross-entropies are fused
ops (`FusedOp`) whose composite is differentiated under `create_graph=True`, the binary ones
write their VJP with Tensor ops, differentiable again.
"""

from __future__ import annotations

import contextlib

from ..autograd.function import Op
from ..tensor import Tensor, _wrap_array
from ._composite import FusedOp
from .activation import log_softmax_array, log_softmax_composite, softmax_array
from .elementwise import abs, clamp, exp, log, log1p, relu, sigmoid, where  # noqa: A004


def cross_entropy_composite(x: Tensor, q: Tensor, dim: int) -> Tensor:
    """ℓ = −Σ_dim q·log_softmax(x) with ordinary ops, a class without target mass adding 0
    (not 0·(−inf)): the definition `SoftmaxCrossEntropy` differentiates beyond first order."""
    return -where(q != 0, q * log_softmax_composite(x, dim), 0.0).sum(dim)


class SoftmaxCrossEntropy(FusedOp):
    """Cross-entropy of logits x against a target distribution q (weights, label smoothing
    and ignored positions already folded into q), classes along `dim`:
    ℓ = −Σ_c q_c · log_softmax(x)_c;  x̄ = ȳ·(softmax(x)·Σ_c q_c − q),  q̄ = −ȳ·log_softmax(x).
    With a plain (weighted) one-hot q this is the familiar softmax − onehot; q is a Tensor
    (and gets its gradient) when the target probabilities require grad. Beyond first order
    it differentiates `cross_entropy_composite`."""

    @staticmethod
    def forward(ctx, x, q, dim):
        xp = ctx.xp
        ctx.save_inputs(0, 1)
        ctx.q, ctx.dim = q, dim
        logp = log_softmax_array(ctx.backend, x, dim)
        # 0·(−inf) must count as 0: a class with no target mass adds nothing.
        terms = xp.where(q != 0, q * logp, xp.zeros((), dtype=logp.dtype))
        return -terms.sum(axis=dim)

    @staticmethod
    def backward_arrays(ctx, g):
        x = ctx.saved_input(0)._data
        q, dim = ctx.q, ctx.dim
        need = ctx.needs_input_grad
        g = ctx.xp.expand_dims(g, dim)
        gx = gq = None
        if need[0]:
            gx = softmax_array(ctx.backend, x, dim)
            gx *= q.sum(axis=dim, keepdims=True)
            gx -= q
            gx *= g
        if need[1]:
            gq = log_softmax_array(ctx.backend, x, dim)
            gq *= -g
        return gx, gq, None

    @staticmethod
    def composite(ctx, x, q, _dim):
        if q is None:  # constant target probabilities, passed as an array
            q = _wrap_array(ctx.q, ctx.backend)
        return cross_entropy_composite(x, q, ctx.dim)


def dense_targets(xp, safe, valid, c: int, cdim: int, dt, weight=None,
                  label_smoothing: float = 0.0) -> tuple:
    """Integer class targets (as `safe` indices and a `valid` mask, arrays) as the dense
    target distribution of `SoftmaxCrossEntropy`, classes along `cdim`:
    q = ((1 − ε)·onehot + ε/C)·w·valid, and the total weight of the kept targets (the
    denominator of the "mean" reduction), Σ w[t]·valid."""
    onehot = xp.moveaxis((safe[..., None] == xp.arange(c)).astype(dt), -1, cdim)
    q = onehot * (1 - label_smoothing) + label_smoothing / c if label_smoothing else onehot
    if weight is not None:
        q = q * weight.reshape(tuple(c if i == cdim else 1 for i in range(q.ndim)))
    q = q * xp.expand_dims(valid, cdim).astype(dt)
    total = (valid.astype(dt) if weight is None else weight[safe] * valid).sum()
    return q, total


class IndexCrossEntropy(FusedOp):
    """Cross-entropy of logits x (N, C) against integer targets t (N,), reduced, in one fused
    pass each way (the backend's row kernels): ℓ_n = logsumexp(x_n) − x_n[t_n] (0 where
    t_n is ignore_index), then summed, averaged over the rows kept, or left per row.
    VJP: x̄ = (softmax(x) − one_hot(t))·s, s = ȳ / #rows kept, ȳ, or ȳ_n. The composite is
    the same loss through the dense one-hot form (`dense_targets`,
    `cross_entropy_composite`)."""

    @staticmethod
    def forward(ctx, x, target, ignore_index, reduction):
        ctx.target, ctx.ignore_index, ctx.reduction = target, ignore_index, reduction
        ctx.save_inputs(0)
        loss, ctx.lse = ctx.backend.softmax_cross_entropy(x, target, ignore_index, reduction)
        return loss

    @staticmethod
    def backward_arrays(ctx, g):
        x = ctx.saved_input(0)._data
        gx = ctx.backend.softmax_cross_entropy_backward(
            x, ctx.target, ctx.lse, g, ctx.ignore_index, ctx.reduction)
        return gx, None, None, None

    @staticmethod
    def composite(ctx, x, *_):
        xp, be = ctx.xp, ctx.backend
        t = ctx.target
        valid = t != ctx.ignore_index
        q, total = dense_targets(xp, xp.where(valid, t, 0), valid, x.shape[1], 1,
                                 x._data.dtype)
        loss = cross_entropy_composite(x, _wrap_array(q, be), 1)
        if ctx.reduction == "mean":
            return loss.sum() / _wrap_array(total, be)
        return loss.sum() if ctx.reduction == "sum" else loss


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


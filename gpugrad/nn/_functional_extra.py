"""More of `gg.nn.functional` (re-exported there): distances and similarities, the
remaining losses of torch.nn.functional, softmin, glu, gumbel_softmax and embedding with
max_norm. Everything is composed from existing ops, so gradients come from their VJPs."""

from __future__ import annotations

import math

import numpy as np

from ..autograd.grad_mode import no_grad
from ..creation import rand
from ..errors import ShapeError
from ..ops.elementwise import abs, cast, clamp, exp, log, sigmoid, sqrt, where  # noqa: A004
from ..ops.index import index_out_of_range, index_select
from ..ops.reduce import norm
from ..ops.shape import chunk
from ..ops.softmax import softmax
from ..tensor import Tensor
from ._functional_loss import _check_reduction, _reduce

__all__ = ["normalize", "cosine_similarity", "pairwise_distance", "kl_div",
           "margin_ranking_loss", "triplet_margin_loss", "cosine_embedding_loss",
           "poisson_nll_loss", "gaussian_nll_loss", "glu", "gumbel_softmax", "embedding",
           "hinge_embedding_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
           "multi_margin_loss", "triplet_margin_with_distance_loss", "pdist", "channel_shuffle",
           "multilabel_margin_loss"]


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out=None) -> Tensor:
    """x / max(‖x‖_p, ε) along `dim`."""
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported")
    return input / clamp(norm(input, p, dim, keepdim=True), min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Σ (x₁/max(‖x₁‖, ε))·(x₂/max(‖x₂‖, ε)) along `dim` (inputs broadcast), as PyTorch
    computes it (after broadcasting the inputs to one shape)."""
    shape = tuple(np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape)))
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    n1 = clamp(norm(x1, 2, dim, keepdim=True), min=eps)
    n2 = clamp(norm(x2, 2, dim, keepdim=True), min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """‖x₁ − x₂ + ε‖_p over the last dim."""
    return norm(x1 - x2 + eps, p, -1, keepdim=keepdim)


def _reduce_ext(loss: Tensor, reduction: str, op: str) -> Tensor:
    _check_reduction(reduction, op)
    return _reduce(loss, reduction, op)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Pointwise KL divergence for log-probabilities x: y·(log y − x) (0 where y = 0), or
    eʸ·(y − x) with `log_target`. "batchmean" divides the sum by the batch size."""
    if reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"kl_div: reduction must be one of ('mean', 'sum', 'none', "
                         f"'batchmean'), got {reduction!r}")
    if log_target:
        loss = exp(target) * (target - input)
    else:
        safe = where(target > 0, target, 1.0)
        loss = target * log(safe) - target * input
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """max(0, −y·(x₁ − x₂) + margin)."""
    loss = clamp(-target * (input1 - input2) + margin, min=0.0)
    return _reduce_ext(loss, reduction, "margin_ranking_loss")


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor,
                        margin: float = 1.0, p: float = 2, eps: float = 1e-6,
                        swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    """max(d(a, p) − d(a, n) + margin, 0) with d the `pairwise_distance`; `swap` uses
    min(d(a, n), d(p, n))."""
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise ShapeError(f"triplet_margin_loss: anchor {tuple(anchor.shape)}, positive "
                         f"{tuple(positive.shape)} and negative {tuple(negative.shape)} must "
                         "have the same number of dims")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_swap = pairwise_distance(positive, negative, p, eps)
        d_neg = where(d_swap < d_neg, d_swap, d_neg)
    loss = clamp(margin + d_pos - d_neg, min=0.0)
    return _reduce_ext(loss, reduction, "triplet_margin_loss")


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """1 − cos(x₁, x₂) where y = 1, max(0, cos(x₁, x₂) − margin) where y = −1, with
    cos = Σx₁x₂ / √((Σx₁² + 1e-12)(Σx₂² + 1e-12)) over the last dim (PyTorch's form)."""
    dim = input1.ndim - 1
    prod = (input1 * input2).sum(dim)
    m1 = (input1 * input1).sum(dim) + 1e-12
    m2 = (input2 * input2).sum(dim) + 1e-12
    cos = prod / sqrt(m1 * m2)
    loss = where(target == 1, 1 - cos, 0.0) + where(target == -1,
                                                      clamp(cos - margin, min=0.0), 0.0)
    return _reduce_ext(loss, reduction, "cosine_embedding_loss")


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """Poisson negative log-likelihood: eˣ − y·x (`log_input`) or x − y·log(x + ε); `full`
    adds Stirling's y·log y − y + ½log(2πy) where y > 1."""
    if log_input:
        loss = exp(input) - target * input
    else:
        loss = input - target * log(input + eps)
    if full:
        safe = where(target > 1, target, 1.0)
        stirling = safe * log(safe) - safe + 0.5 * log(2 * math.pi * safe)
        loss = loss + where(target > 1, stirling, 0.0)
    return _reduce_ext(loss, reduction, "poisson_nll_loss")


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Tensor | float, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """½(log max(σ², ε) + (x − y)²/max(σ², ε)) (+ ½log 2π when `full`). `var` has the
    input's shape, or one dim less, or a last dim of 1 (one variance per sample); the clamp
    at ε passes the gradient through unchanged, as PyTorch's does."""
    op = "gaussian_nll_loss"
    if not isinstance(var, Tensor):
        var = Tensor(float(var), dtype=input.dtype, device=input.device)
    if var.ndim and tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError(f"{op}: var of shape {tuple(var.shape)} is of incorrect size for "
                             f"input of shape {tuple(input.shape)}")
    _check_reduction(reduction, op)
    with no_grad():
        if bool((var < 0).any()):
            raise ValueError(f"{op}: var has negative entry/entries")
    var = var + (clamp(var, min=eps) - var).detach()
    loss = 0.5 * (log(var) + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction, op)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """The gated linear unit a·σ(b), where a and b are the halves of `input` along `dim`."""
    if input.shape[dim] % 2:
        raise ShapeError(f"glu: halving dimension {dim} of shape {tuple(input.shape)} must "
                         "have an even size")
    a, b = chunk(input, 2, dim)
    return a * sigmoid(b)


def gumbel_softmax(logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """softmax((logits + g)/τ) with Gumbel(0, 1) noise g = −log(−log U); `hard` returns
    the one-hot of its argmax with the soft sample's gradient (straight-through)."""
    u = rand(*logits.shape, dtype=logits.dtype, device=logits.device)
    gumbels = -log(-log(clamp(u, min=1e-20)))
    y = softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y
    d = dim % y.ndim
    hard_y = cast(y == y.amax(d, keepdim=True), y.dtype)
    return hard_y - y.detach() + y


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of `weight` at the integer indices `input`, as PyTorch's: the row at
    `padding_idx` is returned as stored but gets no gradient; with `max_norm`, the rows
    looked up whose `norm_type`-norm exceeds it are first rescaled in place to that norm
    (by max_norm / (norm + 1e-7))."""
    if input.dtype.category != 1:
        raise TypeError(f"embedding: indices must be an integer tensor, got dtype {input.dtype}")
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not supported")
    bad = index_out_of_range(input, weight.shape[0])
    if bad is not None:
        raise IndexError(f"embedding: index {bad} is out of range for an embedding table of "
                         f"{weight.shape[0]} rows (indices must be in [0, {weight.shape[0]}); "
                         f"weight shape {tuple(weight.shape)}, input shape "
                         f"{tuple(input.shape)})")
    if padding_idx is not None:
        n = weight.shape[0]
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within the "
                             f"{n} rows of weight")
        padding_idx %= n
    flat = input.reshape(-1)
    if max_norm is not None:
        with no_grad():
            rows = index_select(weight, 0, flat)
            norms = norm(rows, norm_type, 1, keepdim=True)
            scale = where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
            xp = weight._backend.xp
            # each distinct row once (repeats would rescale it twice)
            _, first = xp.unique(flat._data, return_index=True)
            weight._data[flat._data[first]] *= scale._data[first].astype(weight._data.dtype)
            weight._bump_version()
    out = index_select(weight, 0, flat).reshape(*input.shape, weight.shape[-1])
    if padding_idx is not None:
        out = where((input == padding_idx).unsqueeze(-1), out.detach(), out)
    return out



def _log_sigmoid(x: Tensor) -> Tensor:
    """log σ(x) = min(x, 0) − log(1 + e^{−|x|}), stable for both signs."""
    return clamp(x, max=0.0) - log(1 + exp(-abs(x)))


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """x where y = 1, max(0, margin − x) where y = −1 (PyTorch's form: each term where y
    is not the other label)."""
    loss = where(target != 1, clamp(margin - input, min=0.0), 0.0) + \
        where(target != -1, input, 0.0)
    return _reduce_ext(loss, reduction, "hinge_embedding_loss")


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """log(1 + exp(−y·x)) (two-class logistic loss)."""
    return _reduce_ext(log(1 + exp(-input * target)), reduction, "soft_margin_loss")


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    """−mean_c (y_c·log σ(x_c) + (1 − y_c)·log σ(−x_c))·w_c per sample (N, C)."""
    loss = -(target * _log_sigmoid(input) + (1 - target) * _log_sigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.mean(input.ndim - 1)
    return _reduce_ext(loss, reduction, "multilabel_soft_margin_loss")


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:
    """Σ_{j ≠ y} w_y·max(0, margin − x_y + x_j)^p / C per sample (multi-class hinge)."""
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 supported, got {p}")
    x = input.unsqueeze(0) if input.ndim == 1 else input
    t = target.reshape(-1)
    n, c = x.shape
    xy = x.gather(1, t.reshape(n, 1))
    terms = clamp(margin - xy + x, min=0.0)
    if p == 2:
        terms = terms * terms
    if weight is not None:
        terms = terms * index_select(weight, 0, t).reshape(n, 1)
    own = t.reshape(n, 1) == Tensor(np.arange(c), device=x.device).reshape(1, c)
    loss = where(own, 0.0, terms).sum(1) / c
    if input.ndim == 1:
        loss = loss.reshape(())
    return _reduce_ext(loss, reduction, "multi_margin_loss")


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    """max(d(a, p) − d(a, n) + margin, 0) for any distance d (default: pairwise_distance)."""
    d = distance_function if distance_function is not None else pairwise_distance
    d_pos, d_neg = d(anchor, positive), d(anchor, negative)
    if swap:
        d_swap = d(positive, negative)
        d_neg = where(d_swap < d_neg, d_swap, d_neg)
    loss = clamp(margin + d_pos - d_neg, min=0.0)
    return _reduce_ext(loss, reduction, "triplet_margin_with_distance_loss")


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """‖xᵢ − xⱼ‖_p for every pair of rows i < j of an (N, M) input, in row-major order."""
    if input.ndim != 2:
        raise ShapeError(f"pdist: expected a 2-d input, got shape {tuple(input.shape)}")
    i, j = np.triu_indices(input.shape[0], 1)
    a = index_select(input, 0, Tensor(i, device=input.device))
    b = index_select(input, 0, Tensor(j, device=input.device))
    return norm(a - b, p, 1)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, g·k, *) → channels interleaved across the g groups: c = i·k + j ↦ j·g + i."""
    n, c = input.shape[:2]
    if c % groups:
        raise ShapeError(f"channel_shuffle: {c} channels of shape {tuple(input.shape)} are not "
                         f"divisible by groups={groups}")
    rest = tuple(input.shape[2:])
    return input.reshape(n, groups, c // groups, *rest).transpose(1, 2).reshape(n, c, *rest)


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """Σ_{j ∈ targets} Σ_{i ∉ targets} max(0, 1 − (x[j] − x[i])) / C per sample, where the
    targets of a sample are its `target` entries before the first −1."""
    x = input.unsqueeze(0) if input.ndim == 1 else input
    if tuple(target.shape) != tuple(input.shape):
        raise ShapeError(f"multilabel_margin_loss: target shape {tuple(target.shape)} must be "
                         f"the input shape {tuple(input.shape)}")
    n, c = x.shape
    t = target.cpu().numpy().reshape(n, c).astype(np.int64)
    ended = np.cumsum(t < 0, axis=1) > 0
    valid = ~ended
    is_target = np.zeros((n, c), bool)
    rows = np.nonzero(valid)
    is_target[rows[0], t[valid]] = True
    dev = x.device
    idx = Tensor(np.where(valid, t, 0), device=dev)
    xt = x.gather(1, idx)  # (N, K)
    hinge = clamp(1 - xt.unsqueeze(2) + x.unsqueeze(1), min=0.0)  # (N, K, C)
    mask = Tensor((valid[:, :, None] & ~is_target[:, None, :]).astype(np.float64),
                  dtype=x.dtype, device=dev)
    loss = (hinge * mask).sum((1, 2)) / c
    if input.ndim == 1:
        loss = loss.reshape(())
    return _reduce_ext(loss, reduction, "multilabel_margin_loss")

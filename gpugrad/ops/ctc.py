"""Connectionist temporal classification loss (Graves et al., 2006), as
`torch.nn.functional.ctc_loss`.

With the extended label sequence l' = (blank, l₁, blank, l₂, …, blank) of length 2S + 1,
the forward variables (log space) are

    α₀(0) = x₀(blank), α₀(1) = x₀(l₁),
    αₜ(s) = xₜ(l'ₛ) + logsumexp(αₜ₋₁(s), αₜ₋₁(s−1), [αₜ₋₁(s−2) if l'ₛ ≠ blank, l'ₛ ≠ l'ₛ₋₂]),

the backward variables βₜ(s) are their mirror image (βₜ also includes xₜ(l'ₛ)), and the
loss of a sample is −log p(l | x) = −logsumexp(α_{T−1}(2S), α_{T−1}(2S−1)).
"""

from __future__ import annotations

import numpy as np

from ..autograd.function import Op
from ..errors import ShapeError
from ..tensor import Tensor, _wrap_array

__all__ = ["CTCLoss", "ctc_loss"]

_NEG_INF = -np.inf


def _lse(xp, *terms):
    m = terms[0]
    for t in terms[1:]:
        m = xp.maximum(m, t)
    safe = xp.where(xp.isfinite(m), m, 0.0)
    total = sum(xp.exp(t - safe) for t in terms)
    with np.errstate(divide="ignore"):
        return xp.where(xp.isfinite(m), safe + xp.log(total), m)


class CTCLoss(Op):
    """Per-sample CTC negative log-likelihoods of log-probabilities x (T, N, C) for padded
    targets (N, S) with per-sample input and target lengths (module docstring for α, β).

    VJP, as PyTorch defines it (the gradient with respect to the logits under a
    log_softmax, which x is taken to be): x̄ₜ(c) = ȳ·(exp xₜ(c) − exp(logsumexp_{s: l'ₛ = c}
    (αₜ(s) + βₜ(s)) + nll − xₜ(c))) for t below the input length, else 0. With
    `zero_infinity`, infinite losses and their gradients are zero."""

    @staticmethod
    def forward(ctx, lp, targets, input_lengths, target_lengths, blank, zero_infinity):
        xp = ctx.xp
        t_max, n, _ = lp.shape
        s_max = targets.shape[1] if targets.ndim == 2 else 0
        ext_len = 2 * s_max + 1
        ext = xp.full((n, ext_len), blank, dtype=xp.int64)
        if s_max:
            ext[:, 1::2] = targets
        # a skip s−2 → s is allowed for labels that differ from the label two back
        skip = xp.zeros((n, ext_len), dtype=bool)
        if ext_len > 2:
            skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
        lens = target_lengths.astype(xp.int64)
        tl = input_lengths.astype(xp.int64)
        pos = xp.arange(ext_len)
        valid = pos[None, :] < (2 * lens + 1)[:, None]
        rows = xp.arange(n)[:, None]
        emit = lp[:, rows, ext]  # (T, N, L): xₜ(l'ₛ)
        emit = xp.where(valid[None], emit, _NEG_INF)

        alpha = xp.full((t_max, n, ext_len), _NEG_INF, dtype=lp.dtype)
        alpha[0, :, 0] = emit[0, :, 0]
        if ext_len > 1:
            alpha[0, :, 1] = xp.where(lens > 0, emit[0, :, 1], _NEG_INF)
        for t in range(1, t_max):
            prev = alpha[t - 1]
            a1 = xp.concatenate([xp.full((n, 1), _NEG_INF, lp.dtype), prev[:, :-1]], 1)
            a2 = xp.concatenate([xp.full((n, 2), _NEG_INF, lp.dtype), prev[:, :-2]], 1) \
                if ext_len > 2 else xp.full_like(prev, _NEG_INF)
            a2 = xp.where(skip, a2, _NEG_INF)
            alpha[t] = _lse(xp, prev, a1, a2) + emit[t]
        last = xp.clip(tl - 1, 0, t_max - 1)
        end = alpha[last, xp.arange(n)]  # (N, L)
        i_end = 2 * lens
        e1 = end[xp.arange(n), i_end]
        e2 = xp.where(lens > 0, end[xp.arange(n), xp.clip(i_end - 1, 0, None)], _NEG_INF)
        nll = -_lse(xp, e1, e2)
        ctx.state = (lp, ext, skip, emit, alpha, nll, tl, lens, blank, zero_infinity)
        if zero_infinity:
            return xp.where(xp.isinf(nll), xp.zeros_like(nll), nll)
        return nll

    @staticmethod
    def backward(ctx, g):
        xp = ctx.xp
        lp, ext, skip, emit, alpha, nll, tl, lens, _, zero_infinity = ctx.state
        t_max, n, c = lp.shape
        ext_len = ext.shape[1]
        beta = xp.full_like(alpha, _NEG_INF)
        i_end = 2 * lens
        batch = xp.arange(n)
        for t in range(t_max - 1, -1, -1):
            at_end = tl - 1 == t
            nxt = beta[t + 1] if t + 1 < t_max else xp.full((n, ext_len), _NEG_INF, lp.dtype)
            b1 = xp.concatenate([nxt[:, 1:], xp.full((n, 1), _NEG_INF, lp.dtype)], 1)
            b2 = xp.concatenate([nxt[:, 2:], xp.full((n, 2), _NEG_INF, lp.dtype)], 1) \
                if ext_len > 2 else xp.full_like(nxt, _NEG_INF)
            # the skip into s+2 is allowed when l'ₛ₊₂ may follow l'ₛ directly
            skip_next = xp.concatenate([skip[:, 2:], xp.zeros((n, 2), bool)], 1) \
                if ext_len > 2 else xp.zeros_like(skip)
            b2 = xp.where(skip_next, b2, _NEG_INF)
            rec = _lse(xp, nxt, b1, b2) + emit[t]
            init = xp.full((n, ext_len), _NEG_INF, lp.dtype)
            init[batch, i_end] = emit[t, batch, i_end]
            prev_lab = xp.clip(i_end - 1, 0, None)
            init[batch, prev_lab] = xp.where(lens > 0, emit[t, batch, prev_lab],
                                             init[batch, prev_lab])
            beta[t] = xp.where(at_end[:, None], init, xp.where((t < tl - 1)[:, None], rec,
                                                               _NEG_INF))
        ab = alpha + beta  # (T, N, L)
        # logsumexp of αβ over the extended positions carrying each class
        m = xp.max(xp.where(xp.isfinite(ab), ab, _NEG_INF), axis=2, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0.0)
        acc = xp.zeros((t_max, n, c), dtype=lp.dtype)
        w = xp.exp(ab - m)
        t_idx = xp.arange(t_max)[:, None, None]
        n_idx = batch[None, :, None]
        xp.add.at(acc, (t_idx, n_idx, ext[None, :, :]), w)
        with np.errstate(divide="ignore", invalid="ignore"):
            lcab = xp.log(acc) + m
            grad = xp.exp(lp) - xp.exp(lcab + nll[None, :, None] - lp)
        live = (xp.arange(t_max)[:, None] < tl[None, :])[:, :, None]
        grad = xp.where(live, grad, 0.0)
        if zero_infinity:
            grad = xp.where(xp.isinf(nll)[None, :, None], 0.0, grad)
        grad = grad * g._data[None, :, None]
        return _wrap_array(grad.astype(lp.dtype), ctx.backend), None, None, None, None, None


def _lengths(v, n: int, what: str, xp) -> np.ndarray:
    if isinstance(v, Tensor):
        v = v.cpu().numpy()
    arr = np.asarray(v, dtype=np.int64).reshape(-1)
    if arr.shape[0] != n:
        raise ShapeError(f"ctc_loss: {what} must have one entry per batch element ({n}), got "
                         f"{arr.shape[0]}")
    return arr


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths,
             blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """CTC loss of log-probabilities (T, N, C) (or unbatched (T, C)) for targets (N, S)
    padded, or 1-d concatenated, with per-sample lengths; "mean" divides each loss by its
    target length before averaging over the batch, as PyTorch does."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"ctc_loss: reduction must be one of ('mean', 'sum', 'none'), got "
                         f"{reduction!r}")
    unbatched = log_probs.ndim == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    if lp.ndim != 3:
        raise ShapeError(f"ctc_loss: log_probs must be (T, N, C) or (T, C), got shape "
                         f"{tuple(log_probs.shape)}")
    t_max, n, c = lp.shape
    xp = lp._backend.xp
    in_len = _lengths(input_lengths, n, "input_lengths", xp)
    tg_len = _lengths(target_lengths, n, "target_lengths", xp)
    tg = targets.cpu().numpy().astype(np.int64) if isinstance(targets, Tensor) \
        else np.asarray(targets, np.int64)
    if unbatched:
        tg = tg.reshape(1, -1)
    if tg.ndim == 1:  # concatenated targets
        if tg.shape[0] != tg_len.sum():
            raise ShapeError(f"ctc_loss: 1-d targets of length {tg.shape[0]} must hold "
                             f"sum(target_lengths) = {tg_len.sum()} labels")
        padded = np.full((n, max(int(tg_len.max(initial=0)), 1)), blank, np.int64)
        starts = np.concatenate([[0], np.cumsum(tg_len)[:-1]])
        for i, (s0, m) in enumerate(zip(starts, tg_len)):
            padded[i, :m] = tg[s0:s0 + m]
        tg = padded
    if tg.shape[0] != n or (tg_len > tg.shape[1]).any():
        raise ShapeError(f"ctc_loss: targets of shape {tg.shape} do not fit batch size {n} and "
                         f"target_lengths {tg_len.tolist()}")
    if (in_len > t_max).any() or (in_len < 1).any():
        raise ValueError(f"ctc_loss: input_lengths {in_len.tolist()} must be in [1, {t_max}]")
    if tg.size and ((tg < 0) | (tg >= c)).any():
        raise ValueError(f"ctc_loss: target labels must be in [0, {c}), got "
                         f"{tg.min()}..{tg.max()}")
    if tg.shape[1] == 0:
        tg = np.full((n, 1), blank, np.int64)
    loss = CTCLoss.apply(lp, xp.asarray(tg), xp.asarray(in_len), xp.asarray(tg_len),
                         int(blank), bool(zero_infinity))
    if reduction == "none":
        return loss.squeeze(0) if unbatched else loss
    if reduction == "sum":
        return loss.sum()
    div = Tensor(np.maximum(tg_len, 1).astype(np.float64), dtype=loss.dtype,
                 device=loss.device)
    return (loss / div).mean()

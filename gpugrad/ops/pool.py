"""Pooling: `max_pool2d`, `avg_pool2d`, `adaptive_avg_pool2d`, with PyTorch's semantics.

Windows are addressed per kernel tap (i, j): `tap_slices` pairs, for one tap, every
output position with the input position it reads (padding excluded), so each tap is one
vectorized slice over the whole batch and all channels, and kh·kw slices cover a window.
"""

from __future__ import annotations

import numpy as np

from .._dtype import is_inexact
from ..autograd.function import Op
from ..errors import ShapeError
from ..tensor import Tensor, _wrap_array
from .conv import col2im, tap_slices, windows
from .linalg import matmul

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


def _pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output length (ceil mode drops a window starting in the padding)."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _taps(in_hw: tuple, out_hw: tuple, geom) -> list:
    """[(t, out_rows, out_cols, in_rows, in_cols)] for every tap t = i·kw + j that reads at
    least one input element."""
    (kh, kw), stride, padding, dilation = geom
    rows = tap_slices(in_hw[0], out_hw[0], kh, stride[0], dilation[0], padding[0])
    cols = tap_slices(in_hw[1], out_hw[1], kw, stride[1], dilation[1], padding[1])
    return [(i * kw + j, r[0], q[0], r[1], q[1]) for i, r in enumerate(rows) if r is not None
            for j, q in enumerate(cols) if q is not None]


class MaxPool2d(Op):
    """y[n, c, h, w] = max over the window of x;  (y, indices) with indices the flat h·W + w
    position of the maximum. Ties go to the first maximum in row-major window order, a NaN
    wins (as in PyTorch). VJP: x̄ = MaxPool2dBackward(ȳ): ȳ routed to the argmax of each
    window, accumulating where windows overlap; every other input gets zero."""

    @staticmethod
    def forward(ctx, x, geom, out_hw):
        xp = ctx.xp
        n, c, h, w = x.shape
        best = xp.empty((n, c) + out_hw, dtype=x.dtype)
        tap = xp.full((n, c) + out_hw, -1, dtype=xp.int16)
        index = xp.empty((n, c) + out_hw, dtype=xp.int64)
        taps = _taps((h, w), out_hw, geom)
        (kh, kw), stride, padding, dilation = geom
        ho = xp.arange(out_hw[0]).reshape(-1, 1) * stride[0] - padding[0]
        wo = xp.arange(out_hw[1]) * stride[1] - padding[1]
        nan_wins = is_inexact(x.dtype)
        # Without padding the first tap reads every window: it sets them all, and no later
        # tap meets an unset window (two passes fewer per tap).
        first_sets_all = bool(taps) and taps[0][1:3] == (slice(0, out_hw[0]),
                                                         slice(0, out_hw[1]))

        def rows(lo: int, hi: int) -> None:  # images lo:hi, all taps while they are in cache
            xs, bs, ks = x[lo:hi], best[lo:hi], tap[lo:hi]
            for i, (t, orow, ocol, irow, icol) in enumerate(taps):
                v = xs[:, :, irow, icol]
                b, k = bs[:, :, orow, ocol], ks[:, :, orow, ocol]
                if i == 0 and first_sets_all:
                    b[...] = v
                    k[...] = t
                    continue
                upd = v > b
                if not first_sets_all:
                    upd |= k < 0  # the first tap that reads an input always sets
                if nan_wins:
                    upd |= xp.isnan(v)
                xp.copyto(b, v, where=upd)
                xp.copyto(k, t, where=upd)
            index[lo:hi] = (ho + (ks // kw) * dilation[0]) * w + wo + (ks % kw) * dilation[1]

        ctx.backend.over_rows(rows, n, x.size + 2 * best.size,
                              row_bytes=(x.nbytes + best.nbytes + index.nbytes) // max(n, 1))
        ctx.geom, ctx.tap, ctx.in_hw = geom, tap, (h, w)
        ctx.index = index
        return best, index

    @staticmethod
    def backward(ctx, g, _gi):
        return MaxPool2dBackward.apply(g, ctx.tap, ctx.index, ctx.geom, ctx.in_hw), None, None


class MaxPool2dBackward(Op):
    """z = zeros(x.shape) with g[n, c, o] added at index[n, c, o] (overlaps accumulate).
    It is linear in g; VJP: ḡ[n, c, o] = z̄[n, c, index[n, c, o]] (a gather)."""

    @staticmethod
    def forward(ctx, g, tap, index, geom, in_hw):
        xp = ctx.xp
        n, c = g.shape[:2]
        out = xp.zeros((n, c) + tuple(in_hw), dtype=g.dtype)
        zero = xp.zeros((), dtype=g.dtype)
        taps = _taps(in_hw, g.shape[2:], geom)
        (kh, kw), stride, _, dilation = geom
        # Windows that cannot overlap (stride ≥ window extent on both axes) send each input
        # at most one gradient: a masked copy then replaces the accumulation.
        disjoint = all(s >= d * (k - 1) + 1 for s, d, k in zip(stride, dilation, (kh, kw)))

        def rows(lo: int, hi: int) -> None:  # images lo:hi
            gs, ks, os_ = g[lo:hi], tap[lo:hi], out[lo:hi]
            for t, orow, ocol, irow, icol in taps:
                hit = ks[:, :, orow, ocol] == t
                if disjoint:
                    xp.copyto(os_[:, :, irow, icol], gs[:, :, orow, ocol], where=hit)
                else:
                    os_[:, :, irow, icol] += xp.where(hit, gs[:, :, orow, ocol], zero)

        ctx.backend.over_rows(rows, n, out.size + g.size,
                              row_bytes=(out.nbytes + g.nbytes + tap.nbytes) // max(n, 1))
        ctx.index, ctx.out_shape = index, g.shape
        return out

    @staticmethod
    def backward(ctx, gz):
        n, c = gz.shape[:2]
        index = _wrap_array(ctx.index.reshape(n, c, -1), ctx.backend)
        gg = gz.reshape(n, c, -1).gather(2, index).reshape(ctx.out_shape)
        return gg, None, None, None, None


class AvgPool2d(Op):
    """y[n, c, o] = Σ_window x_pad / divisor[o] (zero padding; the divisor counts the padding
    when count_include_pad, as in PyTorch). Linear; VJP: x̄ = AvgPool2dBackward(ȳ) =
    Σ_taps col2im(ȳ / divisor)."""

    @staticmethod
    def forward(ctx, x, geom, out_hw, divisor):
        xp = ctx.xp
        (kh, kw), stride, padding, dilation = geom
        h, w = x.shape[2:]
        pads = tuple(_end_pads((h, w), out_hw, geom))
        view = windows(xp, x, (kh, kw), stride, dilation, pads)
        ctx.geom, ctx.in_hw, ctx.divisor = geom, (h, w), divisor
        return view.sum(axis=(2, 3)) / xp.asarray(divisor, dtype=x.dtype)

    @staticmethod
    def backward(ctx, g):
        return AvgPool2dBackward.apply(g, ctx.geom, ctx.in_hw, ctx.divisor), None, None, None


class AvgPool2dBackward(Op):
    """z = Σ_taps col2im(g / divisor): every input receives the share of each window that
    covers it. Linear in g; VJP: ḡ = AvgPool2d(z̄)."""

    @staticmethod
    def forward(ctx, g, geom, in_hw, divisor):
        xp = ctx.xp
        (kh, kw), stride, padding, dilation = geom
        share = g / xp.asarray(divisor, dtype=g.dtype)
        n, c, ho, wo = g.shape
        cols = xp.broadcast_to(share[:, None, None, None], (n, 1, kh, kw, c, ho, wo))
        ctx.geom, ctx.out_hw, ctx.divisor = geom, (ho, wo), divisor
        return col2im(ctx.backend, cols, in_hw, stride, dilation,
                      (padding[0], 0, padding[1], 0))

    @staticmethod
    def backward(ctx, gz):
        return AvgPool2d.apply(gz, ctx.geom, ctx.out_hw, ctx.divisor), None, None, None


def _end_pads(in_hw: tuple, out_hw: tuple, geom):
    """(top, bottom, left, right) zero padding that makes every window fit (ceil mode may
    need more at the end than the symmetric padding)."""
    (kh, kw), stride, padding, dilation = geom
    for n, o, k, s, p, d in zip(in_hw, out_hw, (kh, kw), stride, padding, dilation):
        yield p
        yield max(0, (o - 1) * s + d * (k - 1) + 1 - n - p)


class AdaptiveAvgPool2d(Op):
    """y = P_h · x · P_wᵀ over the last two dims, where row o of P (out × in) averages the
    input bin [⌊o·n/out⌋, ⌈(o + 1)·n/out⌉) (bins of a rectangle are separable).
    Linear; VJP: x̄ = P_hᵀ · ȳ · P_w (matmuls, so it differentiates again)."""

    @staticmethod
    def forward(ctx, x, out_hw):
        xp = ctx.xp
        ph = _bin_matrix(xp, x.shape[2], out_hw[0], x.dtype)
        pw = _bin_matrix(xp, x.shape[3], out_hw[1], x.dtype)
        ctx.mats = (ph, pw)
        return xp.matmul(ph, xp.matmul(x, pw.T))

    @staticmethod
    def backward(ctx, g):
        ph, pw = (_wrap_array(m, ctx.backend) for m in ctx.mats)
        return matmul(ph.T, matmul(g, pw)), None


def _bin_matrix(xp, n: int, out: int, dtype):
    o = xp.arange(out).reshape(-1, 1)
    start, end = (o * n) // out, -((-(o + 1) * n) // out)
    i = xp.arange(n)
    inside = (i >= start) & (i < end)
    return (inside / (end - start)).astype(dtype)


# --- argument handling ------------------------------------------------------------------------
def _pair(v, name: str, op: str) -> tuple:
    t = (v, v) if isinstance(v, int) else tuple(int(e) for e in v)
    if len(t) == 1:
        t = t * 2
    if len(t) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    return t


def _batched(input: Tensor, op: str) -> tuple:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got "
                         f"shape {tuple(input.shape)}")
    return (input.unsqueeze(0), True) if input.ndim == 3 else (input, False)


def _geometry(input: Tensor, kernel_size, stride, padding, dilation, ceil_mode, op: str):
    k = _pair(kernel_size, "kernel_size", op)
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
        else _pair(stride, "stride", op)
    p, d = _pair(padding, "padding", op), _pair(dilation, "dilation", op)
    if min(k) < 1 or min(s) < 1 or min(d) < 1 or min(p) < 0:
        raise ValueError(f"{op}: kernel_size {k}, stride {s} and dilation {d} must be "
                         f"positive and padding {p} non-negative")
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ValueError(f"{op}: pad should be at most half of effective kernel size, but got "
                         f"pad={p} and kernel_size={k}")
    hw = tuple(input.shape[-2:])
    out = tuple(_pool_out(n, ki, si, pi, di, ceil_mode)
                for n, ki, si, pi, di in zip(hw, k, s, p, d))
    if min(out) < 1:
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} is too small for "
                         f"kernel_size {k} with padding {p} and dilation {d} (output {out})")
    return (k, s, p, d), out


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """2-d max pooling over (N, C, H, W) or (C, H, W); `stride` defaults to kernel_size.
    The gradient goes to the first maximum of each window (row-major), as in PyTorch; with
    return_indices, also returns the flat h·W + w index of each maximum."""
    x, unbatched = _batched(input, "max_pool2d")
    geom, out = _geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    y, idx = MaxPool2d.apply(x, geom, out)
    if unbatched:
        y, idx = y.squeeze(0), idx.squeeze(0)
    return (y, idx) if return_indices else y


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """2-d average pooling over (N, C, H, W) or (C, H, W); zero padding, counted in the
    divisor when `count_include_pad` (PyTorch's default)."""
    x, unbatched = _batched(input, "avg_pool2d")
    geom, out = _geometry(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError("avg_pool2d: divisor must be not zero")
        divisor = float(divisor_override)
    else:
        divisor = _divisor(x.shape[-2:], out, geom, count_include_pad)
    y = AvgPool2d.apply(x, geom, out, divisor)
    return y.squeeze(0) if unbatched else y


def _divisor(in_hw: tuple, out_hw: tuple, geom, count_include_pad: bool):
    """The (Ho, Wo) divisors as a host NumPy array (PyTorch's rule: windows clipped to the padded
    input, and to the input itself unless count_include_pad), or one float if uniform."""
    sizes = []
    for n, o, k, s, p in zip(in_hw, out_hw, geom[0], geom[1], geom[2]):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        sizes.append(end - start)
    div = np.outer(sizes[0], sizes[1])
    return float(div.flat[0]) if (div == div.flat[0]).all() else div


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed (oh, ow) output (an int means square; None keeps that
    input size): output cell o averages input bin [⌊o·n/out⌋, ⌈(o + 1)·n/out⌉)."""
    x, unbatched = _batched(input, "adaptive_avg_pool2d")
    sizes = (output_size, output_size) if output_size is None or isinstance(output_size, int) \
        else tuple(output_size)
    if len(sizes) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got "
                         f"{output_size!r}")
    out = tuple(int(n) if o is None else int(o) for o, n in zip(sizes, x.shape[-2:]))
    if min(out) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {out}")
    y = AdaptiveAvgPool2d.apply(x, out)
    return y.squeeze(0) if unbatched else y

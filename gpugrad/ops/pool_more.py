"""More pooling on the 2-d pooling ops of `pool.py`: 1-d pooling (a height-1 image),
3-d pooling (separable: a 2-d pool over (H, W) per depth, then a pool over depth, since
the max and the mean over a box are the max and the mean of per-axis passes, and the
divisors are per-axis products), adaptive max pooling (separable bins) and max unpooling
(a scatter of the pooled values to their indices)."""

from __future__ import annotations

from ..creation import zeros
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import abs, relu, sign  # noqa: A004
from .index import scatter_add
from .pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .reduce import amax
from .resample import interpolate
from .shape import cat

__all__ = ["max_pool1d", "avg_pool1d", "max_pool3d", "avg_pool3d", "adaptive_max_pool2d",
           "adaptive_max_pool1d", "max_unpool2d", "adaptive_avg_pool1d", "adaptive_max_pool3d",
           "adaptive_avg_pool3d", "lp_pool1d", "lp_pool2d", "lp_pool3d", "max_unpool1d"]


_TUPLE_NAME = {2: "pair", 3: "triple"}


def _single(v, name: str, op: str) -> int:
    if isinstance(v, int):
        return v
    t = tuple(v)
    if len(t) != 1:
        raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {v!r}")
    return int(t[0])


def _triple(v, name: str, op: str) -> tuple:
    t = (v,) * 3 if isinstance(v, int) else tuple(int(e) for e in v)
    if len(t) != 3:
        raise ValueError(f"{op}: {name} must be an int or a triple, got {v!r}")
    return t


def _dims(input: Tensor, nd: int, op: str) -> bool:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected a {nd + 1}-d or {nd + 2}-d input, got shape "
                         f"{tuple(input.shape)}")
    return input.ndim == nd + 1


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """1-d max pooling over (N, C, L) or (C, L): `max_pool2d` over a height-1 image."""
    op = "max_pool1d"
    _dims(input, 1, op)
    k = _single(kernel_size, "kernel_size", op)
    s = k if stride is None or stride == () else _single(stride, "stride", op)
    out = max_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _single(padding, "padding", op)),
                     (1, _single(dilation, "dilation", op)), ceil_mode, return_indices)
    if return_indices:
        return out[0].squeeze(-2), out[1].squeeze(-2)
    return out.squeeze(-2)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-d average pooling over (N, C, L) or (C, L): `avg_pool2d` over a height-1 image."""
    op = "avg_pool1d"
    _dims(input, 1, op)
    k = _single(kernel_size, "kernel_size", op)
    s = k if stride is None or stride == () else _single(stride, "stride", op)
    return avg_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, _single(padding, "padding", op)),
                      ceil_mode, count_include_pad).squeeze(-2)


def _pool3d(input: Tensor, kernel_size, stride, padding, op: str):
    unbatched = _dims(input, 3, op)
    x = input.unsqueeze(0) if unbatched else input
    k = _triple(kernel_size, "kernel_size", op)
    s = k if stride is None or stride == () else _triple(stride, "stride", op)
    return x, unbatched, k, s, _triple(padding, "padding", op)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor:
    """3-d max pooling over (N, C, D, H, W) or (C, D, H, W), as PyTorch's (the gradient goes
    to the first maximum in (d, h, w) order)."""
    op = "max_pool3d"
    if return_indices:
        raise NotImplementedError(f"{op}: return_indices=True is not supported")
    x, unbatched, k, s, p = _pool3d(input, kernel_size, stride, padding, op)
    d = _triple(dilation, "dilation", op)
    n, c, dz, h, w = x.shape
    y = max_pool2d(x.reshape(n, c * dz, h, w), k[1:], s[1:], p[1:], d[1:], ceil_mode)
    ho, wo = y.shape[-2:]
    y = max_pool2d(y.reshape(n, c, dz, ho * wo), (k[0], 1), (s[0], 1), (p[0], 0), (d[0], 1),
                   ceil_mode)
    y = y.reshape(n, c, y.shape[2], ho, wo)
    return y.squeeze(0) if unbatched else y


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """3-d average pooling over (N, C, D, H, W) or (C, D, H, W), as PyTorch's."""
    op = "avg_pool3d"
    x, unbatched, k, s, p = _pool3d(input, kernel_size, stride, padding, op)
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"{op}: divisor must be not zero")
    n, c, dz, h, w = x.shape
    first = 1 if divisor_override is not None else None
    y = avg_pool2d(x.reshape(n, c * dz, h, w), k[1:], s[1:], p[1:], ceil_mode,
                   count_include_pad, first)
    ho, wo = y.shape[-2:]
    y = avg_pool2d(y.reshape(n, c, dz, ho * wo), (k[0], 1), (s[0], 1), (p[0], 0), ceil_mode,
                   count_include_pad, divisor_override)
    y = y.reshape(n, c, y.shape[2], ho, wo)
    return y.squeeze(0) if unbatched else y


def _adaptive_max_axis(x: Tensor, axis: int, out: int) -> Tensor:
    n = x.shape[axis]
    parts = []
    for o in range(out):
        lo, hi = (o * n) // out, -((-(o + 1) * n) // out)
        index = [slice(None)] * x.ndim
        index[axis] = slice(lo, hi)
        parts.append(amax(x[tuple(index)], axis, keepdim=True))
    return cat(parts, axis)


def _adaptive_input(input: Tensor, output_size, nd: int, op: str):
    """The batched input, whether it was unbatched, and the nd output sizes (an int means
    the same on every axis, None keeps that axis's input size)."""
    unbatched = _dims(input, nd, op)
    x = input.unsqueeze(0) if unbatched else input
    sizes = (output_size,) * nd if output_size is None or isinstance(output_size, int) \
        else tuple(output_size)
    if len(sizes) != nd:
        raise ValueError(f"{op}: output_size must be an int or a {_TUPLE_NAME[nd]}, got "
                         f"{output_size!r}")
    out = tuple(int(n) if o is None else int(o) for o, n in zip(sizes, x.shape[-nd:]))
    if min(out) < 1:
        raise ValueError(f"{op}: output_size must be positive, got {out}")
    return x, unbatched, out


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    """Max pooling to a fixed (oh, ow) output (an int means square, None keeps that size):
    output cell o takes the max of input bin [⌊o·n/out⌋, ⌈(o + 1)·n/out⌉) on each axis."""
    op = "adaptive_max_pool2d"
    if return_indices:
        raise NotImplementedError(f"{op}: return_indices=True is not supported")
    x, unbatched, out = _adaptive_input(input, output_size, 2, op)
    y = _adaptive_max_axis(_adaptive_max_axis(x, 2, out[0]), 3, out[1])
    return y.squeeze(0) if unbatched else y


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    """1-d adaptive max pooling over (N, C, L) or (C, L)."""
    _dims(input, 1, "adaptive_max_pool1d")
    return adaptive_max_pool2d(input.unsqueeze(-2), (1, _single(output_size, "output_size",
                                                                "adaptive_max_pool1d")),
                               return_indices).squeeze(-2)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """The partial inverse of `max_pool2d(..., return_indices=True)`: zeros of the pooled
    input's size with each value put back at its flat index h·W + w."""
    op = "max_unpool2d"
    unbatched = _dims(input, 2, op)
    x = input.unsqueeze(0) if unbatched else input
    idx = indices.unsqueeze(0) if unbatched else indices
    if tuple(idx.shape) != tuple(x.shape):
        raise ShapeError(f"{op}: indices shape {tuple(indices.shape)} must equal the input "
                         f"shape {tuple(input.shape)}")
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
    s = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else tuple(stride))
    p = (padding,) * 2 if isinstance(padding, int) else tuple(padding)
    n, c, h, w = x.shape
    if output_size is None:
        out = tuple((m - 1) * si - 2 * pi + ki for m, si, pi, ki in zip((h, w), s, p, k))
    else:
        out = tuple(output_size)[-2:]
    flat = zeros(n, c, out[0] * out[1], dtype=x.dtype, device=x.device)
    y = scatter_add(flat, 2, idx.reshape(n, c, h * w), x.reshape(n, c, h * w))
    y = y.reshape(n, c, *out)
    return y.squeeze(0) if unbatched else y


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """1-d adaptive average pooling over (N, C, L) or (C, L)."""
    _dims(input, 1, "adaptive_avg_pool1d")
    out = _single(output_size, "output_size", "adaptive_avg_pool1d")
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, out)).squeeze(-2)


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False) -> Tensor:
    """Max pooling of (N, C, D, H, W) (or unbatched) to a fixed (od, oh, ow) output, one
    separable pass per axis (the bins as in `adaptive_max_pool2d`)."""
    op = "adaptive_max_pool3d"
    if return_indices:
        raise NotImplementedError(f"{op}: return_indices=True is not supported")
    x, unbatched, out = _adaptive_input(input, output_size, 3, op)
    y = x
    for axis, o in zip((2, 3, 4), out):
        y = _adaptive_max_axis(y, axis, o)
    return y.squeeze(0) if unbatched else y


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    """Average pooling of (N, C, D, H, W) (or unbatched) to a fixed (od, oh, ow) output:
    the mean over each bin is separable, one `AxisMap` per axis."""
    op = "adaptive_avg_pool3d"
    x, unbatched, out = _adaptive_input(input, output_size, 3, op)
    y = interpolate(x, size=out, mode="area")
    return y.squeeze(0) if unbatched else y


def _lp(avg: Tensor, norm_type: float, count: int) -> Tensor:
    # PyTorch's form: sign(s)·relu(|s|)·count, then the 1/p power
    return (sign(avg) * relu(abs(avg)) * count) ** (1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """(Σ_window xᵖ)^(1/p) over 1-d windows (power-average pooling)."""
    k = _single(kernel_size, "kernel_size", "lp_pool1d")
    return _lp(avg_pool1d(input ** norm_type, k, stride, 0, ceil_mode), norm_type, k)


def lp_pool2d(input: Tensor, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """(Σ_window xᵖ)^(1/p) over 2-d windows."""
    kh, kw = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
    return _lp(avg_pool2d(input ** norm_type, (kh, kw), stride, 0, ceil_mode), norm_type,
               kh * kw)


def lp_pool3d(input: Tensor, norm_type: float, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    """(Σ_window xᵖ)^(1/p) over 3-d windows."""
    k = _triple(kernel_size, "kernel_size", "lp_pool3d")
    return _lp(avg_pool3d(input ** norm_type, k, stride, 0, ceil_mode), norm_type,
               k[0] * k[1] * k[2])


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """The partial inverse of `max_pool1d(..., return_indices=True)` over (N, C, L)."""
    _dims(input, 1, "max_unpool1d")
    k = _single(kernel_size, "kernel_size", "max_unpool1d")
    s = k if stride is None else _single(stride, "stride", "max_unpool1d")
    p = _single(padding, "padding", "max_unpool1d")
    out = None if output_size is None else (1, tuple(output_size)[-1])
    return max_unpool2d(input.unsqueeze(-2), indices.unsqueeze(-2), (1, k), (1, s), (0, p),
                        out).squeeze(-2)

"""Resampling along axes: `interpolate` (nearest, nearest-exact, linear, bilinear,
bicubic, trilinear, area), `pad` in every mode, `pixel_shuffle`/`pixel_unshuffle`.

Interpolation is separable: along each spatial axis the output is A·x with a small
(out, in) matrix A of the mode's weights (`AxisMap`), so its gradient is Aᵀ·ȳ along the
same axis. Padding in the reflect, replicate and circular modes is a gather along each
padded axis with PyTorch's index rule (its gradient the scatter-add of `index_select`).
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd.function import Op
from ..errors import ShapeError
from ..tensor import Tensor
from .index import index_select
from .pool import adaptive_avg_pool2d
from .shape import pad as _pad_constant

__all__ = ["interpolate", "pad", "pixel_shuffle", "pixel_unshuffle", "AxisMap"]


class AxisMap(Op):
    """y = A ×ₐ x: along axis a, y[…, o, …] = Σᵢ A[o, i]·x[…, i, …] for a constant (out, in)
    matrix A.  VJP: x̄ = Aᵀ ×ₐ ȳ (itself an AxisMap, so higher derivatives follow)."""

    @staticmethod
    def forward(ctx, x, a, axis):
        xp = ctx.xp
        m = xp.asarray(a, dtype=x.dtype)
        ctx.a, ctx.axis = a, axis
        return xp.ascontiguousarray(xp.moveaxis(xp.tensordot(m, x, axes=([1], [axis])), 0,
                                                axis))

    @staticmethod
    def backward(ctx, g):
        return AxisMap.apply(g, np.ascontiguousarray(ctx.a.T), ctx.axis), None, None


# --- interpolation weights (host NumPy, float64) -----------------------------------------------
def _source_coords(n_in: int, n_out: int, align_corners: bool, scale: float | None):
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        return dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    s = n_in / n_out if scale is None else 1.0 / scale
    return (dst + 0.5) * s - 0.5


def _matrix(mode: str, n_in: int, n_out: int, align_corners: bool, scale) -> np.ndarray:
    a = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    if mode in ("nearest", "nearest-exact"):
        s = n_in / n_out if scale is None else 1.0 / scale
        off = 0.5 if mode == "nearest-exact" else 0.0
        src = np.minimum(np.floor((rows + off) * s).astype(np.int64), n_in - 1)
        a[rows, src] = 1.0
    elif mode == "linear":
        src = np.maximum(_source_coords(n_in, n_out, align_corners, scale), 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        lam = src - i0
        np.add.at(a, (rows, i0), 1.0 - lam)
        np.add.at(a, (rows, i1), lam)
    elif mode == "cubic":
        src = _source_coords(n_in, n_out, align_corners, scale)
        i = np.floor(src).astype(np.int64)
        t = src - i
        for k, w in zip(range(-1, 3), _cubic_weights(t)):
            np.add.at(a, (rows, np.clip(i + k, 0, n_in - 1)), w)
    elif mode == "area":
        for o in range(n_out):
            lo, hi = (o * n_in) // n_out, -((-(o + 1) * n_in) // n_out)
            a[o, lo:hi] = 1.0 / (hi - lo)
    return a


def _cubic_weights(t, a: float = -0.75) -> list:
    """Keys' cubic convolution weights (A = −0.75, PyTorch's) for taps −1, 0, 1, 2."""
    def near(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


_MODES = {"nearest": ("nearest", 0), "nearest-exact": ("nearest-exact", 0),
          "linear": ("linear", 1), "bilinear": ("linear", 2), "trilinear": ("linear", 3),
          "bicubic": ("cubic", 2), "area": ("area", 0)}


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize the spatial dims of (N, C, *spatial) as `torch.nn.functional.interpolate`:
    exactly one of `size` and `scale_factor`; `align_corners` only for the linear and
    cubic modes. Each axis is one `AxisMap` with the mode's weight matrix."""
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported (expected one "
                                  f"of {sorted(_MODES)})")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    kind, nd = _MODES[mode]
    spatial = input.ndim - 2
    if spatial < 1 or (nd and spatial != nd):
        want = f"{nd + 2}-d" if nd else "3-d, 4-d or 5-d"
        raise ShapeError(f"interpolate: mode {mode!r} expects a {want} input (N, C, ...), got "
                         f"shape {tuple(input.shape)}")
    if align_corners is not None and kind not in ("linear", "cubic"):
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: only one of size or scale_factor should be defined")
    in_sizes = tuple(input.shape[2:])
    if size is not None:
        sizes = (size,) * spatial if isinstance(size, int) else tuple(int(s) for s in size)
        if len(sizes) != spatial:
            raise ValueError(f"interpolate: size {size!r} must have {spatial} entries for "
                             f"input shape {tuple(input.shape)}")
        scales = (None,) * spatial
    else:
        factors = (scale_factor,) * spatial if isinstance(scale_factor, (int, float)) \
            else tuple(float(s) for s in scale_factor)
        if len(factors) != spatial:
            raise ValueError(f"interpolate: scale_factor {scale_factor!r} must have {spatial} "
                             f"entries for input shape {tuple(input.shape)}")
        sizes = tuple(int(math.floor(n * f)) for n, f in zip(in_sizes, factors))
        scales = (None,) * spatial if recompute_scale_factor else tuple(factors)
    if min(sizes) < 1:
        raise ValueError(f"interpolate: output size {sizes} must be positive")
    if kind == "area" and spatial == 2:
        return adaptive_avg_pool2d(input, sizes)
    y = input
    for ax, (n_in, n_out, sc) in enumerate(zip(in_sizes, sizes, scales)):
        if kind != "area" and n_in == n_out and sc in (None, 1.0):
            continue
        a = _matrix(kind, n_in, n_out, bool(align_corners), sc)
        y = AxisMap.apply(y, a, ax + 2)
    return y


# --- padding ------------------------------------------------------------------------------------
def _pad_index(n: int, before: int, after: int, mode: str, shape: tuple) -> np.ndarray:
    pos = np.arange(-before, n + after)
    if mode == "reflect":
        if max(before, after) >= n:
            raise ValueError(f"pad: padding ({before}, {after}) should be smaller than the "
                             f"input dimension {n} in reflect mode (shape {shape})")
        pos = np.abs(pos)
        pos = np.where(pos > n - 1, 2 * (n - 1) - pos, pos)
    elif mode == "replicate":
        pos = np.clip(pos, 0, n - 1)
    else:  # circular: negative pads crop first, the wrap is within what is left
        start, m = max(-before, 0), n - max(-before, 0) - max(-after, 0)
        if max(before, after) > m:
            raise ValueError(f"pad: padding ({before}, {after}) must be at most the input "
                             f"dimension {n} in circular mode (shape {shape})")
        pos = start + np.mod(np.arange(-max(before, 0), m + max(after, 0)), max(m, 1))
    return pos


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """`torch.nn.functional.pad`: `pad` = (left, right, top, bottom, …) starting from the
    last dim; negative entries crop. Modes: "constant" (with `value`), "reflect" (mirror
    without the edge), "replicate" (edge repeated), "circular" (wrap around)."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding {pad} must have an even length of at most "
                         f"2 * ndim = {2 * input.ndim} for shape {tuple(input.shape)}")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad: mode {mode!r} is not supported (expected constant, "
                                  "reflect, replicate or circular)")
    if mode != "constant" and value not in (None, 0, 0.0):
        raise ValueError(f"pad: padding mode {mode!r} doesn't take in value argument")
    shape = tuple(input.shape)
    y = input
    if mode == "constant":
        crop = [slice(None)] * input.ndim
        for i in range(len(pad) // 2):
            d = input.ndim - 1 - i
            lo, hi = pad[2 * i], pad[2 * i + 1]
            crop[d] = slice(max(-lo, 0), shape[d] - max(-hi, 0))
            if shape[d] + min(lo, 0) + min(hi, 0) < 0:
                raise ValueError(f"pad: padding {pad} crops dim {d} of shape {shape} below "
                                 "size 0")
        if any(p < 0 for p in pad):
            y = y[tuple(crop)]
        grow = tuple(max(p, 0) for p in pad)
        return _pad_constant(y, grow, value=0.0 if value is None else value) if any(grow) \
            else y
    for i in range(len(pad) // 2):
        d = input.ndim - 1 - i
        lo, hi = pad[2 * i], pad[2 * i + 1]
        if lo == 0 and hi == 0:
            continue
        if shape[d] + min(lo, 0) + min(hi, 0) < 0:
            raise ValueError(f"pad: padding {pad} crops dim {d} of shape {shape} below size 0")
        idx = _pad_index(shape[d], lo, hi, mode, shape)
        y = index_select(y, d, Tensor(idx, device=input.device))
    return y


# --- pixel shuffle ---------------------------------------------------------------------------
def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(…, C·r², H, W) → (…, C, H·r, W·r): out[c, h·r + i, w·r + j] = in[c·r² + i·r + j, h, w]."""
    r = int(upscale_factor)
    if input.ndim < 3 or r < 1 or input.shape[-3] % (r * r):
        raise ShapeError(f"pixel_shuffle: expected (…, C·r², H, W) with r = {r}, got shape "
                         f"{tuple(input.shape)}")
    *lead, c, h, w = input.shape
    oc = c // (r * r)
    x = input.reshape(*lead, oc, r, r, h, w)
    k = len(lead)
    x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return x.reshape(*lead, oc, h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """The inverse of `pixel_shuffle`: (…, C, H·r, W·r) → (…, C·r², H, W)."""
    r = int(downscale_factor)
    if input.ndim < 3 or r < 1 or input.shape[-1] % r or input.shape[-2] % r:
        raise ShapeError(f"pixel_unshuffle: expected (…, C, H·r, W·r) with r = {r}, got shape "
                         f"{tuple(input.shape)}")
    *lead, c, hr, wr = input.shape
    h, w = hr // r, wr // r
    x = input.reshape(*lead, c, h, r, w, r)
    k = len(lead)
    x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return x.reshape(*lead, c * r * r, h, w)

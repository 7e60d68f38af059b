"""Transposed convolutions, 3-d convolution and the patch ops `unfold`/`fold`, all on the
im2col machinery of `conv.py`.

    conv_transpose(x, w) = ConvInputGrad(x, w): the adjoint of the convolution whose
    weight is w (C_in, C_out/G, k…), evaluated at x: its gradients are conv.py's.
    conv3d = Σ over depth taps of conv2d on strided depth slices (so its gradients are
    those of conv2d, slicing and addition).
    unfold(x)[n, (c, i, j), (h, w)] = x_pad[n, c, h·s + i·d, w·s + j·d] (`Unfold`), and
    fold is its adjoint (`Fold`), the sum of overlapping patches.
"""

from __future__ import annotations

from ..autograd.function import Op
from ..errors import ShapeError
from ..tensor import Tensor
from .conv import (
    ConvGeom,
    ConvInputGrad,
    _conv_inputs,
    _padding,
    _tuple,
    col2im,
    conv2d,
    out_size,
    windows,
)
from .shape import pad as _pad

__all__ = ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "conv3d", "unfold_patches",
           "fold_patches"]


def _conv_transpose(input: Tensor, weight: Tensor, bias, stride, padding, output_padding,
                    groups: int, dilation, nd: int, op: str) -> Tensor:
    input, weight, bias = _conv_inputs(input, weight, bias, nd, op,
                                       "in_channels, out_channels/groups")
    if input.dtype is not weight.dtype:
        raise TypeError(f"{op}: input dtype {input.dtype} and weight dtype {weight.dtype} "
                        "must be the same")
    groups = int(groups)
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    c_in, cg = weight.shape[:2]
    if groups < 1 or c_in % groups:
        raise ValueError(f"{op}: groups={groups} must be positive and divide in_channels "
                         f"(weight shape {tuple(weight.shape)})")
    if x.shape[1] != c_in:
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} has {x.shape[1]} channels "
                         f"but weight shape {tuple(weight.shape)} expects {c_in}")
    c_out = cg * groups
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ShapeError(f"{op}: bias shape {tuple(bias.shape)} does not match weight shape "
                         f"{tuple(weight.shape)} (expected ({c_out},))")
    ksize = tuple(weight.shape[2:])
    s = _tuple(stride, nd, "stride", op)
    p = _tuple(padding, nd, "padding", op)
    op_ = _tuple(output_padding, nd, "output_padding", op)
    d = _tuple(dilation, nd, "dilation", op)
    if min(s) < 1 or min(d) < 1 or min(p) < 0:
        raise ValueError(f"{op}: stride {s} and dilation {d} must be positive, padding {p} "
                         "non-negative")
    if any(o >= max(si, di) for o, si, di in zip(op_, s, d)):
        raise ValueError(f"{op}: output padding {op_} must be smaller than either stride {s} "
                         f"or dilation {d}")
    spatial = tuple(x.shape[2:])
    out_hw = tuple((n - 1) * si - 2 * pi + di * (k - 1) + oi + 1
                   for n, si, pi, di, k, oi in zip(spatial, s, p, d, ksize, op_))
    if min(out_hw) < 1:
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} with weight shape "
                         f"{tuple(weight.shape)}, stride {s} and padding {p} gives an empty "
                         f"output {out_hw}")
    if nd == 1:
        x, w = x.unsqueeze(2), weight.unsqueeze(2)
        geom = ConvGeom((1, s[0]), (0, 0, p[0], p[0]), (1, d[0]), groups)
        out_hw = (1,) + out_hw
    else:
        w = weight
        geom = ConvGeom(s, (p[0], p[0], p[1], p[1]), d, groups)
    y = ConvInputGrad.apply(x, w, geom, out_hw)
    if nd == 1:
        y = y.squeeze(2)
    if bias is not None:
        y = y + bias.reshape((c_out,) + (1,) * nd)
    return y.squeeze(0) if unbatched else y


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-d transposed convolution ("deconvolution") of (N, C_in, H, W) with a weight
    (C_in, C_out/groups, kh, kw), as PyTorch's: the adjoint of conv2d, output size
    (H − 1)·s − 2p + d·(k − 1) + output_padding + 1 per axis."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d")


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """1-d transposed convolution of (N, C_in, L) with a weight (C_in, C_out/groups, k)."""
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d")


def _batched_3d(input: Tensor, weight: Tensor, op: str) -> tuple[Tensor, bool]:
    """Check a 3-d (transposed) convolution's input and weight; return the input with a
    batch dim and whether it lacked one."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: input and weight must be Tensors")
    if input.ndim not in (4, 5) or weight.ndim != 5:
        raise ShapeError(f"{op}: expected a 4-d or 5-d input and a 5-d weight, got shapes "
                         f"{tuple(input.shape)} and {tuple(weight.shape)}")
    unbatched = input.ndim == 4
    return (input.unsqueeze(0) if unbatched else input), unbatched


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """3-d cross-correlation of (N, C, D, H, W) (or unbatched) with (O, C/groups, kd, kh,
    kw), as PyTorch's: y[:, :, z] = Σ_t conv2d(x_pad[:, :, z·s_d + t·d_d], w[:, :, t]) + b."""
    op = "conv3d"
    x, unbatched = _batched_3d(input, weight, op)
    ksize = tuple(weight.shape[2:])
    s = _tuple(stride, 3, "stride", op)
    d = _tuple(dilation, 3, "dilation", op)
    if min(s) < 1 or min(d) < 1:
        raise ValueError(f"{op}: stride {s} and dilation {d} must be positive")
    pads = _padding(padding, 3, ksize, s, d, op)
    if x.shape[1] != weight.shape[1] * int(groups):
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} has {x.shape[1]} channels "
                         f"but weight shape {tuple(weight.shape)} with groups={groups} "
                         f"expects {weight.shape[1] * int(groups)}")
    if any(pp for pair in pads for pp in pair):
        flat = []
        for before, after in reversed(pads):
            flat += [before, after]
        x = _pad(x, flat)
    n, c, dz, h, w_ = x.shape
    do = out_size(dz, ksize[0], s[0], 0, 0, d[0])
    if do < 1 or min(out_size(m, k, si, 0, 0, di) for m, k, si, di in
                     zip((h, w_), ksize[1:], s[1:], d[1:])) < 1:
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} padded by {pads} is smaller "
                         f"than the (dilated) kernel of weight shape {tuple(weight.shape)}")
    y = None
    for t in range(ksize[0]):
        start = t * d[0]
        xs = x[:, :, start:start + s[0] * (do - 1) + 1:s[0]]  # (N, C, Do, H, W)
        xs = xs.permute(0, 2, 1, 3, 4).reshape(n * do, c, h, w_)
        part = conv2d(xs, weight[:, :, t], None, s[1:], 0, d[1:], groups)
        y = part if y is None else y + part
    o, ho, wo = y.shape[1:]
    y = y.reshape(n, do, o, ho, wo).permute(0, 2, 1, 3, 4)
    if bias is not None:
        y = y + bias.reshape(o, 1, 1, 1)
    return y.squeeze(0) if unbatched else y


# --- patches ------------------------------------------------------------------------------
class Unfold(Op):
    """Sliding local blocks: y[n, (c, i, j), (h, w)] = x_pad[n, c, h·s + i·d, w·s + j·d],
    shape (N, C·kh·kw, Ho·Wo).  VJP: x̄ = Fold(ȳ) (overlapping blocks summed)."""

    @staticmethod
    def forward(ctx, x, ksize, stride, dilation, padding):
        view = windows(ctx.xp, x, ksize, stride, dilation, padding)
        n, c, kh, kw, ho, wo = view.shape
        ctx.args = (x.shape[2:], ksize, stride, dilation, padding)
        return ctx.xp.ascontiguousarray(view).reshape(n, c * kh * kw, ho * wo)

    @staticmethod
    def backward(ctx, g):
        return (Fold.apply(g, *ctx.args), None, None, None, None)


class Fold(Op):
    """The adjoint of `Unfold`: z[n, c, y, x] = Σ of the block entries that land on
    (y, x) (padding positions dropped), from blocks (N, C·kh·kw, L).
    VJP: ḡ = Unfold(z̄)."""

    @staticmethod
    def forward(ctx, g, in_hw, ksize, stride, dilation, padding):
        n, ck, _ = g.shape
        kh, kw = ksize
        c = ck // (kh * kw)
        ho = out_size(in_hw[0], kh, stride[0], padding[0], padding[1], dilation[0])
        wo = out_size(in_hw[1], kw, stride[1], padding[2], padding[3], dilation[1])
        cols = g.reshape(n, 1, c, kh, kw, ho, wo).transpose(0, 1, 3, 4, 2, 5, 6)
        ctx.args = (ksize, stride, dilation, padding)
        return col2im(ctx.backend, cols, tuple(in_hw), stride, dilation, padding)

    @staticmethod
    def backward(ctx, gz):
        return (Unfold.apply(gz, *ctx.args), None, None, None, None, None)


def _patch_geometry(kernel_size, dilation, padding, stride, op: str) -> tuple:
    k = _tuple(kernel_size, 2, "kernel_size", op)
    d = _tuple(dilation, 2, "dilation", op)
    p = _tuple(padding, 2, "padding", op)
    s = _tuple(stride, 2, "stride", op)
    if min(k) < 1 or min(d) < 1 or min(s) < 1 or min(p) < 0:
        raise ValueError(f"{op}: kernel_size {k}, dilation {d} and stride {s} must be "
                         f"positive and padding {p} non-negative")
    return k, d, (p[0], p[0], p[1], p[1]), s


def unfold_patches(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """`F.unfold`: the sliding blocks of (N, C, H, W) (or (C, H, W)) as
    (N, C·kh·kw, L) columns, L = Ho·Wo, in PyTorch's (c, i, j) row order."""
    op = "unfold"
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: expected a 3-d or 4-d input, got shape {tuple(input.shape)}")
    k, d, p, s = _patch_geometry(kernel_size, dilation, padding, stride, op)
    x = input.unsqueeze(0) if input.ndim == 3 else input
    h, w = x.shape[2:]
    if min(out_size(h, k[0], s[0], p[0], p[1], d[0]),
           out_size(w, k[1], s[1], p[2], p[3], d[1])) < 1:
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} is smaller than the kernel "
                         f"{k} (dilation {d}, padding {p[::2]})")
    y = Unfold.apply(x, k, s, d, p)
    return y.squeeze(0) if input.ndim == 3 else y


def fold_patches(input: Tensor, output_size, kernel_size, dilation=1, padding=0,
                 stride=1) -> Tensor:
    """`F.fold`: sum sliding blocks (N, C·kh·kw, L) (or unbatched) into (N, C, *output_size),
    the adjoint of `unfold`."""
    op = "fold"
    if input.ndim not in (2, 3):
        raise ShapeError(f"{op}: expected a 2-d or 3-d input, got shape {tuple(input.shape)}")
    k, d, p, s = _patch_geometry(kernel_size, dilation, padding, stride, op)
    out_hw = _tuple(output_size, 2, "output_size", op)
    g = input.unsqueeze(0) if input.ndim == 2 else input
    ho = out_size(out_hw[0], k[0], s[0], p[0], p[1], d[0])
    wo = out_size(out_hw[1], k[1], s[1], p[2], p[3], d[1])
    if g.shape[1] % (k[0] * k[1]) or g.shape[2] != ho * wo:
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} does not fit output_size "
                         f"{out_hw} and kernel_size {k}: expected (N, C·{k[0] * k[1]}, "
                         f"{ho * wo})")
    y = Fold.apply(g, out_hw, k, s, d, p)
    return y.squeeze(0) if input.ndim == 2 else y


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """3-d transposed convolution of (N, C_in, D, H, W) (or unbatched) with a weight
    (C_in, C_out/groups, kd, kh, kw), as PyTorch's: for each depth tap t,
    conv_transpose2d over (H, W) of every input depth slice z lands at output depth
    z·s_d + t·d_d − p_d (built by interleaving zeros, shifting and summing)."""
    op = "conv_transpose3d"
    x, unbatched = _batched_3d(input, weight, op)
    s = _tuple(stride, 3, "stride", op)
    p = _tuple(padding, 3, "padding", op)
    o = _tuple(output_padding, 3, "output_padding", op)
    d = _tuple(dilation, 3, "dilation", op)
    if any(oi >= max(si, di) for oi, si, di in zip(o, s, d)):
        raise ValueError(f"{op}: output padding {o} must be smaller than either stride {s} "
                         f"or dilation {d}")
    n, c_in, dz, h, w_ = x.shape
    kd = weight.shape[2]
    full = (dz - 1) * s[0] + d[0] * (kd - 1) + 1 + o[0]
    out_d = full - 2 * p[0]
    if out_d < 1:
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} with weight shape "
                         f"{tuple(weight.shape)} gives an empty output depth")
    planes = x.permute(0, 2, 1, 3, 4).reshape(n * dz, c_in, h, w_)
    total = None
    for t in range(kd):
        y = conv_transpose2d(planes, weight[:, :, t], None, s[1:], p[1:], o[1:], groups,
                             d[1:])
        c_out, ho, wo = y.shape[1:]
        y = y.reshape(n, dz, 1, c_out, ho, wo)
        if s[0] > 1:  # interleave s_d − 1 zero planes after each slice
            y = _pad(y, (0, 0, 0, 0, 0, 0, 0, s[0] - 1))
        y = y.reshape(n, dz * s[0], c_out, ho, wo)[:, :(dz - 1) * s[0] + 1]
        before = t * d[0]
        y = _pad(y, (0, 0, 0, 0, 0, 0, before, full - before - y.shape[1]))
        total = y if total is None else total + y
    y = total[:, p[0]:p[0] + out_d].permute(0, 2, 1, 3, 4)
    if bias is not None:
        y = y + bias.reshape(-1, 1, 1, 1)
    return y.squeeze(0) if unbatched else y

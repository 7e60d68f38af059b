"""Convolution: `conv1d`, `conv2d` (stride, padding, dilation, groups) as im2col + one GEMM.

Layout. The column matrix of a batch is `cols[n] = (G, kh·kw·C/G, Ho·Wo)`, row index
(i, j, c) within a group ("tap-major"), built by one copy of a strided window view of the
zero-padded input. Then

    Y[n, g] = W[g] · cols[n, g]       W[g] = weight[g-th block] as (O/G, kh·kw·C/G)

is one GEMM batched over (n, g) whose big operands and result are contiguous in PyTorch's
NCHW layout: activations and gradients are never transposed, only the (small) weight is.
Tap-major rows make each kernel tap's slice of the column gradient one contiguous block,
which halves the cost of col2im. The three ops close under differentiation:

    Conv2d           y  = conv(x, w) + b
    ConvInputGrad    x̄  = convᵀ(ȳ, w)      (col2im of Wᵀ·ȳ: the transposed convolution)
    ConvWeightGrad   w̄  = Σ_n ȳ[n]·cols(x)[n]ᵀ

each op's VJP is written with the others, so `create_graph=True` gives exact higher
derivatives. The forward's column matrix is reused by the weight gradient.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .._autocast import LOWER, autocast_inputs
from ..autograd.function import Op
from ..autograd.grad_mode import is_grad_enabled
from ..errors import ShapeError
from ..tensor import Tensor
from .reduce import sum  # noqa: A004 - gg.sum, not builtins.sum

__all__ = ["conv1d", "conv2d"]


class ConvGeom(NamedTuple):
    """The geometry shared by a convolution and its gradients (all per spatial axis)."""

    stride: tuple  # (sh, sw)
    padding: tuple  # (top, bottom, left, right)
    dilation: tuple  # (dh, dw)
    groups: int


def out_size(n: int, k: int, stride: int, pad0: int, pad1: int, dil: int) -> int:
    """Output length along one axis: ⌊(n + p₀ + p₁ − d·(k − 1) − 1) / s⌋ + 1."""
    return (n + pad0 + pad1 - dil * (k - 1) - 1) // stride + 1


def tap_slices(n_in: int, n_out: int, k: int, stride: int, dil: int, pad0: int) -> list:
    """For each kernel tap t < k along one axis: (out_slice, in_slice) pairing the output
    positions o whose tap lands inside the input (i = o·s + t·d − p₀, not on padding) with
    the input positions they read; None when the tap only ever sees padding."""
    taps = []
    for t in range(k):
        off = t * dil - pad0
        lo = 0 if off >= 0 else (-off + stride - 1) // stride
        hi = min(n_out - 1, (n_in - 1 - off) // stride)
        if hi < lo:
            taps.append(None)
            continue
        i0 = lo * stride + off
        taps.append((slice(lo, hi + 1), slice(i0, i0 + (hi - lo) * stride + 1, stride)))
    return taps


def windows(xp, x, k: tuple, geom_stride: tuple, dilation: tuple, padding: tuple,
            fill=0.0):
    """A strided view (N, C, kh, kw, Ho, Wo) of x (N, C, H, W) padded with `fill`: element
    [n, c, i, j, h, w] is x_pad[n, c, h·sh + i·dh, w·sw + j·dw]. No copy beyond the pad."""
    n, c, h, w = x.shape
    pt, pb, pl, pr = padding
    if pt or pb or pl or pr:
        buf = xp.empty((n, c, h + pt + pb, w + pl + pr), dtype=x.dtype)
        if pt or pb:
            buf[:, :, :pt] = fill
            buf[:, :, pt + h:] = fill
        if pl or pr:
            buf[:, :, :, :pl] = fill
            buf[:, :, :, pl + w:] = fill
        buf[:, :, pt:pt + h, pl:pl + w] = x
        x = buf
    (kh, kw), (sh, sw), (dh, dw) = k, geom_stride, dilation
    ho = out_size(h, kh, sh, pt, pb, dh)
    wo = out_size(w, kw, sw, pl, pr, dw)
    s0, s1, s2, s3 = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, (n, c, kh, kw, ho, wo), (s0, s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw))


def col2im(backend, cols, in_hw: tuple, stride: tuple, dilation: tuple, padding: tuple):
    """The adjoint of the window view: cols (N, G, kh, kw, C/G, Ho, Wo) summed back into an
    (N, C, H, W) array; overlapping windows accumulate, padding positions are dropped. One
    strided add per kernel tap (kh·kw of them), over shares of the batch in parallel."""
    n, grp, kh, kw, cg, ho, wo = cols.shape
    taps = TapScatter(in_hw, (ho, wo), (kh, kw), stride, dilation, padding)
    out = taps.new_output(backend.xp, (n, grp, cg) + tuple(in_hw), cols.dtype)
    backend.over_rows(lambda lo, hi: taps.scatter(out[lo:hi], cols[lo:hi]), n, cols.size)
    return out.reshape(n, grp * cg, *in_hw)


class TapScatter:
    """col2im for one geometry: which kernel taps reach which input positions.

    A tap that covers the whole input one-to-one (stride 1 with 'same' padding: the centre)
    initialises the sum, saving a pass of zeros and an add.
    """

    def __init__(self, in_hw: tuple, out_hw: tuple, ksize: tuple, stride: tuple,
                 dilation: tuple, padding: tuple) -> None:
        (h, w), (ho, wo) = in_hw, out_hw
        rows = tap_slices(h, ho, ksize[0], stride[0], dilation[0], padding[0])
        columns = tap_slices(w, wo, ksize[1], stride[1], dilation[1], padding[2])
        self.taps = [(i, j, r, q) for i, r in enumerate(rows) if r is not None
                     for j, q in enumerate(columns) if q is not None]
        self.whole = next((t for t in self.taps
                           if _covers(t[2], ho, h) and _covers(t[3], wo, w)), None)
        if self.whole is not None:
            self.taps.remove(self.whole)

    def new_output(self, xp, shape: tuple, dtype):
        """The array `scatter` fills: uninitialised when one tap covers it all, else zeros."""
        return (xp.empty if self.whole is not None else xp.zeros)(shape, dtype=dtype)

    def scatter(self, out, cols) -> None:
        """out (B, G, C/G, H, W) (from `new_output`) += the taps of cols (B, G, kh, kw,
        C/G, Ho, Wo)."""
        if self.whole is not None:
            out[...] = cols[:, :, self.whole[0], self.whole[1]]
        for i, j, r, q in self.taps:
            out[..., r[1], q[1]] += cols[:, :, i, j, :, r[0], q[0]]


def _covers(pair, n_out: int, n_in: int) -> bool:
    """Whether a tap's (out_slice, in_slice) maps all n_out outputs one-to-one onto all
    n_in inputs."""
    out_s, in_s = pair
    return (n_out == n_in and out_s == slice(0, n_out) and in_s.start == 0
            and in_s.stop == n_in and in_s.step == 1)


def column_view(xp, x, ksize: tuple, geom: ConvGeom):
    """x (N, C, H, W) as the strided window view (N, G, kh, kw, C/G, Ho, Wo) whose copy
    is the column matrix (tap-major rows); no copy beyond the padding."""
    view = windows(xp, x, ksize, geom.stride, geom.dilation, geom.padding)
    n, c, kh, kw, ho, wo = view.shape
    grp = geom.groups
    s0, s1, s2, s3, s4, s5 = view.strides
    return xp.lib.stride_tricks.as_strided(
        view, (n, grp, kh, kw, c // grp, ho, wo), (s0, s1 * (c // grp), s2, s3, s1, s4, s5))


def _image_bytes(view) -> int:
    """Bytes of one image's column matrix (the working set of a per-image GEMM)."""
    return math.prod(view.shape[1:]) * view.itemsize  # (view[0] fails on an empty batch)


def weight_matrix(xp, w, groups: int):
    """The weight (O, C/G, kh, kw) as (G, O/G, kh·kw·C/G) with tap-major columns."""
    o = w.shape[0]
    return xp.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(groups, o // groups, -1)


class Conv2d(Op):
    """y[n, o] = b[o] + Σ_{c ∈ group(o), i, j} w[o, c, i, j]·x_pad[n, c, h·s + i·d, w·s + j·d],
    computed as Y[n] = W·cols(x)[n] (one GEMM, batched over n and groups).

    VJP: x̄ = ConvInputGrad(ȳ, w) = col2im(Wᵀ·ȳ),  w̄ = ConvWeightGrad(x, ȳ) = Σ_n ȳ[n]·cols(x)[n]ᵀ,
    b̄ = Σ_{n, h, w} ȳ.
    """

    @staticmethod
    def forward(ctx, x, w, b, geom, keep_cols):
        xp = ctx.xp
        o, cg, kh, kw = w.shape
        view = column_view(xp, x, (kh, kw), geom)
        n, grp, _, _, _, ho, wo = view.shape
        k, hw = kh * kw * cg, ho * wo
        wm = weight_matrix(xp, w, grp)
        y = xp.empty((n, grp, o // grp, hw), dtype=x.dtype)
        cols = xp.empty(view.shape, dtype=x.dtype) if keep_cols else None

        # Per range of images: copy its columns and multiply while they are in cache.
        def step(lo: int, hi: int) -> None:
            c = cols[lo:hi] if cols is not None else xp.empty((hi - lo,) + view.shape[1:], x.dtype)
            c[...] = view[lo:hi]
            xp.matmul(wm, c.reshape(hi - lo, grp, k, hw), out=y[lo:hi])
            if b is not None:
                y[lo:hi] += b.reshape(1, grp, o // grp, 1)

        ctx.backend.over_rows(step, n, view.size + y.size, row_bytes=_image_bytes(view),
                              blas=True)
        ctx.save_inputs(0, 1)
        ctx.geom, ctx.in_hw = geom, x.shape[2:]
        ctx.cols = cols
        return y.reshape(n, o, ho, wo)

    @staticmethod
    def backward(ctx, g):
        need = ctx.needs_input_grad
        cols, ctx.cols = ctx.cols, None  # free it now; a retained graph recomputes it
        gx = gw = gb = None
        if need[0]:
            gx = ConvInputGrad.apply(g, ctx.saved_input(1), ctx.geom, ctx.in_hw)
        if need[1]:
            w_shape = ctx._input_meta[1][0]
            gw = ConvWeightGrad.apply(ctx.saved_input(0), g, ctx.geom, w_shape, cols)
        if need[2]:
            gb = sum(g, (0, 2, 3))
        return gx, gw, gb, None, None


class ConvInputGrad(Op):
    """The transposed convolution z = convᵀ(g, w) = col2im(Wᵀ·g) of shape (N, C, H, W): the
    adjoint of x ↦ conv(x, w).  VJP (it is bilinear in g and w):
    ḡ = conv(z̄, w),  w̄ = ConvWeightGrad(z̄, g)."""

    @staticmethod
    def forward(ctx, g, w, geom, in_hw):
        xp = ctx.xp
        n, o, ho, wo = g.shape
        _, cg, kh, kw = w.shape
        grp = geom.groups
        # Wᵀ made contiguous (it is small): a transposed A operand makes batched matmul
        # leave BLAS in NumPy.
        wt = xp.ascontiguousarray(weight_matrix(xp, w, grp).transpose(0, 2, 1))
        g4 = g.reshape(n, grp, o // grp, ho * wo)
        taps = TapScatter(in_hw, (ho, wo), (kh, kw), geom.stride, geom.dilation, geom.padding)
        out = taps.new_output(xp, (n, grp, cg) + tuple(in_hw), g.dtype)

        # Per range of images: the column gradient Wᵀ·ḡ, scattered back while in cache.
        def step(lo: int, hi: int) -> None:
            gcols = xp.matmul(wt, g4[lo:hi]).reshape(hi - lo, grp, kh, kw, cg, ho, wo)
            taps.scatter(out[lo:hi], gcols)

        image_cols = wt.shape[0] * wt.shape[1] * ho * wo  # one image's column gradient
        ctx.backend.over_rows(step, n, n * image_cols + out.size,
                              row_bytes=image_cols * g.itemsize, blas=True)
        ctx.save_inputs(0, 1)
        ctx.geom, ctx.in_hw = geom, in_hw
        return out.reshape(n, grp * cg, *in_hw)

    @staticmethod
    def backward(ctx, gz):
        need = ctx.needs_input_grad
        gg = gw = None
        if need[0]:
            gg = Conv2d.apply(gz, ctx.saved_input(1), None, ctx.geom, False)
        if need[1]:
            w_shape = ctx._input_meta[1][0]
            gw = ConvWeightGrad.apply(gz, ctx.saved_input(0), ctx.geom, w_shape, None)
        return gg, gw, None, None


class ConvWeightGrad(Op):
    """z = Σ_n g[n]·cols(x)[n]ᵀ reshaped to the weight's (O, C/G, kh, kw): the adjoint of
    w ↦ conv(x, w) applied to g.  VJP (bilinear in x and g): x̄ = ConvInputGrad(g, z̄),
    ḡ = conv(x, z̄).  `cols` may carry the forward's column matrix of x."""

    @staticmethod
    def forward(ctx, x, g, geom, w_shape, cols):
        xp = ctx.xp
        o, cg, kh, kw = w_shape
        n, _, ho, wo = g.shape
        grp = geom.groups
        view = column_view(xp, x, (kh, kw), geom) if cols is None else cols
        k, hw = kh * kw * cg, ho * wo
        g4 = g.reshape(n, grp, o // grp, hw)
        partial: dict = {}

        # Per range of images: its share of Σ_n ḡ[n]·cols[n]ᵀ (columns rebuilt in cache
        # when the forward did not keep them); the shares are summed in a fixed order.
        def step(lo: int, hi: int) -> None:
            c = view[lo:hi] if cols is not None else xp.ascontiguousarray(view[lo:hi])
            c = c.reshape(hi - lo, grp, k, hw).transpose(0, 1, 3, 2)
            partial[lo] = xp.matmul(g4[lo:hi], c).sum(0)

        ctx.backend.over_rows(step, n, view.size + g.size, row_bytes=_image_bytes(view),
                              blas=True)
        gw = xp.zeros((grp, o // grp, k), dtype=g.dtype)
        for lo in sorted(partial):
            gw += partial[lo]
        ctx.save_inputs(0, 1)
        ctx.geom, ctx.in_hw = geom, x.shape[2:]
        # (G, O/G, kh·kw·C/G), tap-major -> (O, C/G, kh, kw)
        return xp.ascontiguousarray(gw.reshape(o, kh, kw, cg).transpose(0, 3, 1, 2))

    @staticmethod
    def backward(ctx, gz):
        need = ctx.needs_input_grad
        gx = gg = None
        if need[0]:
            gx = ConvInputGrad.apply(ctx.saved_input(1), gz, ctx.geom, ctx.in_hw)
        if need[1]:
            gg = Conv2d.apply(ctx.saved_input(0), gz, None, ctx.geom, False)
        return gx, gg, None, None, None


# --- argument handling ------------------------------------------------------------------------
def _tuple(v, nd: int, name: str, op: str) -> tuple:
    t = (v,) * nd if isinstance(v, int) else tuple(int(e) for e in v)
    if len(t) != nd:
        raise ValueError(f"{op}: {name} must be an int or a tuple of {nd} ints, got {v!r}")
    return t


def _padding(padding, nd: int, ksize: tuple, stride: tuple, dilation: tuple, op: str) -> tuple:
    """Per-axis (before, after) padding from an int, a tuple, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding != "same":
            raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a tuple, "
                             f"got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
        # PyTorch puts the odd extra element of an even total on the after side.
        return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                     for k, d in zip(ksize, dilation))
    pads = _tuple(padding, nd, "padding", op)
    if any(p < 0 for p in pads):
        raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return tuple((p, p) for p in pads)


def _conv_inputs(input: Tensor, weight: Tensor, bias, nd: int, op: str, channels: str):
    """Check an nd-d convolution's tensors (`channels` names the weight's first two dims
    in its shape message) and return them autocast."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: input and weight must be Tensors")
    input, weight, bias = autocast_inputs(LOWER, input, weight, bias)
    if input.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected a {nd + 1}-d (unbatched) or {nd + 2}-d (batched) "
                         f"input, got shape {tuple(input.shape)}")
    if weight.ndim != nd + 2:
        raise ShapeError(f"{op}: expected a {nd + 2}-d weight ({channels}, *kernel), got "
                         f"shape {tuple(weight.shape)}")
    return input, weight, bias


def _conv(input: Tensor, weight: Tensor, bias, stride, padding, dilation, groups: int,
          nd: int, op: str) -> Tensor:
    input, weight, bias = _conv_inputs(input, weight, bias, nd, op,
                                       "out_channels, in_channels/groups")
    groups = int(groups)
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    o, cg = weight.shape[:2]
    c = x.shape[1]
    if groups < 1 or o % groups:
        raise ValueError(f"{op}: groups={groups} must be positive and divide out_channels "
                         f"(weight shape {tuple(weight.shape)})")
    if c != cg * groups:
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} has {c} channels but weight "
                         f"shape {tuple(weight.shape)} with groups={groups} expects "
                         f"{cg * groups} input channels")
    if input.dtype is not weight.dtype:
        raise TypeError(f"{op}: input dtype {input.dtype} and weight dtype {weight.dtype} "
                        "must be the same")
    if bias is not None:
        if tuple(bias.shape) != (o,):
            raise ShapeError(f"{op}: bias shape {tuple(bias.shape)} does not match weight "
                             f"shape {tuple(weight.shape)} (expected ({o},))")
        if bias.dtype is not weight.dtype:
            raise TypeError(f"{op}: bias dtype {bias.dtype} and weight dtype {weight.dtype} "
                            "must be the same")
    ksize = tuple(weight.shape[2:])
    stride = _tuple(stride, nd, "stride", op)
    dilation = _tuple(dilation, nd, "dilation", op)
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation):
        raise ValueError(f"{op}: stride {stride} and dilation {dilation} must be positive")
    pads = _padding(padding, nd, ksize, stride, dilation, op)
    spatial = tuple(x.shape[2:])
    for n, k, (p0, p1), d in zip(spatial, ksize, pads, dilation):
        if n + p0 + p1 < d * (k - 1) + 1:
            raise ShapeError(f"{op}: input shape {tuple(input.shape)} padded by {pads} is "
                             f"smaller than the (dilated) kernel of weight shape "
                             f"{tuple(weight.shape)}")
    if nd == 1:  # a 1-d convolution is a 2-d one over a height-1 image
        x, w = x.unsqueeze(2), weight.unsqueeze(2)
        geom = ConvGeom((1, stride[0]), (0, 0) + pads[0], (1, dilation[0]), groups)
    else:
        w = weight
        geom = ConvGeom(stride, pads[0] + pads[1], dilation, groups)
    keep = is_grad_enabled() and weight.requires_grad
    y = Conv2d.apply(x, w, bias, geom, keep)
    if nd == 1:
        y = y.squeeze(2)
    return y.squeeze(0) if unbatched else y


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-d cross-correlation of an (N, C, H, W) or (C, H, W) input with an
    (O, C/groups, kh, kw) weight, as in PyTorch. `padding` is an int, a pair, 'valid' or
    'same' (stride 1 only); `groups=C` is a depthwise convolution."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-d cross-correlation of an (N, C, L) or (C, L) input with an (O, C/groups, k)
    weight, as in PyTorch (same options as `conv2d`)."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")

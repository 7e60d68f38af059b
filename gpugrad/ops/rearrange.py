"""Rearranging ops: flip, roll, rot90, repeat, repeat_interleave, movedim, unfold,
tensor_split and its h/v/d forms, atleast_nd.

Each either is one op with a one-line VJP (flip: flip ȳ back; roll: roll ȳ back; unfold:
add the windows of ȳ back into place) or composes existing differentiable ops.
"""

from __future__ import annotations

import numpy as np

from ..autograd.function import Op, version_counter
from ..tensor import Tensor, _wrap_array
from ._util import norm_dim
from .index import IndexBackward, index_select
from .shape import permute, reshape, transpose

__all__ = ["flip", "fliplr", "flipud", "roll", "rot90", "repeat", "repeat_interleave",
           "movedim", "moveaxis", "swapdims", "unfold", "tensor_split", "hsplit", "vsplit",
           "dsplit", "atleast_1d", "atleast_2d", "atleast_3d"]


def _dims_arg(dims) -> tuple:
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        return tuple(dims[0])
    return tuple(dims)


class Flip(Op):
    """y = x reversed along `dims`;  x̄ = ȳ reversed along `dims`."""

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return ctx.xp.flip(x, axis=dims).copy()  # torch's flip copies

    @staticmethod
    def backward(ctx, g):
        return Flip.apply(g, ctx.dims), None


def flip(input: Tensor, *dims, **kwargs) -> Tensor:
    """Reverse the order of the elements along `dims` (given as varargs, one sequence, or
    `dims=`; a copy, as in PyTorch)."""
    if "dims" in kwargs:
        dims = (kwargs.pop("dims"),)
    if kwargs:
        raise TypeError(f"flip: unexpected keyword arguments {sorted(kwargs)}")
    dims = _dims_arg(dims)
    nd = tuple(norm_dim(d, input.ndim, "flip") for d in dims)
    if len(set(nd)) != len(nd):
        raise RuntimeError(f"flip: dims {dims} contain a repeated dimension")
    if not nd or input.ndim == 0:
        return input.clone()
    return Flip.apply(input, nd)


def fliplr(input: Tensor) -> Tensor:
    """Flip left-right (dim 1); needs at least 2 dims."""
    if input.ndim < 2:
        raise RuntimeError(f"fliplr: input must be >= 2-d, got shape {tuple(input.shape)}")
    return flip(input, 1)


def flipud(input: Tensor) -> Tensor:
    """Flip up-down (dim 0); needs at least 1 dim."""
    if input.ndim < 1:
        raise RuntimeError("flipud: input must be >= 1-d, got a 0-d tensor")
    return flip(input, 0)


class Roll(Op):
    """y = x shifted cyclically by `shifts` along `dims`;  x̄ = ȳ shifted back."""

    @staticmethod
    def forward(ctx, x, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return ctx.xp.roll(x, shifts, axis=dims)

    @staticmethod
    def backward(ctx, g):
        return Roll.apply(g, tuple(-s for s in ctx.shifts), ctx.dims), None, None


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """Shift elements cyclically; with `dims` None the flattened tensor is shifted and the
    shape restored."""
    shifts = (shifts,) if isinstance(shifts, int) else tuple(int(s) for s in shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: with dims=None, shifts must be one int, got {shifts}")
        return reshape(Roll.apply(reshape(input, -1), shifts, (0,)), input.shape)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(dims) != len(shifts):
        raise RuntimeError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    nd = tuple(norm_dim(d, input.ndim, "roll") for d in dims)
    return Roll.apply(input, shifts, nd)


def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by 90° k times in the plane `dims`, from the first axis towards the second."""
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"rot90: expected 2 dims, got {dims}")
    if input.ndim < 2:
        raise RuntimeError(f"rot90: expected a tensor of at least 2 dims, got shape "
                           f"{tuple(input.shape)}")
    a, b = (norm_dim(d, input.ndim, "rot90") for d in dims)
    if a == b:
        raise RuntimeError(f"rot90: dims {dims} must differ")
    k %= 4
    if k == 0:
        return input.clone()
    if k == 1:
        return transpose(flip(input, b), a, b)
    if k == 2:
        return flip(input, a, b)
    return flip(transpose(input, a, b), b)


def repeat(input: Tensor, *sizes) -> Tensor:
    """Tile `input` `sizes[i]` times along dim i (leading sizes add new dims):
    a view of x with one broadcast axis before each dim, reshaped."""
    sizes = tuple(int(s) for s in _dims_arg(sizes))
    if len(sizes) < input.ndim:
        raise RuntimeError(f"repeat: number of repeat dims {len(sizes)} can not be smaller "
                           f"than the number of dims of the tensor {tuple(input.shape)}")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"repeat: repeats {sizes} must be non-negative")
    shape = (1,) * (len(sizes) - input.ndim) + tuple(input.shape)
    inter = []
    for n in shape:
        inter += [1, n]
    big = []
    for s, n in zip(sizes, shape):
        big += [s, n]
    out = reshape(input, inter).expand(*big)
    return reshape(out, tuple(s * n for s, n in zip(sizes, shape)))


def repeat_interleave(input, repeats=None, dim: int | None = None, *,
                      output_size: int | None = None) -> Tensor:
    """Repeat each element (or each slice along `dim`) `repeats` times (an int or one count
    per element); `repeat_interleave(counts)` alone gives [0]*c0 + [1]*c1 + ..."""
    if repeats is None:  # torch.repeat_interleave(repeats_tensor)
        counts = input
        xp = counts._backend.xp
        c = counts._data
        c = [int(v) for v in (c.get() if hasattr(c, "get") else c)]
        return _wrap_array(xp.repeat(xp.arange(len(c)), c).astype(np.int64), counts._backend)
    if dim is None:
        input = reshape(input, -1)
        dim = 0
    d = norm_dim(dim, input.ndim, "repeat_interleave")
    n = input.shape[d] if input.ndim else 1
    xp = input._backend.xp
    if isinstance(repeats, Tensor):
        r = repeats._data.reshape(-1)
        if r.shape[0] not in (1, n):
            raise RuntimeError(f"repeat_interleave: repeats of shape {tuple(repeats.shape)} "
                               f"must have one element or {n} (the size of dim {d})")
        if r.size and int(r.min()) < 0:
            raise RuntimeError("repeat_interleave: repeats can not be negative")
        # The output size depends on the counts: read them on the host (as PyTorch does
        # without output_size); CuPy's repeat takes host counts only.
        r = [int(v) for v in (r.get() if hasattr(r, "get") else r)]
        if len(r) == 1:
            r = r[0]
    else:
        if int(repeats) < 0:
            raise RuntimeError("repeat_interleave: repeats can not be negative")
        r = int(repeats)
    idx = xp.repeat(xp.arange(n), r)
    return index_select(input, d, _wrap_array(idx.astype(np.int64), input._backend))


def movedim(input: Tensor, source, destination) -> Tensor:
    """Move the dims `source` to the positions `destination` (a view)."""
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: source {src} and destination {dst} must have the same "
                           "number of dims")
    n = input.ndim
    src = tuple(norm_dim(s, n, "movedim") for s in src)
    dst = tuple(norm_dim(s, n, "movedim") for s in dst)
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError(f"movedim: repeated dim in source {src} or destination {dst}")
    order = [None] * n
    for s, t in zip(src, dst):
        order[t] = s
    rest = iter(d for d in range(n) if d not in src)
    order = [o if o is not None else next(rest) for o in order]
    return permute(input, tuple(order))


moveaxis = movedim
swapdims = transpose


class Unfold(Op):
    """y[..., i, ..., j] = x[..., i·step + j, ...] (windows of `size` along `dim`, a strided
    view);  x̄ = the windows of ȳ added back into place (overlaps accumulate)."""

    @staticmethod
    def forward(ctx, x, dim, size, step):
        n = (x.shape[dim] - size) // step + 1
        ctx.shape, ctx.dim, ctx.size, ctx.step, ctx.n = x.shape, dim, size, step, n
        strides = x.strides
        shape = x.shape[:dim] + (n,) + x.shape[dim + 1:] + (size,)
        new_strides = strides[:dim] + (strides[dim] * step,) + strides[dim + 1:] + (strides[dim],)
        return ctx.xp.lib.stride_tricks.as_strided(x, shape, new_strides)

    @staticmethod
    def backward(ctx, g):
        return _unfold_backward(ctx, g), None, None, None


def _unfold_backward(ctx, g: Tensor) -> Tensor:
    xp = ctx.xp
    dim, nd = ctx.dim, len(ctx.shape)
    # Move the window axis next to the windows: (..., n, size, ...), then index positions.
    gm = movedim(g, nd, dim + 1)
    pos = (xp.arange(ctx.n) * ctx.step)[:, None] + xp.arange(ctx.size)[None, :]
    key = (slice(None),) * dim + (pos,)
    return IndexBackward.apply(gm, ctx.shape, key, False)


def unfold(input: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """All windows of length `size` taken every `step` along `dimension`, as a new last dim
    (Tensor.unfold; a view)."""
    if input.ndim == 0:
        input = reshape(input, 1)
    d = norm_dim(dimension, input.ndim, "unfold")
    if step <= 0:
        raise RuntimeError(f"unfold: step must be positive, got {step}")
    if size < 0 or size > input.shape[d]:
        raise RuntimeError(f"unfold: size {size} exceeds the size {input.shape[d]} of dimension "
                           f"{d} of shape {tuple(input.shape)}")
    out = Unfold.apply(input, d, int(size), int(step))
    out._version = version_counter(input)
    return out


def tensor_split(input: Tensor, indices_or_sections, dim: int = 0) -> tuple:
    """Split into `sections` near-equal pieces (the first n % sections one longer), or at
    the given indices; pieces are views."""
    d = norm_dim(dim, input.ndim, "tensor_split")
    n = input.shape[d]
    if isinstance(indices_or_sections, Tensor):
        v = indices_or_sections.tolist()
        indices_or_sections = v if isinstance(v, list) else int(v)
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0:
            raise RuntimeError(f"tensor_split: number of sections must be positive, got {k}")
        q, r = divmod(n, k)
        bounds, start = [], 0
        for i in range(k - 1):
            start += q + (1 if i < r else 0)
            bounds.append(start)
    else:
        bounds = [int(i) for i in indices_or_sections]
    pieces, start = [], 0
    for b in bounds + [n]:
        lo = min(max(start if start >= 0 else start + n, 0), n)
        hi = min(max(b if b >= 0 else b + n, 0), n)
        key = (slice(None),) * d + (slice(lo, max(hi, lo)),)
        pieces.append(input[key])
        start = b
    return tuple(pieces)


def _nsplit(input: Tensor, sections, dim: int, name: str, min_dim: int) -> tuple:
    if input.ndim < min_dim:
        raise RuntimeError(f"{name}: requires a tensor with at least {min_dim} dims, got shape "
                           f"{tuple(input.shape)}")
    if isinstance(sections, (int, np.integer)) and input.shape[dim] % int(sections):
        raise RuntimeError(f"{name}: dim {dim} of size {input.shape[dim]} is not divisible by "
                           f"{sections} sections (shape {tuple(input.shape)})")
    return tensor_split(input, sections, dim)


def hsplit(input: Tensor, sections) -> tuple:
    """Split horizontally: along dim 1 (dim 0 for a 1-d tensor)."""
    return _nsplit(input, sections, 1 if input.ndim > 1 else 0, "hsplit", 1)


def vsplit(input: Tensor, sections) -> tuple:
    """Split vertically: along dim 0 (needs ≥ 2 dims)."""
    return _nsplit(input, sections, 0, "vsplit", 2)


def dsplit(input: Tensor, sections) -> tuple:
    """Split depth-wise: along dim 2 (needs ≥ 3 dims)."""
    return _nsplit(input, sections, 2, "dsplit", 3)


def _atleast(tensors, n: int):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    outs = []
    for t in tensors:
        if t.ndim >= n:
            outs.append(t)
        elif n == 3 and t.ndim == 2:
            outs.append(reshape(t, t.shape + (1,)))
        elif n == 3 and t.ndim == 1:
            outs.append(reshape(t, (1,) + t.shape + (1,)))
        else:
            outs.append(reshape(t, (1,) * (n - t.ndim) + t.shape))
    return outs[0] if len(outs) == 1 else tuple(outs)


def atleast_1d(*tensors):
    """Each tensor viewed with at least 1 dim."""
    return _atleast(tensors, 1)


def atleast_2d(*tensors):
    """Each tensor viewed with at least 2 dims (a 1-d tensor becomes a row)."""
    return _atleast(tensors, 2)


def atleast_3d(*tensors):
    """Each tensor viewed with at least 3 dims ((n,) -> (1, n, 1), (m, n) -> (m, n, 1))."""
    return _atleast(tensors, 3)


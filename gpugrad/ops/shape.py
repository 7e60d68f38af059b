"""Shape ops: reshape/view, permute/transpose, broadcast, cat/stack, split, pad.

Views (reshape of contiguous data, permute, broadcast_to, split pieces) are marked with
`make_view` (autograd/views.py): they share their base's version counter, and an in-place
op on one is differentiated through the base's graph.
"""

from __future__ import annotations

import math
import operator

from .._dtype import promote_types
from .._memory_format import check_memory_format
from ..autograd.function import Op
from ..autograd.views import is_view_of, make_view
from ..errors import ShapeError
from ..tensor import Tensor, _check_same_device, _size_tuple
from ._util import norm_dim
from .broadcast import broadcast_to
from .index import getitem


def _shape_arg(shape, op: str = "reshape") -> tuple:
    return _size_tuple(shape, op)


def infer_shape(shape: tuple, size: int, op: str, in_shape: tuple) -> tuple:
    """Resolve one -1 in `shape` and check the element count."""
    if shape.count(-1) > 1:
        raise ShapeError(f"{op}: only one dimension can be inferred, got {shape}")
    if any(s < -1 for s in shape):
        raise ShapeError(f"{op}: invalid shape dimension in {shape}")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or size % known:
            raise ShapeError(f"{op}: shape {shape} is invalid for input of shape {in_shape} "
                             f"(size {size})")
        shape = tuple(size // known if s == -1 else s for s in shape)
    if math.prod(shape) != size:
        raise ShapeError(f"{op}: shape {shape} is invalid for input of shape {in_shape} "
                         f"(size {size})")
    return shape


class Reshape(Op):
    """y = x with a new shape;  x̄ = ȳ reshaped back."""

    @staticmethod
    def forward(ctx, x, shape, view_only):
        ctx.in_shape = x.shape
        if view_only:
            try:
                return ctx.backend.reshape_view(x, shape)
            except (ValueError, AttributeError):
                raise RuntimeError(
                    f"view: shape {shape} is not compatible with the input's shape "
                    f"{x.shape} and strides (the data is not contiguous); use .reshape(...) "
                    "instead") from None
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.in_shape), None, None


def reshape(input: Tensor, *shape) -> Tensor:
    """The same elements in a new shape (a view when possible); one dim may be -1."""
    shape = infer_shape(_shape_arg(shape), input._data.size, "reshape", input.shape)
    if shape == input._data.shape:
        return input
    out = Reshape.apply(input, shape, False)
    if is_view_of(out._data, input._data):
        make_view(out, input, lambda b: reshape(b, shape), "reshape")
    return out


def view(input: Tensor, *shape) -> Tensor:
    """Like reshape, but never copies: raises when the data is not contiguous enough."""
    shape = infer_shape(_shape_arg(shape, "view"), input._data.size, "view", input.shape)
    return make_view(Reshape.apply(input, shape, True), input, lambda b: reshape(b, shape),
                     "view")


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one."""
    if input.ndim == 0:
        return reshape(input, (1,))
    s = norm_dim(start_dim, input.ndim, "flatten")
    e = norm_dim(end_dim, input.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} cannot come after end_dim {end_dim}")
    shape = input.shape
    return reshape(input, shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    """Split dimension `dim` into `sizes`."""
    d = norm_dim(dim, input.ndim, "unflatten")
    shape = input.shape
    sizes = infer_shape(tuple(sizes), shape[d], "unflatten", shape)
    return reshape(input, shape[:d] + sizes + shape[d + 1:])


def squeeze(input: Tensor, dim=None) -> Tensor:
    """Remove size-1 dims (all of them, or those in `dim`)."""
    shape = input.shape
    if dim is None:
        dims = {i for i, n in enumerate(shape) if n == 1}
    else:
        ds = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = {norm_dim(d, input.ndim, "squeeze") for d in ds}
        dims = {d for d in dims if input.ndim and shape[d] == 1}
    return reshape(input, tuple(n for i, n in enumerate(shape) if i not in dims))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at `dim`."""
    n = input.ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"unsqueeze: dimension {dim} out of range for a {input.ndim}-d tensor "
                         f"(expected to be in range of [{-n}, {n - 1}])")
    d = dim % n
    shape = input.shape
    return reshape(input, shape[:d] + (1,) + shape[d:])


class Permute(Op):
    """y = x with axes reordered;  x̄ = ȳ with the inverse order."""

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        inv = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inv[d] = i
        return permute(g, tuple(inv)), None


def permute(input: Tensor, *dims) -> Tensor:
    """Reorder the axes (a view)."""
    dims = _shape_arg(dims, "permute")
    if len(dims) != input.ndim:
        raise ShapeError(f"permute: got {len(dims)} dims {dims} for a tensor of shape "
                         f"{tuple(input.shape)}")
    nd = tuple(norm_dim(d, input.ndim, "permute") for d in dims)
    if sorted(nd) != list(range(input.ndim)):
        raise ValueError(f"permute: dims {dims} repeat a dimension")
    if nd == tuple(range(input.ndim)):
        return input
    return make_view(Permute.apply(input, nd), input, lambda b: permute(b, nd), "permute")


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two axes (a view)."""
    n = input.ndim
    if n < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return input
    a, b = norm_dim(dim0, n, "transpose"), norm_dim(dim1, n, "transpose")
    dims = list(range(n))
    dims[a], dims[b] = dims[b], dims[a]
    return permute(input, tuple(dims))


swapaxes = transpose


def expand(input: Tensor, *sizes) -> Tensor:
    """Broadcast to `sizes`, where -1 keeps a dimension's size."""
    sizes = _shape_arg(sizes, "expand")
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ShapeError(f"expand: the number of sizes {sizes} must be at least the number of "
                         f"dims of the input shape {tuple(input.shape)}")
    shape = tuple(input.shape[i - lead] if s == -1 and i >= lead else s
                  for i, s in enumerate(sizes))
    return broadcast_to(input, shape)


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return broadcast_to(input, other.shape)


class Cat(Op):
    """y = [x₁, x₂, …] along dim;  x̄ᵢ = the matching slice of ȳ."""

    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        ctx.sizes = [x.shape[dim] for x in xs]
        return ctx.xp.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, g):
        return (None,) + tuple(split(g, ctx.sizes, ctx.dim))


def cat(tensors, dim: int = 0) -> Tensor:
    """Concatenate along an existing dim; dtypes promote as in binary ops."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of Tensors")
    _check_same_device("cat", *tensors)
    ref = max(tensors, key=lambda t: t.ndim)
    d = norm_dim(dim, ref.ndim, "cat")
    # PyTorch skips 1-d empty tensors (legacy behaviour).
    skipped = [t for t in tensors if t.ndim == 1 and t.shape[0] == 0 and t.requires_grad]
    tensors = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    for t in tensors:
        if t.ndim != ref.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref.shape))
                                     if i != d):
            raise ShapeError(f"cat: expected tensors of the same shape except in dimension {d}, "
                             f"got {tuple(ref.shape)} and {tuple(t.shape)}")
    dt = tensors[0].dtype
    for t in tensors[1:]:
        dt = promote_types(dt, t.dtype)
    tensors = [t.to(dt) if t.dtype is not dt else t for t in tensors]
    if len(tensors) == 1:
        out = tensors[0] * 1 if tensors[0].requires_grad else tensors[0].clone()
    else:
        out = Cat.apply(d, *tensors)
    for t in skipped:
        if t is not tensors[0]:  # an empty sum: gives a skipped input its (empty) gradient
            out = out + t.sum().to(out.dtype)
    return out


concat = concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    """Join along a new dim; all shapes must match."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of Tensors")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ShapeError(f"stack: expects each tensor to be equal size, but got "
                             f"{tuple(tensors[0].shape)} and {tuple(t.shape)}")
    n = tensors[0].ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"stack: dimension {dim} out of range (expected to be in range of "
                         f"[{-n}, {n - 1}])")
    return cat([unsqueeze(t, dim) for t in tensors], dim % n)


class Split(Op):
    """(y₁, y₂, …) = consecutive slices along dim;  x̄ = cat(ȳ₁, ȳ₂, …)."""

    @staticmethod
    def forward(ctx, x, sizes, dim):
        ctx.dim = dim
        bounds, start = [], 0
        for s in sizes[:-1]:
            start += s
            bounds.append(start)
        return tuple(ctx.xp.split(x, bounds, axis=dim))

    @staticmethod
    def backward(ctx, *gs):
        return cat(list(gs), ctx.dim), None, None


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of `split_size_or_sections` each (last may be smaller), or of the given sizes."""
    d = norm_dim(dim, tensor.ndim, "split")
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, Tensor) and split_size_or_sections.ndim == 0:
        split_size_or_sections = int(split_size_or_sections)  # a 0-d tensor is a number
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0 and n:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else []) if n else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins_sum(sizes) != n:
            raise ShapeError(f"split: sizes {sizes} do not sum to {n}, the size of dimension {d} "
                             f"of shape {tuple(tensor.shape)}")
    if len(sizes) == 1:
        return (tensor,)
    outs = Split.apply(tensor, tuple(sizes), d)
    start = 0
    for o, size in zip(outs, sizes):
        key = (slice(None),) * d + (slice(start, start + size),)
        make_view(o, tensor, lambda b, key=key: getitem(b, key), "split", multi=True)
        start += size
    return outs


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into `chunks` pieces of ceil(n / chunks) (fewer if n is small)."""
    chunks = operator.index(chunks)  # an int, or an integer 0-d tensor as in PyTorch
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    d = norm_dim(dim, input.ndim, "chunk")
    n = input.shape[d]
    if n == 0:  # as torch: `chunks` empty pieces
        return split(input, [0] * chunks, d)
    size = max(-(-n // chunks), 1)
    return split(input, size, d)


def unbind(input: Tensor, dim: int = 0) -> tuple:
    """The slices along `dim`, with that dim removed."""
    d = norm_dim(dim, input.ndim, "unbind")
    return tuple(squeeze(p, d) for p in split(input, 1, d))


class Pad(Op):
    """y = x with constant borders;  x̄ = the interior of ȳ."""

    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.interior = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return ctx.xp.pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.interior], None, None


def pad(input: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with `value`; `pad` = (left, right) pairs starting from the last dim."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding {pad} must have an even length of at most "
                         f"2 * ndim = {2 * input.ndim} for shape {tuple(input.shape)}")
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported (only 'constant')")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {pad} is not supported")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(input, tuple(widths), value if value is not None else 0.0)


class Contiguous(Op):
    """y = a C-contiguous copy of x;  x̄ = ȳ."""

    @staticmethod
    def forward(ctx, x):
        return ctx.xp.ascontiguousarray(x)

    @staticmethod
    def backward(ctx, g):
        return g


class Clone(Op):
    """y = a copy of x;  x̄ = ȳ."""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g


def contiguous(input: Tensor, memory_format=None) -> Tensor:
    """`input` itself if C-contiguous, else a contiguous copy (`memory_format` is checked as
    PyTorch does; the layout stays row-major, see gpugrad/_memory_format.py)."""
    check_memory_format(input, memory_format, "contiguous")
    if input._data.flags.c_contiguous:
        return input
    return Contiguous.apply(input)


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    """A copy with its own storage (differentiable; `memory_format` as in `contiguous`)."""
    check_memory_format(input, memory_format, "clone")
    return Clone.apply(input)


builtins_sum = sum

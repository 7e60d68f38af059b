"""Triangles and diagonals: `tril`, `triu`, `diagonal`, `diag_embed`, `diag`.

`diagonal` is a view (it shares storage and the in-place version counter, as slicing
does); its VJP writes the cotangent onto the diagonal of zeros, which is `diag_embed`'s
forward, and `diag_embed`'s VJP is `diagonal`: the two are each other's transposes.
"""

from __future__ import annotations

from ..autograd.function import Op, version_counter
from ..tensor import Tensor
from ._util import norm_dim
from .shape import clone

__all__ = ["tril", "triu", "diagonal", "diag_embed", "diag"]


class Tril(Op):
    """y = x with the elements above diagonal k zeroed (j − i > k);  x̄ = tril(ȳ, k)."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return ctx.xp.tril(x, k)

    @staticmethod
    def backward(ctx, g):
        return tril(g, ctx.k), None


class Triu(Op):
    """y = x with the elements below diagonal k zeroed (j − i < k);  x̄ = triu(ȳ, k)."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return ctx.xp.triu(x, k)

    @staticmethod
    def backward(ctx, g):
        return triu(g, ctx.k), None


def _check_matrix(input: Tensor, op: str) -> None:
    if input.ndim < 2:
        raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions, got shape "
                           f"{tuple(input.shape)}")


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims: elements with j − i ≤ diagonal, others 0."""
    _check_matrix(input, "tril")
    return Tril.apply(input, int(diagonal))


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims: elements with j − i ≥ diagonal, others 0."""
    _check_matrix(input, "triu")
    return Triu.apply(input, int(diagonal))


def _diagonal_view(xp, a, offset: int, d1: int, d2: int):
    """The writable strided view of a's diagonal (NumPy hands out a read-only one)."""
    d = a.diagonal(offset, d1, d2)
    if xp.__name__ == "numpy" and a.flags.writeable:
        d.flags.writeable = True
    return d


class Diagonal(Op):
    """y[..., i] = x[..., i, i + offset] over dims (dim1, dim2), moved last (a view);
    x̄ = zeros with ȳ on that diagonal."""

    @staticmethod
    def forward(ctx, x, offset, d1, d2):
        ctx.shape, ctx.args = x.shape, (offset, d1, d2)
        return _diagonal_view(ctx.xp, x, offset, d1, d2)

    @staticmethod
    def backward(ctx, g):
        return DiagonalScatter.apply(g, ctx.shape, *ctx.args), None, None, None


class DiagonalScatter(Op):
    """y = zeros(shape) with y's diagonal (offset, dim1, dim2) set to x;  x̄ = diagonal(ȳ)."""

    @staticmethod
    def forward(ctx, x, shape, offset, d1, d2):
        ctx.args = (offset, d1, d2)
        out = ctx.xp.zeros(shape, dtype=x.dtype)
        _diagonal_view(ctx.xp, out, offset, d1, d2)[...] = x
        return out

    @staticmethod
    def backward(ctx, g):
        return (Diagonal.apply(g, *ctx.args),) + (None,) * 4


def _two_dims(ndim: int, dim1: int, dim2: int, op: str) -> tuple[int, int]:
    d1, d2 = norm_dim(dim1, ndim, op), norm_dim(dim2, ndim, op)
    if d1 == d2:
        raise RuntimeError(f"{op}: diagonal dimensions cannot be identical {dim1}, {dim2}")
    return d1, d2


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of dims (dim1, dim2) as a view whose last dim runs along it: offset > 0
    above the main diagonal, < 0 below."""
    d1, d2 = _two_dims(input.ndim, dim1, dim2, "diagonal")
    out = Diagonal.apply(input, int(offset), d1, d2)
    out._version = version_counter(input)
    return out


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Tensors whose diagonals (offset, over new dims dim1 and dim2) are input's last dim,
    zeros elsewhere: the inverse of `diagonal`."""
    ndim = input.ndim + 1
    d1, d2 = _two_dims(ndim, dim1, dim2, "diag_embed")
    n = (input.shape[-1] if input.ndim else 1) + abs(int(offset))
    rest = list(input.shape[:-1])
    shape = []
    for i in range(ndim):
        shape.append(n if i in (d1, d2) else rest.pop(0))
    x = input if input.ndim else input.reshape(1)
    return DiagonalScatter.apply(x, tuple(shape), int(offset), d1, d2)


_diagonal = diagonal  # diag's argument is named `diagonal`, as in torch


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-d input becomes the square matrix with it on diagonal `diagonal`; a 2-d input
    gives (a copy of) its diagonal `diagonal`."""
    if input.ndim == 1:
        return diag_embed(input, diagonal, 0, 1)
    if input.ndim == 2:
        return clone(_diagonal(input, diagonal))
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D "
                       f"(shape {tuple(input.shape)})")

"""Broadcasting and its VJP partner, summing back over the broadcast axes: each is the
other's backward, so they live together."""

from __future__ import annotations

from ..autograd.function import Op
from ..autograd.views import make_view
from ..errors import ShapeError
from ..tensor import Tensor, _size_tuple


class BroadcastTo(Op):
    """y = x broadcast to `shape`;  x̄ = sum_to(ȳ, x.shape)."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        try:
            return ctx.xp.broadcast_to(x, shape)
        except ValueError:
            raise ShapeError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") \
                from None

    @staticmethod
    def backward(ctx, g):
        return sum_to(g, ctx.in_shape), None


def broadcast_to(input: Tensor, shape) -> Tensor:
    """A read-only view of `input` broadcast to `shape`."""
    shape = tuple(shape)
    if shape == input._data.shape:
        return input
    return make_view(BroadcastTo.apply(input, shape), input,
                     lambda b: broadcast_to(b, shape), "expand")


class SumTo(Op):
    """y = x summed over broadcast axes down to `shape`;  x̄ = broadcast(ȳ, x.shape).
    The VJP of every broadcasting op, shared rather than written per op."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return ctx.backend.sum_to_shape(x, shape)

    @staticmethod
    def backward(ctx, g):
        return broadcast_to(g, ctx.in_shape), None


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    """Reduce a broadcast gradient to `shape` (no node when shapes already match)."""
    if g._data.shape == shape:
        return g
    return SumTo.apply(g, shape)


def broadcast_error(op: str, *shapes) -> ShapeError:
    """The error of operands whose `shapes` cannot be broadcast together."""
    shown = " and ".join(str(tuple(s)) for s in shapes)
    return ShapeError(f"{op}: shapes {shown} cannot be broadcast together")


def sum_to_size(input: Tensor, *size) -> Tensor:
    """`input` summed down to `size` (PyTorch's `Tensor.sum_to_size`): y = Σ over the axes
    that broadcasting `size` to input's shape adds or expands;  x̄ = broadcast(ȳ, x.shape).
    `size` (ints, or one tuple of them) must be expandable to input's shape; the input
    itself is returned when the shapes are equal."""
    if not size:
        raise TypeError("sum_to_size() missing 1 required positional argument: 'size'")
    shape = _size_tuple(size, "sum_to_size")
    have = input._data.shape
    lead = len(have) - len(shape)
    if lead < 0 or any(s != n and s != 1 for s, n in zip(shape, have[lead:])):
        raise ShapeError(f"sum_to_size: size {list(shape)} is not expandable to size "
                         f"{list(have)} (the input's shape)")
    return sum_to(input, shape)

"""Every differentiable op, grouped by family; also binds them as Tensor methods."""

from __future__ import annotations

from . import (
    elementwise,
    index,
    linalg,
    reduce,  # noqa: I001 - reduce first: the other families import sum_to from it
    shape,
)
from .complex import (
    angle,
    complex,
    conj_physical,
    imag,
    is_complex,
    polar,
    real,
    resolve_conj,
    view_as_complex,
    view_as_real,
)
from .elementwise import (
    abs,
    absolute,
    acos,
    acosh,
    add,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    bitwise_and,
    bitwise_left_shift,
    bitwise_not,
    bitwise_or,
    bitwise_right_shift,
    bitwise_xor,
    cast,
    ceil,
    clamp,
    clip,
    conj,
    copysign,
    cos,
    cosh,
    div,
    divide,
    eq,
    erf,
    erfc,
    exp,
    exp2,
    expm1,
    floor,
    floor_divide,
    fmax,
    fmin,
    fmod,
    ge,
    gt,
    hypot,
    isfinite,
    isinf,
    isnan,
    le,
    lerp,
    log,
    log1p,
    log2,
    log10,
    logaddexp,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    negative,
    pow,
    relu,
    remainder,
    round,
    rsqrt,
    rsub,
    sgn,
    sigmoid,
    sign,
    sin,
    sinh,
    sqrt,
    square,
    sub,
    tan,
    tanh,
    true_divide,
    trunc,
    where,
)
from .index import gather, getitem, index_add, index_select, scatter_add, segment_sum
from .linalg import bmm, dot, matmul, mm, outer
from .reduce import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    logsumexp,
    max,
    mean,
    min,
    norm,
    std,
    sum,
    sum_to,
    var,
)
from .shape import (
    broadcast_to,
    cat,
    chunk,
    clone,
    concat,
    concatenate,
    contiguous,
    expand,
    expand_as,
    flatten,
    pad,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    swapaxes,
    transpose,
    unbind,
    unflatten,
    unsqueeze,
    view,
)

__all__ = [n for n in dir() if not n.startswith("_") and n not in
           ("annotations", "reduce", "elementwise", "index", "linalg", "shape")]


def masked_fill(input, mask, value):
    """`input` with `value` where `mask` is True."""
    return where(mask, value, input)


def _bind_methods() -> None:
    from ..tensor import Tensor

    def rev(fn):
        return lambda self, other: fn(other, self)

    def _pow(self, other):
        return pow(self, other)

    def _rmatmul(self, other):
        return matmul(other, self)

    ops = {
        "__add__": add, "__radd__": add, "__sub__": sub, "__rsub__": rsub,
        "__mul__": mul, "__rmul__": mul, "__truediv__": div, "__rtruediv__": rev(div),
        "__pow__": _pow, "__rpow__": rev(pow), "__matmul__": matmul, "__rmatmul__": _rmatmul,
        "__floordiv__": floor_divide, "__rfloordiv__": rev(floor_divide),
        "__mod__": remainder, "__rmod__": rev(remainder),
        "__neg__": neg, "__abs__": abs, "__pos__": lambda self: self,
        "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge, "__eq__": eq, "__ne__": ne,
        "__and__": bitwise_and, "__rand__": bitwise_and, "__or__": bitwise_or,
        "__ror__": bitwise_or, "__xor__": bitwise_xor, "__rxor__": bitwise_xor,
        "__invert__": bitwise_not, "__getitem__": getitem,
    }
    methods = [
        add, sub, mul, div, pow, matmul, neg, abs, exp, log, log1p, sqrt, sin, cos, tanh,
        sigmoid, relu, clamp, clip, maximum, minimum, sign, round, floor, ceil, trunc,
        eq, ne, lt, le, gt, ge, isnan, isinf, isfinite, logical_not, logical_and,
        logical_or, sum, mean, var, std, max, min, amax, amin, logsumexp, norm, argmax,
        argmin, all, any, reshape, view, flatten, unflatten, squeeze, unsqueeze, transpose,
        swapaxes, permute, expand, expand_as, broadcast_to, split, chunk, unbind, gather,
        index_select, index_add, scatter_add, clone, contiguous, masked_fill, mm, bmm, dot,
        outer, remainder, floor_divide, conj, conj_physical, resolve_conj, angle, sgn,
    ]
    for name, fn in ops.items():
        setattr(Tensor, name, fn)
    for fn in methods:
        setattr(Tensor, fn.__name__, fn)
    Tensor.divide = div
    Tensor.multiply = mul
    Tensor.subtract = sub
    Tensor.negative = neg
    Tensor.real = property(real, doc="The real part (a differentiable view).")
    Tensor.imag = property(imag, doc="The imaginary part of a complex tensor (a view).")
    Tensor.T = property(lambda self: permute(self, tuple(reversed(range(self.ndim)))))
    Tensor.mT = property(lambda self: transpose(self, -1, -2))
    Tensor.view_as = lambda self, other: view(self, other.shape)
    Tensor.reshape_as = lambda self, other: reshape(self, other.shape)
    Tensor.where = lambda self, condition, other: where(condition, self, other)
    for fn in (absolute, acos, acosh, arccos, arccosh, arcsin, arcsinh, arctan, arctan2,
               arctanh, asin, asinh, atan, atan2, atanh, copysign, cosh, erf, erfc, exp2,
               expm1, fmax, fmin, fmod, hypot, lerp, log10, log2, logaddexp, rsqrt, sinh,
               square, tan):
        setattr(Tensor, fn.__name__, fn)
    Tensor.arcsin, Tensor.arccos, Tensor.arctan = asin, acos, atan
    Tensor.__lshift__, Tensor.__rshift__ = bitwise_left_shift, bitwise_right_shift
    Tensor.__rlshift__ = rev(bitwise_left_shift)
    Tensor.__rrshift__ = rev(bitwise_right_shift)
    for fn in (bitwise_and, bitwise_or, bitwise_xor, bitwise_not, bitwise_left_shift,
               bitwise_right_shift, logical_xor, fmod, remainder):
        setattr(Tensor, fn.__name__, fn)


_bind_methods()

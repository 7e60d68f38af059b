"""Every differentiable op, grouped by family; also binds them as Tensor methods."""

from __future__ import annotations

from . import (
    elementwise,
    index,
    linalg,
    reduce,  # noqa: I001 - reduce first: the other families import sum_to from it
    return_types,
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
from .diag import diag, diag_embed, diagonal, tril, triu
from .einsum import addbmm, addmm, addmv, baddbmm, cross, einsum, kron, tensordot
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
from .extras import (
    addr,
    block_diag,
    bucketize,
    cartesian_prod,
    cdist,
    chain_matmul,
    cholesky,
    cholesky_inverse,
    cholesky_solve,
    column_stack,
    corrcoef,
    cov,
    det,
    diff,
    dist,
    dstack,
    ger,
    hstack,
    index_put,
    inner,
    inverse,
    logdet,
    matrix_power,
    nanmean,
    nanquantile,
    nansum,
    pinverse,
    qr,
    quantile,
    ravel,
    row_stack,
    searchsorted,
    slogdet,
    svd,
    trace,
    unique_consecutive,
    vdot,
    vstack,
)
from .index import gather, getitem, index_add, index_select, scatter_add, segment_sum
from .linalg import bmm, dot, matmul, mm, outer
from .narrow import meshgrid, narrow, t
from .rearrange import (
    atleast_1d,
    atleast_2d,
    atleast_3d,
    dsplit,
    flip,
    fliplr,
    flipud,
    hsplit,
    moveaxis,
    movedim,
    repeat_interleave,
    roll,
    rot90,
    swapdims,
    tensor_split,
    vsplit,
)
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
from .scan import cummax, cummin, cumprod, cumsum, logcumsumexp, prod
from .scatter import (
    argwhere,
    index_copy,
    index_fill,
    masked_scatter,
    masked_select,
    nonzero,
    scatter,
    scatter_reduce,
    take,
    take_along_dim,
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
from .sort import argsort, kthvalue, median, mode, msort, nanmedian, sort, topk, unique
from .stats import (
    allclose,
    aminmax,
    bincount,
    count_nonzero,
    histc,
    isclose,
    std_mean,
    var_mean,
)

__all__ = [n for n in dir() if not n.startswith("_") and n not in
           ("annotations", "reduce", "elementwise", "index", "linalg", "shape")]
__all__ = [n for n in __all__ if n not in ("decomp", "extras", "rearrange", "scan", "stats")]


from .basics import masked_fill  # noqa: E402 - PyTorch's checks and result dtype


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

from . import inplace  # noqa: E402 - binds the in-place `*_` methods (after the methods above)


def _bind_api15_methods() -> None:
    from ..tensor import Tensor
    from . import rearrange as _re

    for fn in (flip, fliplr, flipud, roll, rot90, moveaxis, movedim, swapdims, tensor_split,
               hsplit, vsplit, dsplit, repeat_interleave, cummax, cummin, cumprod, cumsum,
               logcumsumexp, prod, argsort, kthvalue, median, mode, msort, nanmedian, sort,
               topk, unique, allclose, aminmax, bincount, count_nonzero, histc, isclose,
               argwhere, index_copy, index_fill, masked_scatter, masked_select, nonzero,
               scatter, scatter_reduce, take, take_along_dim, addbmm, addmm, addmv, baddbmm,
               cross, kron):
        setattr(Tensor, fn.__name__, fn)
    for fn in (cholesky, det, diff, dist, ger, inner, inverse, logdet, matrix_power, nanmean,
               nansum, pinverse, qr, ravel, slogdet, svd, trace, vdot, quantile, nanquantile,
               unique_consecutive, index_put, corrcoef, cov, addr, cholesky_solve,
               cholesky_inverse):
        setattr(Tensor, fn.__name__, fn)
    for fn in (scatter, scatter_add, scatter_reduce, index_fill, index_copy, index_add,
               masked_scatter, masked_fill, cumsum, cumprod, addmm, baddbmm, index_put):
        setattr(Tensor, fn.__name__ + "_", inplace.inplace_method(fn.__name__))
    Tensor.repeat = _re.repeat
    Tensor.unfold = _re.unfold
    Tensor.moveaxis = moveaxis
    Tensor.swapdims = swapdims
    Tensor.swapaxes = swapaxes


_bind_api15_methods()

def _bind_softmax_methods() -> None:
    from ..tensor import Tensor
    from .softmax import log_softmax as _log_softmax
    from .softmax import softmax as _softmax
    from .softmax import softmin as _softmin

    Tensor.softmax = _softmax
    Tensor.log_softmax = _log_softmax
    Tensor.softmin = _softmin


_bind_softmax_methods()


def _bind_sum_to_size() -> None:
    from ..tensor import Tensor
    from .broadcast import sum_to_size

    Tensor.sum_to_size = sum_to_size  # the engine reduces broadcast gradients with it


_bind_sum_to_size()


# PyTorch names real programs use (gg.X and Tensor.X): the pointwise ones are table rows.
from . import elementwise_more as _elementwise_more  # noqa: E402
from .basics import (  # noqa: E402
    broadcast_tensors,
    fill_diagonal_,
    is_floating_point,
    is_tensor,
    numel,
    result_type,
    select,
)
from .elementwise_more import (  # noqa: E402
    addcdiv,
    addcmul,
    clamp_max,
    clamp_min,
    deg2rad,
    erfinv,
    float_power,
    frac,
    heaviside,
    logaddexp2,
    logit,
    nan_to_num,
    positive,
    rad2deg,
    signbit,
    sinc,
    xlogy,
)
from .softmax import log_softmax, softmax  # noqa: E402

__all__ += ["masked_fill", "broadcast_tensors", "is_floating_point", "is_tensor", "numel",
            "select", "result_type", "log_softmax", "softmax", *_elementwise_more.__all__]


def _bind_torch_names() -> None:
    from ..tensor import Tensor

    for fn in (erfinv, frac, sinc, deg2rad, rad2deg, logit, xlogy, logaddexp2, heaviside,
               nan_to_num, clamp_min, clamp_max, float_power, positive, signbit, select,
               fill_diagonal_, _elementwise_more.float_power_):
        setattr(Tensor, fn.__name__, fn)
    for name in ("nan_to_num", "erfinv", "frac", "sinc", "deg2rad", "rad2deg", "logit",
                 "xlogy", "heaviside", "clamp_min", "clamp_max", "tril", "triu"):
        setattr(Tensor, name + "_", inplace.inplace_method(name))


_bind_torch_names()

"""Conversions: dtype casts (`cast`, `real`), copies between devices and `copy_`'s value.
Kept apart from the arithmetic so that the low-level helpers (`_util`) can cast without
importing the pointwise machinery."""

from __future__ import annotations

from .. import _dtype
from .._dtype import from_numpy_dtype, to_dtype
from ..autograd.function import Op
from ..tensor import Tensor
from .broadcast import broadcast_error, sum_to


class Cast(Op):
    """y = x as another dtype;  x̄ = ȳ cast back to x's dtype (its real part when x is real
    and y complex: a real input only sees the real direction)."""

    @staticmethod
    def forward(ctx, x, np_dtype):
        ctx.src = x.dtype
        if x.dtype.kind == "c" and np_dtype.kind != "c":  # complex → real keeps the real part
            x = x.real
        return x.astype(np_dtype)

    @staticmethod
    def backward(ctx, g):
        if g._data.dtype.kind == "c" and ctx.src.kind != "c":
            g = real(g)
        return cast(g, from_numpy_dtype(ctx.src)), None


class ToDevice(Op):
    """y = x copied to another device;  x̄ = ȳ copied back."""

    @staticmethod
    def forward(ctx, x, target):
        src = ctx._backend
        ctx.src = src
        ctx._backend = target
        host = src.to_host(x)
        return host.copy() if target.name == "cpu" and host is x else target.asarray(host)

    @staticmethod
    def backward(ctx, g):
        return ToDevice.apply(g, ctx.src), None


class CopyFrom(Op):
    """y = broadcast(src) cast to dst's dtype (the value of dst.copy_(src));
    src̄ = sum_to(ȳ)."""

    @staticmethod
    def forward(ctx, dst, src):
        ctx.shape = src.shape
        try:
            return ctx.xp.broadcast_to(src, dst.shape).astype(dst.dtype)
        except ValueError:
            raise broadcast_error("copy_", dst.shape, src.shape) from None

    @staticmethod
    def backward(ctx, g):
        return None, sum_to(g, ctx.shape)


def real(input: Tensor) -> Tensor:
    """The real part (the input itself for a real tensor); differentiable."""
    if input._data.dtype.kind != "c":
        return input
    return cast(input, from_numpy_dtype(input._data.real.dtype))


def cast(x, dtype) -> Tensor:
    """x converted to `dtype` (differentiable between floating types)."""
    if not isinstance(x, Tensor):
        return x
    dtype = to_dtype(dtype)
    np_dt = x._backend.np_dtype(dtype)
    if np_dt is None:
        raise TypeError(f"dtype {dtype} is not supported on {x.device}"
                        + (f" ({_dtype.BF16_HINT})" if dtype is _dtype.bfloat16 else ""))
    if x._data.dtype == np_dt:
        return x
    return Cast.apply(x, np_dt)


def copy_from(dst: Tensor, src) -> Tensor:
    if not isinstance(src, Tensor):
        src = Tensor(src, dtype=dst.dtype, device=dst.device)
    if src._backend is not dst._backend:
        src = src.to(dst.device)
    return CopyFrom.apply(dst.detach(), src)

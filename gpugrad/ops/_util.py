"""Helpers shared by the ops: operand promotion, dims, and shape errors."""

from __future__ import annotations

import numpy as np

from .. import _dtype
from .._dtype import dtype_for_scalar_category, promote_types, scalar_category
from ..tensor import Tensor, _check_same_device, _norm_dim
from .broadcast import broadcast_error  # noqa: F401 - re-exported: ops import it from here
from .convert import cast

__all__ = ["binary_operands", "norm_dim", "norm_dims", "broadcast_error", "is_scalar",
           "result_dtype"]

_PY_SCALARS = (int, float, bool, complex)
_WEAK_FOR_FLOAT = frozenset((int, float))

norm_dim = _norm_dim


def is_scalar(x) -> bool:
    return isinstance(x, _PY_SCALARS) or isinstance(x, np.generic)


def tensor_arg(input, op: str, name: str = "input"):
    """`input` itself when it is a Tensor, else TypeError as PyTorch words it."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument '{name}' must be Tensor, not "
                        f"{type(input).__name__}")
    return input


def result_dtype(a, b):
    """PyTorch's result dtype of a binary op; 0-d tensors and Python scalars only lift the
    category (an int tensor times 2.5 is float32), never the width within one."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        da, db = a.dtype, b.dtype
        if da is db:
            return da
        a0, b0 = a._data.ndim == 0, b._data.ndim == 0
        if a0 != b0 and da.category == db.category:
            return db if a0 else da
        if a0 != b0:
            # A 0-d tensor of a higher category wins with its own dtype (int64 tensor plus
            # a float64 0-d tensor is float64), except that a float tensor keeps its width
            # against a complex one.
            dim_t, zero_t = (b, a) if a0 else (a, b)
            if dim_t.dtype.category > zero_t.dtype.category:
                return dim_t.dtype
            if zero_t.dtype.category == 3 and dim_t.dtype.category == 2:
                return _lift(dim_t.dtype, 3)
            return zero_t.dtype
        return promote_types(da, db)
    t, s = (a, b) if isinstance(a, Tensor) else (b, a)
    cat = scalar_category(s)
    dt = t.dtype
    if cat <= dt.category:
        return dt
    return _lift(dt, cat)


def _lift(dt, cat: int):
    if cat == 3 and dt.category == 2:  # float tensor with a complex scalar keeps its width
        return _dtype.complex128 if dt is _dtype.float64 else _dtype.complex64
    return dtype_for_scalar_category(cat)


def binary_operands(a, b, op: str):
    """Return (a, b) ready for a binary op: devices checked, tensors cast to the result
    dtype, Python/NumPy scalars left as Python scalars (they never widen a tensor)."""
    a_t, b_t = isinstance(a, Tensor), isinstance(b, Tensor)
    # Fast path for the common cases: same dtypes, or a float/int scalar that cannot
    # change a floating tensor's dtype.
    if a_t:
        if b_t:
            if a._data.dtype == b._data.dtype and a._backend is b._backend:
                return a, b
        elif type(b) in _WEAK_FOR_FLOAT and _dtype.is_inexact(a._data.dtype):
            return a, b
    elif b_t and type(a) in _WEAK_FOR_FLOAT and _dtype.is_inexact(b._data.dtype):
        return a, b
    if a_t and b_t:
        if a._backend is not b._backend:
            _check_same_device(op, a, b)
        if a._data.dtype == b._data.dtype:
            return a, b
        dt = result_dtype(a, b)
        if a.dtype is not dt:
            a = cast(a, dt)
        if b.dtype is not dt:
            b = cast(b, dt)
        return a, b
    if not a_t and not b_t:
        raise TypeError(f"{op}: expected at least one Tensor operand")
    t, s = (a, b) if a_t else (b, a)
    if isinstance(s, np.ndarray) or (not is_scalar(s) and isinstance(s, (list, tuple))):
        s = Tensor(s, device=t.device)
        return binary_operands(a if a_t else s, s if a_t else b, op)
    if not is_scalar(s):
        raise TypeError(f"{op}: unsupported operand type {type(s).__name__} with a Tensor")
    if isinstance(s, np.generic):
        s = s.item()
    dt = result_dtype(t, s)
    if t.dtype is not dt:
        t = cast(t, dt)
    return (t, s) if a_t else (s, t)


def norm_dims(dim, ndim: int, op: str) -> tuple:
    """Normalise `dim` (None, int or sequence) to a sorted tuple of non-negative axes;
    None and, as in PyTorch, an empty sequence mean every axis."""
    if isinstance(dim, Tensor):  # as PyTorch reads int[]: a 0-d tensor is an int
        dim = dim.tolist()
    if dim is None or (not isinstance(dim, (int, np.integer)) and len(dim) == 0):
        return tuple(range(ndim))
    if isinstance(dim, (int, np.integer)):
        dim = (dim,)
    dims = tuple(sorted(_norm_dim(int(d), ndim, op) for d in dim))
    if len(set(dims)) != len(dims):
        raise ValueError(f"{op}: dim {tuple(dim)} appears multiple times in the list of dims")
    # A 0-d tensor accepts dim 0 / -1 (as in PyTorch) but has no axis to reduce.
    return dims if ndim else ()


def float_dtype_of(t: Tensor):
    """The dtype an op that always produces floats (div, sqrt of ints...) returns."""
    dt = t.dtype
    return dt if dt.category >= 2 else _dtype.DEFAULT_FLOAT

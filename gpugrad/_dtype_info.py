"""PyTorch's dtype queries and the default float dtype: `finfo`, `iinfo`,
`get_default_dtype`/`set_default_dtype`, `promote_types`, `can_cast` (`result_type`,
which needs tensors, is in ops/basics.py).

The default float dtype is one value, `_dtype.DEFAULT_FLOAT` (with `DEFAULT_COMPLEX`
following it: float64 → complex128, else complex64), read at call time by everything that
picks a float dtype for Python data or for a factory without `dtype=`."""

from __future__ import annotations

import math

import numpy as np

from . import _dtype
from ._dtype import DType, to_dtype

__all__ = ["finfo", "iinfo", "get_default_dtype", "set_default_dtype", "promote_types",
           "can_cast"]

_REAL_OF_COMPLEX = {"complex64": _dtype.float32, "complex128": _dtype.float64}


class finfo:  # noqa: N801 - torch.finfo
    """Machine limits of a floating dtype, as `torch.finfo`: bits, eps, max, min, tiny
    (= smallest_normal), resolution (10^−precision) and dtype (its name, e.g. 'float32').
    A complex dtype describes its real part; no argument means the default float dtype."""

    __slots__ = ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution",
                 "dtype")

    def __init__(self, type: DType | None = None) -> None:  # noqa: A002 - torch's name
        dt = get_default_dtype() if type is None else to_dtype(type)
        dt = _REAL_OF_COMPLEX.get(dt.name, dt)
        if not dt.is_floating_point:
            raise TypeError("gg.finfo() requires a floating point input type, got "
                            f"{dt}. Use gg.iinfo to handle it")
        if dt is _dtype.bfloat16:
            import ml_dtypes  # bfloat16's own limits (NumPy has no bfloat16)

            info = ml_dtypes.finfo(ml_dtypes.bfloat16)
        else:
            info = np.finfo(dt.np)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -math.floor(-math.log10(self.eps))  # torch's rule
        self.dtype = dt.name

    def __eq__(self, other) -> bool:
        return isinstance(other, finfo) and other.dtype == self.dtype

    def __hash__(self) -> int:
        return hash(("finfo", self.dtype))

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801 - torch.iinfo
    """Limits of an integer dtype, as `torch.iinfo`: bits, max, min and dtype (its name)."""

    __slots__ = ("bits", "max", "min", "dtype")

    def __init__(self, type: DType) -> None:  # noqa: A002 - torch's name
        dt = to_dtype(type)
        if dt is _dtype.bool_:
            raise TypeError("gpugrad.bool is not supported by gg.iinfo")
        if dt.category != 1:
            raise TypeError(f"gg.iinfo() requires an integer input type, got {dt}. Use "
                            "gg.finfo to handle it")
        info = np.iinfo(dt.np)
        self.bits, self.max, self.min, self.dtype = int(info.bits), int(info.max), \
            int(info.min), dt.name

    def __eq__(self, other) -> bool:
        return isinstance(other, iinfo) and other.dtype == self.dtype

    def __hash__(self) -> int:
        return hash(("iinfo", self.dtype))

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


def get_default_dtype() -> DType:
    """The dtype of Python floats and of float factories without `dtype=` (float32 unless
    `set_default_dtype` changed it)."""
    return _dtype.DEFAULT_FLOAT


def set_default_dtype(d) -> None:
    """Make `d` (a floating dtype: float32, float64, float16 or bfloat16, as PyTorch
    accepts) the default float dtype: of `gg.tensor([1.0])`, of zeros/ones/full/empty/
    rand/randn/arange (float)/linspace without `dtype=`, and of integer inputs to float
    ops. The default complex dtype follows (complex128 for float64, else complex64)."""
    dt = to_dtype(d)
    if not dt.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got "
                        f"{dt}")
    _dtype.DEFAULT_FLOAT = dt
    _dtype.DEFAULT_COMPLEX = _dtype.complex128 if dt is _dtype.float64 else _dtype.complex64


def promote_types(type1, type2) -> DType:
    """The smallest dtype both `type1` and `type2` convert to without losing their kind
    (PyTorch's promotion lattice: bool < integers < floats < complex, then width)."""
    return _dtype.promote_types(to_dtype(type1), to_dtype(type2))


def can_cast(from_, to) -> bool:
    """Whether PyTorch's casting rules allow `from_` → `to` in a type-promoting op: never to
    a lower kind (complex → float, float → integer, non-bool → bool); any width within."""
    a, b = to_dtype(from_), to_dtype(to)
    return a.category <= b.category

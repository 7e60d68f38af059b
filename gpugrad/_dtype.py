"""gpugrad dtypes: thin named wrappers over NumPy dtypes, with PyTorch's promotion rules."""

from __future__ import annotations

import numpy as np

__all__ = [
    "DType", "float16", "bfloat16", "float32", "float64", "int32", "int64", "bool_",
    "complex64", "complex128", "to_dtype", "from_numpy_dtype", "promote_types",
    "uint16", "uint32", "uint64",
]

# Category ranks for promotion: a higher category always wins (PyTorch's rule).
_BOOL, _INT, _FLOAT, _COMPLEX = 0, 1, 2, 3


class DType:
    """A tensor element type. Compares equal to itself only; `str()` is `gpugrad.NAME`."""

    __slots__ = ("name", "np", "category", "itemsize")

    def __init__(self, name: str, np_dtype, category: int, itemsize: int) -> None:
        self.name = name
        self.np = np.dtype(np_dtype) if np_dtype is not None else None
        self.category = category
        self.itemsize = itemsize

    @property
    def is_floating_point(self) -> bool:
        return self.category == _FLOAT

    @property
    def is_complex(self) -> bool:
        return self.category == _COMPLEX

    @property
    def can_require_grad(self) -> bool:
        return self.category >= _FLOAT

    def __repr__(self) -> str:
        return f"gpugrad.{self.name}"

    def __reduce__(self):
        return (to_dtype, (self.name,))


try:  # NumPy has no bfloat16; the ml_dtypes package (as JAX uses) adds it
    import ml_dtypes as _ml_dtypes

    _BF16_NP = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # gpugrad still imports; bfloat16 arrays then raise where made
    _BF16_NP = None

BF16_HINT = "bfloat16 needs the ml_dtypes package (pip install ml_dtypes)"

float16 = DType("float16", np.float16, _FLOAT, 2)
bfloat16 = DType("bfloat16", _BF16_NP, _FLOAT, 2)
float32 = DType("float32", np.float32, _FLOAT, 4)
float64 = DType("float64", np.float64, _FLOAT, 8)
int8 = DType("int8", np.int8, _INT, 1)
uint8 = DType("uint8", np.uint8, _INT, 1)
int16 = DType("int16", np.int16, _INT, 2)
int32 = DType("int32", np.int32, _INT, 4)
int64 = DType("int64", np.int64, _INT, 8)
bool_ = DType("bool", np.bool_, _BOOL, 1)
complex64 = DType("complex64", np.complex64, _COMPLEX, 8)
complex128 = DType("complex128", np.complex128, _COMPLEX, 16)
# As in PyTorch, the wide unsigned types exist for data (from_numpy) and casts; they do not
# promote with other integer types (promote_types raises).
uint16 = DType("uint16", np.uint16, _INT, 2)
uint32 = DType("uint32", np.uint32, _INT, 4)
uint64 = DType("uint64", np.uint64, _INT, 8)
_WIDE_UNSIGNED = (uint16, uint32, uint64)

_ALL = (float16, bfloat16, float32, float64, int8, uint8, int16, int32, int64, bool_,
        complex64, complex128, uint16, uint32, uint64)
_BY_NAME = {d.name: d for d in _ALL}
_BY_NAME.update({"float": float32, "double": float64, "half": float16, "long": int64,
                 "int": int32})
_BY_NP = {d.np: d for d in _ALL if d.np is not None}


def from_numpy_dtype(np_dtype) -> DType:
    """The gpugrad dtype of a NumPy/CuPy array dtype; raises TypeError for unsupported ones."""
    try:
        return _BY_NP[np_dtype]
    except KeyError:
        d = np.dtype(np_dtype)
        if d in _BY_NP:
            return _BY_NP[d]
        if d.kind == "V" and d.itemsize == 2 and "bfloat16" in str(d):
            return bfloat16
        raise TypeError(f"unsupported array dtype {d}") from None


def to_dtype(dtype) -> DType:
    """Normalise a dtype given as DType, name, NumPy dtype, Python type or torch dtype."""
    if isinstance(dtype, DType):
        return dtype
    if isinstance(dtype, str):
        name = dtype.replace("gpugrad.", "").replace("torch.", "")
        if name in _BY_NAME:
            return _BY_NAME[name]
        raise TypeError(f"unknown dtype {dtype!r}")
    if dtype is float:
        return float32
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    if dtype is complex:
        return complex64
    if type(dtype).__module__ == "torch":
        return to_dtype(str(dtype))
    try:
        return from_numpy_dtype(np.dtype(dtype))
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None


def promote_types(a: DType, b: DType) -> DType:
    """PyTorch's promotion of two tensor dtypes (higher category wins, then wider type)."""
    if a is b:
        return a
    if a.category != b.category:
        hi, lo = (a, b) if a.category > b.category else (b, a)
        if hi.category == _COMPLEX and lo is float64:
            return complex128  # float64 with complex64 keeps double precision, as in torch
        return hi
    if {a, b} == {float16, bfloat16}:
        return float32
    if a.category == _INT and {a.name, b.name} == {"uint8", "int8"}:
        return int16
    if a.category == _INT and (a in _WIDE_UNSIGNED or b in _WIDE_UNSIGNED):
        raise TypeError(f"promotion of {a} with {b} is not supported (uint16, uint32 and "
                        "uint64 promote only with themselves, bool and floating types, as in "
                        "PyTorch); cast one operand first")
    return a if a.itemsize >= b.itemsize else b


def scalar_category(value) -> int:
    """Category of a Python/NumPy scalar used as an operand."""
    if isinstance(value, (bool, np.bool_)):
        return _BOOL
    if isinstance(value, (int, np.integer)):
        return _INT
    if isinstance(value, (float, np.floating)):
        return _FLOAT
    if isinstance(value, (complex, np.complexfloating)):
        return _COMPLEX
    raise TypeError(f"unsupported operand type {type(value).__name__}")


DEFAULT_FLOAT = float32
DEFAULT_COMPLEX = complex64
DEFAULT_INT = int64


def dtype_for_scalar_category(cat: int) -> DType:
    """The default dtype a scalar of category `cat` produces (torch.get_default_dtype rules)."""
    return (bool_, DEFAULT_INT, DEFAULT_FLOAT, DEFAULT_COMPLEX)[cat]


def is_inexact(np_dtype) -> bool:
    """True for a floating or complex array dtype, CuPy's bfloat16 included (ml_dtypes'
    bfloat16 reports NumPy kind "V", so `dtype.kind in "fc"` misses it)."""
    return np_dtype.kind in "fc" or np_dtype.name == "bfloat16"

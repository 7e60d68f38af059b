"""Tensor methods PyTorch programs lean on that are built from creation functions and
ops: `type`, `new_zeros/ones/full/empty/tensor`, `is_cpu`, `view(dtype)`, `t`, `narrow`,
`tril`, `triu`, `diagonal`, `diag`, `diag_embed`, `T`, `mT`, `mH`, `H`.

`Tensor.type()` names the type as PyTorch does, with gpugrad's prefix:
"gpugrad.FloatTensor", "gpugrad.cuda.LongTensor", ... ("torch." names are accepted
by `type(name)`).
"""

from __future__ import annotations

from . import _dtype, creation
from ._dtype import DType, to_dtype
from .ops.diag import diag, diag_embed, diagonal, tril, triu
from .ops.elementwise import conj
from .ops.narrow import is_dtype, narrow, reversed_dims, t, view_dtype
from .ops.shape import transpose
from .ops.shape import view as _shape_view
from .tensor import Tensor

__all__ = ["type_name"]

_TYPE_NAMES = {
    _dtype.float32: "FloatTensor", _dtype.float64: "DoubleTensor",
    _dtype.float16: "HalfTensor", _dtype.bfloat16: "BFloat16Tensor",
    _dtype.int8: "CharTensor", _dtype.uint8: "ByteTensor", _dtype.int16: "ShortTensor",
    _dtype.int32: "IntTensor", _dtype.int64: "LongTensor", _dtype.bool_: "BoolTensor",
    _dtype.complex64: "ComplexFloatTensor", _dtype.complex128: "ComplexDoubleTensor",
}
_BY_TYPE_NAME = {v: k for k, v in _TYPE_NAMES.items()}


def type_name(t: Tensor) -> str:
    """PyTorch's type string with gpugrad's prefix, e.g. "gpugrad.cuda.FloatTensor"."""
    where = "gpugrad.cuda." if t.device.type == "cuda" else "gpugrad."
    return where + _TYPE_NAMES[t.dtype]


def _type(self: Tensor, dtype=None, non_blocking: bool = False, **kwargs):
    """With no argument: the type string (see `type_name`). With a dtype, or a type name
    such as "torch.DoubleTensor" or "gpugrad.cuda.FloatTensor": this tensor cast (and
    moved to the device the name says)."""
    if dtype is None:
        return type_name(self)
    if isinstance(dtype, str) and dtype.endswith("Tensor"):
        parts = dtype.split(".")
        if parts[-1] not in _BY_TYPE_NAME or parts[0] not in ("torch", "gpugrad"):
            raise ValueError(f"type: invalid type {dtype!r}")
        dev = "cuda" if "cuda" in parts[1:-1] else "cpu"
        return self.to(dev, _BY_TYPE_NAME[parts[-1]], non_blocking=non_blocking)
    return self.to(to_dtype(dtype), non_blocking=non_blocking)


def _view(self: Tensor, *shape) -> Tensor:
    """`view(*shape)`: the same data in a new shape; `view(dtype)`: the same bytes as
    another dtype (see `gg.ops.narrow.view_dtype`)."""
    if len(shape) == 1 and is_dtype(shape[0]):
        return view_dtype(self, shape[0])
    return _shape_view(self, *shape)


def _new_args(self: Tensor, dtype, device):
    return (dtype if dtype is not None else self.dtype,
            device if device is not None else self.device)


def _new_filled(fill):
    def new(self: Tensor, *size, dtype: DType | None = None, device=None,
            requires_grad: bool = False) -> Tensor:
        dt, dev = _new_args(self, dtype, device)
        make = {0: creation.zeros, 1: creation.ones, None: creation.empty}[fill]
        return make(*size, dtype=dt, device=dev, requires_grad=requires_grad)

    return new


def new_full(self: Tensor, size, fill_value, *, dtype: DType | None = None, device=None,
             requires_grad: bool = False) -> Tensor:
    """`fill_value` in a tensor of `size`, with this tensor's dtype and device by default."""
    dt, dev = _new_args(self, dtype, device)
    return creation.full(size, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


def new_tensor(self: Tensor, data, *, dtype: DType | None = None, device=None,
               requires_grad: bool = False) -> Tensor:
    """A copy of `data`, with this tensor's dtype and device by default (as PyTorch)."""
    dt, dev = _new_args(self, dtype, device)
    return creation.tensor(data, dtype=dt, device=dev, requires_grad=requires_grad)


def _bind() -> None:
    Tensor.type = _type
    Tensor.view = _view
    Tensor.new_zeros = _new_filled(0)
    Tensor.new_ones = _new_filled(1)
    Tensor.new_empty = _new_filled(None)
    Tensor.new_zeros.__doc__ = "Zeros of `size`, with this tensor's dtype and device by default."
    Tensor.new_ones.__doc__ = "Ones of `size`, with this tensor's dtype and device by default."
    Tensor.new_empty.__doc__ = "Uninitialised, with this tensor's dtype and device by default."
    Tensor.new_full = new_full
    Tensor.new_tensor = new_tensor
    Tensor.get_device = lambda self: -1 if self.device.type == "cpu" else self.device.index
    Tensor.is_cpu = property(lambda self: self.device.type == "cpu",
                             doc="Whether the tensor lives in host memory.")
    for fn in (t, narrow, tril, triu, diagonal, diag, diag_embed):
        setattr(Tensor, fn.__name__, fn)
    Tensor.T = property(reversed_dims, doc="All dims reversed (the transpose of a matrix).")

    def _mt(self: Tensor) -> Tensor:
        if self.ndim < 2:
            raise RuntimeError(f"tensor.mT is only supported on matrices or batches of "
                               f"matrices. Got {self.ndim}-D tensor.")
        return transpose(self, -2, -1)

    Tensor.mT = property(_mt, doc="The transpose of the last two dims.")
    Tensor.mH = property(lambda self: conj(_mt(self)),
                         doc="The conjugate transpose of the last two dims.")
    def _h(self: Tensor) -> Tensor:
        if self.ndim != 2:
            raise RuntimeError(f"tensor.H is only supported on matrices (2-D tensors). Got "
                               f"{self.ndim}-D tensor.")
        return conj(t(self))

    Tensor.H = property(_h, doc="The conjugate transpose of a matrix.")


_bind()

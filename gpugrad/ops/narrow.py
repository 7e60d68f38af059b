"""More views as PyTorch spells them: `narrow`, `t`, `meshgrid`, and `view(dtype)`, a bit
reinterpretation. Each is built from the existing view ops (slicing, transpose,
reshape/expand), so it shares storage and the in-place version counter as they do."""

from __future__ import annotations

import warnings

import numpy as np

from .._dtype import DType, to_dtype
from ..autograd.function import version_counter
from ..tensor import Tensor, _check_same_device, _wrap_array
from ._util import norm_dim
from .index import getitem
from .shape import expand, permute, reshape, transpose

__all__ = ["narrow", "t", "meshgrid", "view_dtype", "is_dtype"]


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """input[..., start:start + length, ...] along `dim` (a view); start may be negative."""
    if input.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = norm_dim(dim, input.ndim, "narrow")
    n = input.shape[d]
    start, length = int(start), int(length)
    if not -n <= start <= n:
        raise IndexError(f"narrow: start out of range (expected to be in range of [{-n}, {n}], "
                         f"but got {start}) for dimension {d} of shape {tuple(input.shape)}")
    if start < 0:
        start += n
    if length < 0:
        raise RuntimeError(f"narrow(): length must be non-negative, got {length}")
    if start + length > n:
        raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds dimension "
                           f"size ({n}) of dimension {d} of shape {tuple(input.shape)}")
    return getitem(input, (slice(None),) * d + (slice(start, start + length),))


def t(input: Tensor) -> Tensor:
    """The transpose of a matrix (a view); 0-d and 1-d tensors come back as they are."""
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                           f"{input.ndim}D (shape {tuple(input.shape)}); use .mT or "
                           "transpose(dim0, dim1)")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def reversed_dims(input: Tensor) -> Tensor:
    """`Tensor.T`: all dims reversed. As PyTorch, this is deprecated beyond 2-d (use .mT,
    or permute); it still works, with a warning."""
    if input.ndim > 2:
        warnings.warn("The use of `x.T` on tensors of dimension other than 2 to reverse their "
                      "shape is deprecated; use `x.mT` to transpose batches of matrices or "
                      "`x.permute(*reversed(range(x.ndim)))` to reverse the dimensions",
                      UserWarning, stacklevel=2)
    return permute(input, tuple(reversed(range(input.ndim))))


def meshgrid(*tensors, indexing: str | None = None) -> tuple:
    """Coordinate grids: output i has tensors[i] running along its own dim and is constant
    along the others. indexing="ij" (the default, as PyTorch's) gives shape (n₀, n₁, …);
    "xy" swaps the first two dims (Cartesian, as NumPy's default). Outputs are views."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be one of 'xy' or 'ij', got {indexing!r}")
    if not tensors:
        raise RuntimeError("meshgrid: expects a non-empty TensorList")
    _check_same_device("meshgrid", *tensors)
    for x in tensors:
        if x.ndim > 1:
            raise RuntimeError(f"meshgrid: expected 0D or 1D tensors, got shape "
                               f"{tuple(x.shape)}")
        if x.dtype is not tensors[0].dtype:
            raise RuntimeError(f"meshgrid: expects all tensors to have the same dtype, got "
                               f"{tensors[0].dtype} and {x.dtype}")
    sizes = [x.numel() for x in tensors]
    pos = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
        pos[0], pos[1] = 1, 0
    out = []
    for x, p in zip(tensors, pos):
        shape = [1] * len(sizes)
        shape[p] = -1
        out.append(expand(reshape(x, tuple(shape)), tuple(sizes)))
    return tuple(out)


def is_dtype(obj) -> bool:
    """Whether `obj` names a dtype (as `view(dtype)` needs to tell it from a size)."""
    return (isinstance(obj, (DType, np.dtype)) or type(obj).__module__ == "torch"
            or (isinstance(obj, type) and issubclass(obj, np.generic)))


def view_dtype(input: Tensor, dtype) -> Tensor:
    """The same bytes read as `dtype` (no copy; never requires grad, as in PyTorch). With
    a different element size the last dim must be contiguous and scales by the ratio of
    the sizes: float32 of shape (2, 4) viewed as float64 has shape (2, 2)."""
    dt = to_dtype(dtype)
    backend = input._backend
    new = backend.np_dtype(dt)
    if new is None:
        raise TypeError(f"view: dtype {dt} is not supported on device {input.device}")
    a = input._data
    old_size, new_size = a.dtype.itemsize, np.dtype(new).itemsize
    what = f"to view {input.dtype} as {dt} (different element sizes)"
    if old_size != new_size:
        if a.ndim == 0:
            raise RuntimeError(f"view: self.dim() cannot be 0 {what}")
        if a.shape[-1] != 1 and a.strides[-1] != old_size:
            raise RuntimeError(f"view: self.stride(-1) must be 1 {what}; the tensor of shape "
                               f"{tuple(a.shape)} is not contiguous in its last dim")
        if new_size > old_size:
            ratio = new_size // old_size
            if a.shape[-1] % ratio:
                raise RuntimeError(f"view: self.size(-1) must be divisible by {ratio} {what}, "
                                   f"but got {a.shape[-1]} (shape {tuple(a.shape)})")
            for i, s in enumerate(a.strides[:-1]):
                if (s // old_size) % ratio:
                    raise RuntimeError(f"view: self.stride({i}) must be divisible by {ratio} "
                                       f"{what}, but got {s // old_size}")
    try:
        out = a.view(new)
    except ValueError as e:
        raise RuntimeError(f"view: cannot view a tensor of shape {tuple(a.shape)} and dtype "
                           f"{input.dtype} as {dt}: {e}") from None
    result = _wrap_array(out, backend)
    result._version = version_counter(input)
    return result

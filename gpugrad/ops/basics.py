"""PyTorch's small tensor utilities: `select`, `numel`, `is_tensor`, `is_floating_point`,
`broadcast_tensors`, `masked_fill` (with PyTorch's checks and result dtype), the
in-place `fill_diagonal_`, each composed of existing ops, and `result_type`."""

from __future__ import annotations

import numpy as np

from .._dtype import DType, dtype_for_scalar_category, scalar_category
from ..tensor import Tensor, _norm_dim, _wrap_array
from ._util import is_scalar, result_dtype, tensor_arg
from .broadcast import broadcast_error, broadcast_to
from .elementwise import cast, full_like_scalar, where
from .index import getitem

__all__ = ["select", "numel", "is_tensor", "is_floating_point", "broadcast_tensors",
           "masked_fill", "fill_diagonal_", "result_type"]


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice of `input` at `index` along `dim`, which is removed (a view, as
    `input[..., index, ...]`);  x̄ = ȳ scattered into zeros at that index."""
    tensor_arg(input, "select")
    if input.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _norm_dim(dim, input.ndim, "select")
    size = input.shape[d]
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size "
                         f"{list(input.shape)} at dimension {dim}")
    return getitem(input, (slice(None),) * d + (int(index),))


def numel(input: Tensor) -> int:
    """The number of elements of `input` (the product of its shape)."""
    return tensor_arg(input, "numel").numel()


def is_tensor(obj) -> bool:
    """Whether `obj` is a gpugrad Tensor (a Parameter included)."""
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> bool:
    """Whether `input`'s dtype is a floating type (float16, bfloat16, float32, float64)."""
    return tensor_arg(input, "is_floating_point").dtype.is_floating_point


def broadcast_tensors(*tensors: Tensor) -> tuple:
    """The tensors broadcast to their common shape (views; each gradient is summed back
    to its input's shape). Shapes that do not broadcast raise ShapeError naming them."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    for t in tensors:
        tensor_arg(t, "broadcast_tensors")
    try:
        shape = np.broadcast_shapes(*(tuple(t.shape) for t in tensors))
    except ValueError:
        raise broadcast_error("broadcast_tensors", *(t.shape for t in tensors)) from None
    return tuple(broadcast_to(t, shape) for t in tensors)


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """`input` with `value` (a number or a 0-d Tensor, cast to input's dtype) where the
    bool `mask` (broadcasting) is True;  x̄ = ȳ where not mask, value̅ = Σ ȳ where mask."""
    tensor_arg(input, "masked_fill")
    if not isinstance(mask, Tensor) or mask.dtype.name != "bool":
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with "
                           f"dtype {got}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value.ndim} dimension(s) (shape "
                               f"{tuple(value.shape)})")
        value = value if value.dtype is input.dtype else cast(value, input.dtype)
    else:
        value = full_like_scalar(input, value, input.dtype)
    return where(mask, value, input)


def fill_diagonal_(input: Tensor, fill_value, wrap: bool = False) -> Tensor:
    """Fill the main diagonal (elements with all indices equal) with `fill_value`, in
    place. A tall 2-d matrix with `wrap=True` restarts the diagonal every N + 1 rows, as
    NumPy's fill_diagonal. `input` needs ≥ 2 dims, all of equal length beyond 2-d."""
    tensor_arg(input, "fill_diagonal_")
    if input.ndim < 2:
        raise RuntimeError(f"fill_diagonal_: dimensions must larger than 1, got shape "
                           f"{tuple(input.shape)}")
    if input.ndim > 2 and len(set(input.shape)) != 1:
        raise RuntimeError(f"fill_diagonal_: all dimensions of input must be of equal "
                           f"length, got shape {tuple(input.shape)}")
    mask = np.zeros(input.shape, dtype=bool)
    np.fill_diagonal(mask, True, wrap=wrap)
    m = _wrap_array(input._backend.asarray(mask), input._backend)
    return input.masked_fill_(m, fill_value)


def result_type(tensor1, tensor2) -> DType:
    """The dtype of an arithmetic op on `tensor1` and `tensor2` (Tensors or numbers): the
    promotion every binary op applies (dimensioned tensors decide within a kind; a 0-d
    tensor, then a number, only raises the kind)."""
    for x in (tensor1, tensor2):
        if not isinstance(x, Tensor) and not is_scalar(x):
            raise TypeError(f"result_type: expected Tensors or numbers, got "
                            f"{type(x).__name__}")
    if isinstance(tensor1, Tensor) or isinstance(tensor2, Tensor):
        return result_dtype(tensor1, tensor2)
    return dtype_for_scalar_category(max(scalar_category(tensor1), scalar_category(tensor2)))

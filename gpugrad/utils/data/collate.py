"""`default_collate` and `default_convert`: how samples become a batch, as in PyTorch.

Tensors are stacked (on their device); NumPy arrays and numbers become CPU tensors
(Python floats float64, ints int64, bools bool, as PyTorch does); strings stay lists;
mappings, namedtuples and sequences are collated field by field (a tuple of fields
comes back as a list, as in PyTorch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ... import _dtype
from ...creation import from_numpy, tensor
from ...ops.shape import stack
from ...tensor import Tensor

__all__ = ["default_collate", "default_convert"]

_ERROR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or "
          "lists; found {}")


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def default_collate(batch: Sequence):
    """Merge a list of samples into a batch (see the module docstring for the rules)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OSU":
            raise TypeError(_ERROR.format(elem.dtype))
        return from_numpy(np.stack(batch))
    if isinstance(elem, np.generic):
        if elem.dtype.kind in "OSU":
            raise TypeError(_ERROR.format(elem.dtype))
        return from_numpy(np.array(batch, dtype=elem.dtype))
    if isinstance(elem, bool):
        return tensor(batch, dtype=_dtype.bool_, device="cpu")
    if isinstance(elem, int):
        return tensor(batch, dtype=_dtype.int64, device="cpu")
    if isinstance(elem, float):
        return tensor(batch, dtype=_dtype.float64, device="cpu")
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, Mapping):
        out = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(out)
        except TypeError:
            return out
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of "
                               f"equal size, got sizes {[len(e) for e in batch]}")
        fields = [default_collate(s) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return fields
        try:
            return type(elem)(fields)
        except TypeError:
            return fields
    raise TypeError(_ERROR.format(type(elem)))


def default_convert(data):
    """Without batching: NumPy arrays (anywhere inside) become tensors; the rest is kept."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "OSU":
        return from_numpy(data)
    if isinstance(data, np.generic) and data.dtype.kind not in "OSU":
        return from_numpy(np.array(data))
    if isinstance(data, Mapping):
        out = {k: default_convert(v) for k, v in data.items()}
        try:
            return type(data)(out)
        except TypeError:
            return out
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data

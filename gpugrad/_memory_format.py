"""Memory formats (`gg.contiguous_format`, `gg.channels_last`, ...), as PyTorch names them.

gpugrad keeps every tensor it makes row-major (C order), so a memory format is accepted
wherever PyTorch takes one (`clone`, `contiguous`, `to`, `Module.to`) and checked as
PyTorch checks it (channels_last needs a 4-d tensor), but the layout stays row-major:
the values, which are all that ops see, are the same. `is_contiguous(memory_format)`
answers for the actual strides.
"""

from __future__ import annotations

__all__ = ["memory_format", "contiguous_format", "preserve_format", "channels_last",
           "channels_last_3d", "check_memory_format", "is_contiguous_as"]


class memory_format:  # noqa: N801 - mirrors torch.memory_format
    """A memory layout name; compares by identity, `str()` is `gpugrad.NAME`."""

    __slots__ = ("name", "ndim")

    def __init__(self, name: str, ndim: int | None) -> None:
        self.name, self.ndim = name, ndim

    def __repr__(self) -> str:
        return f"gpugrad.{self.name}"

    def __reduce__(self):
        return self.name


contiguous_format = memory_format("contiguous_format", None)
preserve_format = memory_format("preserve_format", None)
channels_last = memory_format("channels_last", 4)
channels_last_3d = memory_format("channels_last_3d", 5)


def check_memory_format(t, fmt, op: str) -> None:
    """Raise as PyTorch does for a memory format that `t` cannot take (None passes)."""
    if fmt is None:
        return
    if not isinstance(fmt, memory_format):
        raise TypeError(f"{op}: memory_format must be a gg.memory_format such as "
                        f"gg.contiguous_format, got {type(fmt).__name__}")
    if fmt.ndim is not None and t.ndim != fmt.ndim:
        raise RuntimeError(f"{op}: required rank {fmt.ndim} tensor to use {fmt.name} format, "
                           f"got a tensor of shape {tuple(t.shape)}")


def is_contiguous_as(array, fmt) -> bool:
    """Whether `array`'s strides are dense in the order of `fmt` (default: row-major)."""
    if fmt is None or fmt is contiguous_format or fmt is preserve_format:
        return bool(array.flags.c_contiguous)
    check_memory_format(array, fmt, "is_contiguous")
    # channels-last orders the axes (N, spatial..., C): dense iff that transpose is C order
    order = (0,) + tuple(range(2, array.ndim)) + (1,)
    return bool(array.transpose(order).flags.c_contiguous)

"""Devices ("cpu", "cuda", "cuda:N") and the thread-local default device."""

from __future__ import annotations

import os
import threading

__all__ = ["device", "default_device", "set_default_device"]


class device:  # noqa: N801 - mirrors torch.device
    """A device: `str()` is "cpu" or "cuda:N"; compares equal to those strings."""

    __slots__ = ("type", "index")

    def __init__(self, spec: str | device | int | None = None, index: int | None = None, *,
                 type: str | None = None) -> None:  # noqa: A002 - torch.device(type=...)
        if type is not None:
            if spec is not None:
                raise TypeError("device: pass the type positionally or as type=, not both")
            spec = type
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if isinstance(spec, int) and not isinstance(spec, bool):
            spec = f"cuda:{spec}"  # torch.device(1) is cuda:1
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, num = spec.strip().lower().partition(":")
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        if num:
            if not num.isdigit():
                raise ValueError(f"bad device index in {spec!r}")
            index = int(num)
        if kind == "cpu":
            if index not in (None, 0):
                raise ValueError(f"cpu device has no index {index}")
            index = None
        elif index is None:
            index = 0
        self.type, self.index = kind, index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device('{self}')"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (ValueError, TypeError):
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash(str(self))

    def __enter__(self) -> device:
        """`with gg.device("cuda"):` makes this the calling thread's default device."""
        _entered.stack.append(_default.value)
        _default.value = self
        return self

    def __exit__(self, *exc) -> None:
        _default.value = _entered.stack.pop()


class _DefaultDevice(threading.local):
    value: device | None = None


_default = _DefaultDevice()


class _Entered(threading.local):
    def __init__(self) -> None:
        self.stack: list = []


_entered = _Entered()
_process_default: device | None = None


def _initial_default() -> device:
    env = os.environ.get("GPUGRAD_DEVICE", "").strip()
    if env:
        return device(env)
    from . import cuda

    return device("cuda" if cuda.is_available() else "cpu")


def default_device() -> device:
    """The device new tensors go to: the thread's setting, else the process's, else
    `GPUGRAD_DEVICE`, else "cuda" when a GPU answers and "cpu" otherwise."""
    global _process_default
    d = _default.value
    if d is not None:
        return d
    if _process_default is None:
        _process_default = _initial_default()
    return _process_default


def set_default_device(dev: str | device) -> None:
    """Set the default device for new tensors, for this process and the calling thread."""
    global _process_default
    dev = device(dev)
    _process_default = dev
    _default.value = dev


def set_thread_default_device(dev: str | device | None) -> None:
    """Set the default device for the calling thread only (None falls back to the process's)."""
    _default.value = None if dev is None else device(dev)

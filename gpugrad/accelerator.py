"""`gg.accelerator`, as `torch.accelerator`: the device-generic way recent PyTorch
programs ask whether a GPU is there and which one (`is_available()`,
`current_accelerator()`). gpugrad's only accelerator type is "cuda"."""

from __future__ import annotations

from . import cuda
from .device import default_device
from .device import device as Device

__all__ = ["is_available", "current_accelerator", "device_count", "current_device_index",
           "synchronize"]


def is_available() -> bool:
    """Whether an accelerator (a CUDA GPU that answers, with CuPy) can be used."""
    return cuda.is_available()


def current_accelerator(check_available: bool = False) -> Device | None:
    """`gg.device("cuda")` when a GPU is available, else None. (PyTorch reports the type
    even when none is usable unless `check_available`; gpugrad only knows of CUDA when
    CuPy finds a GPU, so both ways give None without one.)"""
    return Device("cuda") if cuda.is_available() else None


def device_count() -> int:
    """How many accelerator devices are visible (0 without a GPU)."""
    return cuda.device_count()


def current_device_index() -> int:
    """The index of the default GPU: that of the default device when it is a GPU, else 0."""
    if not cuda.is_available():
        raise RuntimeError("Cannot access accelerator device when none is available.")
    dev = default_device()
    return dev.index if dev.type == "cuda" else 0


def synchronize(device=None) -> None:
    """Wait for all queued work on the GPU (a no-op without one)."""
    cuda.synchronize()

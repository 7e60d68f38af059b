"""Backend registry: one Backend instance per device, created on first use."""

from __future__ import annotations

from ..device import device as Device
from ..errors import DeviceError
from .base import Backend
from .numpy_backend import NumpyBackend

__all__ = ["Backend", "get_backend", "cpu_backend", "all_backends"]

cpu_backend = NumpyBackend()
_backends: dict[str, Backend] = {"cpu": cpu_backend}


def get_backend(dev) -> Backend:
    """The backend for a device ("cpu", "cuda", "cuda:N" or a gg.device)."""
    if isinstance(dev, str) and dev == "cpu":
        return cpu_backend
    dev = Device(dev)
    key = str(dev)
    backend = _backends.get(key)
    if backend is None:
        from .. import cuda

        if not cuda.is_available():
            raise DeviceError(f"device {key} requested but CUDA is not available "
                              "(CuPy missing or no GPU answered)")
        if dev.index >= cuda.device_count():
            raise DeviceError(f"device {key} requested but only {cuda.device_count()} GPU(s) exist")
        from .cupy_backend import CupyBackend

        backend = _backends[key] = CupyBackend(dev)
    return backend


def all_backends() -> list[Backend]:
    """The backends created so far (used to seed them all)."""
    return list(_backends.values())

"""Backend registry: one Backend instance per device, created on first use."""

from __future__ import annotations

from ..device import device as Device
from ..errors import DeviceError
from . import fp_warnings  # noqa: F401 - PyTorch's silence on IEEE results (see there)
from .base import Backend
from .numpy_backend import NumpyBackend

__all__ = ["Backend", "get_backend", "cpu_backend", "all_backends", "matmul_tf32",
           "set_matmul_tf32"]

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
        if _tf32 is not None:
            backend.set_matmul_tf32(_tf32)
    return backend


def all_backends() -> list[Backend]:
    """The backends created so far (used to seed them all)."""
    return list(_backends.values())


_tf32: bool | None = None  # None: never set, CuPy's own default (CUPY_TF32) stands


def matmul_tf32() -> bool:
    """Whether float32 matrix products on CUDA may use TF32 (`backends.cuda.matmul`)."""
    return bool(_tf32)


def set_matmul_tf32(flag: bool) -> None:
    """Allow (or forbid) TF32 tensor cores for float32 products on CUDA, now and on CUDA
    backends created later."""
    global _tf32
    _tf32 = bool(flag)
    for backend in _backends.values():
        if backend is not cpu_backend:
            backend.set_matmul_tf32(_tf32)

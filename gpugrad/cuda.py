"""CUDA availability and device helpers (CuPy is imported lazily, only when asked)."""

from __future__ import annotations

import functools

__all__ = ["is_available", "device_count", "synchronize"]


@functools.lru_cache(maxsize=1)
def _probe() -> int:
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no CuPy, no driver, no device: all mean "no GPU"
        return 0


def is_available() -> bool:
    """True only when CuPy imports and at least one GPU answers."""
    return _probe() > 0


def device_count() -> int:
    """Number of visible CUDA devices (0 without CuPy or a GPU)."""
    return _probe()


def synchronize() -> None:
    """Wait for all queued work on the current GPU (counted by the backend's sync counter)."""
    if is_available():
        from .backend import get_backend

        get_backend("cuda").synchronize()

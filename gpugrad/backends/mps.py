"""`gg.backends.mps`: Apple's Metal backend does not exist in gpugrad."""

from __future__ import annotations

__all__ = ["is_available", "is_built"]


def is_available() -> bool:
    """False: gpugrad runs on CUDA GPUs and CPUs only."""
    return False


def is_built() -> bool:
    """False: gpugrad has no Metal backend."""
    return False

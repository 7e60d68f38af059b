"""`gg.backends.cudnn`: cuDNN's switches, accepted and kept; gpugrad does not call cuDNN
(its convolutions are im2col + cuBLAS), so they change nothing."""

from __future__ import annotations

__all__ = ["enabled", "benchmark", "deterministic", "allow_tf32", "is_available", "version"]

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True  # PyTorch's default for cuDNN


def is_available() -> bool:
    """False: gpugrad runs no cuDNN kernels (the switches above are accepted regardless)."""
    return False


def version() -> None:
    """None, as PyTorch answers when cuDNN is not available."""
    return None

"""`use_deterministic_algorithms` and its queries, as in PyTorch.

gpugrad records the flags; what they change: nothing yet. Every CPU op is already
deterministic (NumPy and BLAS give bit-identical results for the same inputs and thread
count, and the blocked thread pool splits work at fixed boundaries), and no GPU op checks
the flag, so PyTorch's errors for nondeterministic CUDA ops (atomics in index_add and
scatter_add backward) are not raised."""

from __future__ import annotations

__all__ = ["use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
           "is_deterministic_algorithms_warn_only_enabled"]

_flags = {"enabled": False, "warn_only": False}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Ask for deterministic algorithms (`mode=True`), warning instead of raising where an
    op has none (`warn_only=True`). Recorded only: see the module docstring."""
    for name, v in (("mode", mode), ("warn_only", warn_only)):
        if not isinstance(v, bool):
            raise TypeError(f"use_deterministic_algorithms(): argument '{name}' must be bool, "
                            f"not {type(v).__name__}")
    _flags["enabled"], _flags["warn_only"] = mode, warn_only


def are_deterministic_algorithms_enabled() -> bool:
    """Whether `use_deterministic_algorithms(True)` is in effect."""
    return _flags["enabled"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """Whether it was set with `warn_only=True`."""
    return _flags["warn_only"]

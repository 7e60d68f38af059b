"""`gg.backends.cuda`: `matmul.allow_tf32` (honoured by the CUDA backend's cuBLAS calls),
and `gg.set_float32_matmul_precision`, which sets the same switch."""

from __future__ import annotations

import importlib.util

from .. import backend as _backend

__all__ = ["matmul", "is_built", "set_float32_matmul_precision",
           "get_float32_matmul_precision"]

_PRECISIONS = ("highest", "high", "medium")


class _MatmulFlags:
    """`gg.backends.cuda.matmul`: `allow_tf32` (default False, as in PyTorch) lets float32
    products on CUDA round their inputs to TF32 on tensor cores (about 10 bits of mantissa,
    several times faster on Ampere and newer GPUs). The reduced-precision-reduction flags
    are accepted and kept (float16/bfloat16 products accumulate in float32 regardless)."""

    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True

    @property
    def allow_tf32(self) -> bool:
        return _backend.matmul_tf32()

    @allow_tf32.setter
    def allow_tf32(self, flag: bool) -> None:
        _backend.set_matmul_tf32(bool(flag))

    def __repr__(self) -> str:
        return f"gpugrad.backends.cuda.matmul(allow_tf32={self.allow_tf32})"


matmul = _MatmulFlags()


def is_built() -> bool:
    """Whether CuPy (gpugrad's CUDA layer) can be imported."""
    return importlib.util.find_spec("cupy") is not None


def set_float32_matmul_precision(precision: str) -> None:
    """PyTorch's float32 matmul precision: "highest" (full float32), "high" or "medium"
    (TF32 allowed on CUDA; the same as `matmul.allow_tf32 = True`)."""
    if precision not in _PRECISIONS:
        raise ValueError(f"set_float32_matmul_precision: precision must be one of "
                         f"{', '.join(map(repr, _PRECISIONS))}, got {precision!r}")
    _backend.set_matmul_tf32(precision != "highest")


def get_float32_matmul_precision() -> str:
    """"highest" unless TF32 products are allowed ("high")."""
    return "high" if _backend.matmul_tf32() else "highest"

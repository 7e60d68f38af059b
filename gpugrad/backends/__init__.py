"""`gg.backends`: the switches PyTorch scripts set on `torch.backends`.

`gg.backends.cuda.matmul.allow_tf32` is honoured: float32 matrix products on CUDA may then
use TF32 tensor cores through cuBLAS (as `gg.set_float32_matmul_precision("high")` allows).
The cuDNN switches (`gg.backends.cudnn.benchmark`, `deterministic`, `allow_tf32`) are
accepted and kept, but change nothing: gpugrad's convolutions are its own im2col + cuBLAS
kernels, not cuDNN. `gg.backends.mps.is_available()` is False (no Apple GPU backend).
"""

from __future__ import annotations

from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]

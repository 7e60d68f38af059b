"""Launch geometry shared by the CUDA backend's kernel families (kernels/*.cu)."""

from __future__ import annotations

import numpy as np

THREADS = 256  # threads per block of the elementwise kernels
MAX_BLOCKS = 8192  # grid-stride loops cover the rest
TILE = (32, 8)  # block of the column-sum kernels (bias and layer-norm parameter grads)
CHUNK = 1 << 16  # elements per block-sized chunk of the multi-tensor kernels
NULL = np.uint64(0)  # a null pointer argument

"""The CUDA backend's random family: CuPy's generator and Philox dropout in one kernel
each way (kernels/dropout.cu); the mask is regenerated, never stored."""

from __future__ import annotations

import numpy as np

from .random import dropout_threshold


class CupyRandom:
    """Overrides of RandomFamily (mixed into CupyBackend before Backend)."""

    regenerates_dropout_mask = True  # kernels/dropout.cu, Philox counters

    def manual_seed(self, seed: int) -> None:
        with self.cuda_device:
            self.rng = self.xp.random.default_rng(seed)
        self.seed_philox(seed)

    def uniform(self, shape, dtype):
        with self.cuda_device:
            if dtype in (np.float32, np.float64):
                return self.rng.random(shape, dtype=dtype)
            return self.rng.random(shape).astype(dtype)

    def normal(self, shape, dtype):
        with self.cuda_device:
            if dtype in (np.float32, np.float64):
                return self.rng.standard_normal(shape, dtype=dtype)
            return self.rng.standard_normal(shape).astype(dtype)

    def randint(self, low, high, shape, dtype):
        with self.cuda_device:
            return self.rng.integers(low, high, size=shape, dtype=dtype)

    def _dropout_apply(self, x, p, seed, offset):
        if p >= 1 or not self._has_kernel(x):
            return super()._dropout_apply(x, p, seed, offset)
        x = self._c(x)
        y = self.xp.empty_like(x)
        if x.size:
            self._elementwise("dropout", "dropout_apply", x.dtype, -(-x.size // 4),
                              (x, y, np.int64(x.size), np.uint32(dropout_threshold(p)),
                               np.float64(1.0 / (1.0 - p)), np.uint64(seed), np.uint64(offset)))
        return y

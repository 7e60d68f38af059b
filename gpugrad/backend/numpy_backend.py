"""The NumPy (CPU) backend; also the reference implementation of every fused kernel."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

import numpy as np

from ..device import device as Device
from .base import Backend


def _cache_large_allocations() -> bool:
    """Keep freed large arrays in the C heap for reuse (glibc only; opt out with
    GPUGRAD_CPU_ALLOCATOR=system).

    By default glibc serves every allocation above a few hundred KiB with a fresh mmap and
    returns it on free, so each temporary of a large elementwise op page-faults its memory
    in again: a third of the time of a memory-bound training step on a CPU. Raising the
    mmap and trim thresholds makes freed blocks reusable, as a caching allocator does; the
    cost is that the process keeps its peak heap instead of shrinking.
    """
    if os.environ.get("GPUGRAD_CPU_ALLOCATOR", "caching") == "system":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_threshold, 256 << 20)
                    and libc.mallopt(m_trim_threshold, 1 << 30))
    except (OSError, AttributeError):
        return False


ALLOCATOR_CACHING = _cache_large_allocations()


class NumpyBackend(Backend):
    """CPU arrays through NumPy."""

    name = "cpu"
    xp = np
    array_type = np.ndarray

    def __init__(self, dev: Device | None = None) -> None:
        super().__init__(dev or Device("cpu"))
        self.rng = np.random.default_rng()

    def asarray(self, data, dtype=None):
        return np.array(data, dtype=dtype, copy=True) if dtype is not None else np.array(data)

    def to_host(self, array):
        # Counted like a device-to-host copy, so "no host reads in a training step" is
        # testable on the CPU with the same counter as on the GPU.
        self.counter.device_to_host += 1
        return np.asarray(array)

    def manual_seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def uniform(self, shape, dtype):
        if dtype in (np.float32, np.float64):
            return self.rng.random(shape, dtype=dtype)
        return self.rng.random(shape).astype(dtype)

    def normal(self, shape, dtype):
        if dtype in (np.float32, np.float64):
            return self.rng.standard_normal(shape, dtype=dtype)
        return self.rng.standard_normal(shape).astype(dtype)

    def randint(self, low, high, shape, dtype):
        return self.rng.integers(low, high, size=shape, dtype=dtype)

    def index_add_(self, out, index, values) -> None:
        np.add.at(out, index, values)

    def reshape_view(self, array, shape):
        return np.reshape(array, shape, copy=False)

    def act_forward(self, kind: str, x):
        if kind != "sigmoid":  # errstate costs a microsecond; only exp can overflow
            return super().act_forward(kind, x)
        with np.errstate(over="ignore"):  # exp overflow in sigmoid correctly gives 0
            return super().act_forward(kind, x)

    def swish_forward(self, x, beta):
        with np.errstate(over="ignore"):
            return super().swish_forward(x, beta)

    def swish_backward(self, x, beta, g, need_beta: bool):
        with np.errstate(over="ignore", invalid="ignore"):
            return super().swish_backward(x, beta, g, need_beta)

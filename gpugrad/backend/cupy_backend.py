"""The CuPy (CUDA) backend. CuPy is imported only when this backend is created."""

from __future__ import annotations

import numpy as np

from ..device import device as Device
from .base import Backend


class CupyBackend(Backend):
    """GPU arrays through CuPy, on one CUDA device."""

    name = "cuda"

    def __init__(self, dev: Device) -> None:
        import cupy
        import cupyx

        super().__init__(dev)
        self.xp = cupy
        self._cupyx = cupyx
        self.array_type = cupy.ndarray
        self.cuda_device = cupy.cuda.Device(dev.index)
        with self.cuda_device:
            self.rng = cupy.random.default_rng()

    def asarray(self, data, dtype=None):
        with self.cuda_device:
            return self.xp.array(data, dtype=dtype)

    def to_host(self, array):
        self.counter.device_to_host += 1
        return self.xp.asnumpy(array)

    def synchronize(self) -> None:
        self.counter.synchronizations += 1
        self.cuda_device.synchronize()

    def manual_seed(self, seed: int) -> None:
        with self.cuda_device:
            self.rng = self.xp.random.default_rng(seed)

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

    def index_add_(self, out, index, values) -> None:
        self._cupyx.scatter_add(out, index, values)

    def reshape_view(self, array, shape):
        out = array.reshape(shape)
        # A copy lives in a fresh allocation, so an unchanged pointer means a view.
        if out.size and out.data.ptr != array.data.ptr:
            raise ValueError("reshape needs a copy")
        return out

    def np_dtype(self, dtype):
        if dtype.name == "bfloat16":
            try:
                import ml_dtypes  # CuPy's bfloat16 support goes through ml_dtypes

                return np.dtype(ml_dtypes.bfloat16)
            except ImportError:
                return None
        return dtype.np

    # -- fused kernels (kernels/activation.cu; reference: Backend.act_forward/backward) --
    _ACT_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}

    def _launch(self, name: str, n: int, args) -> None:
        from .kernels import raw_module

        threads = 256
        blocks = max(1, min((n + threads - 1) // threads, 65535))
        with self.cuda_device:
            raw_module("activation").get_function(name)((blocks,), (threads,), args)

    def act_forward(self, kind: str, x):
        from .kernels import ACTIVATION_KINDS

        suffix = self._ACT_SUFFIX.get(x.dtype)
        if suffix is None or kind not in ACTIVATION_KINDS:
            return super().act_forward(kind, x)
        x = self.xp.ascontiguousarray(x)
        y = self.xp.empty_like(x)
        if x.size:
            self._launch(f"act_forward_{suffix}", x.size,
                         (x, y, np.int64(x.size), np.int32(ACTIVATION_KINDS[kind])))
        return y

    def act_backward(self, kind: str, y, g):
        from .kernels import ACTIVATION_KINDS

        suffix = self._ACT_SUFFIX.get(y.dtype)
        if suffix is None or kind not in ACTIVATION_KINDS or g.dtype != y.dtype:
            return super().act_backward(kind, y, g)
        y = self.xp.ascontiguousarray(y)
        g = self.xp.ascontiguousarray(self.xp.broadcast_to(g, y.shape))
        out = self.xp.empty_like(y)
        if y.size:
            self._launch(f"act_backward_{suffix}", y.size,
                         (y, g, out, np.int64(y.size), np.int32(ACTIVATION_KINDS[kind])))
        return out

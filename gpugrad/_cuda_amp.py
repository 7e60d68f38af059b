"""`gg.cuda.amp`: the aliases `torch.cuda.amp` keeps, `autocast` and `GradScaler` with their
CUDA-only signatures (scripts write `from torch.cuda.amp import autocast, GradScaler`).
Importing it makes it `gg.cuda.amp`, importable as `gpugrad.cuda.amp` (as `os.path` is)."""

from __future__ import annotations

import sys

from . import _autocast, _dtype, amp, cuda

__all__ = ["autocast", "GradScaler"]


class autocast(_autocast.autocast):  # noqa: N801 - mirrors torch.cuda.amp.autocast
    """`gg.autocast("cuda", dtype, enabled)`: `torch.cuda.amp.autocast(enabled=True,
    dtype=torch.float16, cache_enabled=True)`."""

    def __init__(self, enabled: bool = True, dtype=_dtype.float16,
                 cache_enabled: bool = True) -> None:
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(amp.GradScaler):
    """`gg.amp.GradScaler("cuda", ...)`: `torch.cuda.amp.GradScaler(init_scale=2.**16,
    growth_factor=2.0, backoff_factor=0.5, growth_interval=2000, enabled=True)`."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True) -> None:
        super().__init__("cuda", init_scale=init_scale, growth_factor=growth_factor,
                         backoff_factor=backoff_factor, growth_interval=growth_interval,
                         enabled=enabled)


cuda.amp = sys.modules[__name__]
sys.modules["gpugrad.cuda.amp"] = cuda.amp

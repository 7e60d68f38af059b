"""`gg.amp`: automatic mixed precision — `autocast` and `GradScaler`, as in `torch.amp`."""

from __future__ import annotations

from .._autocast import autocast, get_autocast_dtype, is_autocast_enabled
from .grad_scaler import GradScaler

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "get_autocast_dtype"]

"""GradScaler: loss scaling for float16 training, with every decision taken on the device.

PyTorch's GradScaler reads the found-inf flag on the host to decide whether to call
`optimizer.step()`. Here the flag stays on the device: it is passed to the optimizer as
`found_inf=`, whose backend update skips itself with masked writes, and `update()` adjusts
the scale and growth tracker with array arithmetic. A scaled training step, skipped or not,
therefore never synchronises. Only `get_scale()`, `state_dict()` and `_get_growth_tracker()`
read numbers back to the host, as their results are host numbers.
"""

from __future__ import annotations

import contextlib
import enum
import warnings

from ..backend import get_backend
from ..tensor import Tensor, _wrap_array

__all__ = ["GradScaler"]


class _Stage(enum.Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _new_optimizer_state() -> dict:
    return {"stage": _Stage.READY, "found_inf_per_device": {}}


class GradScaler:
    """Scale the loss so float16 gradients do not underflow; unscale them before the step,
    skip steps whose gradients hold inf/NaN, and adapt the scale: multiply it by
    `backoff_factor` after a skipped step, by `growth_factor` after `growth_interval`
    successful steps in a row (as `torch.amp.GradScaler`).

    The scale (0-d float32), the growth tracker (0-d int32) and each found-inf flag
    (float32, shape (1,)) live on the device of the first loss given to `scale()` (or on
    `device` when given). `enabled=False` makes every method a pass-through.
    """

    def __init__(self, device: str | None = None, init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        if device is not None and not isinstance(device, str) and \
                type(device).__name__ != "device":
            raise TypeError(f"GradScaler: device must be a string such as 'cuda' or 'cpu', got "
                            f"{type(device).__name__} (pass init_scale= by keyword)")
        if growth_factor <= 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1.0, got {growth_factor}")
        if backoff_factor >= 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be < 1.0, got {backoff_factor}")
        if not isinstance(growth_interval, int) or growth_interval <= 0:
            raise ValueError(f"GradScaler: growth_interval must be a positive int, got "
                             f"{growth_interval!r}")
        self._device = None if device is None else str(device)
        self._enabled = bool(enabled)
        if self._enabled and self._device is not None and self._device.startswith("cuda"):
            from .. import cuda

            if not cuda.is_available():
                warnings.warn("GradScaler is enabled, but CUDA is not available; disabling",
                              UserWarning, stacklevel=2)
                self._enabled = False
        self._init_scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = growth_interval
        self._init_growth_tracker = 0
        self._backend = None
        self._scale = None
        self._growth_tracker = None
        self._per_optimizer_states: dict = {}

    # -- device state ---------------------------------------------------------------------
    def _lazy_init(self, backend) -> None:
        """Create the scale and growth tracker on `backend` (a fill, no host copy)."""
        if self._device is not None:
            backend = get_backend(self._device)
        xp = backend.xp
        self._backend = backend
        self._scale = xp.full((), self._init_scale, dtype=xp.float32)
        self._growth_tracker = xp.full((), self._init_growth_tracker, dtype=xp.int32)

    def _check_initialized(self, fn: str) -> None:
        if self._scale is None:
            raise RuntimeError(f"GradScaler.{fn}: the scale is not initialised; call "
                               "scale(loss) first (it was never called with this scaler)")

    def _opt_state(self, optimizer) -> dict:
        return self._per_optimizer_states.setdefault(id(optimizer), _new_optimizer_state())

    def _on(self, array, backend):
        """`array` (on the scaler's device) as an array on `backend`."""
        if backend is self._backend:
            return array
        return _wrap_array(array, self._backend).to(backend.device)._data

    # -- the training-step API --------------------------------------------------------------
    def scale(self, outputs):
        """`outputs` (a Tensor, or a list/tuple of them, nested) multiplied by the scale,
        as a recorded op: backward() from the result gives scaled gradients."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            if self._scale is None:
                self._lazy_init(outputs._backend)
            return outputs * _wrap_array(self._on(self._scale, outputs._backend),
                                         outputs._backend)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError(f"GradScaler.scale: outputs must be a Tensor or a list/tuple of "
                        f"Tensors, got {type(outputs).__name__}")

    def unscale_(self, optimizer) -> None:
        """Divide the optimizer's gradients by the scale, in place, and record on the device
        whether any of them held an inf or NaN. At most once per optimizer between
        `update()` calls; `step()` calls it when you have not (unscale first to clip)."""
        if not self._enabled:
            return
        self._check_initialized("unscale_")
        state = self._opt_state(optimizer)
        if state["stage"] is _Stage.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since "
                               "the last update().")
        if state["stage"] is _Stage.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        by_backend: dict = {}
        for gi, group in enumerate(optimizer.param_groups):
            for pi, p in enumerate(group["params"]):
                g = p.grad
                if g is None:
                    continue
                if g.dtype.name == "float16":
                    raise ValueError(f"GradScaler.unscale_: attempting to unscale float16 "
                                     f"gradients (parameter {pi} of group {gi} has dtype "
                                     f"{g.dtype}); keep float32 parameters and use float16 "
                                     "only inside autocast")
                by_backend.setdefault(g._backend, []).append(g)
        xp = self._backend.xp
        inv_scale = (1.0 / self._scale.astype(xp.float64)).astype(xp.float32)
        flags = {}
        for backend, grads in by_backend.items():
            flag = backend.xp.zeros((1,), dtype=backend.xp.float32)
            backend.unscale_grads_([g._data for g in grads], self._on(inv_scale, backend), flag)
            for g in grads:
                g._bump_version()
            flags[backend] = flag
        state["found_inf_per_device"] = flags
        state["stage"] = _Stage.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale (unless `unscale_` was called) and step the optimizer, which skips the
        update on the device when a gradient was not finite. Returns what
        `optimizer.step()` returns. A closure is not supported, as in PyTorch."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs or args:
            raise RuntimeError("Closure use is not currently supported if GradScaler is "
                               "enabled.")
        self._check_initialized("step")
        state = self._opt_state(optimizer)
        if state["stage"] is _Stage.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is _Stage.READY:
            self.unscale_(optimizer)
        flags = state["found_inf_per_device"]
        if not flags:
            raise RuntimeError("No inf checks were recorded for this optimizer (none of its "
                               "parameters has a gradient).")
        found_inf = self._combined(flags.items())
        from ..optim import Optimizer

        if isinstance(optimizer, Optimizer):
            retval = optimizer.step(found_inf=_wrap_array(found_inf, self._backend), **kwargs)
        else:  # a foreign optimizer cannot skip on the device: read the flag, as PyTorch does
            skip = self._backend.to_host(found_inf).reshape(-1)[0] != 0
            retval = None if skip else optimizer.step(**kwargs)
        state["stage"] = _Stage.STEPPED
        return retval

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Adjust the scale for the next iteration, on the device: × backoff_factor if any
        optimizer step since the last update found an inf/NaN (and the growth tracker
        restarts), else count the success and × growth_factor after `growth_interval` in
        a row (unless that would overflow float32). `new_scale` (a float or a one-element
        float32 tensor) sets the scale directly instead."""
        if not self._enabled:
            return
        self._check_initialized("update")
        xp = self._backend.xp
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1 or new_scale.dtype.name != "float32" or \
                        new_scale.requires_grad:
                    raise TypeError("GradScaler.update: new_scale must be a float or a "
                                    "one-element float32 tensor that does not require grad, "
                                    f"got dtype {new_scale.dtype} and shape "
                                    f"{tuple(new_scale.shape)}")
                value = new_scale._data.reshape(())
                if new_scale._backend is not self._backend:
                    value = new_scale.to(self._backend.device)._data.reshape(())
                xp.copyto(self._scale, value.astype(xp.float32))
            else:
                self._scale.fill(float(new_scale))
        else:
            flags = [item for s in self._per_optimizer_states.values()
                     for item in s["found_inf_per_device"].items()]
            if not flags:
                raise RuntimeError("No inf checks were recorded prior to update().")
            self._update_scale_(self._combined(flags))
        self._per_optimizer_states = {}

    def _combined(self, flags):
        """The sum of found-inf flags, given as (backend, array) pairs, on the scaler's
        device (one device: the flag itself, no copy)."""
        total = None
        for backend, flag in flags:
            if backend is not self._backend:
                flag = _wrap_array(flag, backend).to(self._backend.device)._data
            total = flag if total is None else total + flag
        return total

    def _update_scale_(self, found_inf) -> None:
        """PyTorch's `_amp_update_scale_`, written as masked array arithmetic."""
        xp = self._backend.xp
        scale, tracker = self._scale, self._growth_tracker
        found = found_inf.reshape(()) != 0
        successful = tracker + 1
        due = successful == self._growth_interval
        quiet = xp.errstate(over="ignore") if hasattr(xp, "errstate") else \
            contextlib.nullcontext()
        with quiet:  # a scale that would overflow is kept, not grown
            grown = scale * xp.float32(self._growth_factor)
        new_scale = xp.where(found, scale * xp.float32(self._backoff_factor),
                             xp.where(due & xp.isfinite(grown), grown, scale))
        new_tracker = xp.where(found | due, 0, successful)
        xp.copyto(scale, new_scale.astype(xp.float32))
        xp.copyto(tracker, new_tracker.astype(xp.int32))

    # -- reading and setting ----------------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale as a Python float (a host read, as in PyTorch); 1.0 when
        disabled, `init_scale` before the first `scale()`."""
        if not self._enabled:
            return 1.0
        if self._scale is None:
            return self._init_scale
        return float(self._backend.to_host(self._scale))

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        if self._growth_tracker is None:
            return self._init_growth_tracker
        return int(self._backend.to_host(self._growth_tracker))

    def is_enabled(self) -> bool:
        """Whether this scaler scales (False after `enabled=False` or without CUDA)."""
        return self._enabled

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def state_dict(self) -> dict:
        """{"scale", "growth_factor", "backoff_factor", "growth_interval",
        "_growth_tracker"} as host numbers (reads the device state); {} when disabled."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what `state_dict()` returned (checked completely before any change)."""
        if not self._enabled:
            return
        if not state_dict:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        keys = ("scale", "growth_factor", "backoff_factor", "growth_interval",
                "_growth_tracker")
        missing = [k for k in keys if k not in state_dict]
        if missing:
            raise KeyError(f"GradScaler.load_state_dict: missing keys {missing}")
        values = {k: state_dict[k] for k in keys}
        for k, v in values.items():
            if isinstance(v, Tensor):
                v = values[k] = v.item()
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise TypeError(f"GradScaler.load_state_dict: {k} must be a number, got "
                                f"{type(v).__name__}")
        self._init_scale = float(values["scale"])
        self._growth_factor = float(values["growth_factor"])
        self._backoff_factor = float(values["backoff_factor"])
        self._growth_interval = int(values["growth_interval"])
        self._init_growth_tracker = int(values["_growth_tracker"])
        if self._scale is not None:
            self._scale.fill(self._init_scale)
            self._growth_tracker.fill(self._init_growth_tracker)

"""`inference_mode`: PyTorch's faster no_grad for inference. gpugrad has no separate
inference tensors, so it is grad mode off plus a thread-local flag that
`is_inference_mode_enabled()` reads; tensors made inside do not require grad."""

from __future__ import annotations

import functools
import threading

from .grad_mode import _state as _grad_state

__all__ = ["inference_mode", "is_inference_mode_enabled"]


class _InferenceState(threading.local):
    enabled = False


_state = _InferenceState()


def is_inference_mode_enabled() -> bool:
    """True inside `inference_mode()` (and not inside a nested `inference_mode(False)`)."""
    return _state.enabled


class inference_mode:  # noqa: N801 - mirrors torch.inference_mode
    """Context manager or decorator: with `mode=True` no graph is recorded (as `no_grad`)
    and `is_inference_mode_enabled()` is True; `mode=False` leaves grad mode as it is and
    turns the flag off. `@inference_mode` also works without parentheses."""

    def __new__(cls, mode=True):
        if callable(mode):  # @inference_mode used bare: decorate the function
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)

    def __enter__(self) -> None:
        self._prev = (_grad_state.enabled, _state.enabled)
        if self.mode:
            _grad_state.enabled = False
        _state.enabled = self.mode

    def __exit__(self, *exc) -> None:
        _grad_state.enabled, _state.enabled = self._prev

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)

        return wrapper

    def clone(self) -> inference_mode:
        """A fresh manager of the same mode (as torch's)."""
        return inference_mode(self.mode)

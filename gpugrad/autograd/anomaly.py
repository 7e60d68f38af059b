"""Anomaly detection: find the forward operation behind a NaN/inf gradient.

Inside `detect_anomaly()`, every recorded node keeps the stack of the user code that
created it, and the engine checks each gradient a node returns; the first non-finite one
raises a RuntimeError naming the node's forward op and the user's line that called it.
Costs a stack capture per op and a device read per node, so it is for debugging only.
"""

from __future__ import annotations

import os
import threading
import traceback

from .._dtype import is_inexact

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _AnomalyState(threading.local):
    enabled = False
    check_nan = True


_state = _AnomalyState()


def is_anomaly_enabled() -> bool:
    """True inside `detect_anomaly()` (for the calling thread)."""
    return _state.enabled


class detect_anomaly:  # noqa: N801 - mirrors torch.autograd.detect_anomaly
    """Context manager (or decorator) that turns on anomaly detection for its block."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> None:
        self._prev = (_state.enabled, _state.check_nan)
        _state.enabled, _state.check_nan = True, self.check_nan

    def __exit__(self, *exc) -> None:
        _state.enabled, _state.check_nan = self._prev

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        wrapper.__wrapped__ = fn
        return wrapper


class set_detect_anomaly(detect_anomaly):  # noqa: N801
    """Turn anomaly detection on or off; also usable as a context manager."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        super().__init__(check_nan)
        self._prev = (_state.enabled, _state.check_nan)
        _state.enabled, _state.check_nan = bool(mode), check_nan

    def __enter__(self) -> None:
        pass


def capture_creation(node) -> None:
    """Remember where the user created `node` (called when recording, in anomaly mode)."""
    node._creation_stack = traceback.extract_stack()[:-3]


def _user_frame(stack):
    for frame in reversed(stack):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR + os.sep):
            return frame
    return stack[-1] if stack else None


def _user_frames(node, limit: int = 6) -> list:
    """The last `limit` frames of the creation stack that are not gpugrad's own."""
    stack = getattr(node, "_creation_stack", None) or []
    return [f for f in stack
            if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR + os.sep)][-limit:]


def creation_site(node) -> str:
    """'File "...", line N, in fn: code' for the user line that created `node`."""
    stack = getattr(node, "_creation_stack", None)
    frame = _user_frame(stack) if stack else None
    if frame is None:
        return "an unknown location (the node was created outside detect_anomaly())"
    return f'File "{frame.filename}", line {frame.lineno}, in {frame.name}: {frame.line}'


def check_gradients(node, in_grads) -> None:
    """Raise if a gradient returned by `node`'s backward holds NaN or inf."""
    if not _state.check_nan:
        return
    for i, g in enumerate(in_grads):
        if g is None or not is_inexact(g._data.dtype):
            continue
        xp = g._backend.xp
        if not bool(xp.isfinite(g._data).all()):
            kind = "nan" if bool(xp.isnan(g._data).any()) else "inf"
            raise RuntimeError(
                f"Function '{node.name()}' returned {kind} values in its {i}th output. "
                f"The forward operation {type(node).__name__} was created at: "
                f"{creation_site(node)}\nCreation traceback (innermost last):\n"
                + "".join(traceback.format_list(_user_frames(node))))

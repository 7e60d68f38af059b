"""The recording core of `gpugrad.profiler`: the event sink that autograd and the backends
call while a profile is active.

This module imports only the standard library, so every layer may call it. `active` is
the `Recorder` of the running profile, or None. Each choke point (`Function.apply`, the
engine's call of a node's backward, the backends' kernel methods, the compile sites of
generated kernels) tests `active is not None` and does nothing else when no profile runs.

A new choke point (a fused kernel, another backend method) follows the same pattern,
and its call back into itself runs the body, since `wants_kernel` is False inside a
recorded kernel:

    rec = trace.active
    if rec is not None and rec.wants_kernel():
        return rec.kernel(name, backend, arrays, self.method, *args)

Code that runs kernels outside any op (a fused backward chain in the engine) may give
them a phase with `rec.push_range(name, "backward")` ... `rec.pop_range(token)`.

Records are plain tuples (see `Recorder.records`); `gpugrad.profiler` turns them into
events, tables and traces once the region has ended. On CUDA a kernel's device time comes
from two events recorded around its launch (`timing_event` on the backend); they are read
only in `Recorder.finish`, so the region itself never waits for the device.
"""

from __future__ import annotations

import functools
import os
import threading
import time

__all__ = ["Recorder", "active", "start", "stop", "traced"]

active: Recorder | None = None  # the recorder of the running profile

_lock = threading.Lock()
_clock = time.perf_counter_ns


class _Thread(threading.local):
    """A recorder's per-thread state: the phase stack, the enclosing ops, and the flags
    that let a choke point run its own body when the recorder calls it back."""

    def __init__(self) -> None:
        self.phases: list = []
        self.ops: list = []  # (name, backend) of the ops running on this thread
        self.skip_op = False  # the next Function.apply is the recorded call's own body
        self.in_kernel = False  # kernels inside a recorded kernel are part of it


class Recorder:
    """Collects op, kernel and range records and compile costs for one profile region.

    Each record is a tuple (kind, name, phase, backend, shapes, dtype, start_ns, end_ns,
    owner op, thread id, device timer) where kind is "op", "kernel" or "range", phase is
    "forward", "backward", "optimizer" or "other", backend is the device's backend (None:
    the host) and dtype an array's or tensor's dtype object (named after the region, off
    the recording path), and the device timer is None or (backend, start event, end
    event) until `finish` replaces it with the device (offset µs, duration µs) from the
    region's first event on that device.
    """

    def __init__(self, *, host: bool = True, device_time: bool = True) -> None:
        self.host = host  # record ops and CPU kernels
        self.device_time = device_time  # time CUDA kernels with device events
        self.records: list = []
        self.resolved: tuple = ()  # the records with device times, once finished
        self.compiles: list = []  # (what, name, ns)
        self.t0 = _clock()
        self.t1: int | None = None
        self._thread = _Thread()

    # -- ops -----------------------------------------------------------------------------
    def wants_op(self) -> bool:
        """False for the call that `op` makes back into `Function.apply` (which then runs
        its body), True for every other op."""
        th = self._thread
        if th.skip_op:
            th.skip_op = False
            return False
        return True

    def op(self, apply, cls, args: tuple, kwargs: dict):
        """Run `apply(cls, *args, **kwargs)` (Function.apply itself) as a recorded op."""
        th = self._thread
        backend = _backend_of(args)
        phase = th.phases[-1] if th.phases else "forward"
        th.phases.append(phase)
        th.ops.append((cls.__name__, backend))
        th.skip_op = True
        start = _clock()
        try:
            return apply(cls, *args, **kwargs)
        finally:
            end = _clock()
            th.skip_op = False
            th.ops.pop()
            th.phases.pop()
            if self.host:
                shapes, dtype = _describe(args)
                self.records.append(("op", cls.__name__, phase, backend, shapes, dtype,
                                     start, end, _owner(th), threading.get_ident(), None))

    def backward(self, node, grads, fused=None):
        """Run a graph node's backward on the cotangents `grads` as a recorded op of the
        backward phase (named as the node, e.g. "MulBackward"); with `fused`, `node` is a
        fused region of nodes and `fused(node, grads)` runs it."""
        th = self._thread
        name = node.name()
        backend = getattr(node, "_backend", None)
        th.phases.append("backward")
        th.ops.append((name, backend))
        start = _clock()
        try:
            return type(node).backward(node, *grads) if fused is None else fused(node, grads)
        finally:
            end = _clock()
            th.ops.pop()
            th.phases.pop()
            if self.host:
                shapes, dtype = _describe(grads)
                self.records.append(("op", name, "backward", backend, shapes, dtype,
                                     start, end, _owner(th), threading.get_ident(), None))

    # -- kernels -------------------------------------------------------------------------
    def wants_kernel(self) -> bool:
        """False inside a recorded kernel (its helpers and fallbacks are part of it)."""
        return not self._thread.in_kernel

    def kernel(self, name: str, backend, ins, fn, *args, **kwargs):
        """Run `fn(*args, **kwargs)` as one recorded kernel or blocked pass named `name`
        on `backend` (None: the enclosing op's) reading the arrays in `ins`."""
        th = self._thread
        if backend is None and th.ops:
            backend = th.ops[-1][1]
        timer = None
        if self.device_time and backend is not None:
            make = getattr(backend, "timing_event", None)
            if make is not None and not backend.is_capturing():
                timer = make
        th.in_kernel = True
        if timer is None and not self.host:  # a CPU kernel without the CPU activity
            try:
                return fn(*args, **kwargs)
            finally:
                th.in_kernel = False
        start = _clock()
        ev0 = timer() if timer is not None else None
        try:
            return fn(*args, **kwargs)
        finally:
            ev1 = timer() if timer is not None else None
            end = _clock()
            th.in_kernel = False
            shapes, dtype = _describe(ins)
            phase = th.phases[-1] if th.phases else "other"
            self.records.append(("kernel", name, phase, backend, shapes, dtype,
                                 start, end, _owner(th), threading.get_ident(),
                                 None if ev0 is None else (backend, ev0, ev1)))

    # -- ranges and compiles -------------------------------------------------------------
    def push_range(self, name: str, phase: str | None = None) -> tuple:
        """Open a named range (record_function, Optimizer.step); `phase` (if given) is the
        phase of everything inside. Returns the token for `pop_range`."""
        th = self._thread
        if phase is None:
            return (name, th.phases[-1] if th.phases else "other", _clock(), None)
        th.phases.append(phase)
        return (name, phase, _clock(), len(th.phases))

    def pop_range(self, token: tuple) -> None:
        """Close the range opened by `push_range`."""
        name, phase, start, depth = token
        th = self._thread
        end = _clock()
        if depth is not None:
            del th.phases[depth - 1:]
        self.records.append(("range", name, phase, None, (), None, start, end, _owner(th),
                             threading.get_ident(), None))

    def enter_phase(self, phase: str) -> int:
        """Make `phase` the phase of everything this thread runs until `leave_phase`
        (no record of its own: the engine's gradient sums between nodes are "backward").
        Returns the depth to give `leave_phase`."""
        th = self._thread
        th.phases.append(phase)
        return len(th.phases)

    def leave_phase(self, depth: int) -> None:
        """Close the phase opened by `enter_phase` (and anything left open inside it)."""
        del self._thread.phases[depth - 1:]

    def current_phase(self) -> str | None:
        """The phase of this thread's innermost op or range (None outside all)."""
        th = self._thread
        return th.phases[-1] if th.phases else None

    def compiled(self, what: str, name: str, ns: int) -> None:
        """A generated kernel or program was built in the region: `what` is the compiler
        ("python" for a NumPy program's exec, "nvrtc" for a CUDA kernel or module)."""
        self.compiles.append((what, name, ns))

    # -- the end -------------------------------------------------------------------------
    def finish(self) -> None:
        """Stop the clock and read the device timers (the one wait for the device) into
        `resolved`, a snapshot of the records: a thread still running an op appends to
        `records` after the end, which is ignored."""
        self.t1 = _clock()
        base: dict = {}  # backend -> (first start event, its host time in ns)
        out = []
        for rec in list(self.records):
            timer = rec[10]
            if timer is not None:
                backend, ev0, ev1 = timer
                first = base.get(id(backend))
                if first is None:
                    first = base[id(backend)] = (ev0, rec[6])
                ev1.synchronize()
                offset_us = first[1] / 1000 + backend.elapsed_ms(first[0], ev0) * 1000
                rec = rec[:10] + ((offset_us, backend.elapsed_ms(ev0, ev1) * 1000),)
            out.append(rec)
        self.resolved = tuple(out)


def start(recorder: Recorder) -> None:
    """Make `recorder` the active one (one profile at a time, as in PyTorch)."""
    global active
    with _lock:
        if active is not None:
            raise RuntimeError("profiler: another profile is already recording; profiles "
                               "cannot run at the same time or nest")
        active = recorder


def stop(recorder: Recorder) -> None:
    """Detach `recorder` (if it is the active one) and read its device timers."""
    global active
    with _lock:
        if active is recorder:
            active = None
    recorder.finish()


def traced(method):
    """Decorator for a backend method that is one kernel or pass (an optimizer update, a
    row kernel's reference): recorded as a kernel named as the method while a profile is
    active. For methods called once per op or less: the hot ones test `active` inline."""
    name = method.__name__

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        rec = active
        if rec is None or not rec.wants_kernel():
            return method(self, *args, **kwargs)
        return rec.kernel(name, self, args, method, self, *args, **kwargs)

    return call


# -- describing values without importing them ---------------------------------------------
def _backend_of(args):
    """The backend of the first tensor among `args` (a Tensor's `_backend`)."""
    for a in args:
        backend = getattr(a, "_backend", None)
        if backend is not None:
            return backend
    return None


def _describe(values) -> tuple:
    """(the shapes of the array-like values, one level into lists, and the first one's
    dtype object; the profile names it after the region)."""
    shapes, dtype = [], None
    for v in values:
        t = type(v)
        if t in _NOT_ARRAYS:
            continue
        if t is list or t is tuple:
            inner, dt = _describe(v)
            shapes.extend(inner)
            if dtype is None:
                dtype = dt
            continue
        shape = getattr(v, "shape", None)
        if shape is None:
            continue
        shapes.append(tuple(shape))
        if dtype is None:
            dtype = getattr(v, "dtype", None)
    return tuple(shapes), dtype


_NOT_ARRAYS = frozenset((int, float, complex, bool, type(None), str))


def _owner(th: _Thread) -> str | None:
    return th.ops[-1][0] if th.ops else None


def _forget_in_child() -> None:
    """A forked child (DataLoader workers) records nothing: the region is the parent's."""
    global active
    active = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)

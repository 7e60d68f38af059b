"""cupy.cuda on the emulated device: one device (id 0), streams that run their work in
issue order (the emulator computes eagerly, which is one valid schedule), events that are
done when recorded, graph capture (see cupy._core) and replay, memory pools that hand out
ordinary allocations, pinned host memory, and a cuBLAS stand-in for gpugrad's capture GEMM."""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import threading
import time

import numpy as np

from .. import _core
from . import device, graph, runtime  # noqa: F401

_ptrs = itertools.count(0x7F0000001000, 0x100)
_tls = threading.local()


class Device:
    """CUDA device `device` (only 0 exists); a context manager making it current."""

    def __init__(self, device=None) -> None:  # noqa: F811 - CuPy's parameter name
        self.id = 0 if device is None else int(device)
        if self.id >= runtime.getDeviceCount() or self.id < 0:
            raise runtime.CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal "
                                           f"{self.id}")

    def use(self) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def __eq__(self, other) -> bool:
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self) -> int:
        return self.id

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class Event:
    """A CUDA event: work before its record() is done once it is recorded (the emulator
    computes eagerly), so its time is the host clock at record()."""

    def __init__(self, block=False, disable_timing=False, interprocess=False) -> None:
        self.ptr = next(_ptrs)
        self.disable_timing = bool(disable_timing)
        self._time: float | None = None

    @property
    def done(self) -> bool:
        return True

    def record(self, stream=None) -> None:
        self._time = time.perf_counter()

    def synchronize(self) -> None:
        if _core.capturing() is not None:
            raise _core.StreamCaptureError("cudaErrorStreamCaptureUnsupported: "
                                           "Event.synchronize during capture")


def get_elapsed_time(start_event: Event, end_event: Event) -> float:
    """Milliseconds between two recorded events (CuPy's cudaEventElapsedTime wrapper): both
    must have been recorded, without disable_timing."""
    for ev in (start_event, end_event):
        if ev.disable_timing or ev._time is None:
            raise runtime.CUDARuntimeError("cudaErrorInvalidResourceHandle: invalid resource "
                                           "handle")
    return (end_event._time - start_event._time) * 1000.0


class Stream:
    """A CUDA stream; `with stream:` makes it the thread's current stream."""

    null = None

    def __init__(self, null=False, non_blocking=False, priority=0, ptds=False) -> None:
        self.ptr = 0 if null else next(_ptrs)
        self._capture: list | None = None
        self._saved: list | None = None

    def __enter__(self):
        _stack().append(self)
        return self

    def __exit__(self, *exc) -> None:
        _stack().pop()

    def use(self):
        _stack()[:] = [self]
        return self

    def synchronize(self) -> None:
        if self._capture is not None:
            raise _core.StreamCaptureError("cudaErrorStreamCaptureUnsupported: "
                                           "Stream.synchronize during capture")

    def record(self, event=None) -> Event:
        event = Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event) -> None:
        pass

    def add_callback(self, callback, arg) -> None:
        callback(self, None, arg)

    @property
    def done(self) -> bool:
        return True

    # graph capture
    def begin_capture(self, mode=None) -> None:
        if self._capture is not None:
            raise runtime.CUDARuntimeError("cudaErrorIllegalState: the stream is already "
                                           "capturing")
        self._saved = _core.snapshot()
        self._capture = []

    def is_capturing(self) -> bool:
        return self._capture is not None

    def end_capture(self) -> graph.Graph:
        if self._capture is None:
            raise runtime.CUDARuntimeError("cudaErrorIllegalState: the stream is not capturing")
        thunks, saved = self._capture, self._saved
        self._capture = self._saved = None
        for buf, copy in saved:  # the captured work was recorded, not run
            np.copyto(buf, copy)
        return graph.Graph(thunks)


Stream.null = Stream(null=True)
ExternalStream = Stream


def _stack() -> list:
    if not hasattr(_tls, "streams"):
        _tls.streams = [Stream.null]
    return _tls.streams


def get_current_stream(device_id=-1) -> Stream:
    """The calling thread's current stream."""
    return _stack()[-1]


# -- memory ------------------------------------------------------------------------------------
class MemoryPool:
    """A device memory pool (allocations are ordinary emulator memory)."""

    def __init__(self, allocator=None) -> None:
        self._bytes = 0

    def malloc(self, size):
        self._bytes += int(size)
        return _core.ndarray((int(size),), np.uint8).data

    def used_bytes(self) -> int:
        return self._bytes

    def total_bytes(self) -> int:
        return self._bytes

    def free_all_blocks(self, stream=None) -> None:
        pass

    def n_free_blocks(self) -> int:
        return 0

    def set_limit(self, size=None, fraction=None) -> None:
        pass

    def get_limit(self) -> int:
        return 0


_default_pool = MemoryPool()


def get_default_pool() -> MemoryPool:
    return _default_pool


@contextlib.contextmanager
def using_allocator(allocator=None):
    """Allocations inside come from `allocator` (ignored: memory is host memory here)."""
    yield


def set_allocator(allocator=None) -> None:
    pass


def get_allocator():
    return _default_pool.malloc


class PinnedMemoryPointer:
    """Page-locked host memory: `ptr` is its host address."""

    def __init__(self, size: int) -> None:
        self._buf = np.zeros(max(int(size), 1), dtype=np.uint8)
        self.ptr = self._buf.ctypes.data
        self.size = int(size)

    def __int__(self) -> int:
        return self.ptr


class PinnedMemoryPool:
    def malloc(self, size) -> PinnedMemoryPointer:
        return PinnedMemoryPointer(size)

    def free_all_blocks(self) -> None:
        pass


def alloc_pinned_memory(size) -> PinnedMemoryPointer:
    """`size` bytes of pinned host memory."""
    return PinnedMemoryPointer(size)


MemoryPointer = _core.MemoryPointer


def is_available() -> bool:
    return True


del ctypes

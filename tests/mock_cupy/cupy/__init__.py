"""A mock CuPy for the CPU: the test double behind GPUGRAD_MOCK_CUDA=1 (tests/conftest.py
puts tests/mock_cupy first on sys.path, so `import cupy` finds this package).

It follows the signatures of CuPy 13.x (and 14, which kept them) for the surface gpugrad
calls: device arrays (`ndarray`, see _core.py for CuPy's host-transfer rules), the
NumPy-like functions and ufuncs (computed by NumPy), `asnumpy`, `RawModule`/`RawKernel`
(CUDA C++ compiled with g++ against tests/kernels_cpu/cuda_host_shim.h and launched
block by block with CUDA's semantics, see _emu.py), `random.default_rng`, and `cuda`
(devices, streams, events, graph capture, memory pools, pinned memory, a cuBLAS stand-in).
It is not part of gpugrad's runtime.
"""

from __future__ import annotations

import types as _types

import numpy as _np

from . import _core, cuda, random  # noqa: E402
from ._core import array, asarray, asnumpy, ndarray
from ._raw import RawKernel, RawModule

__version__ = "13.6.0"  # the CuPy whose signatures this mock follows
MOCK = True  # tells tests that the device is emulated

# Functions that answer questions about dtypes and shapes: their results stay host values.
_META = {"result_type", "promote_types", "can_cast", "issubdtype", "isscalar", "shape",
         "ndim", "size", "broadcast_shapes", "min_scalar_type", "dtype", "iinfo", "finfo",
         "common_type", "obj2sctype", "isdtype", "errstate", "get_printoptions",
         "set_printoptions"}


class _Ufunc:
    """A NumPy ufunc acting on device arrays (`at`, `reduce`, ... included)."""

    def __init__(self, uf) -> None:
        self._uf = uf
        self.__name__ = uf.__name__

    def __call__(self, *args, **kwargs):
        return _core.call(self._uf, args, kwargs, name=f"cupy.{self.__name__}")

    def __getattr__(self, name):
        attr = getattr(self._uf, name)
        if callable(attr):
            return lambda *a, **k: _core.call(attr, a, k, name=f"cupy.{self.__name__}.{name}")
        return attr


def _function(fn, qualname: str):
    def f(*args, **kwargs):
        return _core.call(fn, args, kwargs, name=qualname)
    f.__name__ = getattr(fn, "__name__", qualname)
    f.__doc__ = getattr(fn, "__doc__", None)
    return f


def _lookup(namespace, name: str, prefix: str):
    attr = getattr(namespace, name)
    if name in _META or isinstance(attr, type) or not callable(attr):
        if isinstance(attr, _types.ModuleType):
            return _Namespace(attr, f"{prefix}.{name}")
        return attr
    if isinstance(attr, _np.ufunc):
        return _Ufunc(attr)
    return _function(attr, f"{prefix}.{name}")


class _Namespace(_types.ModuleType):
    """cupy.linalg, cupy.fft, ...: NumPy's submodule on device arrays."""

    def __init__(self, module, name: str) -> None:
        super().__init__(name)
        self._module = module

    def __getattr__(self, name):
        return _lookup(self._module, name, self.__name__)


def ascontiguousarray(a, dtype=None):
    """`a` (a device array) C-contiguous: itself when it already is."""
    a = asarray(a, dtype=dtype)
    if a.flags.c_contiguous:
        return a
    return _core.call(_np.ascontiguousarray, (a,), {})


def broadcast(*arrays):
    """The broadcast of device arrays (its shape, size and ndim are host values)."""
    return _np.broadcast(*(a._a if isinstance(a, ndarray) else a for a in arrays))


def get_array_module(*args):
    """This module when any argument is a device array, else NumPy."""
    import sys

    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


def empty(shape, dtype=float, order="C"):
    return ndarray(shape, dtype, order=order)


def get_default_memory_pool():
    return cuda.get_default_pool()


def get_default_pinned_memory_pool():
    return cuda.PinnedMemoryPool()


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    value = _lookup(_np, name, "cupy")
    globals()[name] = value
    return value

"""cupy.RawModule and cupy.RawKernel on the emulated device."""

from __future__ import annotations

import functools

import numpy as np

from . import _core, _emu


@functools.cache
def _compiled(code: str):
    return _emu.compile_source(code)


class RawKernel:
    """One `extern "C"` kernel of a CUDA source: `kernel(grid, block, args, shared_mem=0)`."""

    def __init__(self, code: str, name: str, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, jitify=False) -> None:
        self.code, self.name, self.options = code, name, tuple(options)
        self._dll = None

    def _lib(self):
        if self._dll is None:
            self._dll = _compiled(self.code)
            getattr(self._dll, self.name)  # AttributeError: no such kernel
        return self._dll

    def compile(self, log_stream=None) -> None:
        """Compile now (CuPy >= 10: otherwise the first launch compiles)."""
        self._lib()

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None,
                 enable_cooperative_groups=False) -> None:
        dll, name, args = self._lib(), self.name, tuple(args)
        for a in args:
            if isinstance(a, np.ndarray):
                raise TypeError(f"Unsupported type {type(a)} as an argument of kernel {name} "
                                "(a host array)")
        _emu.launch(dll, name, grid, block, args, shared_mem)
        if _core.capturing() is not None:
            _core._record(lambda: _emu.launch(dll, name, grid, block, args, shared_mem))

    @property
    def attributes(self) -> dict:
        return {"max_threads_per_block": 1024}


class RawModule:
    """A CUDA source compiled once; `get_function(name)` gives its kernels."""

    def __init__(self, code: str | None = None, *, path=None, options=(), backend="nvrtc",
                 translate_cucomplex=False, enable_cooperative_groups=False,
                 name_expressions=None, log_stream=None, jitify=False) -> None:
        if code is None:
            with open(path) as f:
                code = f.read()
        self.code, self.options = code, tuple(options)
        _compiled(code)  # compile errors surface here, as NVRTC's do in CuPy

    def compile(self, log_stream=None) -> None:
        """Build the module now (done at construction here, as compile errors are)."""
        _compiled(self.code)

    def get_function(self, name: str) -> RawKernel:
        k = RawKernel(self.code, name, self.options)
        k._lib()
        return k

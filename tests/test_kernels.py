"""Every CUDA source compiles with NVRTC (no GPU needed: the nvidia-cuda-nvrtc wheel).

Each kernel file is compiled as CuPy compiles it (`#include "common.cuh"` and friends pasted
in by gpugrad.backend.kernels, so no include path is needed), for every supported
architecture, and every per-dtype `extern "C"` entry point that the CuPy backend asks for
(`ENTRY_POINTS` x float32/float64/float16/bfloat16) must be in the PTX.
"""

import ctypes
import glob
import os
import re

import pytest

from gpugrad.backend.kernels import ENTRY_POINTS, entry_names, kernel_dir, kernel_sources

ARCHS = ("compute_80", "compute_90")


def _load_nvrtc():
    import nvidia

    for root in nvidia.__path__:
        for path in sorted(glob.glob(os.path.join(root, "*", "lib", "libnvrtc.so*"))):
            if "builtins" not in path:
                return ctypes.CDLL(path)
    pytest.fail("libnvrtc not found: install the nvidia-cuda-nvrtc wheel (the dev extra)")


def compile_ptx(source: str, name: str, arch: str) -> str:
    lib = _load_nvrtc()
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0,
                                  None, None) == 0
    try:
        opts = [f"--gpu-architecture={arch}".encode(), b"--std=c++17"]
        status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        assert status == 0, f"{name} failed to compile for {arch}:\n{log.value.decode()}"
        lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
        ptx = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetPTX(prog, ptx)
        return ptx.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


SOURCES = kernel_sources()


def test_kernels_are_found():
    assert SOURCES, f"no .cu files in {kernel_dir()}"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_kernel_compiles(name, arch):
    source = SOURCES[name]
    ptx = compile_ptx(source, f"{name}.cu", arch)
    literal = re.findall(r'extern "C" __global__ void (\w+)\(', source)
    for entry in literal + entry_names(name):
        assert f".entry {entry}(" in ptx, f"{entry} missing from the PTX of {name}.cu"


def test_every_listed_kernel_file_exists():
    assert set(ENTRY_POINTS) <= set(SOURCES), set(ENTRY_POINTS) - set(SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_includes_are_pasted_in(name):
    includes = re.findall(r"^\s*#include.*$", SOURCES[name], re.MULTILINE)
    assert not includes, f"{name}.cu still has includes for NVRTC: {includes}"


def test_broken_source_is_reported():
    with pytest.raises(AssertionError, match="failed to compile"):
        compile_ptx('extern "C" __global__ void k() { undefined_fn(); }', "broken.cu",
                    ARCHS[0])

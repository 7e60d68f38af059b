"""The emulated device's kernel path: CUDA C++ sources compiled with g++ against
tests/kernels_cpu/cuda_host_shim.h, and launched with CUDA's block semantics.

A source is rewritten before compiling: the sections that the serial host shim cannot run
(`#ifndef GG_HOST_SHIM`) are kept, since the launcher here runs blocks of cooperating
threads, and each `__shared__` declaration becomes a per-block slot of the launcher's
shared memory (`extern __shared__` arrays point at the dynamic part). Shared libraries
are cached on disk by the hash of the rewritten source and the shim.

Arguments are passed the way the x86-64 System V ABI passes them (six integer registers,
eight SSE registers, then 8-byte stack slots in order), so one C entry point launches a
kernel of any signature made of pointers, integers, floats and doubles.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import shutil
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

SHIM = Path(__file__).resolve().parents[2] / "kernels_cpu" / "cuda_host_shim.h"
_CACHE = Path(os.environ.get("GPUGRAD_MOCK_CUDA_CACHE")
              or Path(tempfile.gettempdir()) / f"gpugrad-mock-cuda-{os.getuid()}")
_STACK_SLOTS = 64  # the shim's StackArgs
_lock = threading.Lock()
_launches = 0
# {kernel name: number of launches}: which kernels ran in this process (the coverage report).
launch_counts: dict[str, int] = {}

_SHARED = re.compile(
    r"(?<![\w])(extern\s+)?__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s+)?"
    r"([A-Za-z_][\w:<>, ]*?)\s+([A-Za-z_]\w*)\s*((?:\[[^\]]*\])*)\s*;")


def rewrite(source: str) -> str:
    """`source` with the GPU-only sections enabled and `__shared__` made per block."""
    source = re.sub(r"^([ \t]*)#ifndef[ \t]+GG_HOST_SHIM\b", r"\1#if 1", source,
                    flags=re.MULTILINE)

    def shared(m: re.Match) -> str:
        is_extern, typ, name, dims = m.group(1), m.group(2).strip(), m.group(3), m.group(4)
        if is_extern:
            return f"{typ}* {name} = static_cast<{typ}*>(gg_emu_dynamic_shared());"
        tag = f'static const char gg_shared_tag_{name}[] = "{name}"; '
        slot = f"gg_emu_shared<{typ}{dims}>(gg_shared_tag_{name})"
        if not dims:
            return f"{tag}{typ}& {name} = {slot};"
        extents = ", ".join(f"({d})" for d in re.findall(r"\[([^\]]*)\]", dims))
        # arrays go through the race checker's views
        return f"{tag}gg_sview<{typ}, {extents}> {name}{{reinterpret_cast<{typ}*>(&{slot})}};"

    return _SHARED.sub(shared, source)


class CompileError(RuntimeError):
    """g++ rejected a kernel source (the message holds its diagnostics)."""


_FLAGS = ("-std=c++17", "-O1", "-g0", "-fPIC", "-U_FORTIFY_SOURCE", "-fno-strict-aliasing")


def _shim_header(gxx: str) -> Path:
    """The shim as a precompiled header next to a copy of it (built once per shim and
    flags): parsing the shim is half of each kernel's compile time, and the tests compile
    hundreds of generated kernels. The shim itself where the header cannot be built."""
    key = hashlib.sha256(SHIM.read_bytes() + " ".join(_FLAGS).encode()).hexdigest()[:16]
    folder = _CACHE / f"pch-{key}"
    header = folder / "cuda_host_shim.h"
    if (folder / "cuda_host_shim.h.gch").exists():
        return header
    folder.mkdir(parents=True, exist_ok=True)
    tmp_h = folder / f"shim.{os.getpid()}.h"
    tmp_h.write_bytes(SHIM.read_bytes())
    os.replace(tmp_h, header)
    tmp = folder / f"shim.{os.getpid()}.gch"
    res = subprocess.run([gxx, *_FLAGS, "-x", "c++-header", str(header), "-o", str(tmp)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        tmp.unlink(missing_ok=True)
        return SHIM
    os.replace(tmp, folder / "cuda_host_shim.h.gch")  # atomic, as the kernels' libraries
    return header


def compile_source(source: str) -> ctypes.CDLL:
    """The shared library of a CUDA source (compiled once, cached by content)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError("the mock CUDA device's launcher needs x86-64 (System V calls)")
    gxx = shutil.which("g++")
    if gxx is None:
        raise RuntimeError("the mock CUDA device compiles kernels with g++, which is missing")
    text = rewrite(source)
    key = hashlib.sha256(SHIM.read_bytes() + b"\0" + text.encode()).hexdigest()[:24]
    _CACHE.mkdir(parents=True, exist_ok=True)
    lib = _CACHE / f"k{key}.so"
    if not lib.exists():
        src = _CACHE / f"k{key}.{os.getpid()}.cpp"
        src.write_text(text)
        tmp = _CACHE / f"k{key}.{os.getpid()}.so"
        cmd = [gxx, *_FLAGS, "-shared", "-include", str(_shim_header(gxx)), str(src), "-o",
               str(tmp)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        src.unlink(missing_ok=True)
        if res.returncode != 0:
            raise CompileError(f"g++ failed on a kernel source:\n{res.stderr[-4000:]}")
        os.replace(tmp, lib)  # atomic: parallel processes may compile the same source
    dll = ctypes.CDLL(str(lib))
    dll.gg_emu_launch.restype = ctypes.c_int
    dll.gg_emu_launch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.c_ulonglong, ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.c_void_p, ctypes.c_ulonglong]
    dll.gg_emu_error.restype = ctypes.c_char_p
    return dll


def _dim3(d) -> np.ndarray:
    if isinstance(d, (int, np.integer)):
        d = (int(d),)
    d = tuple(int(v) for v in d) + (1,) * (3 - len(d))
    return np.asarray(d, dtype=np.uint32)


def classify(args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(6 integer registers, 8 double registers, 64 stack slots) holding `args`."""
    ints, dbls, stack = [], [], []
    for a in args:
        ptr = getattr(a, "_device_ptr", None)
        if ptr is not None:
            ints.append(ptr()) if len(ints) < 6 else stack.append(ptr())
            continue
        if a is None:
            ints.append(0) if len(ints) < 6 else stack.append(0)
        elif isinstance(a, (bool, np.bool_)):
            (ints if len(ints) < 6 else stack).append(int(a))
        elif isinstance(a, (int, np.integer)):
            v = int(a) & 0xFFFFFFFFFFFFFFFF
            v = v - (1 << 64) if v >= 1 << 63 else v
            (ints if len(ints) < 6 else stack).append(v)
        elif isinstance(a, np.float32):
            bits = struct.unpack("<I", struct.pack("<f", float(a)))[0]
            if len(dbls) < 8:
                dbls.append(struct.unpack("<d", struct.pack("<Q", bits))[0])
            else:
                stack.append(bits)
        elif isinstance(a, (float, np.floating)):
            if isinstance(a, np.floating) and a.dtype.itemsize != 8:
                raise TypeError(f"kernel argument of unsupported type {type(a).__name__}")
            if len(dbls) < 8:
                dbls.append(float(a))
            else:
                stack.append(struct.unpack("<q", struct.pack("<d", float(a)))[0])
        else:
            raise TypeError(f"Unsupported type {type(a)} as a kernel argument")
    if len(stack) > _STACK_SLOTS:
        raise TypeError(f"the mock CUDA launcher takes at most {_STACK_SLOTS} stack-passed "
                        "arguments")
    return (np.asarray(ints + [0] * (6 - len(ints)), dtype=np.int64),
            np.asarray(dbls + [0.0] * (8 - len(dbls)), dtype=np.float64),
            np.asarray(stack + [0] * (_STACK_SLOTS - len(stack)), dtype=np.int64))


def launch(dll: ctypes.CDLL, name: str, grid, block, args, shared_mem: int = 0) -> None:
    """Run kernel `name` of `dll` on grid x block, its blocks in a seeded order."""
    global _launches
    fn = ctypes.cast(getattr(dll, name), ctypes.c_void_p).value
    g, b = _dim3(grid), _dim3(block)
    ints, dbls, stack = classify(args)
    with _lock:
        _launches += 1
        seed = int(os.environ.get("GPUGRAD_MOCK_CUDA_SEED", "1")) * 1000003 + _launches
        launch_counts[name] = launch_counts.get(name, 0) + 1
        rc = dll.gg_emu_launch(fn, g.ctypes.data, b.ctypes.data, int(shared_mem),
                               ints.ctypes.data, dbls.ctypes.data, stack.ctypes.data, seed)
    if rc != 0:
        msg = dll.gg_emu_error().decode()
        raise RuntimeError(f"kernel {name} (grid {tuple(int(v) for v in g)}, block "
                           f"{tuple(int(v) for v in b)}): {msg}")

"""Finding and compiling the CUDA sources in `kernels/`.

The sources ship inside the installed package as `gpugrad.kernels` (setuptools maps the
repository's top-level `kernels/` folder there); a source checkout that is not installed
finds them next to the package.

Every kernel exists once per float dtype, as an `extern "C"` wrapper named
`BASE_SUFFIX` (`softmax_forward_f32`, `softmax_forward_bf16`, ...). `ENTRY_POINTS` lists the
bases of each file; the NVRTC test checks that every name it implies is in the PTX.
"""

from __future__ import annotations

import functools
import re
import time
from importlib import resources
from pathlib import Path

from . import trace as _trace
from .pointwise import cuda_source, record_build
from .pointwise_reduce import cuda_reduce_source
from .row_epilogue import cuda_epilogue_source, epilogue_kernel_name

DTYPE_SUFFIX = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16"}

ENTRY_POINTS: dict[str, tuple[str, ...]] = {
    "softmax": ("softmax_forward", "softmax_backward", "softmax_xent_forward",
                "softmax_xent_backward"),
    "layer_norm": ("layer_norm_forward", "layer_norm_backward", "layer_norm_param_grad"),
    "dropout": ("dropout_apply",),
    "optim": ("sgd_multi", "adam_multi", "unscale_multi", "sumsq_multi"),
}

_INCLUDE = re.compile(r'^[ \t]*#include[ \t]+"([^"]+)"[ \t]*$', re.MULTILINE)


def kernel_dir() -> Path:
    """The folder holding the `.cu` sources."""
    try:
        path = Path(str(resources.files("gpugrad.kernels")))
        if any(path.glob("*.cu")):
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "kernels"


def entry_names(name: str) -> list[str]:
    """Every `extern "C"` kernel name that `kernels/NAME.cu` must define."""
    return [f"{base}_{sfx}" for base in ENTRY_POINTS.get(name, ())
            for sfx in DTYPE_SUFFIX.values()]


def expand_includes(source: str, folder: Path, seen: set[str] | None = None) -> str:
    """`source` with each `#include "FILE"` replaced by FILE's (expanded) text, once per
    file: NVRTC then needs no include path, and CuPy's compile cache, keyed on the source
    text, notices a changed header."""
    seen = set() if seen is None else seen

    def paste(match: re.Match) -> str:
        fname = match.group(1)
        if fname in seen:
            return ""
        seen.add(fname)
        path = folder / fname
        if not path.exists():
            raise FileNotFoundError(f"{path} (included by a kernel source) not found")
        text = path.read_text().replace("#pragma once", "")
        body = expand_includes(text, folder, seen)
        return f"// ---- {fname} ----\n{body}\n// ---- end {fname} ----"

    return _INCLUDE.sub(paste, source)


def kernel_sources() -> dict[str, str]:
    """{file stem: CUDA source with its includes pasted in} for every kernel file."""
    folder = kernel_dir()
    return {p.stem: expand_includes(p.read_text(), folder) for p in sorted(folder.glob("*.cu"))}


def kernel_source(name: str) -> str:
    """The source of `kernels/NAME.cu`, includes pasted in."""
    path = kernel_dir() / f"{name}.cu"
    if not path.exists():
        raise FileNotFoundError(f"CUDA source {path} not found: is the package installed "
                                "with its kernels?")
    return expand_includes(path.read_text(), path.parent)


def dtype_suffix(dtype) -> str | None:
    """The kernel-name suffix for an array dtype (None when no kernel handles it)."""
    return DTYPE_SUFFIX.get(getattr(dtype, "name", str(dtype)))


@functools.cache
def raw_module(name: str):
    """The CuPy RawModule for `kernels/NAME.cu`, compiled once per process (and cached on
    disk by CuPy)."""
    import cupy

    start = time.perf_counter_ns()
    module = cupy.RawModule(code=kernel_source(name), options=("--std=c++17",))
    rec = _trace.active
    if rec is not None:
        _build(module)  # now, so that the profile sees what it costs
        rec.compiled("nvrtc", f"{name}.cu", time.perf_counter_ns() - start)
    return module


def kernel(name: str, base: str, dtype):
    """The compiled kernel BASE for `dtype` from `kernels/NAME.cu`."""
    return raw_module(name).get_function(f"{base}_{dtype_suffix(dtype)}")


STORAGE = {"f32": "float", "f64": "double", "f16": "gg_half", "bf16": "gg_bf16"}


def pointwise_source(prog, dtype, signature: str) -> str:
    """The complete CUDA source (common.cuh pasted in) of the generated kernel of a
    pointwise program for `dtype` and an operand `signature` (see
    `gpugrad.backend.pointwise.cuda_source`)."""
    sfx = dtype_suffix(dtype)
    body = cuda_source(prog, STORAGE[sfx], sfx, signature)
    return expand_includes('#include "common.cuh"\n' + body, kernel_dir())


def pointwise_kernel(prog, dtype, signature: str):
    """The compiled kernel of a pointwise program, cached per program, dtype and operand
    signature (and on disk by CuPy, keyed on the source)."""
    sfx = dtype_suffix(dtype)
    name = prog.kernel_name(sfx, signature)
    hit = _KERNELS.get(name)
    if hit is None:
        hit = _KERNELS[name] = _compiled_kernel(pointwise_source(prog, dtype, signature), name)
    return hit


def _compiled_kernel(source: str, name: str):
    """cupy.RawKernel(source, name), compiled now (CuPy caches the binary on disk, keyed by
    the source, so a later process loads it instead of running NVRTC) and counted in
    `pointwise.compile_stats()`."""
    import cupy

    start = time.perf_counter_ns()
    k = cupy.RawKernel(source, name, options=("--std=c++17",))
    k.compile()
    ns = time.perf_counter_ns() - start
    record_build("cuda", ns * 1e-9)
    rec = _trace.active
    if rec is not None:
        rec.compiled("nvrtc", name, ns)
    return k


def pointwise_reduce_kernel(prog, dtype, signature: str, kind: str):
    """The compiled reduction kernel (`pointwise_reduce.cuda_reduce_source`) of a pointwise
    program, cached like `pointwise_kernel`; None where the program does not render as one."""
    sfx = dtype_suffix(dtype)
    name = prog.kernel_name(f"{sfx}_{kind}", signature)
    hit = _KERNELS.get(name)
    if hit is None:
        body = cuda_reduce_source(prog, STORAGE[sfx], sfx, signature, kind)
        if body is None:
            return None
        source = expand_includes('#include "common.cuh"\n' + body, kernel_dir())
        hit = _KERNELS[name] = _compiled_kernel(source, name)
    return hit


def row_epilogue_source(family: str, prog, slot: int, dtype, signature: str) -> str:
    """The complete CUDA source of the row kernel `family` ("softmax", "layer_norm") with
    `prog` as its epilogue (`row_epilogue.cuda_epilogue_source`): the row file's templates
    pasted in (GG_ROW_EPILOGUE_ONLY: none of its own kernels), then the generated kernel."""
    sfx = dtype_suffix(dtype)
    body = cuda_epilogue_source(family, prog, slot, STORAGE[sfx], sfx, signature)
    return expand_includes(f'#define GG_ROW_EPILOGUE_ONLY\n#include "{family}.cu"\n' + body,
                           kernel_dir())


def row_epilogue_kernel(family: str, prog, slot: int, dtype, signature: str):
    """The compiled epilogue variant of a row kernel, cached like `pointwise_kernel`."""
    name = epilogue_kernel_name(family, prog, slot, dtype_suffix(dtype), signature)
    hit = _KERNELS.get(name)
    if hit is None:
        hit = _KERNELS[name] = _compiled_kernel(
            row_epilogue_source(family, prog, slot, dtype, signature), name)
    return hit


def _build(compiled) -> None:
    """Compile a RawKernel/RawModule now rather than at its first launch (CuPy compiles
    lazily; its disk cache makes a rebuild a load)."""
    build = getattr(compiled, "compile", None)
    if build is not None:
        build()


_KERNELS: dict = {}

"""Finding and compiling the CUDA sources in `kernels/`.

The sources ship inside the installed package as `gpugrad.kernels` (setuptools maps the
repository's top-level `kernels/` folder there); a source checkout that is not installed
finds them next to the package.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

ACTIVATION_KINDS = {"relu": 0, "sigmoid": 1, "tanh": 2}


def kernel_dir() -> Path:
    """The folder holding the `.cu` sources."""
    try:
        path = Path(str(resources.files("gpugrad.kernels")))
        if any(path.glob("*.cu")):
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "kernels"


def kernel_sources() -> dict[str, str]:
    """{file stem: CUDA source} for every kernel file."""
    return {p.stem: p.read_text() for p in sorted(kernel_dir().glob("*.cu"))}


def kernel_source(name: str) -> str:
    """The source of `kernels/NAME.cu`."""
    path = kernel_dir() / f"{name}.cu"
    if not path.exists():
        raise FileNotFoundError(f"CUDA source {path} not found: is the package installed "
                                "with its kernels?")
    return path.read_text()


@functools.cache
def raw_module(name: str):
    """The CuPy RawModule for `kernels/NAME.cu`, compiled once (CuPy caches on disk)."""
    import cupy

    return cupy.RawModule(code=kernel_source(name), options=("--std=c++17",))

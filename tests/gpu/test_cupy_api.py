"""The CuPy API that the CUDA backend, CUDA graphs and the NCCL group call, checked by
name and signature wherever CuPy imports (no GPU needed; skipped without CuPy)."""

import inspect

import pytest

cupy = pytest.importorskip("cupy")

# Selected by gpu_session.sh's `pytest -m gpu` (the conftest skips tests/gpu without a GPU).
pytestmark = pytest.mark.gpu


def _params(fn) -> list[str]:
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # Cython without signatures: the first doc line
        head = (fn.__doc__ or "").strip().splitlines()[0]
        params = head[head.index("(") + 1:head.index(")")].split(",")
        # "size_t size=0" -> "size" (Cython docs carry the C type)
        return [p.split("=")[0].split()[-1].lstrip("*") for p in params
                if p.strip() not in ("", "*")]


@pytest.mark.parametrize("path, names", [
    ("RawModule", ["code", "options"]),
    ("RawModule.get_function", ["name"]),
    ("cuda.Stream", ["non_blocking"]),
    ("cuda.Stream.begin_capture", ["mode"]),
    ("cuda.Stream.end_capture", []),
    ("cuda.Stream.is_capturing", []),
    ("cuda.Stream.record", []),
    ("cuda.Stream.wait_event", ["event"]),
    ("cuda.graph.Graph.launch", ["stream"]),
    ("cuda.MemoryPool.malloc", []),
    ("cuda.using_allocator", ["allocator"]),
    ("cuda.alloc_pinned_memory", []),
    ("cuda.MemoryPointer.copy_from_host_async", ["mem", "size", "stream"]),
    ("cuda.device.get_cublas_handle", []),
    ("cuda.runtime.getDeviceCount", []),
    ("random.Generator.random", ["size", "dtype"]),
    ("random.Generator.standard_normal", ["size", "dtype"]),
    ("random.Generator.integers", ["low", "high", "size", "dtype"]),
])
def test_cupy_callables_we_use_exist(path, names):
    obj = cupy
    for part in path.split("."):
        obj = getattr(obj, part)
    assert callable(obj)
    params = _params(obj)
    for name in names:
        assert name in params, f"cupy.{path}: no parameter {name!r} in {params}"


def test_event_done_is_a_property():
    # NCCLProcessGroup.barrier polls `event.done` (a bound method would always be truthy).
    assert isinstance(inspect.getattr_static(cupy.cuda.Event, "done"), property)


def test_scatter_add_and_bfloat16_typename():
    import cupyx

    assert callable(cupyx.scatter_add)
    ml_dtypes = pytest.importorskip("ml_dtypes")
    import numpy as np
    from cupy._core import _scalar

    assert _scalar.get_typename(np.dtype(ml_dtypes.bfloat16))

"""Shared fixtures: deterministic seeds, the `gpu` marker's skip rule, and the mock CUDA
device (GPUGRAD_MOCK_CUDA=1 puts tests/mock_cupy first on the import path, so `import
cupy` finds the emulator; subprocesses inherit it through PYTHONPATH)."""

import os
import sys
from pathlib import Path

if os.environ.get("GPUGRAD_MOCK_CUDA") == "1":
    _MOCK = str(Path(__file__).resolve().parent / "mock_cupy")
    sys.path.insert(0, _MOCK)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [_MOCK] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import gpugrad as gg  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if gg.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (CuPy with a visible device)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    gg.manual_seed(0)
    np.random.seed(0)
    yield


@pytest.fixture
def cpu_default_device():
    """The default device is cpu for the test (tests of CPU-only behaviour, which the
    GPUGRAD_DEVICE=cuda oracle run would otherwise move to the GPU)."""
    previous = gg.default_device()
    gg.set_default_device("cpu")
    yield
    gg.set_default_device(previous)


# -- the mock CUDA device's kernel coverage ------------------------------------------------
# Under GPUGRAD_MOCK_CUDA=1, which tests launched each kernel (by name without its dtype
# suffix): summarised at the end of the run, and written as JSON to
# GPUGRAD_MOCK_CUDA_REPORT when that is set.
_KERNEL_TESTS: dict = {}


@pytest.fixture(autouse=True)
def _mock_cuda_kernel_coverage(request):
    if os.environ.get("GPUGRAD_MOCK_CUDA") != "1" or "cupy._emu" not in sys.modules:
        yield
        return
    counts = sys.modules["cupy._emu"].launch_counts
    before = dict(counts)
    yield
    for name, n in counts.items():
        if n != before.get(name, 0):
            base = name.rsplit("_", 1)[0] if name.rsplit("_", 1)[-1] in (
                "f32", "f64", "f16", "bf16") else name
            _KERNEL_TESTS.setdefault(base, set()).add(request.node.nodeid)


def pytest_terminal_summary(terminalreporter):
    if os.environ.get("GPUGRAD_MOCK_CUDA") != "1":
        return
    import json

    from gpugrad.backend.kernels import ENTRY_POINTS

    expected = [b for bases in ENTRY_POINTS.values() for b in bases]
    terminalreporter.write_sep("-", "mock CUDA device: tests that launched each kernel")
    for base in expected + sorted(set(_KERNEL_TESTS) - set(expected)):
        terminalreporter.write_line(f"{base}: {len(_KERNEL_TESTS.get(base, ()))} tests")
    path = os.environ.get("GPUGRAD_MOCK_CUDA_REPORT")
    if path:
        Path(path).write_text(json.dumps({k: sorted(v) for k, v in _KERNEL_TESTS.items()},
                                         indent=1))

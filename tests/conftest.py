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

"""Shared fixtures: deterministic seeds, and the `gpu` marker's skip rule."""

import numpy as np
import pytest

import gpugrad as gg


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

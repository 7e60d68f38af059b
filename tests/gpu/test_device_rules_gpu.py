"""CuPy's and CUDA's rules that the mock CUDA device enforces too, so code that breaks
them fails in CI before it reaches a GPU: no implicit device-to-host conversion, no host
reads inside a graph capture, and a capture records work without running it."""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.backend import get_backend

pytestmark = pytest.mark.gpu


def test_device_arrays_never_convert_to_host_implicitly():
    x = gg.ones(3, device="cuda")._data
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array"):
        np.asarray(x)
    with pytest.raises(TypeError):
        x + np.ones(3)  # a host array mixed into a device computation


def test_host_read_inside_capture_is_an_error_and_the_capture_is_dropped():
    x = gg.ones(4, device="cuda")
    graph = gg.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="captur"):
        with graph.capture():
            (x * 2).sum().item()
    with pytest.raises(RuntimeError, match="nothing has been captured"):
        graph.replay()
    assert not gg.cuda.is_current_stream_capturing()


def test_capture_records_without_running_and_replay_runs():
    backend = get_backend("cuda")
    w = gg.zeros(3, device="cuda")
    graph = gg.cuda.CUDAGraph()
    with graph.capture():
        w.add_(1.0)
    assert backend.to_host(w._data).tolist() == [0.0, 0.0, 0.0]  # recorded, not run
    graph.replay()
    graph.replay()
    assert backend.to_host(w._data).tolist() == [2.0, 2.0, 2.0]

"""The NumPy backend's blocked, threaded kernels equal the same formulas applied whole."""

import numpy as np
import pytest

from gpugrad.backend import base, cpu_backend
from gpugrad.backend.numpy_backend import _BLOCK


def _whole(kernel, outs, ins):
    with np.errstate(over="ignore", invalid="ignore"):
        kernel(np, *outs, *ins)


@pytest.mark.parametrize("layout", ["c", "transposed", "broadcast_g", "rows_broadcast"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_kernels_match_whole_array(layout, dtype):
    rng = np.random.default_rng(0)
    shape = (4 * _BLOCK // 64 + 37, 64)  # several blocks plus a ragged last one
    x = (rng.standard_normal(shape) * 10).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    if layout == "transposed":
        x = np.ascontiguousarray(x.T).T
    elif layout == "broadcast_g":
        g = np.broadcast_to(np.asarray(1.5, dtype), shape)
    elif layout == "rows_broadcast":
        g = rng.standard_normal(shape[1]).astype(dtype)
    for kernel, ins, n_out in [(base._sigmoid_into, (x, 1), 1), (base._swish_into, (x, 0.7), 1),
                               (base._tanh_backward_into, (np.tanh(x), g), 1),
                               (base._sigmoid_backward_into, (x, g), 1),
                               (base._swish_backward_into, (x, 0.7, g), 2)]:
        got = tuple(np.empty(shape, dtype) for _ in range(n_out))
        ref = tuple(np.empty(shape, dtype) for _ in range(n_out))
        cpu_backend._run_elementwise(kernel, got, ins)
        _whole(kernel, ref, ins)
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b, err_msg=kernel.__name__)

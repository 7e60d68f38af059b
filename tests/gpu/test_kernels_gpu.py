"""Each CUDA kernel against its NumPy reference (runs only where a GPU answers)."""

import numpy as np
import pytest

import gpugrad as gg
from gpugrad.backend import cpu_backend, get_backend

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("kind", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (1023,), (33, 65), (0,)])
def test_activation_kernels_match_numpy(kind, dtype, shape):
    gpu = get_backend("cuda")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    if x.size:
        x.reshape(-1)[0] = 80.0  # extreme values must not overflow to NaN
    g = rng.standard_normal(shape).astype(dtype)
    y_ref = cpu_backend.act_forward(kind, x)
    y = gpu.act_forward(kind, gpu.asarray(x))
    np.testing.assert_allclose(gpu.to_host(y), y_ref, rtol=1e-5, atol=1e-6)
    gx_ref = cpu_backend.act_backward(kind, y_ref, g)
    gx = gpu.act_backward(kind, y, gpu.asarray(g))
    np.testing.assert_allclose(gpu.to_host(gx), gx_ref, rtol=1e-5, atol=1e-6)


def test_activation_kernel_non_contiguous():
    gpu = get_backend("cuda")
    x = np.random.default_rng(1).standard_normal((40, 30)).astype(np.float32)
    xt = gpu.asarray(x).T
    np.testing.assert_allclose(gpu.to_host(gpu.act_forward("tanh", xt)), np.tanh(x.T),
                               rtol=1e-5, atol=1e-6)


def test_training_graph_on_gpu_matches_cpu():
    a = np.random.default_rng(2).standard_normal((8, 5)).astype(np.float32)
    res = []
    for dev in ("cpu", "cuda"):
        x = gg.tensor(a, device=dev, requires_grad=True)
        ((x.sigmoid() * x).tanh().relu() @ x.T).sum().backward()
        res.append(x.grad.cpu().numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_swish_backend_matches_numpy(beta):
    gpu = get_backend("cuda")
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((37, 19)) * 6).astype(np.float32)
    g = rng.standard_normal((37, 19)).astype(np.float32)
    np.testing.assert_allclose(gpu.to_host(gpu.swish_forward(gpu.asarray(x), beta)),
                               cpu_backend.swish_forward(x, beta), rtol=1e-5, atol=1e-6)
    gx, gb = gpu.swish_backward(gpu.asarray(x), beta, gpu.asarray(g), True)
    rx, rb = cpu_backend.swish_backward(x, beta, g, True)
    np.testing.assert_allclose(gpu.to_host(gx), rx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gpu.to_host(gb), rb, rtol=1e-5, atol=1e-6)

"""Each CUDA kernel against its NumPy reference (runs only where a GPU answers)."""

import numpy as np
import pytest

import gpugrad as gg

pytestmark = pytest.mark.gpu


def test_training_graph_on_gpu_matches_cpu():
    a = np.random.default_rng(2).standard_normal((8, 5)).astype(np.float32)
    res = []
    for dev in ("cpu", "cuda"):
        x = gg.tensor(a, device=dev, requires_grad=True)
        ((x.sigmoid() * x).tanh().relu() @ x.T).sum().backward()
        res.append(x.grad.cpu().numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_swish_matches_cpu(beta):
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((37, 19)) * 6).astype(np.float32)
    res = []
    for dev in ("cpu", "cuda"):
        x = gg.tensor(a, device=dev, requires_grad=True)
        b = gg.tensor(beta, device=dev, requires_grad=True)
        y = gg.nn.functional.swish(x, b)
        y.sum().backward()
        res.append([y.detach().cpu().numpy(), x.grad.cpu().numpy(), b.grad.cpu().numpy()])
    for c, g in zip(*res):
        np.testing.assert_allclose(c, g, rtol=1e-5, atol=1e-5)

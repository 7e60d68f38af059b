"""Fused backward passes (used when no graph is recorded) equal the differentiable path."""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F


@pytest.mark.parametrize("beta_kind", ["float", "tensor"])
def test_swish_fused_backward_equals_tensor_op_path(beta_kind):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 5)) * 4
    g = rng.standard_normal((6, 5))
    grads = []
    for create_graph in (False, True):
        x = gg.tensor(a, requires_grad=True)
        beta = gg.tensor(0.8, dtype=gg.float64, requires_grad=True) \
            if beta_kind == "tensor" else 0.8
        inputs = [x, beta] if beta_kind == "tensor" else [x]
        out = gg.autograd.grad(F.swish(x, beta), inputs, gg.tensor(g),
                               create_graph=create_graph)
        grads.append([t.detach().numpy() for t in out])
    for fused, reference in zip(*grads):
        np.testing.assert_allclose(fused, reference, rtol=1e-12, atol=1e-12)


def test_swish_extreme_values_stay_finite():
    x = gg.tensor([-800.0, -30.0, 0.0, 30.0, 800.0], requires_grad=True)
    F.swish(x, 1.0).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(x.grad.numpy()[[0, 4]], [0.0, 1.0])

"""The worked chain-rule examples, each checked against the derivative written by hand."""

import numpy as np
import pytest

import gpugrad as gg


def scalar(v):
    return gg.tensor(v, dtype=gg.float64, requires_grad=True)


def test_square_of_shift():  # z = (x + 1)²: dz/dx = 2(x + 1) = 8 at x = 3
    x = scalar(3.0)
    ((x + 1) ** 2).backward()
    assert x.grad.item() == 8.0


def test_two_inputs():  # (x + y)² at (2, 3): both partials are 2(x + y) = 10
    x, y = scalar(2.0), scalar(3.0)
    ((x + y) ** 2).backward()
    assert (x.grad.item(), y.grad.item()) == (10.0, 10.0)


def test_two_paths_are_summed():  # x² + x at 3: 2x + 1 = 7
    x = scalar(3.0)
    (x * x + x).backward()
    assert x.grad.item() == 7.0


def test_relu_gradient():
    x = gg.tensor([-2.0, 0.5, 3.0], requires_grad=True)
    x.relu().sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0]


def test_sigmoid_at_zero():
    x = scalar(0.0)
    x.sigmoid().backward()
    assert x.grad.item() == pytest.approx(0.25)


@pytest.mark.parametrize("v", [-1.3, 0.4, 2.0])
def test_sin_of_square(v):  # d sin(x²)/dx = 2x cos(x²)
    x = scalar(v)
    gg.sin(x ** 2).backward()
    assert x.grad.item() == pytest.approx(2 * v * np.cos(v * v))


@pytest.mark.parametrize("v", [0.5, 1.5])
def test_exp_log_cancel(v):  # exp(log((3x)²)) = 9x²: derivative 18x
    x = scalar(v)
    gg.exp(gg.log((3 * x) ** 2)).backward()
    assert x.grad.item() == pytest.approx(18 * v)


def test_linear_layer_vjp():  # Y = X Wᵀ, L = ΣY: dX = dY W, dW = dYᵀ X
    rng = np.random.default_rng(0)
    X = gg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    W = gg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    Y = X @ W.T
    Y.sum().backward()
    dY = np.ones((4, 5))
    np.testing.assert_allclose(X.grad.numpy(), dY @ W.detach().numpy())
    np.testing.assert_allclose(W.grad.numpy(), dY.T @ X.detach().numpy())


def test_mse_gradient():  # d mean((p - t)²)/dp = 2/n (p - t)
    rng = np.random.default_rng(1)
    p = gg.tensor(rng.standard_normal(7), requires_grad=True)
    t = gg.tensor(rng.standard_normal(7))
    ((p - t) ** 2).mean().backward()
    np.testing.assert_allclose(p.grad.numpy(), 2 / 7 * (p.detach().numpy() - t.numpy()))


def test_second_derivative():  # d²/dx² sin(x²) = 2cos(x²) − 4x² sin(x²)
    x = scalar(1.1)
    (g,) = gg.autograd.grad(gg.sin(x * x), x, create_graph=True)
    (h,) = gg.autograd.grad(g, x)
    assert h.item() == pytest.approx(2 * np.cos(1.21) - 4 * 1.21 * np.sin(1.21))


def test_third_derivative_of_cube():
    x = scalar(2.0)
    (g,) = gg.autograd.grad(x ** 3, x, create_graph=True)
    (h,) = gg.autograd.grad(g, x, create_graph=True)
    (k,) = gg.autograd.grad(h, x)
    assert (g.item(), h.item(), k.item()) == (12.0, 12.0, 6.0)

"""DEQFixedPoint: the implicit-function-theorem backward against unrolled backprop."""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn as nn


class Cell(nn.Module):
    """f(z, x) = tanh(W z + U x + b) with ‖W‖₂ = `contraction` < 1: a contraction in z."""

    def __init__(self, d: int = 6, dx: int = 4, contraction: float = 0.6):
        super().__init__()
        self.lin_z = nn.Linear(d, d, bias=False, dtype=gg.float64)
        self.lin_x = nn.Linear(dx, d, dtype=gg.float64)
        w = self.lin_z.weight.detach().numpy()
        with gg.no_grad():
            self.lin_z.weight.copy_(gg.tensor(w * contraction / np.linalg.norm(w, 2)))
        self.calls_with_grad = 0

    def forward(self, z, x):
        self.calls_with_grad += int(gg.is_grad_enabled())
        return gg.tanh(self.lin_z(z) + self.lin_x(x))


def _loss(z, c):
    return (z * c).sum() + (z ** 2).sum()


def _grads(loss, cell, x):
    params = list(cell.parameters())
    return gg.autograd.grad(loss, [x] + params)


@pytest.mark.parametrize("solver", ["anderson", "fixed_point"])
@pytest.mark.parametrize("backward_solver", ["fixed_point", "anderson"])
def test_ift_gradient_matches_unrolled_backprop(solver, backward_solver):
    cell = Cell()
    x = gg.randn(3, 4, dtype=gg.float64, requires_grad=True)
    c = gg.randn(3, 6, dtype=gg.float64)

    z = gg.zeros(3, 6, dtype=gg.float64)
    for _ in range(120):  # unrolled: the graph holds every iteration
        z = cell(z, x)
    expected = _grads(_loss(z, c), cell, x)

    deq = nn.DEQFixedPoint(cell, hidden_features=6, solver=solver, solver_iters=200, tol=1e-12,
                           backward_solver=backward_solver, backward_tol=1e-12)
    cell.calls_with_grad = 0
    z_star = deq(x)
    assert cell.calls_with_grad == 1  # no graph through the forward iterations
    np.testing.assert_allclose(z_star.detach().numpy(), z.detach().numpy(), atol=1e-10)
    got = _grads(_loss(z_star, c), cell, x)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.numpy(), e.numpy(), atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(g.numpy(), e.numpy(), atol=1e-9)  # in fact much closer
    assert deq.forward_info["residual"] < 1e-12
    assert deq.backward_info["residual"] < 1e-12


def test_anderson_needs_fewer_iterations():
    cell = Cell(d=32, contraction=0.95)
    # A symmetric W has spectral radius = norm: plain iteration converges slowly.
    w = cell.lin_z.weight.detach().numpy()
    w = w @ w.T
    with gg.no_grad():
        cell.lin_z.weight.copy_(gg.tensor(w * 0.95 / np.linalg.norm(w, 2)))
    x = 0.3 * gg.randn(5, 4, dtype=gg.float64)
    with gg.no_grad():
        za, info_a = nn.implicit.anderson(lambda z: cell(z, x), gg.zeros(5, 32, dtype=gg.float64),
                                          max_iter=300, tol=1e-10)
        zf, info_f = nn.implicit.fixed_point_iteration(
            lambda z: cell(z, x), gg.zeros(5, 32, dtype=gg.float64), max_iter=300, tol=1e-10)
    assert info_a["residual"] < 1e-10 and info_f["residual"] < 1e-10
    assert 2 * info_a["iters"] < info_f["iters"]
    np.testing.assert_allclose(za.numpy(), zf.numpy(), atol=1e-8)
    np.testing.assert_allclose(cell(za, x).detach().numpy(), za.numpy(), atol=1e-9)


def test_gradcheck_through_the_fixed_point():
    cell = Cell(d=3, dx=2)
    deq = nn.DEQFixedPoint(cell, hidden_features=3, solver_iters=200, tol=1e-13,
                           backward_tol=1e-13)
    x = gg.randn(2, 2, dtype=gg.float64, requires_grad=True)
    assert gg.autograd.gradcheck(lambda t: deq(t), [x])


def test_parameter_gradients_accumulate_with_backward():
    cell = Cell()
    deq = nn.DEQFixedPoint(cell, hidden_features=6, tol=1e-10, backward_tol=1e-10, solver_iters=100)
    x = gg.randn(2, 4, dtype=gg.float64)
    deq(x).sum().backward()
    assert all(p.grad is not None for p in deq.parameters())
    assert len(list(deq.parameters())) == 3


def test_no_grad_forward_and_custom_start():
    cell = Cell()
    deq = nn.DEQFixedPoint(cell, hidden_features=6, tol=1e-10, solver_iters=100)
    x = gg.randn(2, 4, dtype=gg.float64)
    with gg.no_grad():
        z = deq(x, z0=gg.ones(2, 6, dtype=gg.float64))
    assert not z.requires_grad and z.shape == (2, 6)
    np.testing.assert_allclose(cell(z, x).detach().numpy(), z.numpy(), atol=1e-8)


def test_errors():
    with pytest.raises(ValueError, match="unknown solver"):
        nn.DEQFixedPoint(Cell(), solver="newton")
    cell = Cell()
    deq = nn.DEQFixedPoint(cell, hidden_features=6, tol=1e-8)
    x = gg.randn(2, 4, dtype=gg.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="first-order only"):
        gg.autograd.grad(deq(x).sum(), x, create_graph=True)

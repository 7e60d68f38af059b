"""gg.func transforms and gradcheck."""

import numpy as np
import pytest
import torch

import gpugrad as gg


def test_vjp_matches_torch():
    a = np.random.default_rng(0).standard_normal((3, 4))
    ct = np.random.default_rng(1).standard_normal(3)
    out, vjp_fn = gg.func.vjp(lambda x: (x.tanh() * x).sum(1), gg.tensor(a))
    (g,) = vjp_fn(gg.tensor(ct))
    _, t_vjp = torch.func.vjp(lambda x: (x.tanh() * x).sum(1), torch.tensor(a))
    (tg,) = t_vjp(torch.tensor(ct))
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12)
    assert not out.requires_grad or out.grad_fn is not None


def test_grad_and_nested_grad():
    f = gg.func.grad(lambda x: (x ** 3).sum())
    x = gg.tensor([1.0, 2.0], dtype=gg.float64)
    assert f(x).tolist() == [3.0, 12.0]
    assert not f(x).requires_grad
    second = gg.func.grad(lambda x: gg.func.grad(lambda y: (y ** 3).sum())(x).sum())
    assert second(x).tolist() == [6.0, 12.0]


def test_grad_argnums_tuple():
    f = gg.func.grad(lambda x, y: (x * y).sum(), argnums=(0, 1))
    gx, gy = f(gg.tensor([1.0, 2.0]), gg.tensor([3.0, 4.0]))
    assert gx.tolist() == [3.0, 4.0] and gy.tolist() == [1.0, 2.0]


def test_jacobian_one_and_several_inputs():
    x = gg.tensor([1.0, 2.0, 3.0], dtype=gg.float64)
    j = gg.func.jacobian(lambda t: t * t, x)
    np.testing.assert_allclose(j.numpy(), np.diag([2.0, 4.0, 6.0]))
    w = gg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=gg.float64)
    jw, jx = gg.func.jacobian(lambda w, x: w @ x, w, x)
    tw, tx = torch.autograd.functional.jacobian(lambda w, x: w @ x,
                                               (torch.tensor(w.numpy()), torch.tensor(x.numpy())))
    assert jw.shape == (2, 2, 3) and jx.shape == (2, 3)
    np.testing.assert_allclose(jw.numpy(), tw.numpy())
    np.testing.assert_allclose(jx.numpy(), tx.numpy())


def test_gradcheck_returns_true_for_correct_ops():
    x = gg.tensor(np.random.default_rng(0).uniform(0.5, 2, (2, 3)), requires_grad=True)
    assert gg.autograd.gradcheck(lambda t: (t.log() * t.sqrt()).sum(0), (x,))


def test_gradcheck_needs_an_input_requiring_grad():
    with pytest.raises(ValueError, match="requires grad"):
        gg.autograd.gradcheck(lambda t: t * 2, (gg.ones(2, dtype=gg.float64),))

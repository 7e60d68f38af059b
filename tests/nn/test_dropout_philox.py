"""Dropout with a regenerated Philox mask (the CUDA backend's path), exercised on the CPU
by switching the NumPy backend to it: the NumPy reference computes the same masks."""

import numpy as np
import pytest

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.backend import cpu_backend
from gpugrad.ops.activation import PhiloxDropout


@pytest.fixture
def philox_cpu(monkeypatch):
    monkeypatch.setattr(type(cpu_backend), "regenerates_dropout_mask", True)
    return cpu_backend


def test_forward_uses_the_mask_of_the_drawn_seed_and_offset(philox_cpu):
    gg.manual_seed(7)
    x = gg.randn(33, 17, dtype=gg.float64)
    y = F.dropout(x, 0.3)
    assert y.grad_fn is None  # x needs no grad: nothing recorded
    keep = philox_cpu.dropout_mask(x.numel(), 0.3, 7, 0).reshape(33, 17)
    np.testing.assert_allclose(y.numpy(), np.where(keep, x.numpy() / 0.7, 0.0), rtol=1e-15)
    assert 0.6 < keep.mean() < 0.8


def test_each_call_draws_new_values_and_manual_seed_replays_them(philox_cpu):
    x = gg.ones(1000)
    gg.manual_seed(3)
    a, b = F.dropout(x, 0.5).numpy(), F.dropout(x, 0.5).numpy()
    assert (a != b).any()
    gg.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), a)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), b)


def test_backward_regenerates_the_forward_mask(philox_cpu):
    x = gg.randn(64, 9, requires_grad=True)
    y = F.dropout(x, 0.25)
    assert isinstance(y.grad_fn, PhiloxDropout)
    assert not hasattr(y.grad_fn, "scale")  # no mask kept between forward and backward
    g = gg.randn(64, 9)
    (y * g).sum().backward()
    kept = y.detach().numpy() != 0
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, g.numpy() / 0.75, 0.0),
                               rtol=1e-6)


def test_gradcheck_and_double_backward(philox_cpu):
    x = gg.randn(5, 4, dtype=gg.float64, requires_grad=True)
    assert gg.autograd.gradcheck(lambda t: PhiloxDropout.apply(t, 0.4, 11, 5), (x,))
    y = PhiloxDropout.apply(x, 0.4, 11, 5)
    (gx,) = gg.autograd.grad((y * y).sum(), (x,), create_graph=True)
    (gxx,) = gg.autograd.grad(gx.sum(), (x,))
    keep = philox_cpu.dropout_mask(20, 0.4, 11, 5).reshape(5, 4)
    np.testing.assert_allclose(gxx.numpy(), np.where(keep, 2 / 0.36, 0.0), rtol=1e-12)


def test_cpu_backend_stores_its_mask_by_default():
    assert not cpu_backend.regenerates_dropout_mask
    x = gg.randn(8, 8, requires_grad=True, device="cpu")
    assert not isinstance(F.dropout(x, 0.5).grad_fn, PhiloxDropout)

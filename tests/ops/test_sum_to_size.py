"""Tensor.sum_to_size against PyTorch, and the engine's central reduction of broadcast
gradients that it serves (a node with `broadcast_grads` returns x̄ in the output's shape)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gpugrad as gg
from tests.oracle import check, gradcheck, rand, second_order


@pytest.mark.parametrize("shape,size", [
    ((2, 3, 4), (3, 1)), ((2, 3, 4), (1, 4)), ((2, 3, 4), (2, 1, 1)), ((2, 3, 4), ()),
    ((2, 3, 4), (2, 3, 4)), ((3, 1), (1,)), ((5,), (1,)), ((4, 1, 3), (1, 1, 3)),
    ((0, 3), (1, 3)), ((2, 0), (1,)),
])
def test_sum_to_size_matches_torch(shape, size):
    if size:
        check(lambda x: x.sum_to_size(*size), [rand(*shape)])
    check(lambda x: x.sum_to_size(size), [rand(*shape)])  # one tuple
    check(lambda x: x.sum_to_size(list(size)), [rand(*shape)], non_contiguous=True)


def test_sum_to_size_same_shape_is_the_input():
    x = gg.randn(2, 3)
    assert x.sum_to_size(2, 3) is x
    assert torch.randn(2, 3).sum_to_size(2, 3).shape == (2, 3)


@pytest.mark.parametrize("size", [(5,), (2, 2, 3, 4), (3, 2), (0, 4), (-1,), (4, 3, 4)])
def test_sum_to_size_bad_size(size):
    x = gg.randn(2, 3, 4)
    with pytest.raises(RuntimeError, match=r"not expandable to size \[2, 3, 4\]") as ours:
        x.sum_to_size(*size)
    assert str(list(size)) in str(ours.value)
    with pytest.raises(RuntimeError, match="not expandable"):
        torch.randn(2, 3, 4).sum_to_size(*size)
    with pytest.raises(TypeError, match="sum_to_size"):
        x.sum_to_size(2.0, 1)
    with pytest.raises(TypeError, match="sum_to_size"):
        x.sum_to_size()


def test_sum_to_size_gradcheck():
    gradcheck(lambda x: x.sum_to_size(3, 1), rand(2, 3, 4))
    gradcheck(second_order(lambda x: (x * x).sum_to_size(1, 4)), rand(2, 3, 4))


class _Spread(gg.autograd.Function):
    """y = x + b with broadcasting; backward returns both gradients in y's shape."""

    broadcast_grads = True

    @staticmethod
    def forward(ctx, x, b):
        return x + b

    @staticmethod
    def backward(ctx, g):
        return g * 1.0, g * 2.0


def test_engine_reduces_broadcast_gradients():
    x = gg.randn(3, 4, requires_grad=True)
    b = gg.randn(4, requires_grad=True)
    _Spread.apply(x, b).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.ones((3, 4)))
    np.testing.assert_allclose(b.grad.numpy(), np.full(4, 6.0))


def test_engine_reduction_is_differentiable():
    x = gg.randn(3, 4, dtype=gg.float64, requires_grad=True)
    b = gg.randn(1, 4, dtype=gg.float64, requires_grad=True)
    (gb,) = gg.autograd.grad((x * b).sum(), b, create_graph=True)
    assert gb.shape == (1, 4) and gb.grad_fn is not None
    (gx,) = gg.autograd.grad(gb.sum(), x)
    np.testing.assert_allclose(gx.numpy(), np.ones((3, 4)))


def test_engine_refuses_a_shape_without_broadcast_grads():
    class Bad(gg.autograd.Function):
        @staticmethod
        def forward(ctx, x, b):
            return x + b

        @staticmethod
        def backward(ctx, g):
            return g, g

    x = gg.randn(3, 4, requires_grad=True)
    b = gg.randn(4, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"invalid gradient at index 1: got shape \(3, 4\) "
                                           r"but expected shape \(4,\)"):
        Bad.apply(x, b).sum().backward()

    class Wrong(Bad):
        broadcast_grads = True

        @staticmethod
        def backward(ctx, g):
            return g, gg.zeros(3, 5)  # (4,) does not broadcast to (3, 5)

    x = gg.randn(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"invalid gradient at index 1: got shape \(3, 5\)"):
        Wrong.apply(x, b).sum().backward()

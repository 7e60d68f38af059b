"""MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (and Unflatten) against torch.nn: forward values
and input gradients over kernel sizes, strides, paddings, dilations and ceil mode; ties
and overlapping windows route the gradient as PyTorch does; gradcheck; bad inputs."""

import numpy as np
import pytest
import torch
from oracle import check_module, rand

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad import nn


def compare(ours, theirs, x: np.ndarray, atol=1e-12, rtol=1e-10):
    """Forward values and input gradients must agree (pooling has no parameters)."""
    check_module(ours, theirs, x, atol=atol, rtol=rtol)


MAX_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1, padding=1),          # overlapping windows
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(1, 2)),
    dict(kernel_size=3, stride=2, dilation=2, padding=1),
    dict(kernel_size=2, stride=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
]


@pytest.mark.parametrize("kw", MAX_CASES)
def test_max_pool2d_matches_torch(kw):
    compare(nn.MaxPool2d(**kw), torch.nn.MaxPool2d(**kw), rand(2, 3, 7, 8))


@pytest.mark.parametrize("kw", MAX_CASES)
def test_max_pool2d_ties_and_overlaps_route_like_torch(kw):
    # Few distinct values: many ties inside and across windows.
    x = np.random.default_rng(3).integers(0, 3, (2, 2, 7, 8)).astype(np.float64)
    compare(nn.MaxPool2d(**kw), torch.nn.MaxPool2d(**kw), x)
    compare(nn.MaxPool2d(**kw), torch.nn.MaxPool2d(**kw), np.zeros((1, 1, 6, 6)))


def test_max_pool2d_first_max_gets_the_gradient():
    x = gg.tensor([[[[1.0, 5.0, 5.0], [5.0, 0.0, 5.0], [2.0, 5.0, 1.0]]]], requires_grad=True)
    F.max_pool2d(x, 2, stride=1).sum().backward()
    # windows overlap: (0,1) is first in the top two windows, (1,0) and (1,2) in the others
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[0, 2, 0], [1, 0, 1], [0, 0, 0]])


def test_max_pool2d_indices_nan_and_unbatched():
    x = rand(2, 3, 6, 6)
    x[0, 0, 1, 1] = np.nan
    ours, idx = F.max_pool2d(gg.tensor(x), 3, 2, 1, return_indices=True)
    theirs, t_idx = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())
    assert idx.dtype == gg.int64 and not idx.requires_grad
    compare(nn.MaxPool2d(2), torch.nn.MaxPool2d(2), rand(3, 4, 4))


AVG_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=3, stride=1, padding=1, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=2, divisor_override=3),
]


@pytest.mark.parametrize("kw", AVG_CASES)
def test_avg_pool2d_matches_torch(kw):
    compare(nn.AvgPool2d(**kw), torch.nn.AvgPool2d(**kw), rand(2, 3, 7, 8))


@pytest.mark.parametrize("size", [1, (3, 2), (4, None), 5, (7, 8)])
def test_adaptive_avg_pool2d_matches_torch(size):
    compare(nn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size), rand(2, 3, 7, 8))


def test_float32():
    x = rand(2, 4, 8, 8, dtype=np.float32)
    for ours, theirs in ((nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
                         (nn.AvgPool2d(3, 1, 1), torch.nn.AvgPool2d(3, 1, 1)),
                         (nn.AdaptiveAvgPool2d(3), torch.nn.AdaptiveAvgPool2d(3))):
        compare(ours, theirs, x, atol=1e-6, rtol=1e-5)


POOLS = {
    "max": (lambda x: F.max_pool2d(x, 3, 1, 1),
            lambda x: torch.nn.functional.max_pool2d(x, 3, 1, 1)),
    "avg": (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
            lambda x: torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
    "adaptive": (lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
                 lambda x: torch.nn.functional.adaptive_avg_pool2d(x, (2, 3))),
}


@pytest.mark.parametrize("name", POOLS)
def test_gradcheck_and_double_backward(name):
    fn, torch_fn = POOLS[name]
    x = rand(2, 2, 5, 5)
    assert gg.autograd.gradcheck(fn, [gg.tensor(x, requires_grad=True)])
    # The input gradient is linear in the upstream gradient c: differentiate it again
    # with respect to c, as torch does.
    grads = []
    for lib, f in ((gg, fn), (torch, torch_fn)):
        X = lib.tensor(x, requires_grad=True)
        y = f(X)
        c = lib.tensor(rand(*y.shape), requires_grad=True) if lib is gg else \
            torch.tensor(grads[0][0], requires_grad=True)
        (gx,) = lib.autograd.grad(y, [X], c, create_graph=True)
        (gc,) = lib.autograd.grad((gx * gx).sum(), [c])
        grads.append((c.detach().numpy(), gx.detach().numpy(), gc.detach().numpy()))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_bad_inputs():
    with pytest.raises(gg.ShapeError, match=r"3-d.*4-d.*\(8, 8\)"):
        nn.MaxPool2d(2)(gg.zeros(8, 8))
    with pytest.raises(gg.ShapeError, match=r"avg_pool2d.*\(1, 1, 2, 3, 4, 5\)"):
        nn.AvgPool2d(2)(gg.zeros(1, 1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(gg.zeros(1, 1, 6, 6), 2, padding=2)
    with pytest.raises(gg.ShapeError, match="too small"):
        F.max_pool2d(gg.zeros(1, 1, 2, 2), 3)


def test_unflatten():
    x = gg.tensor(rand(2, 12), requires_grad=True)
    y = nn.Unflatten(1, (3, 4))(x)
    assert y.shape == (2, 3, 4)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 12)))
